# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #11, "every control runs alone": `site.yml --tags <id>` for every ID of docs/controls.md.

For each ID, in catalog order, on the converged host:
1. only that control is drifted (RECIPES below), and the drift is checked to be there;
2. `site.yml --tags <id>` exits 0 and fixes it, and every task that changed is one of that ID's
   (the ID at the start of the task name, `FW-02 | ...`), or of another ID named in the recipe
   with the reason (a shared mechanism by design); a changed task without an ID fails the test;
   handlers run only when such a task notified them. The run's compliance report has no failure.
3. Once every ID ran alone, the whole site.yml changes nothing: what each ID did alone is what the
   whole playbook wants (a task that behaves otherwise alone, for want of another tag's data,
   would be changed back here).
Time: one `--tags` run per ID (12-18 s each on this loaded 2-core machine) plus one whole run, so
the converged check of each ID is folded into step 3. VPS_BASELINE_CONTROL_RERUN=1 adds, per ID,
the strict form of "on a converged host, `--tags <id>` changes nothing": the same run again on the
host it just fixed, changed=0 and the report only compliant or not applicable (twice the time).

The file name sorts after test_existing_server.py and test_minimal_host.py: pytest runs it last,
once those have read the converged host, and its runs write their reports to pytest's temporary
directories, never to the scenario's report directory that those tests read.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml
from testlib import PROJECT, ansible_playbook

testinfra_hosts = ["ansible://baseline"]

CATALOG = PROJECT / "docs/controls.md"
SITE = PROJECT / "playbooks/site.yml"
DOCROOT = "/var/www/html"
APACHE_CONF = "/etc/apache2/conf-available/vps-baseline.conf"
APACHE_HTTPS_SITE = "/etc/apache2/sites-enabled/vps-baseline-https.conf"
APACHE_TLS_CONF = "/etc/apache2/conf-available/vps-baseline-tls.conf"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-vps-baseline.conf"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/00-vps-baseline.conf"
MEMORY_SYSCTL = "/etc/sysctl.d/60-vps-baseline-memory.conf"
MEMORY_RESTART = "/etc/systemd/system/apache2.service.d/restart.conf"
INTEGRITY_DB = "/var/lib/aide/vps-baseline/aide.db"
INTEGRITY_TIMER = "vps-integrity-check.timer"
ID_ANCHOR = re.compile(r'<a id="([a-z]{2,4}-\d{2})"></a>')
TASK_ID = re.compile(r"^([A-Z]{2,4}-\d{2}) \| ")
HEADER = re.compile(r"^(TASK|RUNNING HANDLER) \[(?:[\w.-]+ : )?(.*)\] \**$")
# Molecule's verifier sets ANSIBLE_FORCE_COLOR, which beats testlib's ANSIBLE_NOCOLOR.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
# Test value only: crypt of "Welcome-1" (as in molecule/incident).
HASH = "$6$vpsbaselinesalt$4aEEfBbeNIr8g4qogP9qlwo/THdtfzwDXcocGywp41cdAc.QFRpfhOhV3IJo3OsRJZDDGLY183VSyzk6ShSmO/"


def catalog_ids():
    """The control IDs of the catalog, in its order (the anchors of docs/controls.md), less the
    containment controls (CT-*, its last section): playbooks/contain.yml runs them, site.yml never does."""
    baseline = CATALOG.read_text().split("\n## Containment", 1)[0]
    return [anchor.upper() for anchor in ID_ANCHOR.findall(baseline)]


def inventory_members():
    """workgroup_members as the scenario declares them (molecule.yml), for recipes that add one."""
    scenario = Path(__file__).resolve().parents[1] / "molecule.yml"
    group_vars = yaml.safe_load(scenario.read_text())["provisioner"]["inventory"]["group_vars"]
    return group_vars["baseline"]["workgroup_members"]


# ---------------------------------------------------------------------------------------------
# Helpers on the host under test (root through the docker connection).

def sh(host, cmd):
    with host.sudo():
        return host.run_expect([0], cmd).stdout


def ok(host, cmd):
    with host.sudo():
        return host.run(cmd).rc == 0


def content(host, path):
    with host.sudo():
        f = host.file(path)
        return f.content_string if f.exists else None


def shadow(host, user):
    return sh(host, f"getent shadow {user}").strip().split(":")


def stat(host, path):
    """(octal mode, group) of a path."""
    mode, group = sh(host, f"stat -c '%a %G' {path}").split()
    return mode, group


def nft_table(host):
    return sh(host, "nft -s list table inet vps_baseline")


# Seconds of each run, by ID (printed at the end).
TIMES = {}

# The live table before a firewall drift, to compare after the run (FW-02, FW-03, FW-05).
_live = {}


def live_drift(rule):
    """Drift: one rule inserted in the live table (not in any file)."""
    def drift(host):
        _live["before"] = nft_table(host)
        sh(host, f"nft insert rule inet vps_baseline {rule}")
    return drift


def live_restored(host, _run):
    return nft_table(host) == _live["before"]


def moved_in(name, mode):
    """A file made outside the docroot in root's group, then moved in: DR-05's watcher only
    handles team-group entries, so it leaves this one to DR-03 (a plain chmod below the docroot
    in the team group would be undone by the watcher within a second)."""
    def drift(host):
        sh(host, f"rm -f {DOCROOT}/{name} && echo {name} > /root/{name} && chgrp root /root/{name} "
                 f"&& chmod {mode} /root/{name} && mv /root/{name} {DOCROOT}/{name}")
    return drift


# ---------------------------------------------------------------------------------------------
# One recipe per control ID.

@dataclass
class Recipe:
    """How to drift one control on the converged host, and how to see that the run fixed it.

    drift(host) makes the drift; fixed(host, run) is true once it is gone (it gets the run, for
    a read-only control whose "fix" is its report). also: other control IDs whose tasks may
    change in this run, each with the reason (a shared mechanism by design). extra_vars: for a
    control that the scenario's inventory leaves off (opt-in, or no member it applies to).
    changes: false for a read-only control (no task may change). undo: puts the host back after a
    drift that the control only reports. reset: puts the host back at the end of the ID's test (after
    the strict re-run too), for an opt-in control whose result the whole site.yml of step 3, without
    the recipe's extra_vars, would undo (DR-06's ACLs: an empty docroot_web_writable removes them).
    """

    drift: Callable
    fixed: Callable
    what: str
    also: dict = field(default_factory=dict)
    extra_vars: Callable = dict
    changes: bool = True
    undo: Callable | None = None
    reset: Callable | None = None


def _acc01_vars():
    members = [dict(m, password_hash=HASH) if m["name"] == "wuser2" else m for m in inventory_members()]
    return {"workgroup_members": members}


def _acc04_vars():
    return {"workgroup_members": [*inventory_members(), {"name": "leaver", "state": "absent"}]}


def _acc04_drift(host):
    if not ok(host, "getent passwd leaver"):
        sh(host, "useradd -m -s /bin/bash leaver")
    sh(host, "echo 'leaver:Leaver-Pass-1' | chpasswd && usermod -e '' leaver")
    # A session still running under the account.
    sh(host, "setsid -f runuser -u leaver -- sleep 900 </dev/null >/dev/null 2>&1")
    sh(host, "sleep 0.5; pgrep -u leaver")


def _locked_and_expired(host, user):
    entry = shadow(host, user)
    return entry[1].startswith("!") and entry[7] == "1"


def _fw05_drift(host):
    _live["before"] = nft_table(host)
    sh(host, "nft add chain inet vps_baseline ctl_drift && rm -rf /var/lib/vps-baseline/firewall")


# DR-06: the web server user's named entry in a path's access ACL (python3 reads the xattr: the
# existing server has no acl package), and the reset that strips every POSIX ACL of the docroot.
ACL_WEB = ("import os,pwd,struct,sys\n"
           "try: raw = os.getxattr(sys.argv[1], 'system.posix_acl_access')\n"
           "except OSError: raw = b'\\x02\\0\\0\\0'\n"
           "uid = pwd.getpwnam('www-data').pw_uid\n"
           "print([p for t, p, i in struct.iter_unpack('<HHI', raw[4:]) if t == 2 and i == uid])")
ACL_STRIP = ("import os,sys\n"
             "for d, dirs, files in os.walk(sys.argv[1]):\n"
             "    for p in [d] + [os.path.join(d, f) for f in files]:\n"
             "        for n in ('system.posix_acl_access', 'system.posix_acl_default'):\n"
             "            if not os.path.islink(p) and n in os.listxattr(p):\n"
             "                os.removexattr(p, n)\n")


# A shell as the web server user with its groups (the team group included), without PAM.
AS_WEB = "setpriv --reuid=www-data --regid=www-data --init-groups -- sh -c"


def _dr06_drift(host):
    """The default's state with a writable place declared: a page in the team group, 0664 (DR-03),
    an uploads/ directory, and no ACL: the web server (in the team group) can rewrite the page."""
    sh(host, f"install -d -o root -g workgroup -m 2775 {DOCROOT}/uploads && rm -f {DOCROOT}/ctl-dr06.php "
             f"&& install -o root -g workgroup -m 0664 /dev/null {DOCROOT}/ctl-dr06.php")


def _dr06_fixed(host, _run):
    return (sh(host, f"python3 -c {shlex.quote(ACL_WEB)} {DOCROOT}/ctl-dr06.php").strip() == "[5]"
            and sh(host, f"python3 -c {shlex.quote(ACL_WEB)} {DOCROOT}/uploads").strip() == "[7]"
            and not ok(host, f"{AS_WEB} 'echo skim >> {DOCROOT}/ctl-dr06.php'")
            and ok(host, f"{AS_WEB} 'echo x > {DOCROOT}/uploads/ctl-dr06.txt'"))


# DR-03 alone must not apply DR-06: DR-06's ACL entries ride DR-03's walk only when DR-06 is in the
# run's tags. Before, `--tags dr-03` rewrote the web server's ACL entries in that walk and no task
# reported it (the DR-03 task counts its own fixes only): a silent change of another control.
ACL_GRANT_WEB_RWX = ("import os,pwd,struct,sys\n"
                     "uid = pwd.getpwnam('www-data').pw_uid\n"
                     "entries = [(1, 6, 0xffffffff), (2, 7, uid), (4, 6, 0xffffffff), (0x10, 7, 0xffffffff),"
                     " (0x20, 4, 0xffffffff)]\n"
                     "os.setxattr(sys.argv[1], 'system.posix_acl_access',"
                     " b'\\x02\\0\\0\\0' + b''.join(struct.pack('<HHI', *e) for e in entries))\n")


def _dr03_drift(host):
    moved_in("ctl-dr03.html", "0640")(host)
    sh(host, f"rm -f {DOCROOT}/ctl-dr03-acl.php && install -o root -g workgroup -m 0664 /dev/null "
             f"{DOCROOT}/ctl-dr03-acl.php && python3 -c {shlex.quote(ACL_GRANT_WEB_RWX)} {DOCROOT}/ctl-dr03-acl.php")
    assert sh(host, f"python3 -c {shlex.quote(ACL_WEB)} {DOCROOT}/ctl-dr03-acl.php").strip() == "[7]"


def _dr03_fixed(host, _run):
    return (stat(host, f"{DOCROOT}/ctl-dr03.html") == ("660", "workgroup")
            and sh(host, f"python3 -c {shlex.quote(ACL_WEB)} {DOCROOT}/ctl-dr03-acl.php").strip() == "[7]")


FW05_SHARED = ("the live table is compared and reloaded by FW-05's tasks for every firewall control "
               "(ruleset.yml, apply.yml): FW-02 and FW-03 have no load of their own")

RECIPES = {
    "WG-01": Recipe(
        what="a declared member taken out of the team group",
        drift=lambda h: sh(h, "gpasswd -d wuser1 workgroup"),
        fixed=lambda h, _r: "workgroup" in h.user("wuser1").groups),
    "WG-02": Recipe(
        what="the team umask block removed from a member's ~/.bashrc",
        drift=lambda h: sh(h, "sed -i '/vps-baseline team umask (WG-02)/d; /^umask 002$/d' /home/wuser1/.bashrc"),
        fixed=lambda h, _r: "umask 002" in (content(h, "/home/wuser1/.bashrc") or "")),
    "WEB-01": Recipe(
        what="the web server user taken out of the team group",
        drift=lambda h: sh(h, "gpasswd -d www-data workgroup"),
        fixed=lambda h, _r: "workgroup" in h.user("www-data").groups),
    "WEB-02": Recipe(
        what="the UMask drop-in of apache2.service removed",
        drift=lambda h: sh(h, "rm /etc/systemd/system/apache2.service.d/umask.conf && systemctl daemon-reload"),
        fixed=lambda h, _r: "UMask=0002" in (content(h, "/etc/systemd/system/apache2.service.d/umask.conf") or "")),
    "WEB-03": Recipe(
        what="ServerTokens Full in the baseline's Apache conf file",
        drift=lambda h: sh(h, f"sed -i 's/^ServerTokens .*/ServerTokens Full/' {APACHE_CONF}"),
        fixed=lambda h, _r: "\nServerTokens Prod\n" in content(h, APACHE_CONF)),
    "WEB-04": Recipe(
        what="the baseline's HTTPS site (the :443 virtual host and the redirect) disabled",
        drift=lambda h: sh(h, f"rm {APACHE_HTTPS_SITE} && systemctl restart apache2"),
        fixed=lambda h, _r: ok(h, f"test -L {APACHE_HTTPS_SITE} && test -e {APACHE_HTTPS_SITE}")),
    "WEB-05": Recipe(
        what="SSLProtocol all (TLS 1.0 and 1.1 back) in the baseline's TLS conf file",
        drift=lambda h: sh(h, f"sed -i 's/^\\( *\\)SSLProtocol .*/\\1SSLProtocol all/' {APACHE_TLS_CONF}"),
        fixed=lambda h, _r: "\n    SSLProtocol -all +TLSv1.2 +TLSv1.3\n" in content(h, APACHE_TLS_CONF)),
    "DR-01": Recipe(
        what="the docroot put in root's group",
        drift=lambda h: sh(h, f"chgrp root {DOCROOT}"),
        fixed=lambda h, _r: stat(h, DOCROOT) == ("2775", "workgroup")),
    "DR-02": Recipe(
        what="a member chroot below the docroot 0755 in root's group (root's group first: see moved_in)",
        drift=lambda h: sh(h, f"chgrp root {DOCROOT}/ir && chmod 0755 {DOCROOT}/ir"),
        fixed=lambda h, _r: stat(h, f"{DOCROOT}/ir") == ("2775", "workgroup")),
    "DR-03": Recipe(
        what="a 0640 file in root's group below the docroot; beside it, DR-06's drift (a page whose ACL "
             "lets the web server write it, with a writable place declared), which DR-03 must leave alone",
        extra_vars=lambda: {"docroot_web_writable": ["uploads"]},
        drift=_dr03_drift,
        fixed=_dr03_fixed,
        reset=lambda h: sh(h, f"python3 -c {shlex.quote(ACL_STRIP)} {DOCROOT}")),
    "DR-04": Recipe(
        what="a world-writable file below the docroot (in root's group: see moved_in)",
        drift=moved_in("ctl-dr04.html", "0666"),
        fixed=lambda h, _r: stat(h, f"{DOCROOT}/ctl-dr04.html") == ("664", "workgroup"),
        also={"DR-03": "DR-04 is the target state of DR-03's walk: the walk (the DR-03 task) removes "
                       "the world write, the DR-04 task reports what it found"}),
    "DR-05": Recipe(
        what="the upload watcher stopped and disabled",
        drift=lambda h: sh(h, "systemctl disable --now vps-upload-perms.service"),
        fixed=lambda h, _r: (ok(h, "systemctl is-active vps-upload-perms.service")
                             and ok(h, "systemctl is-enabled vps-upload-perms.service"))),
    "DR-06": Recipe(
        what="a page the web server can rewrite (no ACL) once a writable place is declared (opt-in: "
             "docroot_web_writable, empty in this scenario's inventory)",
        extra_vars=lambda: {"docroot_web_writable": ["uploads"]},
        drift=_dr06_drift,
        fixed=_dr06_fixed,
        reset=lambda h: sh(h, f"python3 -c {shlex.quote(ACL_STRIP)} {DOCROOT}")),
    "FTP-01": Recipe(
        what="local_umask=022 in vsftpd.conf",
        drift=lambda h: sh(h, "sed -i 's/^local_umask=.*/local_umask=022/' /etc/vsftpd.conf"),
        fixed=lambda h, _r: "\nlocal_umask=002\n" in content(h, "/etc/vsftpd.conf")),
    "FTP-02": Recipe(
        what="the jailed member's per-user vsftpd file removed",
        drift=lambda h: sh(h, "rm /etc/vsftpd/user_conf/wuser2"),
        fixed=lambda h, _r: f"local_root={DOCROOT}/ir" in (content(h, "/etc/vsftpd/user_conf/wuser2") or "")),
    "FTP-03": Recipe(
        what="anonymous_enable=YES in vsftpd.conf",
        drift=lambda h: sh(h, "sed -i 's/^anonymous_enable=.*/anonymous_enable=YES/' /etc/vsftpd.conf"),
        fixed=lambda h, _r: "\nanonymous_enable=NO\n" in content(h, "/etc/vsftpd.conf")),
    "FTP-04": Recipe(
        what="the passive range widened to 65535 in vsftpd.conf",
        drift=lambda h: sh(h, "sed -i 's/^pasv_max_port=.*/pasv_max_port=65535/' /etc/vsftpd.conf"),
        fixed=lambda h, _r: "\npasv_max_port=30100\n" in content(h, "/etc/vsftpd.conf")),
    "FTP-05": Recipe(
        what="force_local_logins_ssl=NO in vsftpd.conf (passwords in clear accepted)",
        drift=lambda h: sh(h, "sed -i 's/^force_local_logins_ssl=.*/force_local_logins_ssl=NO/' /etc/vsftpd.conf"),
        fixed=lambda h, _r: "\nforce_local_logins_ssl=YES\n" in content(h, "/etc/vsftpd.conf")),
    "SSH-01": Recipe(
        what="MaxAuthTries 10 in the baseline's sshd drop-in",
        drift=lambda h: sh(h, f"sed -i 's/^MaxAuthTries .*/MaxAuthTries 10/' {SSHD_DROPIN}"),
        fixed=lambda h, _r: "\nMaxAuthTries 3\n" in content(h, SSHD_DROPIN)),
    "SSH-02": Recipe(
        what="the jailed member's bind mount of his team directory unmounted",
        drift=lambda h: sh(h, "umount /srv/jail/wuser2/site"),
        fixed=lambda h, _r: ok(h, "findmnt -n /srv/jail/wuser2/site")),
    "ACC-01": Recipe(
        what="a member declared with password_hash (the scenario declares none) whose account has no "
             "password yet",
        extra_vars=_acc01_vars,
        drift=lambda h: sh(h, "usermod -p '!' wuser2 && chage -d 19000 wuser2"),
        fixed=lambda h, _r: shadow(h, "wuser2")[1:3] == [HASH, "0"]),
    "ACC-02": Recipe(
        what="an undeclared login account; ACC-02 is a read-only audit: the run names it and changes nothing",
        changes=False,
        drift=lambda h: sh(h, "getent passwd ctlaudit || useradd -m -s /bin/bash ctlaudit"),
        fixed=lambda h, run: "ctlaudit" in run.stdout,
        undo=lambda h: sh(h, "userdel -r ctlaudit")),
    "ACC-03": Recipe(
        what="an undeclared login account with a usable password, not expired (opt-in: "
             "accounts_lock_undeclared, off in this scenario's inventory)",
        extra_vars=lambda: {"accounts_lock_undeclared": True},
        drift=lambda h: sh(h, "echo 'contractor:Contractor-Pass-1' | chpasswd && usermod -e '' contractor"),
        fixed=lambda h, _r: _locked_and_expired(h, "contractor")),
    "ACC-04": Recipe(
        what="an offboarded member (state: absent; the scenario declares none) with a usable password, "
             "not expired, and a running process",
        extra_vars=_acc04_vars,
        drift=_acc04_drift,
        fixed=lambda h, _r: _locked_and_expired(h, "leaver") and not ok(h, "pgrep -u leaver")),
    "ACC-05": Recipe(
        what="a migration account whose password was set the day it was created (the vsftpd "
             "breach's leftover), locked by default",
        drift=lambda h: sh(h, "getent passwd migration || useradd -m -s /bin/bash migration; "
                              "echo 'migration:Temp-Migration-1' | chpasswd"),
        fixed=lambda h, _r: shadow(h, "migration")[1].startswith("!")),
    "BF-01": Recipe(
        what="the baseline's fail2ban jail file removed",
        drift=lambda h: sh(h, "rm /etc/fail2ban/jail.d/vps-baseline.local"),
        fixed=lambda h, _r: "[sshd]" in (content(h, "/etc/fail2ban/jail.d/vps-baseline.local") or "")),
    "LOG-01": Recipe(
        what="the persistent-journal drop-in removed",
        drift=lambda h: sh(h, f"rm {JOURNALD_DROPIN}"),
        fixed=lambda h, _r: "Storage=persistent" in (content(h, JOURNALD_DROPIN) or "")),
    "LOG-02": Recipe(
        what="the audit rules file removed (the rules file only: in a container the kernel refuses "
             "loading audit rules, so auditd is stopped here and there are no live rules to drift)",
        drift=lambda h: sh(h, "rm /etc/audit/rules.d/50-vps-baseline.rules"),
        fixed=lambda h, _r: "/etc/shadow" in (content(h, "/etc/audit/rules.d/50-vps-baseline.rules") or "")),
    "UPD-01": Recipe(
        what="the baseline's unattended-upgrades origins file removed",
        drift=lambda h: sh(h, "rm /etc/apt/apt.conf.d/52vps-baseline-unattended-upgrades"),
        fixed=lambda h, _r: bool(content(h, "/etc/apt/apt.conf.d/52vps-baseline-unattended-upgrades"))),
    "MEM-01": Recipe(
        what="none possible here: the host's root is Docker's overlay, where the guard makes no swap file "
             "(molecule/default proves the file on ext4); the run changes nothing and says why",
        changes=False,
        drift=lambda h: None,
        fixed=lambda h, run: "WARNING MEM-01: no swap file at /swapfile" in run.stdout
        and not ok(h, "test -e /swapfile")),
    "MEM-02": Recipe(
        what="the baseline's swappiness file removed",
        drift=lambda h: sh(h, f"rm {MEMORY_SYSCTL}"),
        fixed=lambda h, _r: "vm.swappiness=10" in (content(h, MEMORY_SYSCTL) or "").replace(" ", "")),
    "MEM-03": Recipe(
        what="the web server's restart drop-in removed",
        drift=lambda h: sh(h, f"rm {MEMORY_RESTART} && systemctl daemon-reload"),
        fixed=lambda h, _r: "Restart=on-failure" in (content(h, MEMORY_RESTART) or "")),
    "FIM-01": Recipe(
        what="the integrity database removed",
        drift=lambda h: sh(h, f"rm {INTEGRITY_DB}"),
        fixed=lambda h, _r: ok(h, f"test -f {INTEGRITY_DB}") and stat(h, INTEGRITY_DB) == ("600", "root")),
    "FIM-02": Recipe(
        what="the daily integrity check's timer stopped and disabled",
        drift=lambda h: sh(h, f"systemctl disable --now {INTEGRITY_TIMER}"),
        fixed=lambda h, _r: ok(h, f"systemctl is-enabled {INTEGRITY_TIMER}") and ok(h, f"systemctl is-active {INTEGRITY_TIMER}")),
    # BK-*: this scenario declares no backup target (the role's default, off): nothing is installed
    # and BK-01 says so in the run and the report. Each ID still runs alone and changes nothing; the
    # backup itself (drift: a failed run, the timer, the restore) is proven in molecule/operator.
    "BK-01": Recipe(
        what="none possible: no backup target declared (off by default); the run changes nothing and says so",
        changes=False,
        drift=lambda h: None,
        fixed=lambda h, run: any("no off-host backup is configured" in notice for notice in
                                 run.report.get("BK-01", {}).get("details", {}).get("notices", []))
        and not ok(h, "test -e /usr/local/sbin/vps-backup")),
    "BK-02": Recipe(
        what="none possible: no backup target declared; no timer is installed",
        changes=False,
        drift=lambda h: None,
        fixed=lambda h, _r: not ok(h, "systemctl cat vps-backup.timer")),
    "BK-03": Recipe(
        what="none possible: no backup target declared; nothing to judge",
        changes=False,
        drift=lambda h: None,
        fixed=lambda h, _r: not ok(h, "test -e /var/lib/vps-baseline/backup/last-success")),
    "FW-01": Recipe(
        what="an ingress accept for 9100 appended to the boot ruleset file",
        drift=lambda h: sh(h, "echo 'add rule inet vps_baseline input tcp dport 9100 accept' "
                              ">> /etc/nftables.d/vps_baseline.nft"),
        fixed=lambda h, _r: "9100" not in content(h, "/etc/nftables.d/vps_baseline.nft")),
    "FW-02": Recipe(
        what="an egress accept to any address on 443 inserted in the live table",
        drift=live_drift("output tcp dport 443 accept"),
        fixed=live_restored,
        also={"FW-05": FW05_SHARED}),
    "FW-03": Recipe(
        what="FTP (21) accepted from any source, inserted in the live table",
        drift=live_drift("input tcp dport 21 accept"),
        fixed=live_restored,
        also={"FW-05": FW05_SHARED}),
    "FW-04": Recipe(
        what="ulogd's configuration removed",
        drift=lambda h: sh(h, "rm /etc/ulogd.conf"),
        fixed=lambda h, _r: bool(content(h, "/etc/ulogd.conf"))),
    "FW-05": Recipe(
        what="a chain no control declares added to the live table, and the rollback state directory "
             "(previous ruleset, staged candidate) removed; the rollback itself is not triggered here "
             "(molecule/firewall: test_ssh_rollback.py proves it over SSH)",
        drift=_fw05_drift,
        fixed=lambda h, r: live_restored(h, r) and stat(h, "/var/lib/vps-baseline/firewall") == ("700", "root")),
}


# ---------------------------------------------------------------------------------------------
# Reading a run.

@dataclass
class Run:
    rc: int
    stdout: str
    seconds: float
    changed: int
    changed_tasks: list
    handlers: list
    report: dict


def parse_run(result, hostname, seconds, report_dir):
    """Changed tasks (by name, from the stdout callback), the recap and the compliance report."""
    changed_tasks, handlers = [], []
    current = kind = None
    stdout = ANSI.sub("", result.stdout)
    for line in stdout.splitlines():
        header = HEADER.match(line)
        if header:
            kind, current = header.groups()
        elif current and line.startswith(f"changed: [{hostname}"):
            # Once per task, also for loops (as the recap counts).
            (handlers if kind == "RUNNING HANDLER" else changed_tasks).append(current)
            current = None
    recap = [m for m in map(RECAP.match, stdout.splitlines()) if m and m.group(1) == hostname]
    changed = int(recap[-1].group(2)) if recap else -1
    latest = report_dir / "latest.json"
    report = json.loads(latest.read_text())["hosts"].get(hostname, {}) if latest.exists() else {}
    return Run(result.returncode, stdout, seconds, changed, changed_tasks, handlers, report)


def site_tags(host, cid, extra_vars, report_dir):
    name = host.backend.get_hostname()
    start = time.monotonic()
    result = ansible_playbook(SITE, name, extra_vars, tags=[cid.lower()],
                              env={"VPS_BASELINE_REPORT_DIR": str(report_dir)})
    seconds = time.monotonic() - start
    run = parse_run(result, name, seconds, report_dir)
    assert run.rc == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # The names read from the output account for every change of the recap.
    assert run.changed == len(run.changed_tasks) + len(run.handlers), (run.changed, run.changed_tasks, run.handlers)
    return run


def tail(run):
    return run.stdout[-3000:]


# ---------------------------------------------------------------------------------------------
# The tests.

def test_every_catalog_id_has_a_drift_recipe():
    ids = catalog_ids()
    assert len(ids) >= 29, ids  # the catalog of today; a parse that finds fewer is broken
    assert len(set(ids)) == len(ids), ids
    assert sorted(set(ids) - set(RECIPES)) == [], "catalog IDs without a drift recipe in this file"
    assert sorted(set(RECIPES) - set(ids)) == [], "recipes for IDs the catalog no longer has"
    for cid, recipe in RECIPES.items():
        assert set(recipe.also) <= set(ids) - {cid}, (cid, recipe.also)
        assert all(reason.strip() for reason in recipe.also.values()), cid


@pytest.mark.parametrize("cid", catalog_ids())
def test_control_runs_alone_and_fixes_only_its_drift(host, cid, tmp_path, request):
    recipe = RECIPES.get(cid)
    assert recipe is not None, f"{cid} is in docs/controls.md but has no drift recipe here"
    extra_vars = recipe.extra_vars()
    if recipe.reset:
        request.addfinalizer(lambda: recipe.reset(host))

    # 1. Only this control drifts, and the drift is really there.
    recipe.drift(host)
    if recipe.changes:
        assert not recipe.fixed(host, None), f"{cid}: the drift ({recipe.what}) did not take"

    # 2. --tags <id> fixes it, and only this control's tasks (or the recipe's shared ones) changed.
    drifted = site_tags(host, cid, extra_vars, tmp_path / "drift")
    TIMES[cid] = [round(drifted.seconds, 1)]
    try:
        assert recipe.fixed(host, drifted), f"{cid}: not fixed ({recipe.what})\n{tail(drifted)}"
    finally:
        if recipe.undo:
            recipe.undo(host)
    allowed = {cid, *recipe.also}
    foreign = [t for t in drifted.changed_tasks if (TASK_ID.match(t) or [None, None])[1] not in allowed]
    assert foreign == [], f"{cid}: tasks of other controls (or of none) changed: {foreign}"
    if recipe.changes:
        assert drifted.changed_tasks, f"{cid}: fixed, but no task reported a change\n{tail(drifted)}"
    else:
        assert drifted.changed == 0, (drifted.changed_tasks, drifted.handlers)
    assert "failed" not in {entry["status"] for entry in drifted.report.values()}, drifted.report

    # The strict form: the same run again on the host it just fixed changes nothing.
    if os.environ.get("VPS_BASELINE_CONTROL_RERUN") == "1":
        again = site_tags(host, cid, extra_vars, tmp_path / "again")
        TIMES[cid].append(round(again.seconds, 1))
        assert again.changed == 0, f"{cid}: changed on a converged host: {again.changed_tasks} {again.handlers}"
        statuses = {c: entry["status"] for c, entry in again.report.items()}
        assert set(statuses.values()) <= {"compliant", "not_applicable"}, statuses


def test_after_every_control_ran_alone_the_whole_site_changes_nothing(host, tmp_path, capsys):
    name = host.backend.get_hostname()
    start = time.monotonic()
    result = ansible_playbook(SITE, name, env={"VPS_BASELINE_REPORT_DIR": str(tmp_path)})
    run = parse_run(result, name, time.monotonic() - start, tmp_path)
    TIMES["site.yml"] = [round(run.seconds, 1)]
    with capsys.disabled():
        per_id = [seconds for cid, runs in TIMES.items() if cid != "site.yml" for seconds in runs]
        print(f"\nsite.yml --tags <id>: {len(per_id)} runs, {sum(per_id):.0f} s, "
              f"{min(per_id, default=0):.1f}-{max(per_id, default=0):.1f} s each; whole site.yml {run.seconds:.0f} s")
        print(json.dumps(TIMES))
    assert run.rc == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert run.changed == 0, (run.changed_tasks, run.handlers)

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #10, the operator's path, on the Debian 12 and 13 cloud images: every playbook runs from
the controller (10.47.116.1) over SSH as the image's admin user `debian` with its key and become,
both hosts in one run. Molecule's check, converge and idempotence did the first run and the
re-run over SSH before these tests; here: the firewall is confirmed, name resolution and
`apt-get update` work through systemd-resolved's stub while the web server user cannot reach
another resolver, audit.yml exits 0 then 2 after a drift and site.yml remediates it, the admin
is never locked, banned nor removed from sudo (issue #9), and team.yml onboards and offboards.
Last, the disaster (issue #13): op-debian12 is lost and a blank host takes its place; site.yml,
the restore of the lost host's snapshot and site.yml give back the site, then changed=0.
The hosts are observed as root over `docker exec` (testinfra's docker backend): observation only.
The tests run in file order (each step starts from the state the previous one left)."""

import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import testinfra
from testlib import PROJECT, ansible_playbook, output_text, ssh_from_controller, tree_manifest

HOSTS = {"op-debian12": "10.47.116.12", "op-debian13": "10.47.116.13"}
CONTROLLER = "10.47.116.1"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
KEY = EPHEMERAL / "op_controller_key"
MIRROR = "deb.debian.org"
DRIFTED = "/var/www/html/index.html"
MEMBERS = [
    {"name": "wuser1", "uid": 601},
    {"name": "wuser2", "uid": 602, "chroot": "/var/www/html/ir"},
    {"name": "wdev", "uid": 603, "ssh_keys": [(EPHEMERAL / "id_wdev.pub").read_text().strip()]},
]
TIMINGS = EPHEMERAL / "operator-timings.json"


def root(name):
    """The host as root, over docker exec: only to look, never to change what is under test."""
    return testinfra.get_host(f"docker://{name}")


def playbook(name, extra_vars=None, check=False, tags=None, limit="baseline"):
    """playbooks/<name> on both hosts at once (or on `limit`), over SSH as debian with become (the
    scenario's inventory); the wall time is kept for the report."""
    start = time.monotonic()
    result = ansible_playbook(PROJECT / "playbooks" / name, limit, extra_vars, check=check, tags=tags)
    took = round(time.monotonic() - start, 1)
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    label = (name + (" --check" if check else "") + (f" --tags {','.join(tags)}" if tags else "")
             + (f" --limit {limit}" if limit != "baseline" else ""))
    timings.setdefault(label, []).append([took, result.returncode])
    TIMINGS.write_text(json.dumps(timings))
    return result


def admin_can_sudo(address):
    return ssh_from_controller(address, "debian", KEY, "sudo -n true")


def admin_gets_back_in(address, within=120):
    """The admin logs in and runs sudo again within `within` seconds. OpenSSH >= 9.8 (Debian 13)
    penalises a source's failed logins itself (PerSourcePenalties: a few seconds each, refused at
    key exchange meanwhile); that is sshd's own, short and self-healing, unlike a fail2ban ban."""
    deadline = time.monotonic() + within
    while True:
        result = admin_can_sudo(address)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result, round(within - (deadline - time.monotonic()), 1)
        time.sleep(3)


def passwd_status(host, user):
    return host.check_output(f"passwd -S {user}").split()[1]


# --- the first run and the re-run (Molecule's converge and idempotence, over SSH) -------------

@pytest.mark.parametrize("name", sorted(HOSTS))
def test_resolution_before_the_baseline(name):
    """prepare.yml looked at the fresh host: the mirror resolved through the stub, apt-get update ran."""
    before = json.loads((EPHEMERAL / f"resolution-before-{name}.json").read_text())
    assert before["getent"] > 0 and before["apt_update_rc"] == 0, before


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_fw05_firewall_confirmed_after_the_ssh_runs(name):
    host = root(name)
    armed = host.check_output("systemctl list-units --plain --no-legend --state=active 'vps-baseline-fw-rollback-*'")
    assert armed == "", f"a rollback is still armed: {armed}"
    assert CONTROLLER in host.check_output("nft list set inet vps_baseline in_ssh_v4")
    assert host.check_output("nft list chain inet vps_baseline output").count("policy drop") == 1
    assert admin_can_sudo(HOSTS[name]).returncode == 0


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_fw02_resolution_and_apt_update_through_the_stub_after_the_rerun(name):
    host = root(name)
    assert host.file("/etc/resolv.conf").contains("^nameserver 127.0.0.53")
    assert host.run(f"getent ahosts {MIRROR}").stdout.strip(), "the mirror no longer resolves"
    update = host.run("apt-get update")
    assert update.rc == 0 and "Err:" not in update.stdout, update.stdout + update.stderr


@pytest.fixture(scope="module")
def other_resolver():
    """A DNS-speaking UDP responder on the controller's address (port 53): a resolver the host
    may not use. It answers anything it receives, so a query that gets through gets an answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((CONTROLLER, 53))
    sock.settimeout(0.5)
    received = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(512)
            except OSError:
                continue
            received.append(peer[0])
            sock.sendto(data[:2] + b"\x81\x80" + data[4:], peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield received
    stop.set()
    thread.join()
    sock.close()


DNS_QUERY = (
    "import socket,sys\n"
    "q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x03deb\\x06debian\\x03org\\x00\\x00\\x01\\x00\\x01'\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3)\n"
    "try:\n    s.sendto(q,(sys.argv[1],53));s.recvfrom(512)\n"
    "except OSError as e:\n    print(e);sys.exit(9)\n"
)


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_fw02_web_user_query_to_another_resolver_is_dropped(name, other_resolver):
    host = root(name)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    # Names still resolve for the web server user, through the stub.
    assert host.run(f"runuser -u www-data -- getent ahosts {MIRROR}").stdout.strip()
    query = host.run("runuser -u www-data -- python3 -c %s %s", DNS_QUERY, CONTROLLER)
    assert query.rc == 9, f"a query to another resolver got an answer: rc {query.rc} {query.stderr}"
    assert HOSTS[name] not in other_resolver
    # FW-04 logs it (NFLOG -> ulogd -> journal), with the web server user's uid; ulogd may lag.
    for _ in range(15):
        dropped = host.run(f"journalctl --no-pager -o cat --since '{since}' -g 'VPS-FW-EGRESS-DROP'").stdout
        if any(f"DST={CONTROLLER}" in line and "DPT=53" in line and "UID=33" in line for line in dropped.splitlines()):
            break
        time.sleep(1)
    else:
        pytest.fail(f"no FW-04 drop logged for the query: {dropped[-2000:]}")


# --- refusals over SSH, before any change ----------------------------------------------------

def shadow(name, user="debian"):
    return root(name).check_output(f"getent shadow {user}")


def expired(name, user):
    """ACC-03 locks and expires (shadow's expiry field 1, 1970-01-02)."""
    return shadow(name, user).split(":")[7] == "1"


def test_fw05_lockout_refused_over_ssh_even_with_ansible_become_in_the_inventory():
    """The scenario's inventory sets ansible_become: true, which beat the probes' `become: false`:
    SSH_CONNECTION was lost under sudo and the lockout guard passed silently."""
    before = {name: root(name).check_output("nft list set inet vps_baseline in_ssh_v4") for name in HOSTS}
    refused = playbook("site.yml", {"firewall_admin_sources": ["192.0.2.10"]})
    assert refused.returncode != 0
    assert f"Ansible connects over SSH from {CONTROLLER}, which is not in firewall_admin_sources" in output_text(refused)
    for name, address in HOSTS.items():
        assert root(name).check_output("nft list set inet vps_baseline in_ssh_v4") == before[name]
        assert admin_can_sudo(address).returncode == 0


def test_acc03_locking_the_connecting_admin_is_refused_before_any_change():
    """Without debian in accounts_allowlist, ACC-03 would lock the account Ansible is connected as."""
    before = {name: shadow(name) for name in HOSTS}
    refused = playbook("site.yml", {"accounts_allowlist": []})
    assert refused.returncode != 0
    assert "accounts_lock_undeclared would lock debian, the account Ansible is connected as" in output_text(refused)
    for name, address in HOSTS.items():
        assert shadow(name) == before[name]
        assert admin_can_sudo(address).returncode == 0


# --- audit, drift, remediation (accounts_lock_undeclared and fail2ban on: the inventory's) ----

def test_audit_over_ssh_exits_2_after_a_drift():
    """A world-writable page (DR-04), and history planted as root: an undeclared login account in
    the team group, a member's own ~/.bashrc line. The audit reports, changes nothing, exits 2.
    The page is put in root's group first: DR-05's upload watcher gives team-group files their
    DR-03 mode within a second (it would undo a plain chmod o+w before the audit could see it),
    and leaves every other group to DR-03. The audit is of the controls the history touches
    (a whole audit over SSH runs on the converged hosts below, and Molecule's check on the fresh
    ones): about 155 s less, the gate and ACC-03's check mode proven the same."""
    for name in HOSTS:
        host = root(name)
        host.run_expect([0], f"chgrp root {DRIFTED} && chmod o+w {DRIFTED}")
        host.run_expect([0], "id intruder || useradd -m -s /bin/bash -G workgroup intruder")
        # At the top: Debian's ~/.bashrc returns early for non-interactive shells.
        host.run_expect([0], "sed -i '1i export TEAM_OWN_SETTING=kept' /home/wuser1/.bashrc")
    audit = playbook("audit.yml", check=True, tags=["dr-04", "acc-03", "wg-01", "wg-02"])
    assert audit.returncode == 2, audit.stdout[-3000:]
    text = output_text(audit)
    for name in HOSTS:
        assert f"Drift on {name}:" in text and "DR-04" in text, text[-3000:]
        assert root(name).file(DRIFTED).mode & 0o002, "the audit changed the drifted file"
        assert expired(name, "intruder") is False, "the audit locked an account"


def test_audit_of_one_control_still_gates():
    """`audit.yml --tags dr-04`, the audit of one control: its guard and its gate are tagged
    always. Before, a tag selection skipped both: without --check the audit went on (site.yml's
    plays stayed in check mode only through baseline_audit), and with the drift still there it
    exited 0."""
    unguarded = playbook("audit.yml", tags=["dr-04"])
    assert unguarded.returncode == 2, unguarded.stdout[-3000:]
    assert "playbooks/audit.yml must change nothing" in output_text(unguarded), unguarded.stdout[-3000:]
    audit = playbook("audit.yml", check=True, tags=["dr-04"])
    assert audit.returncode == 2, audit.stdout[-3000:]
    text = output_text(audit)
    for name in HOSTS:
        assert f"Drift on {name}: DR-04." in text, text[-3000:]
        assert root(name).file(DRIFTED).mode & 0o002, "the audit changed the drifted file"


def test_site_over_ssh_remediates_and_never_locks_the_admin():
    """site.yml over SSH fixes the drift, the undeclared account leaves the team group and is
    locked (ACC-03), the admin's shadow entry is untouched and it keeps login and sudo; the
    audit then exits 0 on the converged hosts."""
    before = {name: shadow(name) for name in HOSTS}
    # prepare.yml gave the admin a provider's one-time password, never changed: ACC-05's
    # leftover, which it must leave alone because Ansible connects as this account.
    assert all(entry.split(":")[1].startswith("$6$") for entry in before.values()), before
    remediated = playbook("site.yml")
    assert remediated.returncode == 0, remediated.stdout[-3000:]
    assert "debian: password never changed since the account was created" in output_text(remediated)
    assert "left as is: the account Ansible connects as" in output_text(remediated)
    for name, address in HOSTS.items():
        host = root(name)
        assert not host.file(DRIFTED).mode & 0o002
        assert "workgroup" not in host.user("intruder").groups
        assert expired(name, "intruder") is True
        assert shadow(name) == before[name]
        assert "sudo" in host.user("debian").groups
        assert host.run("su - wuser1 -c 'echo $TEAM_OWN_SETTING'").stdout.strip() == "kept"
        assert admin_can_sudo(address).returncode == 0
    audit = playbook("audit.yml", check=True)
    assert audit.returncode == 0, audit.stdout[-3000:]


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bf01_controller_never_banned_by_its_own_failures(name):
    """Failed logins from the controller (unknown user, then the admin with a wrong key), more
    than bruteforce_maxretry: fail2ban sees them and ignores the controller, which still gets in."""
    host, address = root(name), HOSTS[name]
    assert CONTROLLER in host.check_output("fail2ban-client get sshd ignoreip")
    wrong_key = EPHEMERAL / "op_wrong_key"
    if not wrong_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    for attempt in range(8):
        user, key = ("nobody-op", KEY) if attempt % 2 == 0 else ("debian", wrong_key)
        assert ssh_from_controller(address, user, key).returncode != 0
    time.sleep(3)
    status = host.check_output("fail2ban-client status sshd")
    assert CONTROLLER not in status, status
    bans = host.run("nft list table inet f2b-table")
    assert CONTROLLER not in bans.stdout, bans.stdout
    log = host.run(f"journalctl --no-pager -o cat --since '{since}' -u fail2ban; cat /var/log/fail2ban.log").stdout
    assert f"Ignore {CONTROLLER}" in log, "fail2ban never saw the failures: the test proves nothing"
    back, after = admin_gets_back_in(address)
    assert back.returncode == 0, f"the admin is still refused {after} s after its failures: {back.stderr}"
    assert CONTROLLER not in host.check_output("fail2ban-client status sshd")


# --- team.yml over SSH ------------------------------------------------------------------------

def test_team_over_ssh_onboards_and_offboards_in_one_run(tmp_path):
    """One team.yml run: wnew joins with a key, wdev (declared with a key since the first run)
    leaves. Both are checked with real SSH logins from the controller."""
    key = tmp_path / "id_wnew"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    newcomer = {"name": "wnew", "uid": 604, "ssh_keys": [key.with_suffix(".pub").read_text().strip()]}
    wdev_key = EPHEMERAL / "id_wdev"
    for address in HOSTS.values():
        before = ssh_from_controller(address, "wdev", wdev_key)
        assert before.returncode == 0, f"wdev cannot log in before offboarding: {before.stderr}"

    members = [m if m["name"] != "wdev" else {**m, "state": "absent"} for m in MEMBERS] + [newcomer]
    team = playbook("team.yml", {"workgroup_members": members})
    assert team.returncode == 0, team.stdout[-3000:]
    for name, address in HOSTS.items():
        host = root(name)
        assert "workgroup" in host.user("wnew").groups
        login = ssh_from_controller(address, "wnew", key, "umask")
        assert login.returncode == 0 and login.stdout.strip() == "0002", login.stderr
        assert ssh_from_controller(address, "wdev", wdev_key).returncode != 0, "offboarded wdev still logs in"
        assert passwd_status(host, "wdev") == "L"
        assert "workgroup" not in host.user("wdev").groups
        assert admin_can_sudo(address).returncode == 0


# --- disaster: the host is lost, a new one takes its place (issue #13, BK-01) ----------------
# Last in the file: op-debian12 is replaced by a new container. The README's "Disaster" steps.

LOST = "op-debian12"
DOCROOT = "/var/www/html"
DR_PAGE = f"{DOCROOT}/dr-shop/index.html"
DR_MARKER = "dr-site-before-the-loss-5c1e"
BACKUP = "/usr/local/sbin/vps-backup"
RECAP = r"{host}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0\s"


def admin_on(name, command):
    """A command as the admin over SSH with sudo, as the README's steps say."""
    return ssh_from_controller(HOSTS[name], "debian", KEY, f"sudo -n {command}", timeout=300)


def served(name, path):
    """The page as a browser gets it from the web server (HTTPS, the self-signed certificate)."""
    return subprocess.run(
        ["curl", "-sS", "--insecure", "--max-time", "20", f"https://{HOSTS[name]}{path}"],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_bk01_disaster_restore_onto_a_new_host_then_site_yml_changes_nothing():
    """The disaster the blog warns of: the server is gone, with its disk. A new VPS of the same
    image gets the lost one's name and address; the operator runs site.yml with the same inventory
    (the repository, key and password come from it), restores the lost host's last snapshot, and
    runs site.yml again: the site is served as before, every file below the docroot has its
    content, mode, owner, group and ACLs back, the jailed member sees the restored site, and
    the next site.yml changes nothing. The new host's first run saved its own blank site first
    (BK-03: no backup yet), so the newest snapshot is not the one to restore: --snapshot."""
    old = root(LOST)
    old.run_expect([0], f"install -d -g workgroup -m 2775 {DOCROOT}/dr-shop {DOCROOT}/dr-shop/img && "
                        f"echo '<h1>{DR_MARKER}</h1>' > {DR_PAGE} && head -c 50000 /dev/urandom > {DOCROOT}/dr-shop/img/a.bin && "
                        f"echo 'wuser2 page' > {DOCROOT}/ir/dr-member.html && "
                        f"chgrp -R workgroup {DOCROOT}/dr-shop {DOCROOT}/ir/dr-member.html && "
                        f"chmod 0664 {DR_PAGE} {DOCROOT}/dr-shop/img/a.bin {DOCROOT}/ir/dr-member.html")
    time.sleep(1)  # DR-05's watcher settles what it sees
    saved = admin_on(LOST, f"{BACKUP} run")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    last = json.loads(admin_on(LOST, f"{BACKUP} snapshots --json").stdout)[-1]["short_id"]
    before = tree_manifest(old, DOCROOT)
    assert DR_MARKER in served(LOST, "/dr-shop/index.html").stdout

    # The loss: the container and its disk are gone; a new one, blank, as a provider hands it out.
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    scenario = Path(__file__).resolve().parents[1]
    replaced = subprocess.run(
        [str(PROJECT / ".venv/bin/ansible-playbook"), "-i", inventory, str(scenario / "replace_host.yml"),
         "-e", f"replaced={LOST}"],
        capture_output=True, text=True, cwd=PROJECT, timeout=600, check=False,
    )
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    first_boot = ansible_playbook(scenario / "prepare.yml", LOST)
    assert first_boot.returncode == 0, first_boot.stdout[-3000:]
    new = root(LOST)
    assert not new.file(DR_PAGE).exists and not new.exists("restic")

    # The operator's steps (README, "Disaster"): site.yml, the lost host's snapshot, site.yml.
    baseline = playbook("site.yml", limit=LOST)
    assert baseline.returncode == 0, baseline.stdout[-3000:]
    listed = json.loads(admin_on(LOST, f"{BACKUP} snapshots --json").stdout)
    assert [s["short_id"] for s in listed].index(last) < len(listed) - 1, listed  # its own blank site is newer
    restored = admin_on(LOST, f"{BACKUP} restore --snapshot {last}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    accepted = admin_on(LOST, "/usr/local/sbin/vps-integrity accept")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    again = playbook("site.yml", limit=LOST)
    assert again.returncode == 0, again.stdout[-3000:]

    after = tree_manifest(new, DOCROOT)
    assert sorted(set(before) ^ set(after)) == []
    assert {p: (before[p], after[p]) for p in before if before[p] != after[p]} == {}
    page = served(LOST, "/dr-shop/index.html")
    assert page.returncode == 0 and DR_MARKER in page.stdout, page.stdout + page.stderr
    assert new.run("findmnt -rn -o FSROOT --mountpoint /srv/jail/wuser2/site").stdout.strip() == f"{DOCROOT}/ir"
    assert new.file("/srv/jail/wuser2/site/dr-member.html").content_string == "wuser2 page\n"

    rerun = playbook("site.yml", limit=LOST)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    recap = re.search(RECAP.format(host=LOST), output_text(rerun) + " ")
    assert recap and recap.group(1) == "0", rerun.stdout[-3000:]

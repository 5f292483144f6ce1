# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""playbooks/contain.yml (issue #12, CT-01..CT-04) on the host the incident replay left behind.

Named to run after test_incident.py (pytest collects files by name): it cuts the host off, then
site.yml returns it to service. Before the containment, as in the write-up's breach: a busy loop
runs as the web server user (the miner), the attacker holds an SSH session as a member with a
stolen key, and an open TCP connection to a root-owned echo service on 8443 (a web port, open to
every source by FW-01; root's processes are never ended, so only CT-02 can cut it). contain.yml
then runs with the admin sources narrowed to the client's /32 (the inventory's are the whole
/24, attacker included) and the client as the evidence collector. Timings and one manifest go
to reports/incident-contain.txt.
"""

import hashlib
import json
import re
import shlex
import subprocess
import tarfile
import time

import pytest
from testlib import PROJECT, SSH_OPTS, ansible_playbook, assert_reaches_the_sink, can_connect, output_text

testinfra_hosts = ["ansible://baseline"]

SERVER = "172.31.250.10"
ATTACKER = "172.31.250.20"
CLIENT = "172.31.250.30"
CONTAIN = PROJECT / "playbooks/contain.yml"
SITE = PROJECT / "playbooks/site.yml"
REPORT = PROJECT / "reports/incident-contain.txt"
ECHO_PORT = 8443  # a web port (webserver_ports) that Apache does not hold: WEB-04's HTTPS holds 443
COLLECTOR_PATH = "/srv/evidence"
MINER = "/tmp/vps-test-miner"

ECHO_SERVER = r"""
import socket, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", %d))
server.listen()
def serve(conn):
    while True:
        data = conn.recv(1024)
        if not data:
            return
        conn.sendall(data)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
""" % ECHO_PORT

# The attacker's side: one connection, a line every 0.3 s, each echo (or error) logged.
ECHO_CLIENT = r"""
import socket, time
conn = socket.create_connection(("%s", %d), timeout=5)
conn.settimeout(2)
n = 0
with open("/tmp/echo.log", "a", buffering=1) as log:
    while True:
        n += 1
        try:
            conn.sendall(b"%%d\n" %% n)
            data = conn.recv(64)
            log.write("ECHO %%d\n" %% n if data else "CLOSED\n")
            if not data:
                break
        except OSError as err:
            log.write("ERROR %%s\n" %% err)
        time.sleep(0.3)
""" % (SERVER, ECHO_PORT)


def put(node, path, text, mode="0755"):
    node.run_expect([0], f"printf '%s' {shlex.quote(text)} > {path} && chmod {mode} {path}")


def detach(node, command):
    """Start ``command`` in its own session, detached from the test's exec."""
    node.run_expect([0], f"setsid -f sh -c {shlex.quote(command)} </dev/null >/dev/null 2>&1")


def echoes(attacker):
    return attacker.run("grep -c '^ECHO' /tmp/echo.log").stdout.strip()


def admin_ssh(client, command="id -un"):
    return client.run(f"ssh {SSH_OPTS} -o BatchMode=yes -o IdentitiesOnly=yes -i /root/id_admin root@{SERVER} {command}")


def unban(host):
    with host.sudo():
        host.run_expect([0], "fail2ban-client unban --all")


@pytest.fixture(scope="module")
def contained(host, attacker, client, tmp_path_factory):
    """Set the scene, run contain.yml once; yields what the tests read."""
    name = host.backend.get_hostname()
    keys = tmp_path_factory.mktemp("contain-keys")
    unban(host)
    # The admin's workstation (inside the narrowed admin sources): root's key on the host.
    client.run_expect([0], "test -f /root/id_admin || ssh-keygen -q -t ed25519 -N '' -f /root/id_admin")
    admin_pub = client.check_output("cat /root/id_admin.pub")
    host.run_expect([0], "install -d -m 0700 /root/.ssh && printf '%s\\n' " + shlex.quote(admin_pub)
                    + " >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys")
    # The collector, on the client: an account for the evidence, its key on the controller.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id_evidence")], check=True)
    collector_pub = (keys / "id_evidence.pub").read_text().strip()
    client.run_expect([0], "id evidence || useradd -m -s /bin/sh evidence")
    client.run_expect([0], f"install -d -o evidence -g evidence -m 0700 {COLLECTOR_PATH} /home/evidence/.ssh"
                           f" && printf '%s\\n' {shlex.quote(collector_pub)} > /home/evidence/.ssh/authorized_keys"
                           " && chown evidence: /home/evidence/.ssh/authorized_keys && systemctl start ssh")
    host_key = " ".join(client.check_output("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    collector = {"address": CLIENT, "user": "evidence", "path": COLLECTOR_PATH,
                 "private_key": str(keys / "id_evidence"), "host_key": host_key}
    # The collector as the inventory declares it: the firewall derives its egress rule (FW-02).
    declared = ansible_playbook(SITE, name, {"contain_collector": collector}, tags=["fw-02"])
    assert declared.returncode == 0, declared.stdout[-3000:]
    # The breach: the miner as www-data, a root-owned echo service on a web port, the attacker's
    # open connection to it and its SSH session as a member with a stolen key (wkey's).
    put(host, MINER, "#!/bin/sh\nwhile :; do :; done\n")
    detach(host, f"runuser -u www-data -- {MINER}")
    put(host, "/tmp/vps-test-echo.py", ECHO_SERVER, "0644")
    detach(host, "python3 /tmp/vps-test-echo.py")
    for _ in range(20):
        if can_connect(attacker, SERVER, ECHO_PORT):
            break
        time.sleep(0.3)
    put(attacker, "/tmp/echo-client.py", ECHO_CLIENT, "0644")
    attacker.run_expect([0], "rm -f /tmp/echo.log /tmp/wkey-session.log")
    detach(attacker, "python3 /tmp/echo-client.py")
    put(attacker, "/root/id_wkey", client.check_output("cat /root/id_wkey") + "\n", "0600")
    detach(attacker, f"ssh {SSH_OPTS} -o BatchMode=yes -i /root/id_wkey wkey@{SERVER}"
                     " 'while :; do date +%s; sleep 1; done' > /tmp/wkey-session.log 2>&1")
    time.sleep(3)
    before = {
        "miner": host.run(f"pgrep -u www-data -f {MINER}").stdout.split(),
        "wkey": host.run("pgrep -u wkey").stdout.split(),
        "echoes": int(echoes(attacker)),
        "session_lines": len(attacker.run("cat /tmp/wkey-session.log").stdout.splitlines()),
        "apache2": host.run("systemctl is-active apache2").stdout.strip(),
        "bundles": host.run("ls /var/lib/vps-baseline/evidence").stdout.split(),
    }
    evidence_dir = tmp_path_factory.mktemp("evidence")
    extra = {
        "contain_admin_sources": [f"{CLIENT}/32"],
        "contain_evidence_dir": str(evidence_dir),
        "contain_collector": collector,
    }
    # --check --diff first: it must change nothing (no bundle, no table, the miner still runs).
    check = ansible_playbook(CONTAIN, name, extra, check=True)
    with host.sudo():
        after_check = {"table": host.run("nft list table inet vps_contain").rc,
                       "miner": host.run(f"pgrep -u www-data -f {MINER}").stdout.split(),
                       "vsftpd": host.run("systemctl is-active vsftpd").stdout.strip(),
                       "bundles": host.run("ls /var/lib/vps-baseline/evidence").stdout.split()}
    started = time.monotonic()
    run = ansible_playbook(CONTAIN, name, extra)
    seconds = round(time.monotonic() - started, 1)
    yield {"name": name, "before": before, "run": run, "seconds": seconds, "extra": extra,
           "evidence_dir": evidence_dir / name, "check": check, "after_check": after_check}
    # Leave nothing of the scene behind (the host itself is returned to service by the last test).
    attacker.run("pkill -f echo-client.py; pkill -f id_wkey")
    host.run("pkill -f vps-test-echo.py; rm -f /tmp/vps-test-echo.py " + MINER)
    with host.sudo():
        host.run("systemctl start cron")


def test_contain_runs(contained):
    run = contained["run"]
    assert run.returncode == 0, run.stdout[-4000:]
    before = contained["before"]
    # The scene was set: each of these must be undone by the containment.
    assert before["miner"], before
    assert before["wkey"], before
    assert before["echoes"] > 0 and before["session_lines"] > 0, before
    text = output_text(run)
    for cid in ("CT-01 evidence of", "CT-02 inc-host isolated", "CT-03 inc-host: services stopped", "CT-04 "):
        assert cid in text, text[-4000:]


def test_contain_check_mode_changes_nothing(contained):
    check, after = contained["check"], contained["after_check"]
    assert check.returncode == 0, check.stdout[-4000:]
    assert "(check mode)" in output_text(check)
    assert after["table"] != 0 and after["miner"] == contained["before"]["miner"], after
    assert after["vsftpd"] == "active" and after["bundles"] == contained["before"]["bundles"], after


def test_ct03_miner_and_member_session_ended(host, contained):
    assert host.run(f"pgrep -u www-data -f {MINER}").rc == 1, "the miner still runs"
    assert host.run("pgrep -u wkey").rc == 1, "the member's (attacker's) session still runs"
    assert not host.service("vsftpd").is_running
    assert not host.service("cron").is_running
    if contained["before"]["apache2"] == "active":
        assert not host.service("apache2").is_running
    # Never root's processes: the echo service (root) is still there; only the network cut it.
    assert host.run("pgrep -u root -f vps-test-echo.py").rc == 0


def test_ct02_attacker_connection_cut_admin_ssh_kept(host, attacker, client, contained):
    first = echoes(attacker)
    time.sleep(3)
    assert echoes(attacker) == first, "data still passes on the attacker's open connection"
    assert "ERROR" in attacker.run("tail -n 3 /tmp/echo.log").stdout
    lines = len(attacker.run("cat /tmp/wkey-session.log").stdout.splitlines())
    time.sleep(2)
    assert len(attacker.run("cat /tmp/wkey-session.log").stdout.splitlines()) == lines
    for port in (ECHO_PORT, 22):
        assert not can_connect(attacker, SERVER, port), f"the attacker opens a new connection to {port}"
    login = admin_ssh(client)
    assert login.rc == 0 and login.stdout.strip() == "root", login.stderr
    with host.sudo():
        table = host.check_output("nft list table inet vps_contain")
    assert f"{CLIENT}" in table and ATTACKER not in table


def test_ct02_logs_still_reach_the_log_server(host, client, contained):
    assert_reaches_the_sink(host, client, "vps-baseline-contained")


def bundles(directory):
    return sorted(directory.glob("*.tar"))


def test_ct01_ct04_bundle_on_controller_and_collector_matches_its_manifest(host, client, contained, tmp_path):
    (archive,) = bundles(contained["evidence_dir"])
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (archive.parent / (archive.name + ".sha256")).read_text().split()[0] == digest
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    bundle = tmp_path / archive.stem
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Taken before anything changed: the miner and both attacker connections are in it.
    procs = json.loads((bundle / "processes/processes.json").read_text())
    miner = [p for p in procs if p["user"] == "www-data" and MINER in " ".join(p["cmdline"])]
    # Its executable's sha256: through /proc/PID/exe where root may read it; a container's root
    # lacks CAP_SYS_PTRACE for another user's process, so here it is argv[0]'s file, marked so.
    assert miner and miner[0]["exe_sha256"] == host.file("/usr/bin/dash").sha256sum, miner
    assert miner[0]["exe_source"] in ("/proc/PID/exe", "argv[0], unverified (/proc/PID/exe: Permission denied)"), miner
    sockets = json.loads((bundle / "sockets/sockets.json").read_text())
    remote = {(s["local"].rsplit(":", 1)[1], s["state"]) for s in sockets
              if s["remote"].replace("::ffff:", "").startswith(ATTACKER + ":")}
    assert {(str(ECHO_PORT), "ESTABLISHED"), ("22", "ESTABLISHED")} <= remote, remote
    assert (bundle / "journal/journal.export.gz").stat().st_size > 0
    # On the collector, the same archive; its manifest checks there too.
    on_collector = f"{COLLECTOR_PATH}/{archive.name}"
    client.run_expect([0], f"cd {COLLECTOR_PATH} && sha256sum -c {archive.name}.sha256")
    there = client.run(f"rm -rf /tmp/unpacked && mkdir /tmp/unpacked && tar -xf {on_collector} -C /tmp/unpacked"
                       f" && cd /tmp/unpacked/{archive.stem} && sha256sum -c --strict SHA256SUMS")
    assert there.rc == 0, there.stdout + there.stderr
    # On the host: root-only, and the collector key gone.
    with host.sudo():
        assert host.file("/var/lib/vps-baseline/evidence").mode == 0o700
        assert host.file(f"/var/lib/vps-baseline/evidence/{archive.stem}").mode == 0o700
        assert not host.file("/var/lib/vps-baseline/contain/collector_key").exists
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(f"contain.yml (first run): {contained['seconds']} s\n"
                      f"bundle {archive.name} sha256 {digest}\nSHA256SUMS:\n"
                      + (bundle / "SHA256SUMS").read_text())


def test_contain_twice_then_site_returns_the_host_to_service(host, attacker, client, contained):
    """A second run succeeds with a second bundle; site.yml then lifts the containment (FW-05) and
    starts vsftpd (FTP-01) and Apache (WEB-01) again: SSH and FTP answer per the inventory's
    allowlist (the whole /24, attacker included), the containment table and its boot file are gone."""
    name = contained["name"]
    started = time.monotonic()
    again = ansible_playbook(CONTAIN, name, contained["extra"])
    second = round(time.monotonic() - started, 1)
    assert again.returncode == 0, again.stdout[-4000:]
    assert len(bundles(contained["evidence_dir"])) == 2
    assert admin_ssh(client).rc == 0
    started = time.monotonic()
    site = ansible_playbook(SITE, name)
    restored = round(time.monotonic() - started, 1)
    assert site.returncode == 0, site.stdout[-4000:]
    assert re.search(r"FW-05 \| No containment table left", site.stdout)
    with host.sudo():
        assert host.run("nft list table inet vps_contain").rc != 0
        assert not host.file("/etc/nftables.d/vps_contain.nft").exists
    unban(host)
    assert host.service("vsftpd").is_running and host.service("apache2").is_running
    for port in (22, 21, 80):
        assert can_connect(attacker, SERVER, port), f"port {port} not back for the allowed sources"
    assert admin_ssh(client).rc == 0
    with REPORT.open("a") as report:
        report.write(f"contain.yml (second run): {second} s\nsite.yml (back to service): {restored} s\n")

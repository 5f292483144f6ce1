# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""DR-05 (issue #10): what a member uploads lands group-writable in the team group, whatever mode
the client asks for, over SFTP, scp and FTP, from real clients in their own container.

The local files are made under umask 022 (0644) and one is 0600, as on a workstation. Before
DR-05 sftp-server kept the client's 0644 (`-u 0002` only masks it). The modes seen per client
go to reports/upload-modes.json.
"""

import json
import re
import time
from pathlib import Path

import pytest
from testlib import SSH_OPTS, peer, run_role

testinfra_hosts = ["ansible://baseline"]

SERVER = "172.31.247.10"
DIR = "/var/www/html/dr05"
KEY = "/root/id_wuser1"
FTP_PASSWORD = "Upload-Ftp-10"
REPORT = Path(__file__).resolve().parents[3] / "reports" / "upload-modes.json"
POLL = 5.0
SSH = f"ssh {SSH_OPTS} -o BatchMode=yes -i {KEY}"

# client -> (shell command on the client, {remote name: local file or "dir"})
CLIENTS = {
    "openssh sftp": (
        f"printf 'put /tmp/dr05/f644 {DIR}/sftp-644\\nput /tmp/dr05/f600 {DIR}/sftp-600\\nmkdir {DIR}/sftp-dir\\n'"
        f" | sftp {SSH_OPTS} -o BatchMode=yes -i {KEY} -b - wuser1@{SERVER}",
        {"sftp-644": "f644", "sftp-600": "f600", "sftp-dir": "dir"},
    ),
    "openssh scp (SFTP protocol)": (
        f"scp {SSH_OPTS} -o BatchMode=yes -i {KEY} /tmp/dr05/f644 wuser1@{SERVER}:{DIR}/scp-644"
        f" && scp {SSH_OPTS} -o BatchMode=yes -i {KEY} /tmp/dr05/f600 wuser1@{SERVER}:{DIR}/scp-600",
        {"scp-644": "f644", "scp-600": "f600"},
    ),
    "openssh scp -O (legacy SCP protocol)": (
        f"scp -O {SSH_OPTS} -o BatchMode=yes -i {KEY} /tmp/dr05/f644 wuser1@{SERVER}:{DIR}/scpO-644",
        {"scpO-644": "f644"},
    ),
    "lftp sftp://": (
        f"lftp -e \"set sftp:connect-program '{SSH}'; put /tmp/dr05/f644 -o {DIR}/lftps-644;"
        f" put /tmp/dr05/f600 -o {DIR}/lftps-600; mkdir {DIR}/lftps-dir; bye\" -u wuser1, sftp://{SERVER}",
        {"lftps-644": "f644", "lftps-600": "f600", "lftps-dir": "dir"},
    ),
    "lftp ftp://": (
        f"lftp -e 'set net:max-retries 1; put /tmp/dr05/f644 -o {DIR}/lftpf-644; put /tmp/dr05/f600 -o {DIR}/lftpf-600;"
        f" mkdir {DIR}/lftpf-dir; bye' -u wuser1,{FTP_PASSWORD} ftp://{SERVER}",
        {"lftpf-644": "f644", "lftpf-600": "f600", "lftpf-dir": "dir"},
    ),
    "curl ftp://": (
        f"curl -sS --max-time 20 --user wuser1:{FTP_PASSWORD} -T /tmp/dr05/f644 ftp://{SERVER}/%2F{DIR[1:]}/curlf-644"
        f" && curl -sS --max-time 20 --user wuser1:{FTP_PASSWORD} -T /tmp/dr05/f600 ftp://{SERVER}/%2F{DIR[1:]}/curlf-600"
        f" && curl -sS --max-time 20 --user wuser1:{FTP_PASSWORD} -Q 'MKD {DIR}/curlf-dir' ftp://{SERVER}/",
        {"curlf-644": "f644", "curlf-600": "f600", "curlf-dir": "dir"},
    ),
    "curl sftp://": (
        f"curl -sS --max-time 20 -k --key {KEY} --pubkey {KEY}.pub -T /tmp/dr05/f644 sftp://wuser1@{SERVER}{DIR}/curls-644"
        f" && curl -sS --max-time 20 -k --key {KEY} --pubkey {KEY}.pub -T /tmp/dr05/f600"
        f" sftp://wuser1@{SERVER}{DIR}/curls-600"
        f" && curl -sS --max-time 20 -k --key {KEY} --pubkey {KEY}.pub -Q 'mkdir {DIR}/curls-dir' sftp://wuser1@{SERVER}/",
        {"curls-644": "f644", "curls-600": "f600", "curls-dir": "dir"},
    ),
}


def compliant(mode, kind):
    """Directories exactly 2775; files group read-write, never world-writable, no special bit
    (0644 -> 0664 and 0600 -> 0660 when the client sent its mode; 0664 when it sent none)."""
    if kind == "dir":
        return mode == 0o2775
    return mode & 0o060 == 0o060 and not mode & 0o7002


def modes(host, names):
    """{name: (mode, group)} on the server, None for a missing entry; one command."""
    with host.sudo():
        out = host.check_output(
            f"cd {DIR} && for n in {' '.join(names)}; do stat -c '%n %a %G' \"$n\" 2>/dev/null || echo \"$n - -\"; done")
    seen = {}
    for line in out.splitlines():
        name, mode, group = line.split()
        seen[name] = None if mode == "-" else (int(mode, 8), group)
    return seen


@pytest.fixture(scope="module")
def client():
    return peer("team-client")


@pytest.fixture(scope="module")
def uploads(host, client):
    """Every client uploads once; the modes right after each upload and after at most POLL s."""
    with host.sudo():
        before = host.check_output("getent shadow wuser1").split(":")[1]
        host.run_expect([0], f"echo 'wuser1:{FTP_PASSWORD}' | chpasswd")
        host.run_expect([0], f"rm -rf {DIR} && install -d -o root -g workgroup -m 2775 {DIR}")
    client.run_expect([0], "rm -rf /tmp/dr05 && mkdir /tmp/dr05 && umask 022 && echo page > /tmp/dr05/f644"
                           " && (umask 077 && echo secret > /tmp/dr05/f600) && stat -c '%a' /tmp/dr05/f644 /tmp/dr05/f600")
    results = {}
    try:
        for name, (command, files) in CLIENTS.items():
            started = time.monotonic()
            run = client.run(command)
            assert run.rc == 0, (name, run.stdout, run.stderr)
            first = modes(host, files)
            seen = first
            while time.monotonic() - started < POLL and any(
                    seen[f] is None or not compliant(seen[f][0], kind) for f, kind in files.items()):
                time.sleep(0.2)
                seen = modes(host, files)
            results[name] = {f: {"local": kind, "right after": "%o" % first[f][0] if first[f] else None,
                                 "after poll": "%o" % seen[f][0] if seen[f] else None,
                                 "group": seen[f][1] if seen[f] else None,
                                 "seconds": round(time.monotonic() - started, 2)}
                             for f, kind in files.items()}
    finally:
        with host.sudo():
            host.run_expect([0], f"usermod -p '{before}' wuser1")
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(results, indent=2) + "\n")
    return results


@pytest.mark.parametrize("name", list(CLIENTS))
def test_dr05_upload_lands_group_writable_in_the_team_group(uploads, name):
    got = {f: (r["after poll"] is not None and compliant(int(r["after poll"], 8), r["local"]), r["group"])
           for f, r in uploads[name].items()}
    assert got == {f: (True, "workgroup") for f in CLIENTS[name][1]}, uploads[name]


def test_dr03_has_nothing_left_to_fix_after_the_uploads(host, uploads):
    """Issue #10: DR-03 used to "remediate" every upload at the next run (changed=1 after team.yml)."""
    result = run_role(host, "docroot", check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    recap = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # Molecule forces colour
    assert re.search(r"team-debian12\s+: ok=\d+\s+changed=0\s", recap), recap[-3000:]


def test_dr05_links_planted_by_the_web_server_user_are_not_followed(host, client, uploads):
    """www-data plants, in a directory of the docroot it can write, a symlink to an outside file
    of the team group and a hard link to another (fs.protected_hardlinks lets it link its own):
    neither target is changed, while an upload made after them is."""
    with host.sudo():
        host.run_expect([0], f"install -d -o www-data -g workgroup -m 2775 {DIR}/wd"
                             " && install -d -o root -g root -m 0755 /srv/dr05-outside"
                             " && install -o root -g workgroup -m 0644 /dev/null /srv/dr05-outside/sym-target"
                             " && install -o www-data -g workgroup -m 0644 /dev/null /srv/dr05-outside/hard-target")
        host.run_expect([0], f"su -s /bin/sh www-data -c 'ln -s /srv/dr05-outside/sym-target {DIR}/wd/sym"
                             f" && ln /srv/dr05-outside/hard-target {DIR}/wd/hard && touch -h {DIR}/wd/sym {DIR}/wd/hard'")
    try:
        client.run_expect([0], f"printf 'put /tmp/dr05/f644 {DIR}/after-links\\n' | sftp {SSH_OPTS} -o BatchMode=yes"
                               f" -i {KEY} -b - wuser1@{SERVER}")
        deadline = time.monotonic() + POLL
        while modes(host, ["after-links"])["after-links"][0] != 0o664 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert modes(host, ["after-links"])["after-links"] == (0o664, "workgroup")
        with host.sudo():
            targets = host.check_output("stat -c '%a %G' /srv/dr05-outside/sym-target /srv/dr05-outside/hard-target")
        assert targets.splitlines() == ["644 workgroup", "644 workgroup"]
    finally:
        with host.sudo():
            host.run_expect([0], f"rm -rf /srv/dr05-outside {DIR}/wd")


def test_dr05_watcher_is_sandboxed(host):
    """Its own user, one capability, the system read-only but the docroots."""
    with host.sudo():
        props = host.check_output("systemctl show vps-upload-perms.service -p ActiveState -p User"
                                  " -p CapabilityBoundingSet -p AmbientCapabilities -p ProtectSystem"
                                  " -p ReadWritePaths -p NoNewPrivileges")
        pid = host.check_output("systemctl show -p MainPID --value vps-upload-perms.service")
        uid = host.check_output("ps -o uid= -p %s", pid).split()
    assert "ActiveState=active" in props and "User=vps-upload-perms" in props and "ProtectSystem=strict" in props
    assert "CapabilityBoundingSet=cap_fowner" in props and "AmbientCapabilities=cap_fowner" in props
    assert "ReadWritePaths=/var/www/html" in props and "NoNewPrivileges=yes" in props
    assert uid == [str(host.user("vps-upload-perms").uid)]

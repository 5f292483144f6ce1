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
from testlib import (SSH_OPTS, UPLOAD_POLL, peer, run_role, run_uploads, upload_clients, upload_landed,
                     upload_modes)

testinfra_hosts = ["ansible://baseline"]

SERVER = "172.31.247.10"
DIR = "/var/www/html/dr05"
KEY = "/root/id_wuser1"
FTP_PASSWORD = "Upload-Ftp-10"
REPORT = Path(__file__).resolve().parents[3] / "reports" / "upload-modes.json"
# Plain FTP: this scenario has no web server, so no certificate (molecule.yml: vsftpd_ftps: false).
CLIENTS = upload_clients(SERVER, DIR, KEY, FTP_PASSWORD, ftps=False)


@pytest.fixture(scope="module")
def client():
    return peer("team-client")


@pytest.fixture(scope="module")
def uploads(host, client):
    """Every client uploads once; the modes right after each upload and after at most UPLOAD_POLL s."""
    results = run_uploads(host, client, CLIENTS, DIR, FTP_PASSWORD)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    return results


@pytest.mark.parametrize("name", list(CLIENTS))
def test_dr05_upload_lands_group_writable_in_the_team_group(uploads, name):
    got = upload_landed(uploads[name], CLIENTS[name][1])
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
        deadline = time.monotonic() + UPLOAD_POLL
        while upload_modes(host, DIR, ["after-links"])["after-links"][0] != 0o664 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert upload_modes(host, DIR, ["after-links"])["after-links"] == (0o664, "workgroup")
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

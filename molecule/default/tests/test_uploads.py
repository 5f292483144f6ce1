# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""DR-05 (issue #10) on the minimal Debian 12 and 13 hosts, behind the whole site and its
firewall: what a member uploads from the client container lands group-writable in the team
group over SFTP, scp and FTP, whatever mode the client asks for (local files 0644 and 0600).
The same clients as molecule/team (testlib.upload_clients); the modes seen per host go to
reports/upload-modes-<host>.json."""

import json
from pathlib import Path

import pytest
from testlib import peer, run_uploads, upload_clients, upload_landed

testinfra_hosts = ["ansible://baseline"]

# molecule.yml: each host's address on site-net; prepare.yml: the key and the FTP password.
ADDRESSES = {"site-debian12": "172.31.243.10", "site-debian13": "172.31.243.11"}
DIR = "/var/www/html/dr05"
KEY = "/root/id_wuser1"
FTP_PASSWORD = "ftp-test-1"
REPORTS = Path(__file__).resolve().parents[3] / "reports"
NAMES = list(upload_clients("server", DIR, KEY, FTP_PASSWORD))


@pytest.fixture(scope="module")
def client():
    return peer("site-client")


@pytest.fixture(scope="module")
def uploads(host, client):
    """Every client uploads once to this host (one set per host)."""
    name = host.backend.get_hostname()
    clients = upload_clients(ADDRESSES[name], DIR, KEY, FTP_PASSWORD)
    results = run_uploads(host, client, clients, DIR, FTP_PASSWORD)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"upload-modes-{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    return clients, results


@pytest.mark.parametrize("name", NAMES)
def test_dr05_upload_lands_group_writable_in_the_team_group(uploads, name):
    clients, results = uploads
    files = clients[name][1]
    assert upload_landed(results[name], files) == {f: (True, "workgroup") for f in files}, results[name]

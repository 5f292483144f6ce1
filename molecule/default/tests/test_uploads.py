# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""DR-05 (issue #10) on the minimal Debian 12 and 13 hosts, behind the whole site and its
firewall: what a member uploads from the client container lands group-writable in the team
group over SFTP, scp and FTP, whatever mode the client asks for (local files 0644 and 0600).
The same clients as molecule/team (testlib.upload_clients); the modes seen per host go to
reports/upload-modes-<host>.json."""

import json
import time
from pathlib import Path

import pytest
from testlib import FTPS_LFTP, UPLOAD_POLL, peer, run_uploads, upload_clients, upload_compliant, upload_landed, upload_modes

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


# DR-06 (docroot_web_writable: [uploads], molecule.yml): the web server reads the code and writes
# only uploads/, but members still edit both kinds of file over FTP and SFTP; an edit keeps the
# file's inode, so the web server's read-only ACL entry stays on the code.
DOCROOT = "/var/www/html"
EDITS = {"code": f"{DOCROOT}/checkout.php", "upload": f"{DOCROOT}/uploads/member-banner.txt"}


def web_acl_entry(host, path):
    """The web server user's named entry in a path's access ACL ("r-x", "rwx"; None without one)."""
    uid = host.user("www-data").uid
    code = ("import os,struct,sys\n"
            "try: raw = os.getxattr(sys.argv[1], 'system.posix_acl_access')\n"
            "except OSError: raw = b'\\x02\\0\\0\\0'\n"
            "print(' '.join('%d:%d' % (i, p) for t, p, i in struct.iter_unpack('<HHI', raw[4:]) if t == 2))")
    with host.sudo():
        entries = dict(item.split(":") for item in host.check_output("python3 -c %s %s", code, path).split())
    perm = entries.get(str(uid))
    return None if perm is None else "".join(c if int(perm) & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_dr06_members_edit_code_and_uploads_over_ftp_and_sftp(host, client, protocol):
    server = ADDRESSES[host.backend.get_hostname()]
    text = f"edited by wuser1 over {protocol}"
    client.run_expect([0], f"umask 022 && echo '{text}' > /tmp/dr06-edit")
    if protocol == "ftp":
        puts = "; ".join(f"put /tmp/dr06-edit -o {path}" for path in EDITS.values())
        # Twice: the first put creates the upload, the second edits both files in place.
        # FTPS (FTP-05): TLS required for the login and the data.
        tls = "; ".join([*FTPS_LFTP, "set ssl:verify-certificate no"])
        command = (f"lftp -e '{tls}; set net:max-retries 1; {puts}; {puts}; bye' -u wuser1,{FTP_PASSWORD} ftp://{server}")
    else:
        puts = "\\n".join(f"put /tmp/dr06-edit {path}" for path in EDITS.values())
        command = (f"printf '{puts}\\n{puts}\\n' | sftp -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                   f"-o BatchMode=yes -i {KEY} -b - wuser1@{server}")
    run = client.run(command)
    assert run.rc == 0, (run.stdout, run.stderr)
    with host.sudo():
        for kind, path in EDITS.items():
            assert host.file(path).content_string == text + "\n", (kind, path)
    # A file SFTP creates keeps the client's 0644 until DR-05's watcher (a moment): poll as run_uploads does.
    deadline = time.monotonic() + UPLOAD_POLL
    while True:
        seen = upload_modes(host, f"{DOCROOT}", ["checkout.php", "uploads/member-banner.txt"])
        if all(m and upload_compliant(m[0], "file") and m[1] == "workgroup" for m in seen.values()) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {name: (upload_compliant(m[0], "file"), m[1]) for name, m in seen.items()} == {
        "checkout.php": (True, "workgroup"), "uploads/member-banner.txt": (True, "workgroup")}, seen
    # Still read-only for the web server (its entry inherited or kept; the mask, the group bits, caps it).
    assert web_acl_entry(host, EDITS["code"]) == "r-x"
    assert web_acl_entry(host, EDITS["upload"]) == "rwx"

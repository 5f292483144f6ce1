# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Use case 2 end to end: the drifted server was audited (prepare), then remediated (converge)."""

import json
import os
from pathlib import Path

from testlib import FTPS_CURL, peer

testinfra_hosts = ["ansible://baseline"]

DOCROOT = "/var/www/html"
# The FTP clients run here, never on the server (molecule.yml, issue #10).
CLIENT = "legacy-client"
SERVER = "172.31.244.10"
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports"


def _reports(suffix):
    return sorted(p for p in REPORTS.glob(f"*{suffix}.json") if not p.name.startswith("latest"))


def _statuses(report_path):
    report = json.loads(report_path.read_text())
    (host,) = report["hosts"]
    return {cid: entry["status"] for cid, entry in report["hosts"][host].items()}


def _parse(text):
    """'mode user group path' lines (find -printf '%m %u %g %p') -> {path: (mode, user, group)}."""
    entries = {}
    for line in text.splitlines():
        mode, user, group, path = line.split(" ", 3)
        entries[path] = (int(mode, 8), user, group)
    return entries


def _listing(host, cmd):
    with host.sudo():
        return _parse(host.check_output(cmd))


def _recorded(host, path):
    with host.sudo():
        return _parse(host.file(path).content_string)


def expected_mode(old, is_dir):
    """The remediation rule of DR-03: group gets the owner's rights plus rw (dirs rwx + setgid),
    world-write is removed, no world bit is added, no special bit but the directory setgid."""
    if is_dir:
        return ((old & 0o0777) | 0o2070) & ~0o002
    group = 0o060 | ((old & 0o100) >> 3)
    return ((old & 0o0777) | group) & ~0o002


def test_audit_found_drift_and_named_the_controls():
    (audit,) = [p for p in _reports("-audit") if "audit-audit" in p.name]
    statuses = _statuses(audit)
    drifted = {cid for cid, status in statuses.items() if status == "drift"}
    assert {"WG-01", "DR-01", "DR-02", "DR-03", "WEB-01", "FTP-01"} <= drifted, statuses
    assert "failed" not in statuses.values(), statuses


def test_remediation_report_lists_every_control_remediated_or_compliant():
    converge_runs = [p for p in _reports("-remediate") if "converge" in p.name]
    assert len(converge_runs) >= 2, converge_runs  # converge, then idempotence
    first, again = converge_runs[0], converge_runs[1]
    statuses = _statuses(first)
    assert set(statuses.values()) <= {"remediated", "compliant", "not_applicable"}, statuses
    assert {"WG-01", "DR-01", "DR-02", "DR-03", "WEB-01", "FTP-01"} <= {
        cid for cid, s in statuses.items() if s == "remediated"}
    assert set(_statuses(again).values()) <= {"compliant", "not_applicable"}


def test_every_docroot_file_is_byte_identical(host):
    with host.sudo():
        result = host.run(f"cd {DOCROOT} && sha256sum --quiet -c /root/docroot.sha256")
    assert result.rc == 0, result.stdout + result.stderr


def test_docroot_modes_follow_the_group_rule(host):
    before = _recorded(host, "/root/docroot-modes.txt")
    after = _listing(host, f"cd {DOCROOT} && find . -printf '%m %u %g %y:%p\\n'")
    checked = 0
    for typed_path, (mode, user, group) in after.items():
        kind, path = typed_path.split(":", 1)
        if kind == "l" or path not in before:
            continue
        old_mode, old_user, _ = before[path]
        assert group == "workgroup", path
        assert user == old_user, path  # owner left alone by default
        assert mode == expected_mode(old_mode, kind == "d"), (path, oct(old_mode), oct(mode))
        checked += 1
    assert checked > 3000


def test_no_world_writable_and_no_special_bits_left(host):
    with host.sudo():
        world = host.check_output(f"find {DOCROOT} -xdev ! -type l -perm -o+w -print")
        special = host.check_output(f"find {DOCROOT} -xdev -type f -perm /7000 -print")
    assert world == ""
    assert special == ""


def test_symlink_to_etc_left_etc_untouched(host):
    assert host.file(f"{DOCROOT}/etc-link").is_symlink
    before = _recorded(host, "/root/etc-modes.txt")
    after = _listing(host, "find /etc -xdev -printf '%m %u %g %p\\n'")
    changed = {p: (before[p], after[p]) for p in before if p in after and before[p] != after[p]}
    assert changed == {}
    assert not [p for p, (_, _, group) in after.items() if group == "workgroup"]


def test_customer_banner_survives_and_anonymous_is_refused():
    client = peer(CLIENT)
    hello = client.run(
        f"python3 -c \"import ftplib; f = ftplib.FTP('{SERVER}', timeout=10); print(f.getwelcome())\"")
    assert "Welcome to Example Ferries FTP. Authorised use only." in hello.stdout, hello.stderr
    anon = client.run(
        f"python3 -c \"import ftplib; f = ftplib.FTP('{SERVER}', timeout=10); f.login('anonymous', 'x@y')\"")
    assert anon.rc != 0
    assert "530" in anon.stderr


def test_ftp_uploads_are_group_writable_now(host):
    """A member uploads a page from his workstation: a 0644 local file, made under umask 022."""
    with host.sudo():
        host.run_expect([0], "echo 'wuser1:Upload-Test-1' | chpasswd")
    client = peer(CLIENT)
    client.run_expect([0], "umask 022 && rm -f /tmp/up.txt && echo hello > /tmp/up.txt")
    assert client.file("/tmp/up.txt").mode == 0o644
    # %2F: the path from the root, not from the member's home (curl's FTP URLs). FTPS: site.yml
    # requires TLS for the login and the data (FTP-05).
    upload = client.run(
        f"curl -sS --connect-timeout 5 --max-time 30 {FTPS_CURL} --user wuser1:Upload-Test-1 -T /tmp/up.txt "
        f"ftp://{SERVER}/%2F{DOCROOT.lstrip('/')}/up.txt")
    assert upload.rc == 0, upload.stderr
    uploaded = host.file(f"{DOCROOT}/up.txt")
    assert uploaded.content_string == "hello\n"
    assert uploaded.mode == 0o664
    assert uploaded.group == "workgroup"


def test_no_ftp_client_on_the_server(host):
    """Issue #10: the host under test stays a minimal install; the clients are legacy-client's."""
    assert not host.package("lftp").is_installed


def test_web_server_user_in_team_group(host):
    assert "workgroup" in host.user("www-data").groups


def test_contractor_out_of_the_group_but_account_kept(host):
    contractor = host.user("contractor")
    assert contractor.exists
    assert "workgroup" not in contractor.groups


def test_admins_own_vsftpd_user_conf_is_kept(host):
    """Issue #9: FTP-02 deleted every per-user file it had not written; it removes only its own."""
    kept = host.file("/etc/vsftpd/user_conf/legacyftp")
    assert kept.exists and "local_max_rate=200000" in kept.content_string

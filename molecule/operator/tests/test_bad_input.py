# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Bad input is refused with a clear message before anything changes: the role runs over SSH as
debian with become (the scenario's inventory); the host is observed as root over docker exec."""

import pytest
from testlib import ACCOUNT_FILES, checksums, output_text, run_role

testinfra_hosts = ["docker://op-debian12", "docker://op-debian13"]

# Each case declares a valid newcomer first: a role that validated lazily would
# create that account before tripping, and the checksums would show it.
NEWCOMER = {"name": "newcomer", "uid": 640}

CASES = {
    "empty member list while exclusive": (
        {"workgroup_members": [], "workgroup_exclusive": True},
        "workgroup_members declares no present member while workgroup_exclusive is true",
    ),
    "gid held by another group": (
        {"workgroup_name": "newteam", "workgroup_gid": 650, "workgroup_members": [NEWCOMER]},
        "gid 650 is already held by group legacy",
    ),
    "shell metacharacter in a name": (
        {"workgroup_members": [NEWCOMER, {"name": "bad;name"}]},
        'invalid user name "bad;name"',
    ),
    "option-like name": (
        {"workgroup_members": [NEWCOMER, {"name": "-rf"}]},
        'invalid user name "-rf"',
    ),
    "name longer than 32 characters": (
        {"workgroup_members": [NEWCOMER, {"name": "a" * 33}]},
        f'invalid user name "{"a" * 33}"',
    ),
}


@pytest.fixture(scope="module", autouse=True)
def legacy_group(host):
    """A group that already holds gid 650, as on a server with history."""
    with host.sudo():
        host.run_expect([0], "getent group legacy || groupadd -g 650 legacy")


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_any_change(host, case):
    extra_vars, message = CASES[case]
    before = checksums(host, ACCOUNT_FILES)
    result = run_role(host, "workgroup", extra_vars)
    assert result.returncode != 0, result.stdout
    assert message in output_text(result), result.stdout[-3000:]
    assert checksums(host, ACCOUNT_FILES) == before
    assert not host.user("newcomer").exists


# FIM-01 / FIM-02: the integrity role refuses before any change; a role that validated lazily would
# rewrite its configuration (the writable place) or its command (the mail settings) first.
INTEGRITY_FILES = ("/etc/aide/vps-baseline.conf", "/usr/local/sbin/vps-integrity", "/var/lib/aide/vps-baseline/aide.db")
INTEGRITY_CASES = {
    "integrity: absolute writable place": (
        {"docroot_web_writable": ["cache", "/var/www/html/uploads"]},
        'docroot_web_writable is refused by the integrity role: ["/var/www/html/uploads"]',
    ),
    "integrity: relay without port": (
        {"integrity_mail_to": "ops@example.org", "integrity_smtp_relay": "192.0.2.25"},
        'integrity_smtp_relay the relay\'s IP address and port, 192.0.2.25:25 or [2001:db8::25]:587 (got "192.0.2.25"',
    ),
}


@pytest.mark.parametrize("case", sorted(INTEGRITY_CASES))
def test_integrity_refuses_bad_input_before_any_change(host, case):
    extra_vars, message = INTEGRITY_CASES[case]
    before = checksums(host, INTEGRITY_FILES)
    assert None not in before.values(), before
    result = run_role(host, "integrity", extra_vars)
    assert result.returncode != 0, result.stdout
    assert message in output_text(result), result.stdout[-3000:]
    assert checksums(host, INTEGRITY_FILES) == before


# BK-01 / BK-02: the backup role refuses before any change. Each case also moves the schedule and
# the port: a role that validated lazily would rewrite its timer and its SSH settings first.
BACKUP_FILES = ("/usr/local/sbin/vps-backup", "/etc/vps-backup/ssh_config", "/etc/systemd/system/vps-backup.timer")
BACKUP_MOVE = {"backup_on_calendar": "hourly", "backup_target_port": 2222}
OWN_ADDRESS = {"op-debian12": "10.47.116.12", "op-debian13": "10.47.116.13"}
BACKUP_CASES = {
    "backup: target is the host itself": (
        lambda name: {"backup_target_host": OWN_ADDRESS[name]},
        "is this host itself",
    ),
    "backup: missing key": (
        lambda name: {"backup_ssh_private_key": ""},
        "backup_ssh_private_key is missing",
    ),
    "backup: retention of 0": (
        lambda name: {"backup_keep_daily": 0},
        "backup_keep_daily must be 1 or more",
    ),
    "backup: dump name that is a path": (
        lambda name: {"backup_dump_commands": [{"name": "../x", "user": "vpstest", "argv": ["true"]}]},
        'backup_dump_commands refused: [{"name": "../x"',
    ),
    "backup: dump with an empty argv": (
        lambda name: {"backup_dump_commands": [{"name": "site-db", "user": "vpstest", "argv": []}]},
        '"argv": []}]; each entry is {name, user, argv}',
    ),
}


@pytest.mark.parametrize("case", sorted(BACKUP_CASES))
def test_backup_refuses_bad_input_before_any_change(host, case):
    make_vars, message = BACKUP_CASES[case]
    before = checksums(host, BACKUP_FILES)
    assert None not in before.values(), before
    result = run_role(host, "backup", {**BACKUP_MOVE, **make_vars(host.backend.get_hostname())})
    assert result.returncode != 0, result.stdout
    assert message in output_text(result), result.stdout[-3000:]
    assert "op-test-repository-password" not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert checksums(host, BACKUP_FILES) == before

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Onboarding and offboarding through playbooks/team.yml, seen from a real SFTP client."""

import os
from pathlib import Path

import pytest
from testlib import (ansible_playbook, assert_jailed, assert_sftp_upload_664, output_text, peer, run_role, sftp,
                     ssh_password)

testinfra_hosts = ["ansible://baseline"]

SERVER = "172.31.247.10"
PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks/team.yml"
KEYS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def members(newbie_state):
    def key(name):
        return [(KEYS / f"id_{name}.pub").read_text().strip()]

    return [
        {"name": "wuser1", "uid": 601, "ssh_keys": key("wuser1"), "ftp": True},
        {"name": "wjail", "uid": 602, "ssh_keys": key("wjail"), "chroot": "/var/www/html/team"},
        {"name": "gone", "uid": 603, "state": "absent"},
        {"name": "newbie", "uid": 604, "ssh_keys": key("newbie"), "state": newbie_state},
    ]


@pytest.fixture(scope="module")
def client():
    return peer("team-client")


def test_ssh01_effective_config_beats_cloud_init(host):
    with host.sudo():
        member = host.check_output(f"sshd -T -C user=wuser1,host=c,addr={SERVER}")
        other = host.check_output(f"sshd -T -C user=nobody,host=c,addr={SERVER}")
    assert "passwordauthentication no" in member.splitlines()
    assert "kbdinteractiveauthentication no" in member.splitlines()
    assert "loglevel VERBOSE" in other.splitlines()
    assert "permitrootlogin without-password" in other.splitlines()
    # issue #9: the image's "no" stands (ssh_password_authentication null), and the leftover
    # keyboard-interactive "yes" is overridden everywhere.
    assert "passwordauthentication no" in other.splitlines()
    assert "kbdinteractiveauthentication no" in other.splitlines()


def test_ssh01_typed_passwords_are_refused_over_password_and_keyboard_interactive(host, client):
    """Issue #9: the baseline turned passwords back on over the image's "no", and a keys-only member
    could still log in with a password through keyboard-interactive (PAM)."""
    with host.sudo():
        host.run_expect([0], "useradd -m -s /bin/bash typist && echo 'typist:Typed-Pass-9' | chpasswd")
        before = host.check_output("getent shadow wuser1").split(":")[1]
        host.run_expect([0], "echo 'wuser1:Typed-Pass-9' | chpasswd")
    try:
        for user in ("typist", "wuser1"):
            result = ssh_password(client, user, SERVER, "Typed-Pass-9", "echo logged-in")
            assert result.rc == 255 and "logged-in" not in result.stdout, (user, result.stdout, result.stderr)
            assert "Permission denied" in result.stderr, (user, result.stderr)
    finally:
        with host.sudo():
            host.run_expect([0], f"usermod -p '{before}' wuser1 && userdel -r typist")


def test_dr02_planted_symlink_is_refused_and_its_target_untouched(host):
    """Issue #9, critical: a member (or the web server) swaps the jailed member's directory for a
    link to /etc; the next team.yml run must not make /etc team-writable, nor bind-mount it."""
    etc_before = host.file("/etc").mode, host.file("/etc").group
    with host.sudo():
        host.run_expect([0], "su -s /bin/sh wuser1 -c 'mv /var/www/html/team /var/www/html/team.moved "
                             "&& ln -s /etc /var/www/html/team'")
    try:
        result = ansible_playbook(PLAYBOOK, host.backend.get_hostname(), {"workgroup_members": members("absent")})
        assert result.returncode != 0, result.stdout[-3000:]
        assert "/var/www/html/team is a symbolic link (to /etc)" in output_text(result), result.stdout[-3000:]
        assert (host.file("/etc").mode, host.file("/etc").group) == etc_before
        with host.sudo():
            jail = host.check_output("ls -1 /srv/jail/wjail/site")
        assert "passwd" not in jail.split()
    finally:
        with host.sudo():
            host.run_expect([0], "rm /var/www/html/team && mv /var/www/html/team.moved /var/www/html/team")


def test_ssh01_root_cannot_log_in_with_a_password(client):
    result = ssh_password(client, "root", SERVER, "whatever")
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_ssh02_member_sftp_upload_is_664_team_group(host, client):
    assert_sftp_upload_664(host, client, "wuser1", SERVER, "/root/id_wuser1", "/var/www/html/team/w1.txt")


def test_ssh02_jailed_member_uploads_into_the_team_directory(host, client):
    assert_sftp_upload_664(host, client, "wjail", SERVER, "/root/id_wjail", "j.txt", "/var/www/html/team/j.txt")


def test_ssh02_jailed_member_cannot_leave_the_jail(client):
    assert_jailed(client, "wjail", SERVER, "/root/id_wjail")
    shell = client.run(f"ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes "
                       f"-i /root/id_wjail wjail@{SERVER} cat /etc/passwd")
    assert "root:x:0:0" not in shell.stdout


def test_acc04_former_member_is_locked(host):
    with host.sudo():
        status = host.check_output("passwd -S gone").split()
    assert status[1] == "L"


def test_onboard_then_offboard(host, client):
    onboard = ansible_playbook(PLAYBOOK, host.backend.get_hostname(), {"workgroup_members": members("present")})
    assert onboard.returncode == 0, onboard.stdout[-3000:]
    client.run_expect([0], "echo onboarded > /tmp/n.txt && chmod 666 /tmp/n.txt")
    upload = sftp(client, "newbie", SERVER, "/root/id_newbie", "put /tmp/n.txt /var/www/html/team/newbie.txt")
    assert upload.rc == 0, upload.stderr
    assert host.file("/var/www/html/team/newbie.txt").mode == 0o664
    with host.sudo():
        host.run_expect([0], "su - newbie -c 'nohup sleep 900 >/dev/null 2>&1 &'")
        assert host.run("pgrep -u newbie").rc == 0

    offboard = ansible_playbook(PLAYBOOK, host.backend.get_hostname(), {"workgroup_members": members("absent")})
    assert offboard.returncode == 0, offboard.stdout[-3000:]

    denied = sftp(client, "newbie", SERVER, "/root/id_newbie", "ls /")
    assert denied.rc != 0
    with host.sudo():
        assert host.run("pgrep -u newbie").rc == 1, "offboarded member's processes still run"
        assert host.check_output("passwd -S newbie").split()[1] == "L"
        assert "workgroup" not in host.user("newbie").groups
        kept = host.file("/var/www/html/team/newbie.txt")
        assert kept.exists and kept.group == "workgroup" and kept.mode == 0o664
        host.run_expect([0], "su - wuser1 -c 'echo edited >> /var/www/html/team/newbie.txt'")
    assert "edited" in host.file("/var/www/html/team/newbie.txt").content_string


def test_acc03_opt_in_locks_undeclared_login_accounts_only(host):
    with host.sudo():
        root_before = host.check_output("getent shadow root")
    result = run_role(host, "accounts", {"accounts_lock_undeclared": True, "accounts_allowlist": ["opsadmin"]})
    assert result.returncode == 0, result.stdout[-3000:]
    with host.sudo():
        assert host.check_output("passwd -S legacy").split()[1] == "L"
        assert host.check_output("passwd -S opsadmin").split()[1] == "P"
        assert host.check_output("getent shadow root") == root_before

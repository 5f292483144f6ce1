# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""WG-01 / WG-02 as a user sees them, on the hosts converged over SSH by site.yml (observed as
root over docker exec). The undeclared member and the member's own ~/.bashrc line are planted and
checked in test_operator.py (test_site_over_ssh_remediates_and_never_locks_the_admin), which
runs after this file: its team.yml run offboards wdev."""

testinfra_hosts = ["docker://op-debian12", "docker://op-debian13"]


def test_wg01_group_has_gid_and_declared_members(host):
    group = host.group("workgroup")
    assert group.exists
    assert group.gid == 600
    # Besides the declared members, only the web server user (WEB-01's service account).
    assert sorted(set(group.members) - {"www-data"}) == ["wdev", "wuser1", "wuser2"]


def test_wg01_declared_uids(host):
    assert host.user("wuser1").uid == 601
    assert host.user("wuser2").uid == 602
    assert host.user("wdev").uid == 603


def test_wg02_login_shell_creates_group_writable_files(host):
    with host.sudo():
        cmd = host.run("su - wuser1 -c 'rm -f ~/wg02 && touch ~/wg02 && stat -c %a ~/wg02'")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "664"


def test_wg02_login_shell_reports_team_umask(host):
    for user in ("wuser1", "wuser2", "wdev"):
        cmd = host.run(f"su - {user} -c umask")
        assert cmd.stdout.strip() == "0002", user

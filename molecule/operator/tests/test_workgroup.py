"""WG-01 / WG-02 as a user sees them, on the converged host."""

testinfra_hosts = ["ansible://baseline"]


def test_wg01_group_has_gid_and_declared_members(host):
    group = host.group("workgroup")
    assert group.exists
    assert group.gid == 600
    assert sorted(group.members) == ["wdev", "wuser1", "wuser2"]


def test_wg01_undeclared_member_removed_but_account_kept(host):
    intruder = host.user("intruder")
    assert intruder.exists
    assert "workgroup" not in intruder.groups


def test_wg01_declared_uids(host):
    assert host.user("wuser1").uid == 601
    assert host.user("wuser2").uid == 602


def test_wg02_login_shell_creates_group_writable_files(host):
    with host.sudo():
        cmd = host.run("su - wuser1 -c 'rm -f ~/wg02 && touch ~/wg02 && stat -c %a ~/wg02'")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "664"


def test_wg02_login_shell_reports_team_umask(host):
    for user in ("wuser1", "wuser2", "wdev"):
        cmd = host.run(f"su - {user} -c umask")
        assert cmd.stdout.strip() == "0002", user


def test_wg02_users_own_bashrc_line_survives(host):
    cmd = host.run("su - wuser1 -c 'echo $TEAM_OWN_SETTING'")
    assert cmd.stdout.strip() == "kept"

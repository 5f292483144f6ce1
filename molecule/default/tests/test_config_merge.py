"""vsftpd.conf edits keep what the baseline does not own (issue 6): on a drifted file, a customer's
ftpd_banner survives, a drifted managed key is set back, the original is backed up first, and
vsftpd comes back up. One image is enough: the file handling does not depend on the OS."""

from testlib import run_role

testinfra_hosts = ["ansible://site-debian12"]

CONF = "/etc/vsftpd.conf"
BANNER = "ftpd_banner=Welcome to the customer's FTP service."


def test_ftp04_unmanaged_keys_survive_managed_keys_reset_with_backup(host):
    with host.sudo():
        host.run_expect([0], "rm -f /etc/vsftpd.conf.*~")
        host.run_expect([0], f"sed -i 's/^local_umask=.*/local_umask=022/' {CONF}")
        host.run_expect([0], f"printf '%s\\n' \"{BANNER}\" >> {CONF}")
    result = run_role(host, "vsftpd")
    assert result.returncode == 0, result.stdout[-3000:]
    with host.sudo():
        conf = host.file(CONF).content_string.splitlines()
        backups = host.check_output("ls /etc/vsftpd.conf.*~ 2>/dev/null || true").split()
        assert backups, "no backup of vsftpd.conf was made"
        first_backup = host.file(sorted(backups)[0]).content_string.splitlines()
    assert BANNER in conf
    assert "local_umask=002" in conf
    assert "local_umask=022" not in conf
    assert "local_umask=022" in first_backup and BANNER in first_backup
    assert host.service("vsftpd").is_running

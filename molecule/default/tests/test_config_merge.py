# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""vsftpd.conf edits keep what the baseline does not own (issue 6): on a drifted file, a customer's
ftpd_banner survives, drifted managed keys are set back, the original is backed up first, once per
run (issue 11: one backup however many controls change keys), and vsftpd comes back up. One image
is enough: the file handling does not depend on the OS."""

from testlib import run_role

testinfra_hosts = ["ansible://site-debian12"]

CONF = "/etc/vsftpd.conf"
BANNER = "ftpd_banner=Welcome to the customer's FTP service."
# Managed keys of three controls (FTP-01, FTP-03, FTP-04), drifted by hand: one run sets them
# back with one backup. lineinfile's `backup: true` in a loop made one backup per changed key.
DRIFT = {
    "local_umask": ("022", "002"),
    "anonymous_enable": ("YES", "NO"),
    "xferlog_std_format": ("YES", "NO"),
}


def test_ftp04_unmanaged_keys_survive_managed_keys_reset_with_one_backup(host):
    with host.sudo():
        host.run_expect([0], "rm -f /etc/vsftpd.conf.*~")
        for key, (drifted, _) in DRIFT.items():
            host.run_expect([0], f"sed -i 's/^{key}=.*/{key}={drifted}/' {CONF}")
        host.run_expect([0], f"printf '%s\\n' \"{BANNER}\" >> {CONF}")
        drifted_conf = host.file(CONF).content_string.splitlines()
    for key, (drifted, _) in DRIFT.items():
        assert f"{key}={drifted}" in drifted_conf, f"the test did not drift {key}"
    result = run_role(host, "vsftpd")
    assert result.returncode == 0, result.stdout[-3000:]
    with host.sudo():
        conf = host.file(CONF).content_string.splitlines()
        backups = host.check_output("ls /etc/vsftpd.conf.*~ 2>/dev/null || true").split()
        assert len(backups) == 1, f"one backup per run expected, got {backups}"
        backup = host.file(backups[0]).content_string.splitlines()
    assert BANNER in conf
    for key, (drifted, managed) in DRIFT.items():
        assert f"{key}={managed}" in conf
        assert f"{key}={drifted}" not in conf
        assert f"{key}={drifted}" in backup
    assert BANNER in backup
    assert host.service("vsftpd").is_running

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Each refusal of docroot, webserver and vsftpd: the run fails with a message that names the
problem, and nothing changed. Input validation does not depend on the OS, so these run on one
image only (the behaviour tests in test_site.py run on both)."""

import subprocess
import tempfile
from pathlib import Path

import pytest
from testlib import assert_refused, checksums, stats

testinfra_hosts = ["ansible://site-debian12"]

# A valid docroot listed first: a role that validated lazily would create it before tripping.
NEWCOMER = "/var/www/newsite"
SYSTEM_PATHS = ["/", "/etc", "/usr", "/var", "/home", "/root", "/var/www", "/opt", "/tmp"]

DOCROOT_CASES = {
    "/": "it is a system directory",
    "/etc": "it is a system directory",
    "/usr": "it is a system directory",
    "/var": "it is a system directory",
    "/home": "it is a system directory",
    "/root": "it is a system directory",
    "/etc/": "it is a system directory",
    "/var/www": "it is a system directory",
    "/opt/site": "it is not strictly below an allowed prefix",
    "/var/wwwx/site": "it is not strictly below an allowed prefix",
    "var/www/html": "a docroot must be an absolute path without '.', '..' or '//' components",
    "/var/www/../../etc": "a docroot must be an absolute path without '.', '..' or '//' components",
    "/var/www/html/./x": "a docroot must be an absolute path without '.', '..' or '//' components",
    "/var/www/my site": "a docroot must be an absolute path without '.', '..' or '//' components, nor spaces",
}


@pytest.mark.parametrize("path", sorted(DOCROOT_CASES))
def test_docroot_refuses_dangerous_path_before_any_change(host, path):
    assert_refused(
        host, "docroot", {"docroot_paths": [NEWCOMER, path]},
        f'docroot path "{path}" is refused: {DOCROOT_CASES[path]}',
        lambda: stats(host, SYSTEM_PATHS),
    )
    assert not host.file(NEWCOMER).exists


ACL_SNAPSHOT = ("import os, sys\n"
                "for p in sys.argv[1:]:\n"
                "    for n in ('system.posix_acl_access', 'system.posix_acl_default'):\n"
                "        try: print(p, n, os.getxattr(p, n).hex())\n"
                "        except OSError as exc: print(p, n, exc.errno)\n")


def test_docroot_refuses_a_writable_place_outside_the_docroot_before_any_change(host):
    """DR-06: a writable place that climbs out of the docroot would hand the web server more than its uploads."""
    watched = ["/var/www/html", "/var/www/html/checkout.php", "/var/www/html/uploads", "/etc"]

    def snapshot():
        with host.sudo():
            acls = host.check_output("python3 -c %s " + " ".join(watched), ACL_SNAPSHOT)
            return stats(host, SYSTEM_PATHS + watched), acls

    assert_refused(
        host, "docroot", {"docroot_web_writable": ["uploads", "../etc"]},
        'docroot_web_writable entry "../etc" is refused: a writable place must be a path relative to the docroot',
        snapshot,
    )


VSFTPD_FILES = ("/etc/vsftpd.conf", "/etc/vsftpd.user_list", "/etc/vsftpd.chroot_list", "/etc/ftpusers",
                "/etc/vsftpd/user_conf/wuser2")
NEW_MEMBER = {"name": "newftp", "uid": 1650, "ftp": True}

VSFTPD_CASES = {
    "root as FTP member": (
        {"workgroup_members": [NEW_MEMBER, {"name": "root", "ftp": True}]},
        'FTP member "root" (uid 0) is refused',
    ),
    "system account as FTP member": (
        {"workgroup_members": [NEW_MEMBER, {"name": "_apt", "ftp": True}]},
        'FTP member "_apt" (uid 42) is refused',
    ),
    "passive range of one port": (
        {"vsftpd_pasv_min_port": 30000, "vsftpd_pasv_max_port": 30000},
        "vsftpd_pasv_min_port..vsftpd_pasv_max_port must be a range of at least two ports",
    ),
    "passive range inverted": (
        {"vsftpd_pasv_min_port": 30100, "vsftpd_pasv_max_port": 30000},
        "vsftpd_pasv_min_port..vsftpd_pasv_max_port must be a range",
    ),
    "listen port inside the passive range": (
        {"vsftpd_listen_port": 30050},
        "does not hold vsftpd_listen_port",
    ),
    "certificate without key": (
        {"vsftpd_ssl_cert": "/etc/ssl/certs/ssl-cert-snakeoil.pem"},
        "vsftpd_ssl_cert and vsftpd_ssl_key must both be absolute paths",
    ),
    "umask that drops group write": (
        {"workgroup_umask": "022"},
        'workgroup_umask "022" would make FTP uploads not group-writable',
    ),
    "log file below the docroot": (
        {"vsftpd_log_file": "/var/www/html/vsftpd.log"},
        "vsftpd_log_file must be a path strictly below /var/log",
    ),
    "log file climbing out of /var/log": (
        {"vsftpd_log_file": "/var/log/../www/html/vsftpd.log"},
        "vsftpd_log_file must be a path strictly below /var/log",
    ),
    "writable jail not allowed": (
        {"vsftpd_chroot_writable": False},
        "FTP members wuser2 declare a chroot, but vsftpd_chroot_writable is false",
    ),
}


@pytest.mark.parametrize("case", sorted(VSFTPD_CASES))
def test_vsftpd_refuses_bad_input_before_any_change(host, case):
    extra_vars, message = VSFTPD_CASES[case]
    assert_refused(host, "vsftpd", extra_vars, message, lambda: checksums(host, VSFTPD_FILES))
    assert "newftp" not in host.file("/etc/vsftpd.user_list").content_string


WEB_FILES = ("/etc/systemd/system/apache2.service.d/umask.conf", "/etc/apache2/conf-available/vps-baseline.conf",
             "/etc/apache2/sites-available/vps-baseline-https.conf", "/etc/apache2/conf-available/vps-baseline-tls.conf",
             "/etc/ssl/vps-baseline/site.crt", "/etc/ssl/vps-baseline/site.key", "/etc/ssl/vps-baseline/selfsigned.key")


def _pem_pair(name):
    """A throwaway certificate and key (PEM text), made on the controller."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", f"{tmp}/k", "-out", f"{tmp}/c"],
                       check=True, capture_output=True)
        return Path(f"{tmp}/c").read_text(), Path(f"{tmp}/k").read_text()


CERT_A, KEY_A = _pem_pair("a.example")
_, KEY_B = _pem_pair("b.example")

WEB_CASES = {
    "umask that drops group write": ({"webserver_umask": "0022"}, 'webserver_umask an octal string that keeps'),
    "port out of range": ({"webserver_ports": [80, 70000]}, "webserver_ports must be distinct TCP ports 1-65535"),
    "repeated port": ({"webserver_ports": [80, 80]}, "webserver_ports must be distinct TCP ports 1-65535"),
    "team group missing": ({"workgroup_name": "noteam"}, 'team group "noteam" does not exist'),
    "root as the web server user": ({"webserver_user": "root"}, "webserver_user must name the unprivileged account"),
    # WEB-04: the inventory's pair, judged before anything is written (the key never in the output).
    # Two cases for the time budget; the same assert refuses a path given as the certificate (not PEM).
    "TLS key without a certificate": (
        {"webserver_tls_private_key": KEY_A},
        "webserver_tls_certificate and webserver_tls_private_key must both be given"),
    "TLS key of another certificate": (
        {"webserver_tls_certificate": CERT_A, "webserver_tls_private_key": KEY_B},
        "webserver_tls_private_key does not belong to webserver_tls_certificate"),
}


@pytest.mark.parametrize("case", sorted(WEB_CASES))
def test_webserver_refuses_bad_input_before_any_change(host, case):
    extra_vars, message = WEB_CASES[case]
    result = assert_refused(
        host, "webserver", extra_vars, message,
        lambda: (checksums(host, WEB_FILES), sorted(host.user("www-data").groups)),
    )
    for key in (KEY_A, KEY_B):
        body = key.splitlines()[1]
        assert body not in result.stdout + result.stderr, "a private key reached the output"


# MEM-01/02/03 (roles/memory/tasks/validate.yml, judged by the pre-flight). site-debian12 keeps
# its swap file on the ext4 volume /srv/swap (molecule.yml); the cases that need a file planted
# there make it first and remove it after.
MEM_FILES = ("/srv/swap/swapfile", "/etc/fstab", "/etc/sysctl.d/60-vps-baseline-memory.conf",
             "/etc/systemd/system/apache2.service.d/restart.conf")
MEM_PLANTED = {
    "a symlink at the swap path": "ln -s /etc/shadow /srv/swap/planted",
    "an existing file that is not swap": "echo 'a database' > /srv/swap/planted && chmod 600 /srv/swap/planted",
}

MEM_CASES = {
    "swap file below the docroot": (
        {"memory_swap_file": "/var/www/html/swapfile"},
        'memory_swap_file "/var/www/html/swapfile" is refused: it must be an absolute path without',
    ),
    "relative swap path": (
        {"memory_swap_file": "swapfile"},
        'memory_swap_file "swapfile" is refused: it must be an absolute path',
    ),
    "swap file in a directory others can write": (
        {"memory_swap_file": "/tmp/swapfile"},
        'memory_swap_file "/tmp/swapfile" is refused: /tmp is writable by group or others (mode 1777)',
    ),
    "a symlink at the swap path": (
        {"memory_swap_file": "/srv/swap/planted"},
        'memory_swap_file "/srv/swap/planted" is refused: it exists and is a symlink',
    ),
    "an existing file that is not swap": (
        {"memory_swap_file": "/srv/swap/planted"},
        'memory_swap_file "/srv/swap/planted" is refused: it exists and is not a swap area',
    ),
    "swap size 0": (
        {"memory_swap_size_mb": 0},
        "memory_swap_size_mb must be a positive number of MiB",
    ),
    "swap larger than the free space": (
        {"memory_swap_size_mb": 100000000},
        "memory_swap_size_mb 100000000 MiB is larger than the free space of /srv/swap",
    ),
    "swappiness above 100": (
        {"memory_swappiness": 101},
        "memory_swappiness an integer 0-100",
    ),
}


@pytest.mark.parametrize("case", sorted(MEM_CASES))
def test_memory_refuses_bad_input_before_any_change(host, case):
    extra_vars, message = MEM_CASES[case]
    planted = MEM_PLANTED.get(case)
    with host.sudo():
        if planted:
            host.run_expect([0], planted)
        try:
            assert_refused(
                host, "memory", extra_vars, message,
                lambda: (checksums(host, MEM_FILES), host.check_output("ls -la /srv/swap && ls -a /tmp"),
                         host.check_output("cat /proc/swaps")),
            )
            if planted:
                assert host.check_output("stat -c %N /srv/swap/planted") in (
                    "'/srv/swap/planted' -> '/etc/shadow'", "'/srv/swap/planted'")
                assert host.file("/etc/shadow").mode == 0o640
        finally:
            host.run("rm -f /srv/swap/planted")

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""The whole site as its users see it: real FTP (lftp), HTTP (curl) and login shell (su)
clients inside each container, against 127.0.0.1."""

import pytest
from testlib import lftp

testinfra_hosts = ["ansible://baseline"]

DOCROOT = "/var/www/html"
JAIL = "/var/www/html/ir"
GROUP = "workgroup"
PASSWORDS = {"wuser1": "ftp-test-1", "wuser2": "ftp-test-2", "wdev": "ftp-test-3", "root": "ftp-test-root"}


def mode_group(host, path):
    with host.sudo():
        out = host.check_output("stat -c '%%a %%G' %s", path)
    return out.split()


@pytest.fixture()
def local_file(host):
    host.run_expect([0], "printf 'hello from the team\\n' > /tmp/upload.txt")
    return "/tmp/upload.txt"


def test_dr01_dr02_docroot_is_setgid_team_directory(host):
    assert mode_group(host, DOCROOT) == ["2775", GROUP]


def test_dr02_docroot_parent_created_root_owned_not_team_writable(host):
    parent = host.file("/var/www")
    assert (parent.user, parent.group, oct(parent.mode)) == ("root", "root", "0o755")


def test_dr02_member_chroot_below_docroot_is_setgid_team_directory(host):
    assert mode_group(host, JAIL) == ["2775", GROUP]


def test_ftp01_upload_lands_group_writable_in_team_group(host, local_file):
    host.run(f"rm -f {DOCROOT}/ftp01-up.txt")
    result = lftp(host, "wuser1", PASSWORDS["wuser1"], [f"put {local_file} -o {DOCROOT}/ftp01-up.txt"])
    assert result.rc == 0, result.stdout + result.stderr
    assert mode_group(host, f"{DOCROOT}/ftp01-up.txt") == ["664", GROUP]
    assert host.user("wuser1").name == host.file(f"{DOCROOT}/ftp01-up.txt").user


def test_ftp01_directory_made_over_ftp_is_setgid_group_writable(host):
    host.run(f"rmdir {DOCROOT}/ftp01-dir")
    result = lftp(host, "wuser1", PASSWORDS["wuser1"], [f"mkdir {DOCROOT}/ftp01-dir"])
    assert result.rc == 0, result.stdout + result.stderr
    assert mode_group(host, f"{DOCROOT}/ftp01-dir") == ["2775", GROUP]


def test_ftp02_chrooted_member_sees_jail_as_root(host):
    result = lftp(host, "wuser2", PASSWORDS["wuser2"], ["quote PWD"])
    assert result.rc == 0, result.stdout + result.stderr
    assert '257 "/"' in result.stdout


def test_ftp02_chrooted_member_cannot_reach_etc(host):
    listing = lftp(host, "wuser2", PASSWORDS["wuser2"], ["cls -a /etc/"])
    assert listing.rc != 0
    change = lftp(host, "wuser2", PASSWORDS["wuser2"], ["cd /etc"])
    assert change.rc != 0
    assert "550" in change.stdout + change.stderr
    escape = lftp(host, "wuser2", PASSWORDS["wuser2"], ["cd ../../..", "quote PWD"])
    assert '257 "/"' in escape.stdout, escape.stdout + escape.stderr
    passwd = lftp(host, "wuser2", PASSWORDS["wuser2"], ["get /etc/passwd -o /tmp/stolen-passwd"])
    assert passwd.rc != 0
    assert not host.file("/tmp/stolen-passwd").exists


def test_ftp02_upload_into_jail_works(host, local_file):
    host.run(f"rm -f {JAIL}/ftp02-up.txt")
    result = lftp(host, "wuser2", PASSWORDS["wuser2"], [f"put {local_file} -o /ftp02-up.txt"])
    assert result.rc == 0, result.stdout + result.stderr
    assert mode_group(host, f"{JAIL}/ftp02-up.txt") == ["664", GROUP]


def test_ftp02_jail_leaves_ssh_home_alone(host):
    assert host.user("wuser2").home == "/home/wuser2"


@pytest.mark.parametrize(
    "user, password",
    [
        ("wdev", PASSWORDS["wdev"]),  # a member with ftp: false
        ("root", PASSWORDS["root"]),
        ("anonymous", "guest@example.com"),
        ("ftp", "guest@example.com"),
    ],
)
def test_ftp03_refused_logins(host, user, password):
    result = lftp(host, user, password, ["quote PWD"])
    assert result.rc != 0
    assert "530" in result.stdout + result.stderr, result.stdout + result.stderr
    assert '257 "' not in result.stdout


def test_web01_apache_user_in_team_group(host):
    assert GROUP in host.user("www-data").groups


@pytest.fixture(scope="module")
def cgi(host):
    """A CGI script that writes a file into the docroot, as a CMS would."""
    with host.sudo():
        host.run_expect([0], "a2enmod -q cgid && systemctl restart apache2")
        host.run_expect(
            [0],
            "printf '%%s\\n' '#!/bin/sh' 'printf \"made by apache\\n\" > %s/cms-made.txt' "
            "'printf \"Content-Type: text/plain\\n\\nwritten\\n\"' > /usr/lib/cgi-bin/write.cgi "
            "&& chmod 755 /usr/lib/cgi-bin/write.cgi && rm -f %s/cms-made.txt",
            DOCROOT, DOCROOT,
        )
    return "http://127.0.0.1/cgi-bin/write.cgi"


def test_web02_file_written_by_apache_is_group_writable_in_team_group(host, cgi):
    result = host.run("curl -fsS %s", cgi)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "written"
    assert mode_group(host, f"{DOCROOT}/cms-made.txt") == ["664", GROUP]
    assert host.file(f"{DOCROOT}/cms-made.txt").user == "www-data"


def test_web03_server_tokens_and_trace_off(host):
    headers = host.check_output("curl -sS -o /dev/null -D - http://127.0.0.1/")
    server = [line for line in headers.splitlines() if line.lower().startswith("server:")]
    assert [line.strip() for line in server] == ["Server: Apache"]
    trace = host.run("curl -sS -o /dev/null -w '%{http_code}' -X TRACE http://127.0.0.1/")
    assert trace.stdout.strip() == "405"
    missing = host.check_output("curl -sS http://127.0.0.1/no-such-page")
    assert "Apache/" not in missing and "Server at" not in missing


def test_member_login_shell_creates_group_writable_file_in_docroot(host):
    with host.sudo():
        result = host.run(f"su - wdev -c 'rm -f {DOCROOT}/shell-made.txt && touch {DOCROOT}/shell-made.txt'")
    assert result.rc == 0, result.stderr
    assert mode_group(host, f"{DOCROOT}/shell-made.txt") == ["664", GROUP]

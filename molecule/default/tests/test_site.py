# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""The whole site as its users see it: real FTP (lftp) and HTTP (curl) clients from their own
container (site-client, issue #10), against each host's address on the internal network; the
member's login shell (su -) on the host itself."""

import base64

import pytest
from testlib import lftp, peer

testinfra_hosts = ["ansible://baseline"]

DOCROOT = "/var/www/html"
JAIL = "/var/www/html/ir"
GROUP = "workgroup"
PASSWORDS = {"wuser1": "ftp-test-1", "wuser2": "ftp-test-2", "wdev": "ftp-test-3", "root": "ftp-test-root"}
# molecule.yml: each host's address on site-net.
ADDRESSES = {"site-debian12": "172.31.243.10", "site-debian13": "172.31.243.11"}


def mode_group(host, path):
    with host.sudo():
        out = host.check_output("stat -c '%%a %%G' %s", path)
    return out.split()


@pytest.fixture(scope="module")
def client():
    return peer("site-client")


@pytest.fixture()
def server(host):
    return ADDRESSES[host.backend.get_hostname()]


@pytest.fixture()
def ftp(client, server):
    """lftp from the client container to this host."""
    return lambda user, password, commands: lftp(client, user, password, commands, server=server)


@pytest.fixture()
def local_file(client):
    """A page as people's files are: made under umask 022, so it is 0644 on the client."""
    client.run_expect([0], "umask 022 && rm -f /tmp/upload.txt && printf 'hello from the team\\n' > /tmp/upload.txt")
    assert client.file("/tmp/upload.txt").mode == 0o644
    return "/tmp/upload.txt"


def test_dr01_dr02_docroot_is_setgid_team_directory(host):
    assert mode_group(host, DOCROOT) == ["2775", GROUP]


def test_dr02_docroot_parent_created_root_owned_not_team_writable(host):
    parent = host.file("/var/www")
    assert (parent.user, parent.group, oct(parent.mode)) == ("root", "root", "0o755")


def test_dr02_member_chroot_below_docroot_is_setgid_team_directory(host):
    assert mode_group(host, JAIL) == ["2775", GROUP]


def test_ftp01_upload_of_a_0644_file_lands_group_writable_in_team_group(host, ftp, local_file):
    host.run(f"rm -f {DOCROOT}/ftp01-up.txt")
    result = ftp("wuser1", PASSWORDS["wuser1"], [f"put {local_file} -o {DOCROOT}/ftp01-up.txt"])
    assert result.rc == 0, result.stdout + result.stderr
    assert mode_group(host, f"{DOCROOT}/ftp01-up.txt") == ["664", GROUP]
    assert host.user("wuser1").name == host.file(f"{DOCROOT}/ftp01-up.txt").user


def test_ftp01_directory_made_over_ftp_is_setgid_group_writable(host, ftp):
    host.run(f"rmdir {DOCROOT}/ftp01-dir")
    result = ftp("wuser1", PASSWORDS["wuser1"], [f"mkdir {DOCROOT}/ftp01-dir"])
    assert result.rc == 0, result.stdout + result.stderr
    assert mode_group(host, f"{DOCROOT}/ftp01-dir") == ["2775", GROUP]


def test_ftp02_chrooted_member_sees_jail_as_root(ftp):
    result = ftp("wuser2", PASSWORDS["wuser2"], ["quote PWD"])
    assert result.rc == 0, result.stdout + result.stderr
    assert '257 "/"' in result.stdout


def test_ftp02_chrooted_member_cannot_reach_etc(client, ftp):
    listing = ftp("wuser2", PASSWORDS["wuser2"], ["cls -a /etc/"])
    assert listing.rc != 0
    change = ftp("wuser2", PASSWORDS["wuser2"], ["cd /etc"])
    assert change.rc != 0
    assert "550" in change.stdout + change.stderr
    escape = ftp("wuser2", PASSWORDS["wuser2"], ["cd ../../..", "quote PWD"])
    assert '257 "/"' in escape.stdout, escape.stdout + escape.stderr
    client.run("rm -f /tmp/stolen-passwd")
    passwd = ftp("wuser2", PASSWORDS["wuser2"], ["get /etc/passwd -o /tmp/stolen-passwd"])
    assert passwd.rc != 0
    assert not client.file("/tmp/stolen-passwd").exists


def test_ftp02_upload_into_jail_works(host, ftp, local_file):
    host.run(f"rm -f {JAIL}/ftp02-up.txt")
    result = ftp("wuser2", PASSWORDS["wuser2"], [f"put {local_file} -o /ftp02-up.txt"])
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
        ("wuser1", "ftp-test-l"),  # a member's password typed wrong
    ],
)
def test_ftp03_refused_logins(ftp, user, password):
    result = ftp(user, password, ["quote PWD"])
    assert result.rc != 0
    assert "530" in result.stdout + result.stderr, result.stdout + result.stderr
    assert '257 "' not in result.stdout


def test_web01_apache_user_in_team_group(host):
    assert GROUP in host.user("www-data").groups


def test_ftp03_web_server_user_denied_ftp_by_derivation(host):
    """The webserver role owns the web server user (webserver_user); the vsftpd role adds it to
    ftpusers itself, although vsftpd_denied_users' default no longer names it (issue #11)."""
    text = host.file("/etc/ftpusers").content_string
    block = text.split("# BEGIN vps-baseline: vsftpd_denied_users (FTP-03)\n")[1].split("# END")[0]
    assert "www-data" in block.split(), text


UPLOADS = f"{DOCROOT}/uploads"
CHECKOUT = f"{DOCROOT}/checkout.php"
# The CGI's attempts, each printed as name=ok or name=denied.
CGI_STEPS = {
    "create-upload": f"printf 'made by apache\\n' > {UPLOADS}/cms-made.txt",
    "modify-upload": f"printf 'edited by apache\\n' >> {UPLOADS}/cms-made.txt",
    "modify-checkout": f"printf '<script src=//skimmer.example></script>\\n' >> {CHECKOUT}",
    "create-php": f"printf '<?php system($_GET[0]);\\n' > {DOCROOT}/shell.php",
}


def acl_user_entries(host, path):
    """{uid: perm} of the named-user entries of a path's access ACL (the xattr, read with python3:
    no acl package on the host)."""
    code = ("import os,struct,sys\n"
            "try: raw = os.getxattr(sys.argv[1], 'system.posix_acl_access')\n"
            "except OSError: raw = b'\\x02\\0\\0\\0'\n"
            "print(' '.join('%d:%o' % (i, p) for t, p, i in struct.iter_unpack('<HHI', raw[4:]) if t == 2))")
    with host.sudo():
        out = host.check_output("python3 -c %s %s", code, path)
    return {int(u): int(p, 8) for u, p in (item.split(":") for item in out.split())}


@pytest.fixture(scope="module")
def cgi(host, client):
    """A CGI script run by Apache that tries, as a CMS (or an attacker through it) would, to write
    into uploads/ (DR-06's writable place), to rewrite checkout.php and to plant a new .php; fetched
    once per host with curl from the client. Returns {step: "ok" or "denied"}."""
    script = "\n".join(["#!/bin/sh", "printf 'Content-Type: text/plain\\n\\n'"] + [
        f"if {{ {cmd}; }} 2>/dev/null; then echo {name}=ok; else echo {name}=denied; fi"
        for name, cmd in CGI_STEPS.items()]) + "\n"
    with host.sudo():
        host.run_expect([0], "a2enmod -q cgid && systemctl restart apache2")
        host.run_expect([0], "echo %s | base64 -d > /usr/lib/cgi-bin/write.cgi && chmod 755 /usr/lib/cgi-bin/write.cgi "
                             "&& rm -f %s/cms-made.txt %s/shell.php",
                        base64.b64encode(script.encode()).decode(), UPLOADS, DOCROOT)
        checkout_before = host.file(CHECKOUT).content_string
    # HTTPS (WEB-04 redirects plain HTTP); the certificate is verified in test_tls.py.
    result = client.run("curl -fsS -k https://%s/cgi-bin/write.cgi", ADDRESSES[host.backend.get_hostname()])
    assert result.rc == 0, result.stderr
    steps = dict(line.split("=", 1) for line in result.stdout.split())
    return {"steps": steps, "checkout_before": checkout_before}


def test_web02_file_written_by_apache_is_group_writable_in_team_group(host, cgi):
    """WEB-02, in DR-06's writable place (the rest of the docroot is read-only for Apache here)."""
    assert cgi["steps"]["create-upload"] == "ok", cgi
    assert mode_group(host, f"{UPLOADS}/cms-made.txt") == ["664", GROUP]
    assert host.file(f"{UPLOADS}/cms-made.txt").user == "www-data"


def test_dr06_web_server_modifies_its_files_in_the_writable_place(host, cgi):
    """It keeps write there: its new file inherits uploads/'s default entry (rwx; the mask, 0664's group
    bits, makes it rw-), so the next run has nothing to change and the file stays the team's."""
    assert cgi["steps"]["modify-upload"] == "ok", cgi
    with host.sudo():
        assert host.file(f"{UPLOADS}/cms-made.txt").content_string == "made by apache\nedited by apache\n"
    assert acl_user_entries(host, f"{UPLOADS}/cms-made.txt") == {host.user("www-data").uid: 0o7}


def test_dr06_web_server_cannot_rewrite_the_payment_page(host, cgi):
    """The issue's reproduction: a root:root 0644 checkout.php that DR-03 made 0664 in the team group,
    of which the web server is a member; its named ACL entry (r-x, effective r--) wins over the group."""
    assert mode_group(host, CHECKOUT) == ["664", GROUP]
    assert cgi["steps"]["modify-checkout"] == "denied", cgi
    with host.sudo():
        assert host.file(CHECKOUT).content_string == cgi["checkout_before"]
    assert acl_user_entries(host, CHECKOUT) == {host.user("www-data").uid: 0o5}


def test_dr06_web_server_cannot_plant_a_php_file_outside_the_writable_place(host, cgi):
    assert cgi["steps"]["create-php"] == "denied", cgi
    assert not host.file(f"{DOCROOT}/shell.php").exists


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_web03_server_tokens_and_trace_off(client, server, scheme):
    """Over HTTPS (-k: test_tls.py verifies the certificate) and over plain HTTP, whose every answer
    is WEB-04's redirect (a TRACE too: 301, never an echo)."""
    headers = client.check_output("curl -sS -k -o /dev/null -D - %s://%s/", scheme, server)
    server_lines = [line for line in headers.splitlines() if line.lower().startswith("server:")]
    assert [line.strip() for line in server_lines] == ["Server: Apache"]
    trace = client.run("curl -sS -k -o /dev/null -w '%%{http_code}' -X TRACE %s://%s/", scheme, server)
    assert trace.stdout.strip() == ("405" if scheme == "https" else "301")
    missing = client.check_output("curl -sS -k %s://%s/no-such-page", scheme, server)
    assert "Apache/" not in missing and "Server at" not in missing


def test_member_login_shell_creates_group_writable_file_in_docroot(host):
    with host.sudo():
        result = host.run(f"su - wdev -c 'rm -f {DOCROOT}/shell-made.txt && touch {DOCROOT}/shell-made.txt'")
    assert result.rc == 0, result.stderr
    assert mode_group(host, f"{DOCROOT}/shell-made.txt") == ["664", GROUP]

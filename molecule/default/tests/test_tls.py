# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""HTTPS and FTPS (issue #13 part 2: WEB-04, WEB-05, FTP-05) as the site's users see them: curl,
openssl s_client and lftp from the client container (site-client) against each host's address on
site-net. The client trusts each host's own certificate, copied to it (trust on first use), and
nothing else: a test that verifies it proves the server serves that certificate."""

import pytest
from testlib import lftp, peer

testinfra_hosts = ["ansible://baseline"]

# molecule.yml: each host's address on site-net; the self-signed certificate is made for the
# inventory name (webserver_tls_server_name's default).
ADDRESSES = {"site-debian12": "172.31.243.10", "site-debian13": "172.31.243.11"}
TLS_DIR = "/etc/ssl/vps-baseline"
DOCROOT = "/var/www/html"
GROUP = "workgroup"
HSTS = "strict-transport-security: max-age=31536000"
# A TLS 1.0 client that nothing on the client side holds back: OpenSSL 3 allows TLS 1.0 only at
# security level 0, so the cipher string lowers it; the refusal is then the server's.
OLD_CLIENT = "-cipher DEFAULT@SECLEVEL=0"


@pytest.fixture(scope="module")
def client():
    return peer("site-client")


@pytest.fixture(scope="module")
def site(host, client):
    """(name, address, CA file on the client): the host's certificate copied to the client."""
    name = host.backend.get_hostname()
    with host.sudo():
        pem = host.file(f"{TLS_DIR}/selfsigned.crt").content_string
    assert "-----BEGIN CERTIFICATE-----" in pem
    ca = f"/tmp/{name}.crt"
    client.run_expect([0], "printf '%%s' %s > %s", pem, ca)
    return name, ADDRESSES[name], ca


def curl(client, site, *args):
    """curl to https://<host name>/ with the name pinned to the host's address (--resolve) and
    the host's certificate as the only trusted one."""
    name, address, ca = site
    return client.run("curl -sS --max-time 10 --cacert %s --resolve %s:443:%s " + " ".join(args),
                      ca, name, address)


def test_web04_plain_http_is_redirected_permanently_to_https(client, site):
    _, address, _ = site
    out = client.check_output(
        "curl -sS --max-time 10 -o /dev/null -w '%%{http_code} %%{redirect_url}' 'http://%s/some/page.html?q=1&r=2'",
        address)
    assert out == f"301 https://{address}/some/page.html?q=1&r=2"


def test_web04_https_serves_the_docroot_with_the_hosts_certificate(host, client, site):
    name, _, _ = site
    with host.sudo():
        host.run_expect([0], f"echo 'tls page' > {DOCROOT}/tls-page.txt")
    page = curl(client, site, f"https://{name}/tls-page.txt")
    assert page.rc == 0, page.stderr
    assert page.stdout == "tls page\n"
    # Without the host's certificate, curl refuses it (60: not trusted): the check above verified it.
    untrusted = client.run("curl -sS --max-time 10 --resolve %s:443:%s https://%s/", name, site[1], name)
    assert untrusted.rc == 60, (untrusted.rc, untrusted.stderr)


def test_web04_key_is_root_only(host):
    with host.sudo():
        assert host.check_output(f"stat -c '%a %U %G' {TLS_DIR} {TLS_DIR}/selfsigned.key").splitlines() == [
            "700 root root", "600 root root"]
        # Apache reads it as root before dropping privileges; its user cannot.
        as_web = "setpriv --reuid=www-data --regid=www-data --init-groups --"
        assert host.run(f"{as_web} cat {TLS_DIR}/selfsigned.key").rc != 0


@pytest.mark.parametrize("cap, protocol", [("", "TLSv1.3"), ("--tls-max 1.2", "TLSv1.2")])
def test_web05_tls_version_and_hsts_header(client, site, cap, protocol):
    name, _, _ = site
    result = curl(client, site, "-v -o /dev/null -D -", cap, f"https://{name}/")
    assert result.rc == 0, result.stderr
    assert f"SSL connection using {protocol} " in result.stderr, result.stderr
    assert HSTS in result.stdout.lower(), result.stdout


def test_web05_no_hsts_over_plain_http(client, site):
    headers = client.check_output("curl -sS --max-time 10 -o /dev/null -D - http://%s/", site[1])
    assert "strict-transport-security" not in headers.lower()


@pytest.fixture(scope="module")
def old_client_works(client):
    """The client's openssl speaks TLS 1.0 with OLD_CLIENT: a TLS 1.0-only server on the client
    itself accepts it. Without this, a refusal could be the client's own."""
    client.run_expect([0], "cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=old "
                           "-keyout old.key -out old.crt 2>/dev/null")
    server = ("timeout 10 openssl s_server -accept 127.0.0.1:4433 -tls1 -cipher DEFAULT@SECLEVEL=0 "
              "-cert /tmp/old.crt -key /tmp/old.key -naccept 1 -quiet >/dev/null 2>&1 & sleep 1; ")
    out = client.run(server + f"echo | timeout 5 openssl s_client -connect 127.0.0.1:4433 -tls1 {OLD_CLIENT} 2>&1")
    # A cipher negotiated ("Protocol  : TLSv1" alone is printed for a refused attempt too).
    assert "New, TLSv1.0, Cipher is ECDHE-" in out.stdout, out.stdout
    return True


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_web05_tls10_and_tls11_clients_are_refused_by_the_server(client, site, old_client_works, version):
    _, address, _ = site
    out = client.run(f"echo | timeout 10 openssl s_client -connect {address}:443 {version} {OLD_CLIENT} 2>&1")
    assert out.rc != 0
    # The server's alert, not the client's own refusal ("no protocols available"); nothing negotiated.
    assert "alert protocol version" in out.stdout, out.stdout
    assert "no protocols available" not in out.stdout
    assert "Cipher is (NONE)" in out.stdout, out.stdout


@pytest.fixture()
def local_file(client):
    client.run_expect([0], "umask 022 && rm -f /tmp/ftps-up.txt && printf 'over ftps\\n' > /tmp/ftps-up.txt")
    assert client.file("/tmp/ftps-up.txt").mode == 0o644
    return "/tmp/ftps-up.txt"


def test_ftp05_ftps_upload_of_a_0644_file_lands_664(host, client, site, local_file, old_client_works):
    """TLS required for the login and the data, and the host's certificate verified (the name is
    not checked: lftp connects to the address)."""
    _, address, ca = site
    with host.sudo():
        host.run(f"rm -f {DOCROOT}/ftps-up.txt")
    result = lftp(client, "wuser1", "ftp-test-1", [f"put {local_file} -o {DOCROOT}/ftps-up.txt"],
                  server=address, ca_file=ca)
    assert result.rc == 0, result.stdout + result.stderr
    with host.sudo():
        assert host.check_output(f"stat -c '%a %G %U' {DOCROOT}/ftps-up.txt") == f"664 {GROUP} wuser1"
    # With another certificate as the only trusted one (old_client_works' own), lftp refuses the server.
    other = lftp(client, "wuser1", "ftp-test-1", ["ls"], server=address, ca_file="/tmp/old.crt")
    assert other.rc != 0


def test_ftp05_plain_ftp_login_is_refused(client, site):
    _, address, _ = site
    plain = lftp(client, "wuser1", "ftp-test-1", ["quote PWD"], server=address, tls=False)
    assert plain.rc != 0
    assert "530" in plain.stdout + plain.stderr, plain.stdout + plain.stderr


def test_ftp05_tls10_client_is_refused(client, site, old_client_works):
    _, address, _ = site
    out = client.run(f"echo | timeout 10 openssl s_client -starttls ftp -connect {address}:21 -tls1 {OLD_CLIENT} 2>&1")
    assert out.rc != 0
    assert "alert protocol version" in out.stdout, out.stdout
    assert "Cipher is (NONE)" in out.stdout, out.stdout

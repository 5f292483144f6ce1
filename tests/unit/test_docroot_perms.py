# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Unit tests for roles/docroot/library/docroot_perms.py (controls DR-03, DR-04)."""

import json
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import types

import pytest

import docroot_perms as dp
from conftest import DOCROOT_LIBRARY, MODULE_UTILS_BOOT, module_argv

MODULE_FILE = os.path.join(DOCROOT_LIBRARY, 'docroot_perms.py')


# --------------------------------------------------------------------------- helpers

def run(root, group, **kw):
    """remediate() on a tmp tree: the tmp parent is the allowed prefix."""
    kw.setdefault('allowed_prefixes', [os.path.dirname(str(root))])
    return dp.remediate([str(root)], group, **kw)


def snapshot(top):
    """Full lstat state of every entry below (and including) top, ctime included."""
    top = os.fsencode(str(top))
    if not os.path.isdir(top) or os.path.islink(top):  # a single file (or link): its own state
        st = os.lstat(top)
        return {top: (st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_nlink, st.st_size,
                      st.st_mtime_ns, st.st_ctime_ns)}
    snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [b''] + dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            snap[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_nlink, st.st_size,
                       st.st_mtime_ns, st.st_ctime_ns)
    return snap


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def make(path, mode, gid=0):
    path = str(path)
    with open(path, 'w') as fh:
        fh.write('x')
    os.chown(path, 0, gid)
    os.chmod(path, mode)
    return path


def mkdir(path, mode=0o755, gid=0):
    os.mkdir(str(path))
    os.chown(str(path), 0, gid)
    os.chmod(str(path), mode)
    return str(path)


@pytest.fixture
def docroot(tmp_path):
    """tmp_path/www with a root directory ready to be remediated."""
    root = tmp_path / 'www'
    mkdir(root, 0o755)
    return root


# --------------------------------------------------------------------------- mode table

FILE_TABLE = [
    (0o777, 0o775), (0o775, 0o775), (0o666, 0o664), (0o644, 0o664), (0o600, 0o660),
    (0o755, 0o775), (0o700, 0o770), (0o610, 0o660), (0o640, 0o660), (0o400, 0o460),
    (0o000, 0o060), (0o4755, 0o775), (0o2755, 0o775), (0o1777, 0o775), (0o6777, 0o775),
    (0o664, 0o664),
]
DIR_TABLE = [
    (0o777, 0o2775), (0o775, 0o2775), (0o755, 0o2775), (0o750, 0o2770), (0o700, 0o2770),
    (0o1777, 0o2775), (0o4755, 0o2775), (0o2775, 0o2775), (0o3777, 0o2775), (0o000, 0o2070),
]


@pytest.mark.parametrize('before,after', FILE_TABLE, ids=lambda m: '%04o' % m)
def test_file_mode_table(docroot, team_group, before, after):
    f = make(docroot / 'f', before)
    res = run(docroot, team_group[0])
    assert dp.file_target(before) == after
    assert mode_of(f) == after
    assert os.lstat(f).st_gid == team_group[1]
    assert res['mode_fixed'] == (1 if before != after else 0) + 1  # + the root directory


@pytest.mark.parametrize('before,after', DIR_TABLE, ids=lambda m: '%04o' % m)
def test_dir_mode_table(docroot, team_group, before, after):
    d = mkdir(docroot / 'd', before)
    run(docroot, team_group[0])
    assert dp.dir_target(before) == after
    assert mode_of(d) == after
    assert os.lstat(d).st_gid == team_group[1]


def test_targets_never_add_world_bits_and_are_fixed_points():
    for perm in range(0o10000):
        for target, keep_special in ((dp.FILE_TARGET[perm], 0), (dp.DIR_TARGET[perm], 0o2000)):
            assert target & 0o002 == 0, oct(perm)
            assert target & 0o005 == perm & 0o005, oct(perm)  # world r/x kept, never added
            assert target & 0o7000 == keep_special, oct(perm)
            assert target & 0o060 == 0o060
        assert dp.FILE_TARGET[dp.FILE_TARGET[perm]] == dp.FILE_TARGET[perm]
        assert dp.DIR_TARGET[dp.DIR_TARGET[perm]] == dp.DIR_TARGET[perm]
        assert (dp.FILE_TARGET[perm] & 0o010) >> 3 == (perm & 0o100) >> 6
        assert dp.DIR_TARGET[perm] & 0o070 == 0o070


def test_counts_world_writable_and_special_bits(docroot, team_group):
    make(docroot / 'ww', 0o666)
    suid = make(docroot / 'suid', 0o4755)
    sticky = mkdir(docroot / 'sticky', 0o1777)
    res = run(docroot, team_group[0])
    assert res['changed'] is True
    assert res['scanned'] == 4
    assert res['group_fixed'] == 4
    assert res['mode_fixed'] == 4
    assert res['world_writable_removed'] == 2  # ww, sticky
    assert res['special_bits_cleared'] == 2
    paths = {e['path']: (e['before'], e['after']) for e in res['special_bits_cleared_paths']}
    assert paths == {suid: ('4755', '0775'), sticky: ('1777', '2775')}


def test_owner_left_alone_by_default_and_set_when_asked(docroot, team_group):
    f = make(docroot / 'f', 0o644)
    os.chown(f, 1, 0)
    run(docroot, team_group[0])
    assert os.lstat(f).st_uid == 1
    res = run(docroot, team_group[0], owner='nobody')
    nobody = __import__('pwd').getpwnam('nobody').pw_uid
    assert os.lstat(f).st_uid == nobody
    assert os.lstat(str(docroot)).st_uid == nobody
    assert res['owner_fixed'] == 2 and res['group_fixed'] == 0
    assert run(docroot, team_group[0], owner=str(nobody))['changed'] is False


def test_group_by_gid(docroot, team_group):
    f = make(docroot / 'f', 0o664)
    res = run(docroot, team_group[1])
    assert os.lstat(f).st_gid == team_group[1]
    assert res['gid'] == team_group[1]


# --------------------------------------------------------------------------- symlinks

def test_symlink_trap_leaves_targets_untouched(tmp_path, docroot, team_group):
    outside_dir = mkdir(tmp_path / 'etc', 0o755)
    make(tmp_path / 'etc' / 'shadow', 0o640)
    outside_file = make(tmp_path / 'passwd', 0o644)
    os.symlink(outside_dir, str(docroot / 'etc'))
    os.symlink(outside_file, str(docroot / 'passwd'))
    os.symlink('../etc/shadow', str(docroot / 'rel'))
    os.symlink('/nonexistent', str(docroot / 'dangling'))
    sub = mkdir(docroot / 'sub', 0o777)
    os.symlink(outside_dir, os.path.join(sub, 'up'))
    before = snapshot(outside_dir)
    before.update(snapshot(outside_file))
    res = run(docroot, team_group[0])
    after = snapshot(outside_dir)
    after.update(snapshot(outside_file))
    assert before == after  # mode, group AND ctime identical: never touched
    for link in ('etc', 'passwd', 'rel', 'dangling', 'sub/up'):
        st = os.lstat(str(docroot / link))
        assert stat.S_ISLNK(st.st_mode)
        assert st.st_gid == team_group[1]  # the link itself, lchown semantics
    assert res['errors'] == []


def test_symlink_root_refused(tmp_path, docroot, team_group):
    link = tmp_path / 'link'
    os.symlink(str(docroot), str(link))
    before = snapshot(docroot)
    with pytest.raises(dp.RootError, match='symlink'):
        run(link, team_group[0])
    assert snapshot(docroot) == before


def test_root_resolving_outside_allowed_prefixes_refused(tmp_path, team_group):
    allowed = tmp_path / 'allowed'
    os.mkdir(str(allowed))
    outside = tmp_path / 'outside'
    mkdir(outside, 0o755)
    mkdir(outside / 'site', 0o755)
    os.symlink(str(outside), str(allowed / 'www'))
    before = snapshot(outside)
    with pytest.raises(dp.RootError, match='component %s is a symlink' % (allowed / 'www')):
        dp.remediate([str(allowed / 'www' / 'site')], team_group[0], allowed_prefixes=[str(allowed)])
    assert snapshot(outside) == before


def test_entry_replaced_by_symlink_during_walk_not_followed(tmp_path, docroot, team_group, monkeypatch):
    outside = make(tmp_path / 'target', 0o644)
    victim = make(docroot / 'victim', 0o644)
    before = snapshot(outside)
    real_open = os.open

    def racing_open(path, flags, *args, **kw):
        if path == 'victim' and kw.get('dir_fd') is not None:
            os.unlink(victim)
            os.symlink(outside, victim)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(dp.os, 'open', racing_open)
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    assert snapshot(outside) == before
    assert [e['path'] for e in res['errors']] == [victim]
    assert 'symlink' in res['errors'][0]['error']


def test_file_swapped_for_another_file_during_walk_is_skipped(tmp_path, docroot, team_group, monkeypatch):
    """The fix goes through a descriptor whose inode is checked against the lstat."""
    outside = make(tmp_path / 'private', 0o660)  # e.g. a colleague's file the racer can write
    victim = make(docroot / 'victim', 0o755)
    before = snapshot(outside)
    real_open = os.open

    def racing_open(path, flags, *args, **kw):
        if path == 'victim' and kw.get('dir_fd') is not None:
            os.unlink(victim)
            os.link(outside, victim)  # same inode as the outside file now
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(dp.os, 'open', racing_open)
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    after = snapshot(outside)
    assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    assert mode_of(outside) == 0o660  # the stale 0755 -> 0775 was not applied
    assert res['errors'] == [{'path': victim, 'error': 'replaced during the walk; skipped'}]


# --------------------------------------------------------------------------- file kinds

def test_hardlinks_left_untouched_and_reported_once(docroot, team_group):
    a = make(docroot / 'a', 0o644)
    os.link(a, str(docroot / 'b'))
    sub = mkdir(docroot / 'sub', 0o2775, team_group[1])
    os.link(a, os.path.join(sub, 'c'))
    before = snapshot(a)
    check = run(docroot, team_group[0], check_mode=True)
    res = run(docroot, team_group[0])
    for r in (check, res):
        assert r['scanned'] == 5
        assert r['mode_fixed'] == 1 and r['group_fixed'] == 1  # the root only
        assert r['hardlinks_skipped'] == 1 and r['hardlinks_unsafe'] == 0  # one inode, three names
        assert [(h['mode'], h['nlink'], h['unsafe']) for h in r['hardlinks_skipped_paths']] == [('0644', 3, False)]
    assert snapshot(a) == before


def test_fifo_and_socket_untouched_but_reported(docroot, team_group):
    fifo = str(docroot / 'fifo')
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    sock_path = str(docroot / 'sock')
    cwd = os.getcwd()
    os.chdir(str(docroot))  # AF_UNIX paths are limited to 108 bytes
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind('sock')
        os.chmod(sock_path, 0o777)
    finally:
        os.chdir(cwd)
    try:
        before = {p: v for p, v in snapshot(docroot).items() if p != os.fsencode(str(docroot))}
        res = run(docroot, team_group[0])
        after = {p: v for p, v in snapshot(docroot).items() if p != os.fsencode(str(docroot))}
    finally:
        sock.close()
    assert before == after
    assert sorted((e['path'], e['type']) for e in res['skipped_special_files']) == [
        (fifo, 'fifo'), (sock_path, 'socket')]
    assert res['scanned'] == 3
    assert run(docroot, team_group[0])['changed'] is False


def test_device_node_untouched_but_reported(docroot, team_group):
    dev = str(docroot / 'null')
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(dev, 0o666)
    before = snapshot(dev)
    res = run(docroot, team_group[0])
    assert snapshot(dev) == before
    assert res['skipped_special_files'] == [{'path': dev, 'type': 'char device'}]


def test_non_utf8_and_newline_names(docroot, team_group):
    root_b = os.fsencode(str(docroot))
    bad = os.path.join(root_b, b'bad\xff\xfename')
    nl_dir = os.path.join(root_b, b'new\nline')
    os.mkdir(nl_dir, 0o755)
    nl_file = os.path.join(nl_dir, b'tab\there\nfile')
    for p in (bad, nl_file):
        with open(p, 'wb') as fh:
            fh.write(b'x')
        os.chmod(p, 0o666)
    res = run(docroot, team_group[0], sample_size=100)
    assert stat.S_IMODE(os.lstat(bad).st_mode) == 0o664
    assert stat.S_IMODE(os.lstat(nl_file).st_mode) == 0o664
    assert stat.S_IMODE(os.lstat(nl_dir).st_mode) == 0o2775
    shown = {s['path'] for s in res['samples']}
    assert str(docroot) + '/bad\\xff\\xfename' in shown
    assert str(docroot) + '/new\\nline/tab\\there\\nfile' in shown
    text = json.dumps(res, ensure_ascii=False)
    text.encode('utf-8')  # strict: no lone surrogates leak into the output
    assert all('\n' not in p for p in shown)
    diff = dp.render_diff(res, team_group[0], 100)
    assert len(diff['after'].splitlines()) == 7 + len(res['samples'])
    assert run(docroot, team_group[0])['changed'] is False


# --------------------------------------------------------------------------- robustness

class _ListedDir:
    """Stands in for a scandir iterator: entries already read, then a hook runs."""

    def __init__(self, entries):
        self.entries = entries

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(self.entries)


def _fd_path(fd):
    return os.readlink('/proc/self/fd/%d' % fd)


def test_unreadable_subdirectory_reported_not_fatal(docroot, team_group, monkeypatch):
    locked = mkdir(docroot / 'locked', 0o755)
    inner = make(docroot / 'locked' / 'inner', 0o666)
    other = make(docroot / 'other', 0o666)
    real_scandir = os.scandir

    def scandir(fd):
        if isinstance(fd, int) and _fd_path(fd) == locked:
            raise PermissionError(13, 'Permission denied')
        return real_scandir(fd)

    monkeypatch.setattr(dp.os, 'scandir', scandir)
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    assert res['errors'] == [{'path': locked, 'error': 'Permission denied'}]
    assert mode_of(other) == 0o664
    assert mode_of(inner) == 0o666  # not reached
    assert mode_of(locked) == 0o2775  # fixed through its descriptor before listing
    assert res['vanished'] == 0


def test_vanishing_entries_are_not_failures(docroot, team_group, monkeypatch):
    gone_file = make(docroot / 'gone', 0o644)
    gone_dir = mkdir(docroot / 'gonedir', 0o755)
    late = make(docroot / 'late', 0o644)
    kept = make(docroot / 'kept', 0o644)
    real_scandir = os.scandir
    real_open = os.open

    def scandir(fd):
        with real_scandir(fd) as it:
            entries = list(it)
        if _fd_path(fd) == str(docroot):
            os.unlink(gone_file)  # vanishes between readdir and lstat
        return _ListedDir(entries)

    def vanishing_open(path, flags, *args, **kw):
        if path == 'late':
            os.unlink(late)  # vanishes between lstat and the fix
        if path == 'gonedir':
            os.rmdir(gone_dir)  # vanishes between lstat and opening it
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(dp.os, 'scandir', scandir)
    monkeypatch.setattr(dp.os, 'open', vanishing_open)
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    assert res['vanished'] == 3
    assert sorted(e['path'] for e in res['errors']) == sorted([gone_file, gone_dir, late])
    assert {e['error'] for e in res['errors']} == {'vanished during the walk'}
    assert mode_of(kept) == 0o664


def test_other_filesystem_not_crossed(docroot, team_group, monkeypatch):
    mnt = mkdir(docroot / 'mnt', 0o777)
    inside = make(docroot / 'mnt' / 'file', 0o666)
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry):
            self.name = entry.name
            self._entry = entry

        def stat(self, follow_symlinks=True):
            st = self._entry.stat(follow_symlinks=follow_symlinks)
            fields = {k: getattr(st, k) for k in dir(st) if k.startswith('st_')}
            if self.name == 'mnt':
                fields['st_dev'] = st.st_dev + 1  # as a mount point looks from its parent
            return types.SimpleNamespace(**fields)

    def scandir(fd):
        with real_scandir(fd) as it:
            return _ListedDir([Entry(e) for e in it])

    monkeypatch.setattr(dp.os, 'scandir', scandir)
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    assert res['skipped_mounts'] == [mnt]
    assert mode_of(mnt) == 0o777 and os.lstat(mnt).st_gid == 0
    assert mode_of(inside) == 0o666


def test_exclusions(docroot, team_group):
    skip = mkdir(docroot / 'uploads', 0o777)
    deep = make(docroot / 'uploads' / 'x.php', 0o666)
    sub = mkdir(docroot / 'sub', 0o755)
    log = make(docroot / 'sub' / 'app.log', 0o666)
    fixed = make(docroot / 'sub' / 'app.php', 0o666)
    res = run(docroot, team_group[0], exclude=['uploads', '*.log'])
    assert mode_of(skip) == 0o777 and mode_of(deep) == 0o666 and mode_of(log) == 0o666
    assert os.lstat(log).st_gid == 0
    assert mode_of(fixed) == 0o664 and mode_of(sub) == 0o2775
    assert res['excluded'] == 2
    assert res['scanned'] == 3  # root, sub, app.php


# --------------------------------------------------------------------------- check mode, idempotence

def _drifted_tree(root, gid_other=0):
    mkdir(root / 'a', 0o777)
    mkdir(root / 'a' / 'b', 0o700)
    for i, m in enumerate((0o666, 0o644, 0o755, 0o600, 0o4755)):
        make(root / 'a' / ('f%d' % i), m)
        make(root / 'a' / 'b' / ('g%d' % i), m)
    os.symlink('a/f0', str(root / 'link'))


def test_check_mode_changes_nothing(docroot, team_group):
    _drifted_tree(docroot)
    before = snapshot(docroot)
    check = run(docroot, team_group[0], check_mode=True)
    assert snapshot(docroot) == before
    real = run(docroot, team_group[0])
    for key in ('changed', 'scanned', 'group_fixed', 'mode_fixed', 'world_writable_removed',
                'special_bits_cleared', 'samples'):
        assert check[key] == real[key], key
    assert check['changed'] is True and check['scanned'] == 14


def test_idempotent_second_run(docroot, team_group, monkeypatch):
    _drifted_tree(docroot)
    first = run(docroot, team_group[0])
    assert first['changed'] is True
    calls = []
    real_chown, real_fchmod, real_fchown = os.chown, os.fchmod, os.fchown
    monkeypatch.setattr(dp.os, 'fchmod', lambda *a: calls.append(a) or real_fchmod(*a))
    monkeypatch.setattr(dp.os, 'fchown', lambda *a: calls.append(a) or real_fchown(*a))
    monkeypatch.setattr(dp.os, 'chown', lambda *a, **k: calls.append(a) or real_chown(*a, **k))
    second = run(docroot, team_group[0])
    monkeypatch.undo()
    assert second['changed'] is False
    assert calls == []
    assert second['scanned'] == first['scanned'] == 14
    assert (second['group_fixed'], second['mode_fixed'], second['samples']) == (0, 0, [])


def test_sample_size_bounds_samples(docroot, team_group):
    _drifted_tree(docroot)
    res = run(docroot, team_group[0], sample_size=3)
    assert len(res['samples']) == 3 and res['mode_fixed'] > 3
    assert run(docroot, team_group[0], sample_size=0)['samples'] == []


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize('bad,msg', [
    ('/', 'forbidden'), ('/etc', 'forbidden'), ('/var/www', 'forbidden'), ('/var/www/', 'forbidden'),
    ('/srv', 'forbidden'), ('//etc', 'forbidden'), ('/var/www/../../etc', r'"\.\."'),
    ('/var/www/html/../x', r'"\.\."'), ('var/www/html', 'relative'), ('', 'non-empty'),
    ('/srv/www', 'strictly below'), ('/opt/app', 'forbidden|strictly below'),
    ('/usr/share/nginx', 'strictly below'), ('/home/web', 'strictly below'),
])
def test_dangerous_roots_refused_before_any_change(docroot, team_group, bad, msg):
    good = str(docroot / 'site')
    mkdir(good, 0o777)
    make(os.path.join(good, 'f'), 0o666)
    before = snapshot(docroot)
    with pytest.raises(dp.RootError, match=msg):
        # the valid root comes first: all roots are validated before anything changes
        dp.remediate([good, bad], team_group[0], allowed_prefixes=[str(docroot)] + dp.DEFAULT_ALLOWED)
    assert snapshot(docroot) == before


def test_default_policy_accepts_paths_below_prefixes():
    for ok in ('/var/www/html', '/srv/www/shop', '/srv/http/x', '/srv/sites/blog/public'):
        dp._check_policy(ok, set(dp.DEFAULT_FORBIDDEN), dp.DEFAULT_ALLOWED, 'docroot')


def test_root_must_be_a_directory_and_exist(docroot, team_group):
    f = make(docroot / 'file', 0o644)
    with pytest.raises(dp.RootError, match='not a directory'):
        run(f, team_group[0])
    with pytest.raises(dp.RootError, match='does not exist'):
        run(docroot / 'missing', team_group[0])
    res = run(docroot / 'missing', team_group[0], check_mode=True)
    assert res['changed'] is False and res['missing_roots'] == [str(docroot / 'missing')]


def test_unknown_group(docroot, team_group):
    make(docroot / 'f', 0o664)
    before = snapshot(docroot)
    with pytest.raises(ValueError, match='does not exist'):
        run(docroot, 'no-such-group-dpt')
    assert snapshot(docroot) == before
    res = run(docroot, 'no-such-group-dpt', check_mode=True)
    assert res['gid'] == -1 and res['group_fixed'] == 2
    assert snapshot(docroot) == before
    for bad in (-1, True):
        with pytest.raises(ValueError):
            run(docroot, bad)
        with pytest.raises(ValueError):
            run(docroot, team_group[0], owner=bad)
    with pytest.raises(ValueError, match='owner .* does not exist'):
        run(docroot, team_group[0], owner='no-such-user-dpt')
    assert snapshot(docroot) == before


# --------------------------------------------------------------------------- module entry point

def _ansible_env():
    import ansible
    site = os.path.dirname(os.path.dirname(os.path.abspath(ansible.__file__)))
    return dict(os.environ, PYTHONPATH=site)


def run_module(tmp_path, args):
    argsfile = tmp_path / 'args.json'
    argsfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    proc = subprocess.run(module_argv(MODULE_FILE, str(argsfile)), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_ansible_env(), cwd=str(tmp_path))
    return proc.returncode, json.loads(proc.stdout)


def test_module_entry_point(tmp_path, docroot, team_group):
    _drifted_tree(docroot)
    before = snapshot(docroot)
    args = {'path': [str(docroot)], 'group': team_group[0], 'allowed_prefixes': [str(tmp_path)],
            'sample_size': 2}
    rc, out = run_module(tmp_path, dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert rc == 0 and out['changed'] is True
    assert snapshot(docroot) == before
    assert 'mode fixed: 13' in out['diff']['after']
    assert 'needing a fix: mode fixed: 13' in out['diff']['before']
    assert out['diff']['after'].count('\n  ') == 2
    rc, out = run_module(tmp_path, args)
    assert rc == 0 and out['changed'] is True and out['scanned'] == 14
    assert out['special_bits_cleared'] == 2 and len(out['samples']) == 2
    rc, out = run_module(tmp_path, args)
    assert rc == 0 and out['changed'] is False and 'diff' not in out


def test_module_fails_on_forbidden_root(tmp_path, docroot, team_group):
    make(docroot / 'f', 0o666)
    before = snapshot(docroot)
    rc, out = run_module(tmp_path, {'path': [str(docroot), '/etc'], 'group': team_group[0],
                                    'allowed_prefixes': [str(tmp_path)]})
    assert rc == 1 and out['failed'] is True
    assert 'forbidden' in out['msg'] and '/etc' in out['msg']
    assert snapshot(docroot) == before


# --------------------------------------------------------------------------- issue #9 attacks

def _run_main(monkeypatch, capsys, args):
    """The module's main() in-process (so that os calls can be monkeypatched): (rc, result)."""
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        dp.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_hardlink_to_outside_secret_and_setuid_binary_left_untouched(tmp_path, docroot, team_group):
    """#9.1: a hard link in the docroot to a root-only 0600 file / a 4755 binary outside it."""
    secret = make(tmp_path / 'shadow', 0o600)
    suid = make(tmp_path / 'suid-bin', 0o4755)
    os.link(secret, str(docroot / 'innocent.txt'))
    sub = mkdir(docroot / 'sub', 0o755)
    os.link(suid, os.path.join(sub, 'tool'))
    plain = make(docroot / 'plain', 0o666)
    before = snapshot(secret)
    before.update(snapshot(suid))
    res = run(docroot, team_group[0])
    after = snapshot(secret)
    after.update(snapshot(suid))
    assert after == before  # mode, group and ctime of the outside files unchanged
    assert mode_of(plain) == 0o664  # the rest of the tree is still fixed
    assert res['hardlinks_skipped'] == 2 and res['hardlinks_unsafe'] == 1
    assert sorted((h['path'], h['mode'], h['nlink'], h['unsafe']) for h in res['hardlinks_skipped_paths']) == [
        (str(docroot / 'innocent.txt'), '0600', 2, False), (os.path.join(sub, 'tool'), '4755', 2, True)]
    assert res['special_bits_cleared'] == 0


def test_hardlink_list_is_capped_but_counted(docroot, team_group, monkeypatch):
    monkeypatch.setattr(dp, 'LIST_CAP', 2)
    for i in range(3):
        f = make(docroot / ('f%d' % i), 0o644)
        os.link(f, str(docroot / ('g%d' % i)))
    res = run(docroot, team_group[0])
    assert res['hardlinks_skipped'] == 3 and len(res['hardlinks_skipped_paths']) == 2


def _warnings(out):
    """Warning texts (ansible-core >= 2.19 returns them as structured events)."""
    return [w if isinstance(w, str) else w['event']['msg'] for w in out.get('warnings', [])]


def test_module_fails_on_unsafe_hardlink_but_reports_drift_in_check_mode(tmp_path, docroot, team_group):
    suid = make(tmp_path / 'suid-bin', 0o4755)
    os.link(suid, str(docroot / 'tool'))
    safe = make(tmp_path / 'data', 0o644)
    os.link(safe, str(docroot / 'data'))
    args = {'path': [str(docroot)], 'group': team_group[0], 'allowed_prefixes': [str(tmp_path)]}
    rc, out = run_module(tmp_path, args)
    assert rc == 1 and out.get('failed') is True, 'an unsafe hard link left as is must fail the module'
    assert str(docroot / 'tool') + ' 4755' in out['msg']
    assert mode_of(suid) == 0o4755 and mode_of(safe) == 0o644
    rc, out = run_module(tmp_path, dict(args, _ansible_check_mode=True))
    assert rc == 0 and out['hardlinks_unsafe'] == 1 and out['hardlinks_skipped'] == 2
    warnings = _warnings(out)
    assert any('hard-linked' in w for w in warnings), warnings
    assert any('check mode: drift' in w and str(docroot / 'tool') in w for w in warnings), warnings


MOUNTINFO_LINE = ('36 35 98:0 %s %s rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n')


def _escape_mount(path):
    for ch, esc in (('\\', '\\134'), (' ', '\\040'), ('\t', '\\011'), ('\n', '\\012')):
        path = path.replace(ch, esc)
    return path


def test_bind_mount_on_same_filesystem_not_walked_simulated(tmp_path, docroot, team_group):
    """#9.2: a bind mount keeps st_dev; the mount table says it is a mount point."""
    mnt = mkdir(docroot / 'my site', 0o777)  # name with a space: octal 040 in mountinfo
    inside = make(os.path.join(mnt, 'secret'), 0o600)
    bound_file = make(docroot / 'bound', 0o666)  # a file can be bind-mounted on a file, too
    other = make(docroot / 'other', 0o666)
    info = tmp_path / 'mountinfo'
    info.write_text('22 1 98:0 / / rw - ext4 /dev/vda rw\n'
                    + MOUNTINFO_LINE % ('/srv/shadow', _escape_mount(mnt))
                    + MOUNTINFO_LINE % ('/etc/shadow', _escape_mount(bound_file))
                    + MOUNTINFO_LINE % ('/x', _escape_mount(str(tmp_path) + '/elsewhere')))
    before = snapshot(mnt)
    before.update(snapshot(bound_file))
    res = run(docroot, team_group[0], mountinfo=str(info))
    after = snapshot(mnt)
    after.update(snapshot(bound_file))
    assert after == before
    assert mode_of(inside) == 0o600 and mode_of(other) == 0o664
    assert sorted(res['skipped_mounts']) == sorted([mnt, bound_file])


def test_mountinfo_escapes_and_unreadable_table(tmp_path, docroot, team_group):
    assert dp.unescape_mount_field(b'/a\\040b\\011c\\012d\\134e') == b'/a b\tc\nd\\e'
    info = tmp_path / 'mountinfo'
    info.write_bytes(b'36 35 98:0 / /var/www/caf\\303\\251\\040x rw - ext4 /dev/vda rw\n'
                     b'37 35 98:0 / /var/www/bad\\377 rw - ext4 /dev/vda rw\n')
    assert dp.read_mount_points(str(info)) == {'/var/www/caf\u00e9 x', os.fsdecode(b'/var/www/bad\xff')}
    make(docroot / 'f', 0o666)
    before = snapshot(docroot)
    with pytest.raises(dp.RootError, match='mount table'):
        run(docroot, team_group[0], mountinfo=str(tmp_path / 'missing'))
    assert snapshot(docroot) == before  # refused before any change


_BIND_SCRIPT = MODULE_UTILS_BOOT + '''
import json, sys
sys.path.insert(0, sys.argv[1])
import docroot_perms as dp
res = dp.remediate([sys.argv[2]], sys.argv[3], allowed_prefixes=[sys.argv[4]])
print(json.dumps({'skipped_mounts': res['skipped_mounts'], 'errors': res['errors']}))
'''


def test_real_bind_mount_not_walked(tmp_path, docroot, team_group):
    """#9.2 for real: `mount --bind` of an outside directory (same filesystem) into the docroot,
    in a private mount namespace (unshare) so nothing leaks if the test dies."""
    outside = mkdir(tmp_path / 'outside', 0o700)
    secret = make(os.path.join(outside, 'secret'), 0o600)
    mkdir(os.path.join(outside, 'dir'), 0o755)
    target = mkdir(docroot / 'uploads', 0o755)
    other = make(docroot / 'other', 0o666)
    assert os.lstat(outside).st_dev == os.lstat(str(docroot)).st_dev
    before = snapshot(outside)
    proc = subprocess.run(
        ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec',
         'mount --bind "$1" "$2"; shift 2; exec "$@"', 'sh', outside, target,
         sys.executable, '-c', _BIND_SCRIPT, DOCROOT_LIBRARY, str(docroot), team_group[0], str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert snapshot(outside) == before, 'the bind-mounted directory was walked and changed'
    assert mode_of(secret) == 0o600
    assert out['skipped_mounts'] == [target] and out['errors'] == []
    assert mode_of(other) == 0o664


def test_symlinked_parent_component_refused(tmp_path, team_group):
    """#9.3: a root whose parent is a symlink is refused, naming the component, even when the
    resolved path is allowed too (the old realpath check accepted it)."""
    allowed = tmp_path / 'allowed'
    os.mkdir(str(allowed))
    outside = mkdir(tmp_path / 'outside', 0o755)
    site = mkdir(tmp_path / 'outside' / 'site', 0o777)
    f = make(tmp_path / 'outside' / 'site' / 'f', 0o666)
    os.symlink(outside, str(allowed / 'www'))
    before = snapshot(outside)
    with pytest.raises(dp.RootError) as err:
        dp.remediate([str(allowed / 'www' / 'site')], team_group[0], allowed_prefixes=[str(tmp_path)])
    assert 'component %s is a symlink' % (allowed / 'www') in str(err.value)
    assert snapshot(outside) == before
    assert mode_of(site) == 0o777 and mode_of(f) == 0o666


def test_root_parent_swapped_for_symlink_after_validation_not_followed(tmp_path, team_group, monkeypatch):
    """#9.3: the walk starts from the descriptor pinned during validation, not from the path."""
    allowed = tmp_path / 'allowed'
    os.mkdir(str(allowed))
    www = mkdir(allowed / 'www', 0o755)
    real_site = mkdir(allowed / 'www' / 'site', 0o777)
    real_f = make(allowed / 'www' / 'site' / 'f', 0o666)
    outside = mkdir(tmp_path / 'outside', 0o755)
    mkdir(tmp_path / 'outside' / 'site', 0o777)
    make(tmp_path / 'outside' / 'site' / 'f', 0o666)
    before = snapshot(outside)
    real_resolve = dp.resolve_group

    def swap_then_resolve(*a, **kw):  # runs after validation, before the walk
        os.rename(www, www + '.moved')
        os.symlink(outside, www)
        return real_resolve(*a, **kw)

    monkeypatch.setattr(dp, 'resolve_group', swap_then_resolve)
    dp.remediate([os.path.join(www, 'site')], team_group[0], allowed_prefixes=[str(tmp_path)])
    monkeypatch.undo()
    assert snapshot(outside) == before
    moved = real_site.replace(www, www + '.moved')
    assert mode_of(moved) == 0o2775 and mode_of(real_f.replace(www, www + '.moved')) == 0o664


def _fd_name(fd):
    return os.path.basename(os.readlink('/proc/self/fd/%d' % fd))


def _immutable(monkeypatch, names):
    """fchmod/fchown fail with EPERM on these names, as on a chattr +i file."""
    real_fchmod, real_fchown = os.fchmod, os.fchown

    def fchmod(fd, mode):
        if _fd_name(fd) in names:
            raise PermissionError(1, 'Operation not permitted')
        return real_fchmod(fd, mode)

    def fchown(fd, uid, gid):
        if _fd_name(fd) in names:
            raise PermissionError(1, 'Operation not permitted')
        return real_fchown(fd, uid, gid)

    monkeypatch.setattr(dp.os, 'fchmod', fchmod)
    monkeypatch.setattr(dp.os, 'fchown', fchown)


def test_immutable_world_writable_file_is_reported_unfixable(docroot, team_group, monkeypatch):
    """#9.4: fchmod failing with EPERM leaves a 0666 file: not compliant, listed."""
    locked = make(docroot / 'locked', 0o666)
    other = make(docroot / 'other', 0o666)
    _immutable(monkeypatch, {'locked'})
    res = run(docroot, team_group[0])
    monkeypatch.undo()
    assert mode_of(locked) == 0o666 and mode_of(other) == 0o664
    assert res['unfixable'] == 1
    assert res['unfixable_paths'] == [{'path': locked, 'type': 'file', 'mode': '0666',
                                       'error': 'Operation not permitted'}]
    assert res['world_writable_removed'] == 1  # other only


def test_module_fails_when_an_entry_cannot_be_fixed(tmp_path, docroot, team_group, monkeypatch, capsys):
    locked = make(docroot / 'locked', 0o666)
    lockdir = mkdir(docroot / 'lockdir', 0o777)
    other = make(docroot / 'other', 0o666)
    args = {'path': [str(docroot)], 'group': team_group[0], 'allowed_prefixes': [str(tmp_path)]}
    _immutable(monkeypatch, {'locked', 'lockdir'})
    rc, out = _run_main(monkeypatch, capsys, args)
    assert rc == 1 and out.get('failed') is True, 'an unfixable entry must fail the module'
    assert out['unfixable'] == 2 and out['changed'] is True
    assert locked + ': Operation not permitted' in out['msg']
    assert lockdir + ': Operation not permitted' in out['msg']
    rc, out = _run_main(monkeypatch, capsys, dict(args, _ansible_check_mode=True))
    monkeypatch.undo()
    assert rc == 0 and out['changed'] is True and out['mode_fixed'] == 2  # drift, nothing tried
    assert mode_of(locked) == 0o666 and mode_of(lockdir) == 0o777 and mode_of(other) == 0o664


EXCLUDE_TREE = ['.git/', '.git/config', 'a/', 'a/.git/', 'a/.git/HEAD', 'run.sock', 'a/b.sock',
                'uploads/', 'uploads/private/', 'uploads/private/x', 'uploads/pub', 'a/uploads/',
                'a/uploads/private/', 'a/uploads/private/y', 'cache/', 'a/cache/', 'a/cache/z',
                'top', 'a/top']


@pytest.mark.parametrize('patterns,excluded', [
    (['.git'], {'.git', 'a/.git'}),
    (['*/.git'], {'.git', 'a/.git'}),  # the README's old example: top-level .git included now
    (['**/.git'], {'.git', 'a/.git'}),
    (['.git/'], {'.git', 'a/.git'}),
    (['*.sock'], {'run.sock', 'a/b.sock'}),
    (['uploads/private'], {'uploads/private'}),
    (['*/uploads/private'], {'uploads/private', 'a/uploads/private'}),
    (['**/cache'], {'cache', 'a/cache'}),
    (['/top'], {'top'}),
    (['top'], {'top', 'a/top'}),
    (['a/*'], {'a/.git', 'a/b.sock', 'a/uploads', 'a/cache', 'a/top'}),
    (['a/**/private'], {'a/uploads/private'}),
])
def test_exclusions_are_gitignore_like(docroot, team_group, patterns, excluded):
    """#9.5: `*/.git` (and `.git`) must also protect the root's own .git."""
    for rel in EXCLUDE_TREE:
        if rel.endswith('/'):
            mkdir(docroot / rel, 0o777)
        else:
            make(docroot / rel, 0o666)
    run(docroot, team_group[0], exclude=patterns)
    untouched = set()
    for rel in EXCLUDE_TREE:
        rel = rel.rstrip('/')
        if mode_of(str(docroot / rel)) in (0o777, 0o666):
            untouched.add(rel)
    top_excluded = {u for u in untouched if not any(u.startswith(e + '/') for e in untouched)}
    assert top_excluded == excluded


# --------------------------------------------------------------------------- DR-06: web server ACLs

WEB_UID = 33333  # the web server user in these tests (numeric: no account needed)
MEMBER_UID = 33334  # a team member
ACL_KERNEL_FILE = bytes.fromhex(  # what the kernel stored for u::rw-,u:33:r--,g::rw-,m::rw-,o::r--
    '02000000' '01000600ffffffff' '0200040021000000' '04000600ffffffff' '10000600ffffffff' '20000400ffffffff')


def test_acl_encoding_matches_the_kernel_format():
    entries = {(dp.ACL_OTHER, dp.ACL_UNDEFINED_ID): 4, (dp.ACL_USER, 33): 4,
               (dp.ACL_USER_OBJ, dp.ACL_UNDEFINED_ID): 6, (dp.ACL_MASK, dp.ACL_UNDEFINED_ID): 6,
               (dp.ACL_GROUP_OBJ, dp.ACL_UNDEFINED_ID): 6}
    assert dp.acl_encode(entries) == ACL_KERNEL_FILE  # sorted by tag then id, whatever the input order
    assert dp.acl_decode(ACL_KERNEL_FILE) == entries
    assert dp.acl_decode(None) is None
    for bad in (b'', b'\x01\x00\x00\x00', ACL_KERNEL_FILE[:-1]):
        with pytest.raises(ValueError):
            dp.acl_decode(bad)


def test_acl_wanted_entries_keep_group_write_and_other_named_entries():
    other = {(dp.ACL_USER, 1000): 7, (dp.ACL_GROUP, 50): 5}
    access = dp.acl_access_for(other, 0o664, WEB_UID, dp.ACL_WEB_CODE)
    assert access == {**other, (dp.ACL_USER, WEB_UID): 5, (dp.ACL_USER_OBJ, dp.ACL_UNDEFINED_ID): 6,
                      (dp.ACL_GROUP_OBJ, dp.ACL_UNDEFINED_ID): 6, (dp.ACL_MASK, dp.ACL_UNDEFINED_ID): 6,
                      (dp.ACL_OTHER, dp.ACL_UNDEFINED_ID): 4}
    default = dp.acl_default_for(None, 0o2770, WEB_UID, dp.ACL_WEB_WRITABLE)
    assert default[(dp.ACL_USER, WEB_UID)] == 7 and default[(dp.ACL_OTHER, dp.ACL_UNDEFINED_ID)] == 0
    assert default[(dp.ACL_GROUP_OBJ, dp.ACL_UNDEFINED_ID)] == default[(dp.ACL_MASK, dp.ACL_UNDEFINED_ID)] == 7
    assert dp.acl_without(dp.acl_access_for(None, 0o664, WEB_UID, 5), WEB_UID) is None
    assert dp.acl_without(access, WEB_UID) == {k: v for k, v in access.items() if k != (dp.ACL_USER, WEB_UID)}


@pytest.mark.parametrize('pattern,rel,hit', [
    ('uploads', 'uploads', True), ('uploads/', 'uploads', True), ('uploads', 'a/uploads', False),
    ('wp-content/uploads', 'wp-content/uploads', True), ('cache/*', 'cache/x', True),
    ('cache/*', 'cache/x/y', False), ('cache/*', 'cache', False), ('up?oads', 'uploads', True),
    ('a.b', 'axb', False), ('[ab]', 'a', False), ('[ab]', '[ab]', True)])
def test_writable_globs_stay_within_a_component(pattern, rel, hit):
    assert (dp.compile_writable([pattern])(rel) is not None) is hit


@pytest.mark.parametrize('bad', ['../etc', '/etc', '', '.', './', 'a/../b', 'a//b', 'uploads/.', 7])
def test_writable_places_that_leave_or_name_the_docroot_are_refused(docroot, team_group, bad):
    make(docroot / 'f', 0o644)
    before = snapshot(docroot)
    with pytest.raises(dp.RootError):
        run(docroot, team_group[0], web_user=WEB_UID, web_writable=['uploads', bad])
    assert snapshot(docroot) == before


@pytest.fixture
def open_docroot(team_group):
    """A docroot the test's other users can reach (pytest's tmp_path is root-only), ACLs supported."""
    base = tempfile.mkdtemp(dir='/var/tmp', prefix='dr06-')
    os.chmod(base, 0o755)
    root = os.path.join(base, 'www')
    mkdir(root, 0o755)
    try:
        os.setxattr(root, dp.ACL_DEFAULT, dp.acl_encode(dp.acl_default_for(None, 0o755, WEB_UID, 5)))
        os.removexattr(root, dp.ACL_DEFAULT)
    except OSError as exc:
        shutil.rmtree(base)
        print('DR-06 ACL test skipped: /var/tmp has no POSIX ACL support (%s)' % exc)
        pytest.skip('the filesystem of /var/tmp has no POSIX ACL support: %s' % exc)
    try:
        yield pathlib.Path(root)
    finally:
        shutil.rmtree(base)


def _site(root):
    """The issue's shop: root:root 0644 checkout.php, an uploads/ place with a file and a subdirectory."""
    make(root / 'checkout.php', 0o644)
    mkdir(root / 'lib', 0o755)
    make(root / 'lib' / 'cart.php', 0o644)
    make(root / 'lib' / 'tool.sh', 0o755)
    mkdir(root / 'uploads', 0o755)
    make(root / 'uploads' / 'logo.png', 0o644)
    mkdir(root / 'uploads' / '2026', 0o755)


def acl_of(path, name=dp.ACL_ACCESS):
    return dp.acl_decode(dp._get_acl(str(path), name, follow=False))


def as_user(uid, gid, cmd, umask=0o022):
    """Run a shell command as uid, in the team group gid (supplementary, as www-data is)."""
    return subprocess.run(['sh', '-c', cmd], user=uid, group=65534, extra_groups=[gid], umask=umask,
                          capture_output=True, text=True, check=False)


def test_dr06_web_server_reads_code_and_writes_only_uploads(open_docroot, team_group):
    root = open_docroot
    _site(root)
    res = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert res['changed'] and res['acl_fixed'] == res['scanned'] == 8 and res['roots'][0]['acl'] == 'enforce'
    # DR-03's modes are unchanged by the ACL (the mask is the group bits), DR-03's 0664 included.
    assert (mode_of(root / 'checkout.php'), mode_of(root / 'lib' / 'tool.sh'), mode_of(root)) == (0o664, 0o775, 0o2775)
    web = (dp.ACL_USER, WEB_UID)
    assert acl_of(root / 'checkout.php')[web] == 5 and acl_of(root / 'uploads' / 'logo.png')[web] == 7
    assert acl_of(root / 'lib', dp.ACL_DEFAULT)[web] == 5
    assert acl_of(root / 'uploads' / '2026', dp.ACL_DEFAULT)[web] == 7
    gid = team_group[1]
    # The web server (in the team group): code read, not written; uploads written, landing 0664 in the team group.
    assert as_user(WEB_UID, gid, 'cat %s/checkout.php' % root).returncode == 0
    assert as_user(WEB_UID, gid, 'echo skim >> %s/checkout.php' % root).returncode != 0
    assert as_user(WEB_UID, gid, 'echo x > %s/lib/new.php' % root).returncode != 0
    assert as_user(WEB_UID, gid, 'echo x > %s/new.php' % root).returncode != 0
    made = as_user(WEB_UID, gid, 'echo x > {0}/uploads/2026/a.jpg && echo y >> {0}/uploads/logo.png'.format(root))
    assert made.returncode == 0, made.stderr
    st = os.lstat(root / 'uploads' / '2026' / 'a.jpg')
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o664, gid)
    # A member (umask 022, as SFTP clients are) edits the code and creates files that stay team-writable,
    # and still web-read-only: the default ACL, not the umask, gives the new file its bits.
    member = as_user(MEMBER_UID, gid, 'echo edit >> {0}/checkout.php && echo y > {0}/lib/new.php'.format(root))
    assert member.returncode == 0, member.stderr
    assert mode_of(root / 'lib' / 'new.php') == 0o664
    assert as_user(WEB_UID, gid, 'echo skim >> %s/lib/new.php' % root).returncode != 0
    assert run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])['changed'] is False


def test_dr06_without_it_the_web_server_writes_the_code(open_docroot, team_group):
    """The issue's reproduction on the old behaviour (no web_user): DR-03's 0664 lets the web server rewrite it."""
    root = open_docroot
    _site(root)
    res = run(root, team_group[0])
    assert res['roots'][0]['acl'] == 'off' and res['acl_fixed'] == 0
    assert as_user(WEB_UID, team_group[1], 'echo skim >> %s/checkout.php' % root).returncode == 0


def test_dr06_check_mode_reports_and_changes_nothing_then_idempotent(open_docroot, team_group, monkeypatch):
    root = open_docroot
    _site(root)
    run(root, team_group[0])  # DR-03 converged first: the check sees the ACL drift only
    before = snapshot(root)
    check = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'], check_mode=True)
    assert snapshot(root) == before and acl_of(root / 'checkout.php') is None
    assert check['changed'] is True and check['acl_fixed'] == 8 and check['mode_fixed'] == 0
    real = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert (real['acl_fixed'], real['acl_samples']) == (check['acl_fixed'], check['acl_samples'])
    calls = []
    monkeypatch.setattr(dp.os, 'setxattr', lambda *a: calls.append(a))
    monkeypatch.setattr(dp.os, 'removexattr', lambda *a: calls.append(a))
    again = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    monkeypatch.undo()
    assert (again['changed'], again['acl_fixed'], calls) == (False, 0, [])


def test_dr06_acl_stripped_by_a_member_and_dr03_chmod_are_undone_not_fought(open_docroot, team_group):
    root = open_docroot
    _site(root)
    run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    php = str(root / 'checkout.php')
    os.removexattr(php, dp.ACL_ACCESS)  # setfacl -b by its owner
    os.chmod(php, 0o600)  # and a chmod: the group loses write
    extra = dp.acl_access_for(acl_of(root / 'lib' / 'cart.php'), 0o664, WEB_UID, 5)
    extra[(dp.ACL_USER, MEMBER_UID)] = 7  # somebody else's named entry: kept
    os.setxattr(str(root / 'lib' / 'cart.php'), dp.ACL_ACCESS, dp.acl_encode(extra))
    res = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert (res['mode_fixed'], res['acl_fixed']) == (1, 1)
    assert mode_of(php) == 0o660 and acl_of(php)[(dp.ACL_USER, WEB_UID)] == 5
    assert acl_of(php)[(dp.ACL_GROUP_OBJ, dp.ACL_UNDEFINED_ID)] == 6
    assert acl_of(root / 'lib' / 'cart.php')[(dp.ACL_USER, MEMBER_UID)] == 7
    # DR-03's chmod keeps the entries: a mode drift on an ACL'd file is one mode fix, no ACL rewrite.
    os.chmod(php, 0o640)
    res = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert (res['mode_fixed'], res['acl_fixed']) == (1, 0) and acl_of(php)[(dp.ACL_USER, WEB_UID)] == 5


def test_dr06_empty_list_removes_only_what_dr06_set(open_docroot, team_group):
    root = open_docroot
    _site(root)
    run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    extra = dp.acl_access_for(acl_of(root / 'lib' / 'cart.php'), 0o664, WEB_UID, 5)
    extra[(dp.ACL_USER, MEMBER_UID)] = 7
    os.setxattr(str(root / 'lib' / 'cart.php'), dp.ACL_ACCESS, dp.acl_encode(extra))
    check = run(root, team_group[0], web_user=WEB_UID, check_mode=True)
    assert check['acl_removed'] == 8 and acl_of(root / 'checkout.php') is not None
    res = run(root, team_group[0], web_user=WEB_UID)
    assert res['roots'][0]['acl'] == 'cleanup' and res['acl_removed'] == 8
    assert acl_of(root / 'checkout.php') is None and acl_of(root, dp.ACL_DEFAULT) is None
    assert acl_of(root / 'lib' / 'cart.php') == {k: v for k, v in extra.items() if k != (dp.ACL_USER, WEB_UID)}
    assert mode_of(root / 'checkout.php') == 0o664 and mode_of(root) == 0o2775
    # Converged: the root no longer names the web server, so nothing is read or changed.
    again = run(root, team_group[0], web_user=WEB_UID)
    assert (again['roots'][0]['acl'], again['changed']) == ('off', False)


def test_dr06_web_owned_code_reported(open_docroot, team_group):
    root = open_docroot
    _site(root)
    os.chown(str(root / 'lib' / 'cart.php'), WEB_UID, 0)
    os.chown(str(root / 'uploads' / 'logo.png'), WEB_UID, 0)
    res = run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert (res['web_owned_code'], res['web_owned_code_paths']) == (1, [str(root / 'lib' / 'cart.php')])


def test_dr06_symlinks_and_hardlinks_untouched(open_docroot, team_group, tmp_path):
    root = open_docroot
    _site(root)
    outside = make(tmp_path / 'secret', 0o600)
    os.symlink(outside, str(root / 'uploads' / 'link'))
    os.link(str(root / 'lib' / 'cart.php'), str(root / 'lib' / 'cart2.php'))
    run(root, team_group[0], web_user=WEB_UID, web_writable=['uploads'])
    assert acl_of(outside) is None and acl_of(root / 'lib' / 'cart.php') is None


def test_dr06_unknown_web_user(docroot, team_group):
    make(docroot / 'f', 0o644)
    assert run(docroot, team_group[0], web_user='no-such-web-user')['web_uid'] == -1  # nothing declared: off
    with pytest.raises(ValueError):
        run(docroot, team_group[0], web_user='no-such-web-user', web_writable=['uploads'])
    check = run(docroot, team_group[0], web_user='no-such-web-user', web_writable=['uploads'], check_mode=True)
    assert (check['web_uid'], check['acl_fixed']) == (-2, 2)

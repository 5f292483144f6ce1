"""Unit tests for roles/docroot/library/docroot_perms.py (controls DR-03, DR-04)."""

import json
import os
import socket
import stat
import subprocess
import sys
import types

import pytest

import docroot_perms as dp
from conftest import DOCROOT_LIBRARY

MODULE_FILE = os.path.join(DOCROOT_LIBRARY, 'docroot_perms.py')


# --------------------------------------------------------------------------- helpers

def run(root, group, **kw):
    """remediate() on a tmp tree: the tmp parent is the allowed prefix."""
    kw.setdefault('allowed_prefixes', [os.path.dirname(str(root))])
    return dp.remediate([str(root)], group, **kw)


def snapshot(top):
    """Full lstat state of every entry below (and including) top, ctime included."""
    top = os.fsencode(str(top))
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
    with pytest.raises(dp.RootError, match='resolves to'):
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

def test_hardlinks_fixed_and_counted_once(docroot, team_group):
    a = make(docroot / 'a', 0o644)
    os.link(a, str(docroot / 'b'))
    sub = mkdir(docroot / 'sub', 0o2775, team_group[1])
    os.link(a, os.path.join(sub, 'c'))
    check = run(docroot, team_group[0], check_mode=True)
    res = run(docroot, team_group[0])
    for r in (check, res):
        assert r['scanned'] == 5
        assert r['mode_fixed'] == 2  # root + the inode once
        assert r['group_fixed'] == 2
    assert mode_of(a) == 0o664


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
    proc = subprocess.run([sys.executable, MODULE_FILE, str(argsfile)], stdout=subprocess.PIPE,
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

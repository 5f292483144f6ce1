# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Unit tests for plugins/modules/team_directory.py (DR-01, DR-02, SSH-02): the attacks of issue #9.

The web server user and every member can write the docroot, so they can replace a directory in it
by a link to /etc between two runs. Each test plants that link, runs the module's logic as root,
and checks that the target outside was not touched."""

import json
import os
import stat
import subprocess
import sys

import pytest

import team_directory as td


def snap(path):
    st = os.lstat(path)
    return st.st_mode, st.st_uid, st.st_gid, st.st_ino


@pytest.fixture()
def tree(tmp_path):
    """docroot (2775) holding an outside directory to protect, which stands for /etc."""
    docroot = tmp_path / 'www' / 'html'
    docroot.mkdir(parents=True)
    os.chmod(docroot, 0o2775)
    outside = tmp_path / 'etc'
    outside.mkdir()
    os.chmod(outside, 0o755)
    return docroot, outside


def test_member_directory_is_created_below_the_docroot(tree, team_group):
    docroot, _ = tree
    name, gid = team_group
    fd, result = td.ensure(str(docroot / 'ir' / 'sub'), name, '2775', [str(docroot)])
    os.close(fd)
    assert result['created'] == [str(docroot / 'ir'), str(docroot / 'ir' / 'sub')]
    for path in (docroot / 'ir', docroot / 'ir' / 'sub'):
        st = os.lstat(path)
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (gid, 0o2775)
    fd, again = td.ensure(str(docroot / 'ir' / 'sub'), name, '2775', [str(docroot)])
    os.close(fd)
    assert again == {'created': [], 'fixed': []}


@pytest.mark.parametrize('check_mode', [False, True])
def test_symlinked_member_directory_is_refused_and_its_target_untouched(tree, team_group, check_mode):
    """The issue's attack: mv ir x; ln -s /etc ir, then the next run."""
    docroot, outside = tree
    name, _ = team_group
    os.symlink(str(outside), str(docroot / 'ir'))
    before = snap(outside)
    with pytest.raises(td.Refused, match=r'/ir is a symbolic link \(to .*/etc\)'):
        td.ensure(str(docroot / 'ir'), name, '2775', [str(docroot)], check_mode)
    assert snap(outside) == before


def test_symlinked_parent_component_is_refused(tree, team_group):
    """A link higher up (a nested directory swapped) is refused as well, naming that component."""
    docroot, outside = tree
    name, _ = team_group
    (outside / 'sub').mkdir()
    os.chmod(outside / 'sub', 0o755)
    os.symlink(str(outside), str(docroot / 'shop'))
    before = snap(outside / 'sub')
    with pytest.raises(td.Refused, match=r'html/shop is a symbolic link'):
        td.ensure(str(docroot / 'shop' / 'sub'), name, '2775', [str(docroot)])
    assert snap(outside / 'sub') == before


def test_path_outside_the_creation_bases_is_refused(tree, team_group):
    docroot, outside = tree
    name, _ = team_group
    before = snap(outside)
    with pytest.raises(td.Refused, match='is not strictly below'):
        td.ensure(str(outside), name, '2775', [str(docroot)])
    with pytest.raises(td.Refused, match='is not strictly below'):
        td.ensure(str(docroot), name, '2775', [str(docroot)])
    assert snap(outside) == before


@pytest.mark.parametrize('path', ['relative/dir', '/var/www/../etc', '/var/www/./x', '/var//www'])
def test_unplain_paths_are_refused(path):
    with pytest.raises(td.Refused):
        td.plain_components(path)


def test_check_mode_reports_and_changes_nothing(tree, team_group):
    docroot, _ = tree
    name, _ = team_group
    fd, result = td.ensure(str(docroot / 'new' / 'deeper'), name, '2775', [str(docroot)], check_mode=True)
    assert fd is None
    assert result['created'] == [str(docroot / 'new'), str(docroot / 'new' / 'deeper')]
    assert not (docroot / 'new').exists()


def test_existing_directory_gets_group_and_mode_through_its_descriptor(tree, team_group):
    docroot, _ = tree
    name, gid = team_group
    (docroot / 'ir').mkdir()
    os.chmod(docroot / 'ir', 0o700)
    fd, result = td.ensure(str(docroot / 'ir'), name, '2775', [])
    os.close(fd)
    assert sorted(result['fixed']) == ['group', 'mode']
    st = os.lstat(docroot / 'ir')
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (gid, 0o2775)


def test_missing_directory_without_creation_base_is_refused(tree, team_group):
    docroot, _ = tree
    name, _ = team_group
    with pytest.raises(td.Refused, match='does not exist'):
        td.ensure(str(docroot / 'nothere'), name, '2775', [])


def test_bind_mount_comes_from_the_pinned_directory_not_the_path(tree, team_group, tmp_path):
    """Swap the path for a link after the walk pinned it: the mount still shows the checked directory."""
    docroot, outside = tree
    name, _ = team_group
    (docroot / 'ir').mkdir()
    (docroot / 'ir' / 'page.html').write_text('site')
    jail = tmp_path / 'jail'
    jail.mkdir()
    fd, _ = td.ensure(str(docroot / 'ir'), name, '2775', [])
    try:
        os.rename(docroot / 'ir', docroot / 'moved')
        os.symlink(str(outside), str(docroot / 'ir'))
        target = str(jail / 'site')
        assert td.bind(fd, target, check_mode=False) is True
        try:
            assert os.listdir(target) == ['page.html']
            assert td.bind(fd, target, check_mode=False) is False
        finally:
            subprocess.run(['umount', target], check=True)
    finally:
        os.close(fd)


def test_stale_bind_mount_of_another_directory_is_replaced(tree, team_group, tmp_path):
    """A boot that resolved the fstab path through a planted link left /etc in the jail."""
    docroot, outside = tree
    name, _ = team_group
    (docroot / 'ir').mkdir()
    target = tmp_path / 'site'
    target.mkdir()
    subprocess.run(['mount', '--bind', str(outside), str(target)], check=True)
    fd, _ = td.ensure(str(docroot / 'ir'), name, '2775', [])
    try:
        assert td.bind(fd, str(target), check_mode=False) is True
        assert os.stat(target).st_ino == os.stat(docroot / 'ir').st_ino
    finally:
        os.close(fd)
        while td.mount_point_source(str(target)):
            subprocess.run(['umount', str(target)], check=True)


def run_module(tmp_path, args):
    """The module as Ansible runs it: a script reading its arguments from a file."""
    import ansible
    site = os.path.dirname(os.path.dirname(os.path.abspath(ansible.__file__)))
    argsfile = tmp_path / 'args.json'
    argsfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    proc = subprocess.run([sys.executable, td.__file__, str(argsfile)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=site), cwd=str(tmp_path), check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize('mode', ['2777', '4775', '1775', 'rwx', '2778'])
def test_module_refuses_world_write_and_special_modes(tree, team_group, tmp_path, mode):
    docroot, _ = tree
    rc, out = run_module(tmp_path, {'path': str(docroot / 'ir'), 'group': team_group[0], 'mode': mode,
                                    'create_below': [str(docroot)]})
    assert rc != 0 and out['failed'] and 'is refused' in out['msg']
    assert not (docroot / 'ir').exists()


def test_module_refuses_the_planted_link_and_reports_changed_when_creating(tree, team_group, tmp_path):
    docroot, outside = tree
    os.symlink(str(outside), str(docroot / 'ir'))
    rc, out = run_module(tmp_path, {'path': str(docroot / 'ir'), 'group': team_group[0],
                                    'create_below': [str(docroot)]})
    assert rc != 0 and 'is a symbolic link' in out['msg']
    rc, out = run_module(tmp_path, {'path': str(docroot / 'jail'), 'group': team_group[0],
                                    'create_below': [str(docroot)], '_ansible_check_mode': True})
    assert rc == 0 and out['changed'] and not (docroot / 'jail').exists()

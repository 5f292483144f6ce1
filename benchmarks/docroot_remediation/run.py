#!/usr/bin/env python3
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Benchmark: docroot_perms (DR-03/DR-04) against find/chmod/chgrp and ansible.builtin.file.

Not a test: prints a table and ratios. Run as root (it creates and removes two groups):

    .venv/bin/python benchmarks/docroot_remediation/run.py [--files 100000] [--workdir /var/tmp]
    .venv/bin/python benchmarks/docroot_remediation/run.py --role playbooks/site.yml --workdir /srv/www

See README.md next to this file.
"""

import argparse
import grp
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, 'roles', 'docroot', 'library', 'docroot_perms.py')
# The module imports ansible.module_utils.vps_safe_tree (plugins/module_utils, since 021842a):
# importable here as Ansible ships it to a module, and in the module subprocess the same way.
MODULE_UTILS = os.path.join(REPO, 'plugins', 'module_utils')
SUBPROCESS_BOOT = ('import ansible.module_utils as _mu, runpy, sys; _mu.__path__.append(%r); sys.argv[0] = %r; '
                   'runpy.run_path(%r, run_name="__main__")' % (MODULE_UTILS, MODULE, MODULE))


def _load_module():
    """The module file is not a package: load it by path for its pure core (remediate())."""
    import ansible.module_utils
    if MODULE_UTILS not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(MODULE_UTILS)
    spec = importlib.util.spec_from_file_location('docroot_perms', MODULE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


docroot_perms = _load_module()

TEAM = 'dpbench-team'
OTHER = 'dpbench-other'
DIR_MODES = (0o777, 0o775, 0o755, 0o700)
FILE_MODES = (0o666, 0o644, 0o755, 0o600)
FILES_PER_DIR = 100
# Same interpreter for the module under test as for the benchmark (no interpreter discovery).
PYTHON_VAR = 'ansible_python_interpreter=%s' % sys.executable
FANOUT = 10
# --dr06: the web server user of the ACL rows (a uid: no account needed).
WEB_UID = 33


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def ensure_group(name):
    try:
        return grp.getgrnam(name).gr_gid, False
    except KeyError:
        sh(['groupadd', name])
        return grp.getgrnam(name).gr_gid, True


def build_tree(root, nfiles):
    """nfiles files, FILES_PER_DIR per leaf directory, leaves FANOUT-ary nested 3 levels deep."""
    os.makedirs(root)
    ndirs = max(1, -(-nfiles // FILES_PER_DIR))
    made = 0
    leaf = 0
    while made < nfiles:
        a, b, c = leaf // (FANOUT * FANOUT), (leaf // FANOUT) % FANOUT, leaf % FANOUT
        d = os.path.join(root, 'd%03d' % a, 'e%02d' % b, 'f%02d' % c)
        os.makedirs(d)
        for i in range(min(FILES_PER_DIR, nfiles - made)):
            fd = os.open(os.path.join(d, 'file%03d.php' % i), os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        made += FILES_PER_DIR
        leaf += 1
    return ndirs


def list_tree(root):
    """All paths (dirs then files), for resetting; collected once."""
    dirs, files = [], []
    for top, dnames, fnames in os.walk(root):
        dirs.append(top)
        files.extend(os.path.join(top, f) for f in fnames)
    return dirs, files


def reset_tree(dirs, files, other_gid):
    """The same drifted state every time: mixed modes, groups root / other / team-less."""
    gids = (0, other_gid)
    for i, d in enumerate(dirs):
        os.chown(d, -1, gids[i % 2])
        os.chmod(d, DIR_MODES[i % 4])
    for i, f in enumerate(files):
        os.chown(f, -1, gids[(i // 3) % 2])
        os.chmod(f, FILE_MODES[i % 4])


def cpu_now():
    """CPU seconds (user+sys) of this process and its waited-for children."""
    own = os.times()
    return own.user + own.system + own.children_user + own.children_system


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ours_inproc(root, check=False, acl=False):
    """acl: with DR-06 (the web server user's ACL entries, one writable top-level directory)."""
    extra = {'web_user': WEB_UID, 'web_writable': ['d000']} if acl else {}
    return docroot_perms.remediate([root], TEAM, check_mode=check, sample_size=20,
                                   allowed_prefixes=[os.path.dirname(root)], **extra)


def strip_acls(dirs, files):
    """Remove every POSIX ACL of the tree (the state before DR-06; untimed)."""
    for paths, names in ((dirs, (docroot_perms.ACL_ACCESS, docroot_perms.ACL_DEFAULT)),
                         (files, (docroot_perms.ACL_ACCESS,))):
        for path in paths:
            present = os.listxattr(path)
            for name in names:
                if name in present:
                    os.removexattr(path, name)


def ours_subprocess(root, argsfile):
    with open(argsfile, 'w') as fh:
        json.dump({'ANSIBLE_MODULE_ARGS': {'path': [root], 'group': TEAM,
                                           'allowed_prefixes': [os.path.dirname(root)]}}, fh)
    proc = sh([sys.executable, '-c', SUBPROCESS_BOOT, argsfile])
    return json.loads(proc.stdout)


def python_floor(root):
    """Bare os.scandir + DirEntry.stat(follow_symlinks=False) walk, no logic: the floor of our design."""
    n = 0
    stack = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)]
    while stack:
        fd = stack.pop()
        with os.scandir(fd) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                n += 1
                if st.st_mode & 0o170000 == 0o040000:
                    stack.append(os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd))
        os.close(fd)
    return n


def baseline_fix(root):
    sh(['find', root, '-xdev', '-type', 'd', '-exec', 'chmod', 'g+rwxs,o-w', '{}', '+'])
    sh(['find', root, '-xdev', '-type', 'f', '-exec', 'chmod', 'g+rw,o-w', '{}', '+'])
    sh(['chgrp', '-R', '--no-dereference', TEAM, root])


RECHECK = ['(', '!', '-group', TEAM, '-o', '-perm', '/o+w',
           '-o', '(', '-type', 'd', '!', '-perm', '-g+rwxs', ')',
           '-o', '(', '-type', 'f', '(', '!', '-perm', '-g+rw', '-o', '-perm', '/u+s,g+s,o+t', ')', ')',
           ')', '-print']


def baseline_recheck(root):
    return sh(['find', root, '-xdev'] + RECHECK).stdout.count(b'\n')


def ansible_file(root):
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='False', ANSIBLE_INVENTORY_UNPARSED_WARNING='False')
    module_args = 'path=%s state=directory recurse=yes group=%s mode=g+rwX,o-w' % (root, TEAM)
    proc = sh([ansible, 'localhost', '-c', 'local', '-i', 'localhost,', '-e', PYTHON_VAR,
               '-m', 'ansible.builtin.file', '-a', module_args], env=env)
    return b'"changed": true' in proc.stdout


def measure(rows, name, n, prepare, fn):
    """Run fn n times (prepare() untimed before each); add a row (median wall, best wall, median CPU)."""
    walls, cpus, out = [], [], None
    for _ in range(n):
        if prepare:
            prepare()
        c0 = cpu_now()
        t, out = timed(fn)
        cpus.append(cpu_now() - c0)
        walls.append(t)
    stats = (statistics.median(walls), min(walls), statistics.median(cpus))
    rows.append((name,) + stats)
    return stats, out


def role_mode(args, workdir, other_gid):
    """Role-level re-run cost: whole playbook twice per tree size, ratio of the re-runs."""
    playbook = os.path.abspath(args.role)
    results = {}
    for n in (200, 20000):
        root = os.path.join(workdir, 'role-%d' % n)
        build_tree(root, n)
        dirs, files = list_tree(root)
        reset_tree(dirs, files, other_gid)
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
               '-c', 'local', playbook, '-e', PYTHON_VAR, '-e', json.dumps({'docroot_paths': [root]})]
        for extra in args.role_extra_vars:
            cmd += ['-e', extra]
        first, _ = timed(lambda: sh(cmd, cwd=REPO))
        rerun, _ = timed(lambda: sh(cmd, cwd=REPO))
        results[n] = (first, rerun)
        print('role %6d files: first %7.2f s  re-run %7.2f s' % (n, first, rerun))
    print('role ratio: re-run 20000 / re-run 200 = %.2f' % (results[20000][1] / results[200][1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--files', type=int, default=100000)
    ap.add_argument('--workdir', default='/var/tmp', help='parent of the temporary tree (default /var/tmp)')
    ap.add_argument('--repeat', type=int, default=5, help='runs per fast variant (median shown)')
    ap.add_argument('--skip-ansible-file', action='store_true', help='skip the slow ansible.builtin.file rows')
    ap.add_argument('--dr06', action='store_true',
                    help='also time DR-06 (web server ACLs): first run on a DR-03-converged tree, re-run')
    ap.add_argument('--role', metavar='PLAYBOOK', help='also time a playbook applying the docroot role')
    ap.add_argument('--role-extra-vars', action='append', default=[], metavar='EXTRA',
                    help='extra -e for --role (repeatable), e.g. to allow the workdir as a prefix')
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('run as root: the benchmark creates groups and changes ownership')

    _, made_team = ensure_group(TEAM)
    other_gid, made_other = ensure_group(OTHER)
    workdir = tempfile.mkdtemp(prefix='docroot-bench-', dir=args.workdir)
    try:
        root = os.path.join(workdir, 'www')
        t_build, _ = timed(lambda: build_tree(root, args.files))
        dirs, files = list_tree(root)

        def reset():
            reset_tree(dirs, files, other_gid)

        entries = len(dirs) + len(files)
        print('tree: %d files, %d directories under %s (built in %.1f s)'
              % (len(files), len(dirs), root, t_build))
        print('warm-up: one untimed find pass (page cache cannot be dropped here; all numbers are warm cache)')
        print('load average before: %.2f %.2f %.2f' % os.getloadavg())
        sh(['find', root, '-xdev', '-printf', ''])
        rows = []

        r = args.repeat
        ours_first, res = measure(rows, 'ours in-process, first run', r, reset, lambda: ours_inproc(root))
        assert res['changed'] and res['scanned'] == entries, res['scanned']
        ours_rerun, res = measure(rows, 'ours in-process, re-run', r, None, lambda: ours_inproc(root))
        assert not res['changed'] and res['scanned'] == entries
        measure(rows, 'ours in-process, re-run --check', r, None, lambda: ours_inproc(root, check=True))
        _, n = measure(rows, 'floor: bare Python scandir+lstat loop', r, None, lambda: python_floor(root))
        assert n == entries - 1

        argsfile = os.path.join(workdir, 'args.json')
        _, res = measure(rows, 'ours module subprocess, first run', r, reset,
                         lambda: ours_subprocess(root, argsfile))
        assert res['changed'] and res['scanned'] == entries
        _, res = measure(rows, 'ours module subprocess, re-run', r, None, lambda: ours_subprocess(root, argsfile))
        assert not res['changed']

        base_fix, _ = measure(rows, 'baseline2 find -exec chmod x2 + chgrp -R', r, reset,
                              lambda: baseline_fix(root))
        reset()
        ours_inproc(root)
        base_check, nbad = measure(rows, 'baseline3 filtered find re-check', r, None,
                                   lambda: baseline_recheck(root))
        assert nbad == 0, 'find re-check found %d entries our module left unfixed' % nbad

        if args.dr06:  # DR-06 on the DR-03-converged tree: every entry gets its ACL, then one getxattr each
            acl_first, res = measure(rows, 'ours in-process + DR-06, first run', r, lambda: strip_acls(dirs, files),
                                     lambda: ours_inproc(root, acl=True))
            assert res['acl_fixed'] == entries and res['mode_fixed'] == 0, res['acl_fixed']
            acl_rerun, res = measure(rows, 'ours in-process + DR-06, re-run', r, None,
                                     lambda: ours_inproc(root, acl=True))
            assert not res['changed'] and res['scanned'] == entries
            strip_acls(dirs, files)

        if not args.skip_ansible_file:  # slow: one run each
            _, changed = measure(rows, 'ansible.builtin.file recurse, first run', 1, reset,
                                 lambda: ansible_file(root))
            assert changed
            measure(rows, 'ansible.builtin.file recurse, re-run', 1, None, lambda: ansible_file(root))

        print()
        print('%-42s %9s %9s %9s' % ('variant (%d entries)' % entries, 'median s', 'best s', 'CPU s'))
        print('-' * 72)
        for name, med, best, cpu in rows:
            print('%-42s %9.3f %9.3f %9.3f' % (name, med, best, cpu))
        print()
        for label, ours, base, target in (('ours_first / baseline2', ours_first, base_fix, 1.3),
                                          ('ours_rerun / baseline3', ours_rerun, base_check, 1.5)):
            print('ratio %s = %.2f median, %.2f best, %.2f CPU (target <= %.1f)'
                  % (label, ours[0] / base[0], ours[1] / base[1], ours[2] / base[2], target))
        if args.dr06:  # no target of its own: what DR-06 adds to a re-run (one getxattr per entry)
            print('ratio DR-06 re-run / ours_rerun = %.2f median, %.2f best, %.2f CPU; DR-06 re-run / baseline3 = '
                  '%.2f median, %.2f best (information)' % (acl_rerun[0] / ours_rerun[0], acl_rerun[1] / ours_rerun[1],
                                                           acl_rerun[2] / ours_rerun[2], acl_rerun[0] / base_check[0],
                                                           acl_rerun[1] / base_check[1]))
            print('DR-06 first run (ACL set on every entry): %.3f s median' % acl_first[0])
        if args.role:
            role_mode(args, workdir, other_gid)
        else:
            print('role ratio: see --role')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if made_team:
            sh(['groupdel', TEAM])
        if made_other:
            sh(['groupdel', OTHER])


if __name__ == '__main__':
    main()

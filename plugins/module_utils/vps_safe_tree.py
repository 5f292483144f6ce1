# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Symlink-safe primitives for team-writable trees, shared by every piece of code that changes them.

One copy of the rules, used by:
  - roles/docroot/library/docroot_perms.py (DR-03/DR-04, the walk of a whole tree, through Ansible's
    module_utils: ``from ansible.module_utils.vps_safe_tree import ...``);
  - roles/docroot/files/vps-upload-perms.py (DR-05, the upload watcher installed on the host next to a
    copy of this file, which it imports as ``vps_safe_tree``).

Plain Python 3 standard library only: no Ansible import, so the watcher can use it on a host
without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import stat

try:
    import grp
except ImportError:  # pragma: no cover - non-POSIX
    grp = None

# Mount table of this process (field 5 = mount point, octal escapes); injectable for the tests.
MOUNTINFO = '/proc/self/mountinfo'


_S_IFMT = 0o170000
_S_IFDIR = stat.S_IFDIR
_S_IFREG = stat.S_IFREG
_S_IFLNK = stat.S_IFLNK

_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _O_CLOEXEC

# Special bits that get cleared: files keep none, directories keep only setgid.
FILE_SPECIAL = 0o7000
DIR_SPECIAL_CLEARED = 0o5000


def dir_target(perm):
    """Target permission bits (0..0o7777) for a directory: g+rwxs, o-w, no setuid/sticky."""
    return (perm | 0o2070) & 0o2775


def file_target(perm):
    """Target permission bits for a regular file: g+rw, o-w, g+x == u+x, no special bits."""
    return ((perm | 0o060) & 0o0765) | ((perm & 0o100) >> 3)


# Precomputed tables: the target only depends on the 12 permission bits.
DIR_TARGET = tuple(dir_target(p) for p in range(0o10000))
FILE_TARGET = tuple(file_target(p) for p in range(0o10000))
# Full st_mode values of regular files whose permission bits are already compliant.
GOOD_FILE_MODES = frozenset(_S_IFREG | p for p in range(0o10000) if FILE_TARGET[p] == p)


class RootError(Exception):
    """A root failed validation; nothing has been changed."""


def display_path(path):
    """JSON-safe, single-line display form of a (surrogateescape) str or bytes path."""
    if isinstance(path, str):
        path = os.fsencode(path)
    text = path.decode('utf-8', 'backslashreplace')
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == '\n':
            out.append('\\n')
        elif ch == '\t':
            out.append('\\t')
        elif not ch.isprintable() and ch != ' ':
            out.append('\\x%02x' % ord(ch) if ord(ch) < 256 else '\\u%04x' % ord(ch))
        else:
            out.append(ch)
    return ''.join(out)


def open_root(root):
    """Open a normalised absolute root component by component from ``/``.

    Every component is opened with ``O_NOFOLLOW|O_DIRECTORY`` relative to the descriptor of its
    parent, so no symlink is followed anywhere in the path and the returned descriptor is pinned
    to the directory that was checked (a component swapped for a symlink later changes nothing).
    Raises RootError naming a symlinked or non-directory component, FileNotFoundError when a
    component does not exist, OSError otherwise.
    """
    fd = os.open('/', DIR_FLAGS)
    done = ''
    try:
        for comp in root.split('/'):
            if not comp:
                continue
            path = done + '/' + comp
            try:
                nfd = os.open(comp, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                try:
                    st = os.lstat(comp, dir_fd=fd)
                except OSError:
                    raise exc
                if stat.S_ISLNK(st.st_mode):
                    try:
                        target = ' (-> %s)' % display_path(os.readlink(comp, dir_fd=fd))
                    except OSError:
                        target = ''
                    if path == root:
                        raise RootError('docroot %s is a symlink%s; give the real directory'
                                        % (display_path(root), target))
                    raise RootError('docroot %s: its component %s is a symlink%s; no symlink is allowed '
                                    'anywhere in a docroot path, give the real directory'
                                    % (display_path(root), display_path(path), target))
                if path == root:
                    raise RootError('docroot %s is not a directory' % display_path(root))
                raise RootError('docroot %s: its component %s is not a directory'
                                % (display_path(root), display_path(path)))
            os.close(fd)
            fd = nfd
            done = path
    except BaseException:
        os.close(fd)
        raise
    return fd


_MOUNT_ESCAPE = re.compile(rb'\\([0-7]{3})')


def unescape_mount_field(field):
    r"""Undo the octal escapes of /proc/self/mountinfo (\040 space, \011 tab, \012 newline, \134 \)."""
    return _MOUNT_ESCAPE.sub(lambda m: bytes((int(m.group(1), 8) & 0xff,)), field)


def read_mount_points(path=MOUNTINFO):
    """Set of every mount point (str, surrogateescape like the walk's names) listed in mountinfo.

    Bind mounts of a directory of the same filesystem keep the same st_dev, so the walk needs
    this list to see them. Raises RootError when the table cannot be read.
    """
    try:
        with open(path, 'rb') as fh:
            data = fh.read()
    except OSError as exc:
        raise RootError('cannot read the mount table %s (needed to skip bind mounts): %s'
                        % (path, exc.strerror or exc))
    points = set()
    for line in data.splitlines():
        fields = line.split(b' ')
        if len(fields) > 4:
            points.add(os.fsdecode(unescape_mount_field(fields[4])))
    return points


def mounts_below(root, points):
    """Mount points strictly below root (the root itself may be one: it is walked)."""
    prefix = root.rstrip('/') + '/'
    return frozenset(p for p in points if p.startswith(prefix))


def resolve_group(group, check_mode=False):
    """gid for a name or number; -1 in check mode when the name is unknown. Raises ValueError."""
    if isinstance(group, bool):
        raise ValueError('group must be a name or a gid, not a boolean')
    if isinstance(group, int) or (isinstance(group, str) and group.isdigit()):
        if int(group) < 0:
            raise ValueError('group must be a name or a gid >= 0, not %s' % group)
        return int(group)
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        if check_mode:
            return -1
        raise ValueError('group %s does not exist' % group)

#!/usr/bin/python3
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""vps-upload-perms (DR-05): what members upload into the docroots lands group-writable.

OpenSSH's sftp-server (and scp, which speaks SFTP since OpenSSH 9) creates a file with the mode
the client asks for, masked by ``-u 0002``: a normal 0644 local file lands 0644, and the team
cannot edit it until the next DR-03 run. sftp-server has no option to force a mode. This daemon
watches the docroots with inotify and gives every new or changed directory and regular file of
the team group the DR-03 target mode (plugins/module_utils/vps_safe_tree.py, the same tables):
files g+rw (g+x mirrors u+x), directories g+rwxs, world write and special bits removed, and no
world bit ever added.

It acts on trees that the web server user and every member can write, so:
  - every directory is reached from the docroot's descriptor, pinned component by component
    from / (open_root), with openat(O_NOFOLLOW|O_DIRECTORY), one component at a time, and must
    be the inode the watch was placed on; files are opened with O_PATH|O_NOFOLLOW and checked
    with fstat: a symlink is never followed (an O_PATH descriptor of a link is a link: skipped);
  - only directories and regular files are changed, only those whose group is the team group,
    never a file with several hard links (it may be a link to a file outside the docroot);
  - another filesystem and mount points (bind mounts, /proc/self/mountinfo) are never entered;
  - the mode is changed through the checked descriptor (/proc/self/fd/N), never by name.
systemd runs it under a dynamic user in the team group with CAP_FOWNER only (chmod of members'
files), the whole file system read-only but the docroots (vps-upload-perms.service).

No sweep at start: the watches are placed, nothing is changed; DR-03 remediates the trees.
Usage: vps_upload_perms.py --group GROUP DOCROOT...
"""

import ctypes
import ctypes.util
import errno
import os
import stat
import struct
import sys

# The shared rules live next to this file on the host (/usr/local/lib/vps-baseline), copied from
# plugins/module_utils by the docroot role; python3 -I leaves the script's directory out of sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vps_safe_tree import (DIR_FLAGS, DIR_TARGET, FILE_TARGET, MOUNTINFO, RootError,  # noqa: E402
                           display_path, mounts_below, open_root, read_mount_points, resolve_group)

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
# New entries (created, moved in), and modes changed later (a client's SETSTAT, `chmod` over SFTP).
# The watch is placed on /proc/self/fd/N of the pinned directory: following that magic link is the
# point (it names the checked inode), so no IN_DONT_FOLLOW here; IN_ONLYDIR checks it is a directory.
WATCH_MASK = IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR | IN_EXCL_UNLINK
EVENT = struct.Struct('iIII')

O_PATH = getattr(os, 'O_PATH', 0o10000000)
# A file is only looked at (O_PATH: no open of a FIFO or device, no read permission needed).
PATH_FLAGS = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def log(msg):
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


class Inotify:
    """The three inotify calls through ctypes (Python has no binding in its standard library)."""

    def __init__(self, libc=None):
        self.libc = libc or ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        self.fd = self.libc.inotify_init1(IN_CLOEXEC)
        if self.fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, 'inotify_init1: %s' % os.strerror(err))

    def add(self, dir_fd):
        """Watch the directory held by dir_fd (not a path: the checked inode). Returns the wd."""
        wd = self.libc.inotify_add_watch(self.fd, b'/proc/self/fd/%d' % dir_fd, WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return wd

    def remove(self, wd):
        self.libc.inotify_rm_watch(self.fd, wd)

    def read(self):
        """Block until events arrive; return [(wd, mask, cookie, name)], name a str or ''."""
        data = os.read(self.fd, 65536)
        events, pos = [], 0
        while pos + EVENT.size <= len(data):
            wd, mask, cookie, size = EVENT.unpack_from(data, pos)
            pos += EVENT.size
            name = os.fsdecode(data[pos:pos + size].split(b'\0', 1)[0])
            pos += size
            events.append((wd, mask, cookie, name))
        return events


class Watcher:
    """Watches on every directory below the docroots; fixes entries named by the events."""

    def __init__(self, roots, gid, inotify=None, mountinfo=MOUNTINFO):
        self.gid = gid
        self.mountinfo = mountinfo
        self.inotify = inotify or Inotify()
        self.roots = []     # (root path, pinned fd, st_dev)
        self.watches = {}   # wd -> (root index, components tuple, (st_dev, st_ino))
        self.mounts = frozenset()
        self.full = False
        self.fixed = 0
        for root in sorted(set(roots)):
            if any(root.startswith(r + '/') for r, _fd, _dev in self.roots):
                continue  # nested docroot: its parent's watches cover it
            fd = open_root(root)
            self.roots.append((root, fd, os.fstat(fd).st_dev))
        self.refresh_mounts()
        for index in range(len(self.roots)):
            self.register(index, (), fix=False)

    # -- paths ----------------------------------------------------------------------------
    def path(self, index, comps):
        return '/'.join((self.roots[index][0],) + comps)

    def refresh_mounts(self):
        points = read_mount_points(self.mountinfo)
        self.mounts = frozenset().union(*(mounts_below(r, points) for r, _fd, _dev in self.roots))

    def open_dir(self, index, comps):
        """The directory root/comps, opened one component at a time from the pinned root with
        O_NOFOLLOW|O_DIRECTORY, on the root's filesystem and no mount point; None otherwise."""
        root, rfd, dev = self.roots[index]
        fd = os.open('.', DIR_FLAGS, dir_fd=rfd)
        try:
            for depth, comp in enumerate(comps):
                child = os.open(comp, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                if os.fstat(fd).st_dev != dev or self.path(index, comps[:depth + 1]) in self.mounts:
                    os.close(fd)
                    return None
        except OSError:
            os.close(fd)
            return None
        return fd

    # -- the fix --------------------------------------------------------------------------
    def fix(self, dfd, name, index, comps):
        """Give the entry `name` of the open directory dfd the DR-03 mode, when it is a directory
        or a single-link regular file of the team group. Returns its fstat (directories: to be
        watched) or None."""
        shown = self.path(index, comps + (name,))
        if shown in self.mounts:
            return None
        try:
            fd = os.open(name, PATH_FLAGS, dir_fd=dfd)
        except OSError:
            return None  # vanished meanwhile
        try:
            st = os.fstat(fd)
            if st.st_dev != self.roots[index][2]:
                return None
            if stat.S_ISDIR(st.st_mode):
                table = DIR_TARGET
            elif stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                table = FILE_TARGET
            else:
                return None  # symlink, hard-linked file, FIFO, socket, device: never changed
            if st.st_gid == self.gid:
                perm = stat.S_IMODE(st.st_mode)
                want = table[perm]
                if want != perm:
                    try:
                        os.chmod('/proc/self/fd/%d' % fd, want)
                    except OSError as exc:
                        log('DR-05: cannot change %s from %04o to %04o: %s'
                            % (display_path(shown), perm, want, exc.strerror or exc))
                    else:
                        self.fixed += 1
                        log('DR-05: %s %04o -> %04o' % (display_path(shown), perm, want))
            return st
        finally:
            os.close(fd)

    # -- watches --------------------------------------------------------------------------
    def register(self, index, comps, fix=True):
        """Watch root/comps and every directory below it, then (fix=True: a new or moved-in
        directory) fix what it holds: entries made before the watch was in place."""
        stack = [comps]
        while stack:
            comps = stack.pop()
            fd = self.open_dir(index, comps)
            if fd is None:
                continue
            try:
                st = os.fstat(fd)
                try:
                    wd = self.inotify.add(fd)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC and not self.full:
                        self.full = True
                        log('DR-05: no more inotify watches (fs.inotify.max_user_watches): directories '
                            'from %s on are not watched; DR-03 still fixes them on the next run'
                            % display_path(self.path(index, comps)))
                    elif exc.errno != errno.ENOSPC:
                        log('DR-05: cannot watch %s: %s' % (display_path(self.path(index, comps)), exc))
                    wd = None
                if wd is not None:
                    self.watches[wd] = (index, comps, (st.st_dev, st.st_ino))
                with os.scandir(fd) as entries:
                    names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
                for name, is_dir in names:
                    if fix:
                        child = self.fix(fd, name, index, comps)
                        is_dir = child is not None and stat.S_ISDIR(child.st_mode)
                    if is_dir and self.path(index, comps + (name,)) not in self.mounts:
                        stack.append(comps + (name,))
            except OSError as exc:
                log('DR-05: cannot read %s: %s' % (display_path(self.path(index, comps)), exc.strerror or exc))
            finally:
                os.close(fd)

    def handle(self, events):
        """Act on one batch of events (in order)."""
        self.refresh_mounts()
        for wd, mask, _cookie, name in events:
            if mask & IN_Q_OVERFLOW:
                log('DR-05: inotify queue overflow: some uploads may keep their mode until DR-03 runs')
                continue
            if mask & IN_IGNORED:
                self.watches.pop(wd, None)
                continue
            watch = self.watches.get(wd)
            if watch is None or not name:
                continue  # an event on the watched directory itself: its parent's watch has it
            index, comps, ident = watch
            dfd = self.open_dir(index, comps)
            if dfd is None:
                continue
            try:
                st = os.fstat(dfd)
                if (st.st_dev, st.st_ino) != ident:
                    # Moved away (out of the docroots: never followed there) or replaced: a move
                    # inside the docroots re-registered it under its new path already.
                    self.watches.pop(wd, None)
                    self.inotify.remove(wd)
                    continue
                child = self.fix(dfd, name, index, comps)
                if child is not None and stat.S_ISDIR(child.st_mode) and mask & (IN_CREATE | IN_MOVED_TO):
                    self.register(index, comps + (name,))
            finally:
                os.close(dfd)

    def run(self):
        log('DR-05: watching %d directories below %s for group %d'
            % (len(self.watches), ', '.join(display_path(r) for r, _fd, _dev in self.roots), self.gid))
        while True:
            self.handle(self.inotify.read())


def parse_args(argv):
    if len(argv) < 3 or argv[0] != '--group':
        raise SystemExit('usage: vps_upload_perms.py --group GROUP DOCROOT...')
    roots = []
    for root in argv[2:]:
        root = root.rstrip('/') or '/'
        if root == '/' or not root.startswith('/') or '\0' in root or any(c in ('', '.', '..') for c in root.split('/')[1:]):
            raise SystemExit('DR-05: docroot %s must be an absolute plain path' % display_path(root))
        roots.append(root)
    return argv[1], roots


def main(argv=None):
    group, roots = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        watcher = Watcher(roots, resolve_group(group))
    except (RootError, ValueError, OSError) as exc:
        raise SystemExit('DR-05: %s' % exc)
    watcher.run()


if __name__ == '__main__':
    main()

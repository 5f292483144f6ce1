#!/usr/bin/python
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""team_directory: a team directory inside a team-writable tree, without ever following a link."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: team_directory
short_description: Create, fix and bind-mount a team directory without following symlinks (DR-01, DR-02, SSH-02)
description:
  - The docroots are writable by the team and by the web server, so any component of a path
    below them may be swapped for a symbolic link at any time (for example C(ir -> /etc)).
    M(ansible.builtin.file) and C(mount) follow such links and would give the link's target the
    team group and mode 2775. This module never does.
  - The path is opened one component at a time from C(/) with C(O_NOFOLLOW|O_DIRECTORY), each
    relative to the descriptor of its parent. A component that is a symbolic link, or not a
    directory, is refused with a message naming it, and nothing is changed.
  - Missing components strictly below one of O(create_below) are created (C(mkdirat)) with
    O(group) and O(mode); a missing component above them is refused (in check mode it is
    reported, as on a fresh host where an earlier task would have created it).
  - "The group and the mode of the last component are set through its descriptor
    (C(fchown)/C(fchmod)): what is changed is what was checked, whatever happens to the path."
  - With O(bind), the directory is bind-mounted there from its pinned descriptor
    (C(/proc/self/fd/N)), so the mount cannot be redirected either. A mount already at O(bind)
    that shows another directory (for example one that an earlier boot resolved through a link
    planted in the meantime) is unmounted and replaced.
options:
  path:
    description: Absolute path of the directory, without C(.), C(..) or C(//) components.
    type: path
    required: true
  group:
    description: Group (name or gid) of the directory and of every component it creates.
    type: str
    required: true
  mode:
    description: Mode of the directory and of every component it creates, an octal string.
    type: str
    default: "2775"
  create_below:
    description:
      - Directories below which missing components are created. O(path) must lie strictly
        below one of them. Empty means that the directory must exist already.
    type: list
    elements: path
    default: []
  bind:
    description:
      - Mount point (in a root-owned tree, such as an SFTP jail) where the directory is
        bind-mounted. Created (root, 0755) when missing. The fstab entry is not this module's.
    type: path
author:
  - vps-baseline contributors
"""

EXAMPLES = r"""
- name: DR-02 | A member's jail directory below the docroot, never through a link
  team_directory:
    path: /var/www/html/ir
    group: workgroup
    mode: "2775"
    create_below: [/var/www/html]

- name: SSH-02 | The team directory, bind-mounted into the member's jail from its pinned descriptor
  team_directory:
    path: /var/www/html/ir
    group: workgroup
    bind: /srv/jail/wuser2/site
"""

RETURN = r"""
created:
  description: Components created (or that would be, in check mode).
  type: list
  elements: str
  returned: always
fixed:
  description: Attributes of O(path) that were changed (or would be), as C(group) and C(mode).
  type: list
  elements: str
  returned: always
mounted:
  description: True when the bind mount was made or replaced (or would be).
  type: bool
  returned: always
"""

import ctypes
import ctypes.util
import errno
import grp
import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule

MS_BIND = 4096
MNT_DETACH = 2


class Refused(Exception):
    """An input or a state this module will not act on; the message names it."""


def plain_components(path):
    """The components of an absolute, plain path (no '.', '..', '//', no trailing slash needed)."""
    if not isinstance(path, str) or not path.startswith('/') or '\x00' in path:
        raise Refused('%r is refused: not an absolute path' % (path,))
    stripped = path.rstrip('/') if path != '/' else path
    parts = stripped.split('/')[1:] if stripped != '/' else []
    if any(part in ('', '.', '..') for part in parts):
        raise Refused("%r is refused: it has a '.', '..' or '//' component" % (path,))
    return parts


def creation_base(path, create_below):
    """Number of leading components that must exist (the longest base path lies strictly below)."""
    parts = plain_components(path)
    best = None
    for base in create_below:
        base_parts = plain_components(base)
        if len(base_parts) < len(parts) and parts[:len(base_parts)] == base_parts:
            best = max(best or 0, len(base_parts))
    if create_below and best is None:
        raise Refused('%s is refused: it is not strictly below %s' % (path, ', '.join(create_below)))
    return len(parts) if best is None else best


def resolve_gid(group, check_mode):
    """gid of group (name or number); None in check mode when the group does not exist yet."""
    if str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if check_mode:
            return None
        raise Refused('group %s does not exist' % group)


def open_component(parent_fd, name, shown):
    """Open one directory component relative to parent_fd, never through a link."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            st = os.lstat(name, dir_fd=parent_fd)
            if stat.S_ISLNK(st.st_mode):
                raise Refused('%s is a symbolic link (to %s): refusing to follow it; a link inside a '
                              'team-writable tree may point anywhere' % (shown, os.readlink(name, dir_fd=parent_fd)))
            raise Refused('%s is not a directory' % shown)
        raise


def ensure(path, group, mode, create_below=(), check_mode=False):
    """Walk path without following links, create what may be created, fix the last component.

    Returns (fd or None, result dict). fd is the pinned directory (None when it does not
    exist yet, in check mode)."""
    parts = plain_components(path)
    must_exist = creation_base(path, list(create_below))
    gid = resolve_gid(group, check_mode)
    want = int(mode, 8)
    result = {'created': [], 'fixed': []}
    fd = os.open('/', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = ''
    try:
        for index, name in enumerate(parts):
            shown += '/' + name
            try:
                child = open_component(fd, name, shown)
            except FileNotFoundError:
                if index < must_exist and not check_mode:
                    raise Refused('%s does not exist%s' % (
                        shown, ' (the docroot role creates it: DR-01, DR-02)' if not create_below else ''))
                result['created'].append(shown)
                if check_mode:
                    result['created'].extend('/'.join([shown] + parts[index + 1:index + 1 + k])
                                             for k in range(1, len(parts) - index))
                    os.close(fd)
                    return None, result
                os.mkdir(name, 0o700, dir_fd=fd)
                child = open_component(fd, name, shown)
                if gid is not None:
                    os.fchown(child, -1, gid)
                os.fchmod(child, want)
            os.close(fd)
            fd = child
        st = os.fstat(fd)
        if gid is None or st.st_gid != gid:
            result['fixed'].append('group')
        if stat.S_IMODE(st.st_mode) != want:
            result['fixed'].append('mode')
        if not check_mode:
            if 'group' in result['fixed']:
                os.fchown(fd, -1, gid)
            if 'mode' in result['fixed'] or 'group' in result['fixed']:
                os.fchmod(fd, want)  # chown clears setgid on some systems: set the mode after it
        return fd, result
    except BaseException:
        os.close(fd)
        raise


def mount_point_source(target, mountinfo='/proc/self/mountinfo'):
    """True when target is a mount point (per mountinfo)."""
    with open(mountinfo, encoding='utf-8', errors='surrogateescape') as handle:
        for line in handle:
            fields = line.split(' ')
            point = fields[4].replace('\\040', ' ').replace('\\011', '\t').replace('\\012', '\n') \
                .replace('\\134', '\\')
            if point == target:
                return True
    return False


def bind(fd, target, check_mode, libc=None):
    """Make target a bind mount of the directory held by fd. Returns True when it changed."""
    plain_components(target)
    pinned = os.fstat(fd)
    try:
        current = os.lstat(target)
    except FileNotFoundError:
        current = None
    if current is not None and stat.S_ISLNK(current.st_mode):
        raise Refused('%s is a symbolic link: refusing to mount on it' % target)
    if current is not None and (current.st_dev, current.st_ino) == (pinned.st_dev, pinned.st_ino):
        return False
    if check_mode:
        return True
    libc = libc or ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    if current is None:
        os.mkdir(target, 0o755)
    elif mount_point_source(target):
        if libc.umount2(target.encode(), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, 'umount %s: %s' % (target, os.strerror(err)))
    source = '/proc/self/fd/%d' % fd
    if libc.mount(source.encode(), target.encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, 'bind mount of %s on %s: %s' % (source, target, os.strerror(err)))
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            group=dict(type='str', required=True),
            mode=dict(type='str', default='2775'),
            create_below=dict(type='list', elements='path', default=[]),
            bind=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if not re.match(r'^[0-7]{3,4}$', str(params['mode'])) or int(params['mode'], 8) & 0o7002 not in (0, 0o2000):
            raise Refused('mode %s is refused: a team directory is never world-writable, setuid or sticky'
                          % params['mode'])
        fd, result = ensure(params['path'], params['group'], params['mode'], params['create_below'],
                            module.check_mode)
        try:
            result['mounted'] = False
            if params['bind']:
                result['mounted'] = True if fd is None else bind(fd, params['bind'], module.check_mode)
        finally:
            if fd is not None:
                os.close(fd)
    except Refused as exc:
        module.fail_json(msg=str(exc), path=params['path'])
    except OSError as exc:
        module.fail_json(msg='%s: %s' % (params['path'], exc), path=params['path'])
    changed = bool(result['created'] or result['fixed'] or result['mounted'])
    diff = {'before': {'path': params['path'], 'changes': []},
            'after': {'path': params['path'], 'changes': result['created'] + result['fixed']
                      + (['bind ' + params['bind']] if result['mounted'] else [])}}
    module.exit_json(changed=changed, diff=diff, **result)


if __name__ == '__main__':
    main()

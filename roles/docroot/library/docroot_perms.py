#!/usr/bin/python
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""docroot_perms: one-pass, symlink-safe docroot group/mode remediation (DR-03, DR-04) and the web
server user's ACL entries (DR-06)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: docroot_perms
short_description: Give a team group safe shared access to web document roots (DR-03, DR-04, DR-06)
description:
  - Walks each document root once (C(os.scandir) with an explicit stack, one C(lstat) per entry)
    and fixes group ownership (DR-03) and permission bits (DR-04) so that a team group can
    collaborate without anything being world-writable.
  - "Directories get the team group and C(g+rwxs), world-write removed: 777 -> 2775, 755 -> 2775,
    750 -> 2770, 700 -> 2770. Only the setgid bit is kept; setuid and sticky bits are cleared."
  - "Regular files get the team group and C(g+rw), world-write removed, and the group execute bit
    mirrors the owner execute bit: 666 -> 664, 644 -> 664, 600 -> 660, 755 -> 775, 777 -> 775,
    610 -> 660. setuid, setgid and sticky bits on files are cleared and listed in RV(special_bits_cleared_paths)."
  - A world read or execute bit that was not there is never added.
  - Symbolic links are never followed and never chmod-ed; only their own group (and owner) is changed
    with C(lchown) semantics, so a link pointing at C(/etc) leaves C(/etc) untouched.
  - FIFOs, sockets and device nodes are not modified; they are listed in RV(skipped_special_files)
    (a device node in a docroot is suspicious and worth a look).
  - The walk never leaves the root and never crosses into another filesystem or mount (directories whose
    C(st_dev) differs from the root's are not touched and are listed in RV(skipped_mounts)).
  - "Bind mounts of the same filesystem keep the C(st_dev) of their parent, so the mount table
    (C(/proc/self/mountinfo), mount point field, octal escapes such as C(\\040) undone) is read once per
    run: any directory, or file, below a root that is a mount point is neither entered nor changed and
    is listed in RV(skipped_mounts). An unreadable mount table fails the module before any change."
  - "Every operation is relative to an open directory file descriptor: directories are opened with
    C(O_NOFOLLOW|O_DIRECTORY) and checked against the inode seen by C(lstat), files are changed through
    an C(O_NOFOLLOW) descriptor (C(fchown)/C(fchmod)), so an entry replaced by a symlink during the walk
    is reported in RV(errors) and never followed."
  - "A regular file with several hard links (C(st_nlink > 1)) may be a hard link to a file outside the
    docroot (a root-only 0600 file, a setuid binary): it is never changed, whatever its mode, and is
    reported once per inode in RV(hardlinks_skipped) / RV(hardlinks_skipped_paths) with a warning.
    Such a file that is world-writable or has setuid/setgid/sticky bits stays unsafe: it is counted in
    RV(hardlinks_unsafe) and makes the module fail (drift in check mode). A hard link to a symlink is
    left alone the same way."
  - "An entry whose fix fails (C(fchmod)/C(fchown)/C(lchown) with EPERM on a C(chattr +i) file, EROFS...)
    stays non-compliant: it is counted in RV(unfixable), listed in RV(unfixable_paths) and the module
    fails after the rest of the walk, listing them. In check mode nothing is tried, so such entries
    appear as drift in the counters."
  - Entries that vanish during the walk, entries replaced during the walk and unreadable directories
    are reported in RV(errors); they do not make the module fail (a warning is emitted).
  - Idempotent; a second run re-checks every entry with C(lstat) (no cache) and reports C(changed=false).
  - All roots are validated before anything is changed.
version_added: "1.0.0"
author:
  - vps-baseline contributors
options:
  path:
    description:
      - Document roots to remediate. Absolute paths, no C(..) component.
      - Each root must be a real directory (not a symlink), must not be listed in O(forbidden_paths)
        and must be strictly below one of O(allowed_prefixes). These checks apply to the lexical,
        normalised path.
      - "Each root is then opened component by component from C(/) with C(openat) and C(O_NOFOLLOW|O_DIRECTORY):
        a symlink anywhere in the path is refused with a message naming the component (so the lexical
        path is the real path), and the walk starts from that pinned descriptor; a component swapped
        for a symlink after the check changes nothing."
      - A missing root fails the module, except in check mode where it is skipped with a warning
        (on a fresh host the docroot may not exist yet).
    type: list
    elements: str
    required: true
    aliases: [paths]
  group:
    description:
      - Team group (name or numeric gid) given to every directory, regular file and symlink.
      - In check mode an unknown group name is accepted (every entry is reported as needing a group
        change) so that C(--check) works on a fresh host; otherwise it is an error.
    type: raw
    required: true
  owner:
    description:
      - Owner (name or numeric uid) to set as well. By default the owner is left alone.
      - In check mode an unknown owner name is accepted and reported as uid C(-2).
    type: raw
  exclude:
    description:
      - "Globs read like C(.gitignore) lines. A pattern without C(/) matches the entry's name at any
        depth: C(.git), C(*.sock), C(cache). A pattern with C(/) matches the path relative to the root,
        anchored at the root: C(uploads/private) (not C(site/uploads/private)), C(/cache) (top level
        only). A leading C(**/) or C(*/) matches at any depth, the root's own entries included, so
        C(*/.git) (the older documented form) excludes C(.git) and C(a/b/.git) alike. C(*), C(?) and
        C([...]) stay within one path component, C(**) crosses C(/) (C(a/**/x)). A trailing C(/) is
        ignored (it does not restrict the match to directories)."
      - Matching entries are neither changed nor counted in RV(scanned); a matching directory is not
        descended into. The root itself is never excluded.
    type: list
    elements: str
    default: []
  forbidden_paths:
    description:
      - Roots that are always refused (compared after normalisation).
    type: list
    elements: str
    default: ['/', '/etc', '/usr', '/var', '/home', '/root', '/bin', '/sbin', '/lib', '/boot', '/dev',
              '/proc', '/sys', '/run', '/tmp', '/opt', '/srv', '/var/www']
  allowed_prefixes:
    description:
      - A root must be strictly below one of these directories (the prefix itself is refused).
    type: list
    elements: str
    default: ['/var/www', '/srv/www', '/srv/http', '/srv/sites']
  web_user:
    description:
      - "DR-06: the web server user (name or uid). With O(web_writable) it gets POSIX ACL named-user
        entries, written as the C(system.posix_acl_access) and C(system.posix_acl_default) xattrs in the
        same walk (no C(acl) package needed), that override its team-group membership: C(r-x) on the
        code, C(rwx) in the writable places (files: limited by the mask, the group bits, so C(r--) and
        C(rw-) unless executable). Every directory gets a default ACL (C(d:user::rwx),
        C(d:user:WEB:r-x) or C(rwx), C(d:group::rwx), C(d:mask::rwx), C(d:other::) as the directory's
        other bits) so what members create inherits both. The owning group entry and the mask are the
        DR-03 group bits, so members keep group write; named entries of other users and groups are kept."
      - "Without O(web_writable), a root whose own ACL still names the web server user (DR-06 managed it
        before) has that entry removed from every entry below (an ACL left with no named entry is
        removed); other roots are not read for ACLs at all."
      - Omitted, ACLs are left alone. In check mode an unknown user reports every entry as drift.
    type: raw
  web_writable:
    description:
      - "DR-06: the places the web server may write, relative to each root: paths or globs (C(*) and C(?)
        within one path component), for example C(uploads), C(wp-content/uploads), C(cache/*). A matching
        directory and everything below it, or a matching file, is writable. Absolute paths, empty, C(.) and
        C(..) components are refused before anything changes."
    type: list
    elements: str
    default: []
  sample_size:
    description:
      - Maximum number of changed entries reported in RV(samples) and in the diff.
    type: int
    default: 20
notes:
  - Needs root (C(become)) to change groups the connecting user is not a member of.
  - C(fs.protected_hardlinks=1) (Debian and RHEL default) stops users from hard-linking files they do
    not own; the walk does not rely on it (hard-linked files are left alone and reported).
  - Linux only for the bind-mount check (C(/proc/self/mountinfo)).
  - Paths in the results are display strings, not raw names; bytes that are not UTF-8 are shown as
    C(\\xNN) and control characters (for example a newline) as C(\\n) or C(\\xNN).
  - Nested roots are walked separately; identical roots are walked once.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff carries counts by kind and a bounded sample (O(sample_size)) of changed paths.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: DR-03 | Docroot group ownership and DR-04 | Docroot permissions
  docroot_perms:
    path:
      - /var/www/html
      - /srv/www/shop
    group: "{{ workgroup_name }}"
    exclude:
      - .git
      - uploads/private
  tags: [docroot, dr-03, dr-04]

- name: DR-04 | Docroot permissions, also enforce the owner
  docroot_perms:
    path: [/srv/sites/blog]
    group: 600
    owner: www-data
    sample_size: 5
"""

RETURN = r"""
changed:
  description: Whether anything was (or, in check mode, would be) changed.
  type: bool
  returned: always
scanned:
  description: Number of entries examined with one lstat each (roots included, excluded entries not).
  type: int
  returned: always
  sample: 100101
group_fixed:
  description: Entries whose group was (or would be) changed.
  type: int
  returned: always
owner_fixed:
  description: Entries whose owner was (or would be) changed (only with O(owner)).
  type: int
  returned: always
mode_fixed:
  description: Entries whose permission bits were (or would be) changed.
  type: int
  returned: always
world_writable_removed:
  description: Entries that were world-writable (subset of RV(mode_fixed)).
  type: int
  returned: always
special_bits_cleared:
  description: Number of entries whose setuid/setgid (files) or setuid/sticky (directories) bits were cleared.
  type: int
  returned: always
special_bits_cleared_paths:
  description: Every path counted in RV(special_bits_cleared), with the old and new mode.
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/cgi/run, before: "4755", after: "0775"}]
skipped_special_files:
  description: FIFOs, sockets and device nodes found (left untouched).
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/php.sock, type: socket}]
skipped_mounts:
  description: Directories on another filesystem than their root, and directories or files that are mount
    points (bind mounts) below it (not descended, not changed).
  type: list
  elements: str
  returned: always
excluded:
  description: Number of entries skipped because they matched O(exclude).
  type: int
  returned: always
vanished:
  description: Number of entries that disappeared during the walk (also listed in RV(errors)).
  type: int
  returned: always
hardlinks_skipped:
  description: Regular files (and symlinks) with more than one hard link, left untouched (counted once per inode).
  type: int
  returned: always
hardlinks_unsafe:
  description: Hard-linked files among RV(hardlinks_skipped) that are world-writable or have setuid/setgid/sticky
    bits; they stay unsafe, so the module fails (check mode reports them as drift).
  type: int
  returned: always
hardlinks_skipped_paths:
  description: The first 100 entries counted in RV(hardlinks_skipped).
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/tool, type: file, mode: "4755", nlink: 2, gid: 0, unsafe: true}]
unfixable:
  description: Entries whose fix failed (for example EPERM on an immutable file); the module fails when
    this is not 0 (never in check mode, where nothing is tried).
  type: int
  returned: always
unfixable_paths:
  description: The first 100 entries counted in RV(unfixable), with the error.
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/locked.php, type: file, mode: "0666", error: Operation not permitted}]
errors:
  description: Entries that could not be examined (vanished, unreadable, replaced during the walk); not a failure.
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/tmp/x, error: vanished during the walk}]
samples:
  description: Up to O(sample_size) changed entries with their old and new mode/group/owner.
  type: list
  elements: dict
  returned: always
  sample:
    - {path: /var/www/html/index.php, type: file, before: {mode: "0644", gid: 0, uid: 33},
       after: {mode: "0664", gid: 600, uid: 33}}
roots:
  description: Per-root breakdown of the counters (skipped roots have C(skipped=true)).
  type: list
  elements: dict
  returned: always
missing_roots:
  description: Roots that do not exist yet and were skipped (check mode only; otherwise the module fails).
  type: list
  elements: str
  returned: always
acl_fixed:
  description: DR-06, entries whose web server ACL entries (access, and default on directories) were (or would be) set.
  type: int
  returned: always
acl_removed:
  description: DR-06, entries whose web server ACL entries were (or would be) removed (no writable place declared
    any more).
  type: int
  returned: always
acl_samples:
  description: Up to O(sample_size) entries counted in RV(acl_fixed) or RV(acl_removed).
  type: list
  elements: dict
  returned: always
  sample: [{path: /var/www/html/checkout.php, type: file, web: r-x}]
web_owned_code:
  description: DR-06, entries of the code (outside O(web_writable)) owned by the web server user, which it can write
    as their owner whatever the ACL says; reported (with a warning), not changed.
  type: int
  returned: always
web_owned_code_paths:
  description: The first 100 entries counted in RV(web_owned_code).
  type: list
  elements: str
  returned: always
web_uid:
  description: Numeric uid of O(web_user) (-1 without it, -2 in check mode when it does not exist yet).
  type: int
  returned: always
gid:
  description: Numeric group applied (-1 in check mode when the group does not exist yet).
  type: int
  returned: always
"""

import errno
import os
import re
import stat
import struct

try:
    import pwd
except ImportError:  # pragma: no cover - non-POSIX
    pwd = None

# The symlink-safe primitives and the group/mode rules live once, in plugins/module_utils, shared
# with the DR-05 upload watcher (roles/docroot/files/vps-upload-perms.py).
from ansible.module_utils.vps_safe_tree import (  # noqa: F401 (re-exported for the tests)
    DIR_FLAGS, DIR_SPECIAL_CLEARED, DIR_TARGET, FILE_FLAGS, FILE_SPECIAL, FILE_TARGET, GOOD_FILE_MODES,
    MOUNTINFO, RootError, _S_IFDIR, _S_IFLNK, _S_IFMT, _S_IFREG, dir_target, display_path, file_target,
    mounts_below, open_root, read_mount_points, resolve_group, unescape_mount_field)

DEFAULT_FORBIDDEN = ['/', '/etc', '/usr', '/var', '/home', '/root', '/bin', '/sbin', '/lib', '/boot',
                     '/dev', '/proc', '/sys', '/run', '/tmp', '/opt', '/srv', '/var/www']
DEFAULT_ALLOWED = ['/var/www', '/srv/www', '/srv/http', '/srv/sites']

# Longest reported lists of hard links and of entries that could not be fixed (counts are exact).
LIST_CAP = 100

# DR-06: POSIX ACLs as the kernel stores them in the system.posix_acl_access / _default xattrs:
# le32 version 2, then entries (le16 tag, le16 perm, le32 id), sorted by tag then id; the id of the
# entries that are not named users or groups is ACL_UNDEFINED_ID.
ACL_ACCESS = 'system.posix_acl_access'
ACL_DEFAULT = 'system.posix_acl_default'
ACL_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
_ACL_HEAD = struct.Struct('<I')
_ACL_ENTRY = struct.Struct('<HHI')
# The web server user's named entry: read and search in the code, read, write and search in the
# writable places (on a file the mask, its group bits, limits it: r-- / rw- unless group-executable).
ACL_WEB_CODE = 0o5
ACL_WEB_WRITABLE = 0o7
_NO_ACL = (errno.ENODATA, getattr(errno, 'ENOATTR', errno.ENODATA))


def acl_encode(entries):
    """xattr value for {(tag, id): perm}: version 2, entries sorted by tag then id."""
    return _ACL_HEAD.pack(ACL_VERSION) + b''.join(
        _ACL_ENTRY.pack(tag, perm, ident) for (tag, ident), perm in sorted(entries.items()))


def acl_decode(raw):
    """{(tag, id): perm} of an xattr value; None when there is none. Raises ValueError."""
    if raw is None:
        return None
    if len(raw) < 4 or (len(raw) - 4) % 8 or _ACL_HEAD.unpack_from(raw)[0] != ACL_VERSION:
        raise ValueError('not a version 2 POSIX ACL (%d bytes)' % len(raw))
    return {(tag, ident): perm for tag, perm, ident in _ACL_ENTRY.iter_unpack(raw[4:])}


def acl_access_for(cur, mode, uid, perm):
    """The access ACL DR-06 wants for an entry of permission bits ``mode`` (the DR-03 target):
    the owner and other entries from the mode, the owning group at least and the mask exactly the
    group bits (members keep what DR-03 gives the group), the web server user ``uid`` with
    ``perm``; named entries of others (``cur``) are kept."""
    entries = {k: v for k, v in (cur or {}).items() if k[0] in (ACL_USER, ACL_GROUP)}
    entries[(ACL_USER, uid)] = perm
    group = (mode >> 3) & 7
    entries[(ACL_USER_OBJ, ACL_UNDEFINED_ID)] = (mode >> 6) & 7
    # The owning group keeps at least the group bits; more (rwx inherited from a default ACL onto a
    # file) is kept, the mask limits it anyway.
    entries[(ACL_GROUP_OBJ, ACL_UNDEFINED_ID)] = group | (cur or {}).get((ACL_GROUP_OBJ, ACL_UNDEFINED_ID), 0)
    entries[(ACL_MASK, ACL_UNDEFINED_ID)] = group
    entries[(ACL_OTHER, ACL_UNDEFINED_ID)] = mode & 7
    return entries


def acl_default_for(cur, mode, uid, perm):
    """The default ACL DR-06 wants on a directory of mode ``mode`` (the DR-03 target): what is
    created inside gets owner rwx, group rwx (members keep group write, the umask does not apply),
    mask rwx, other as the directory's other bits, and the web server user ``perm``."""
    entries = {k: v for k, v in (cur or {}).items() if k[0] in (ACL_USER, ACL_GROUP)}
    entries[(ACL_USER, uid)] = perm
    entries[(ACL_USER_OBJ, ACL_UNDEFINED_ID)] = 7
    entries[(ACL_GROUP_OBJ, ACL_UNDEFINED_ID)] = 7
    entries[(ACL_MASK, ACL_UNDEFINED_ID)] = 7
    entries[(ACL_OTHER, ACL_UNDEFINED_ID)] = mode & 7
    return entries


def acl_without(cur, uid):
    """``cur`` less the web server user's entry; None (remove the ACL) when no named entry is left."""
    if cur is None or (ACL_USER, uid) not in cur:
        return cur
    entries = dict(cur)
    del entries[(ACL_USER, uid)]
    if not any(k[0] in (ACL_USER, ACL_GROUP) for k in entries):
        return None
    return entries


def compile_writable(patterns):
    """fullmatch function (or None) of DR-06's writable places: paths relative to a docroot, ``*``
    and ``?`` within one path component, everything else literal. Raises RootError on a pattern that
    could leave the docroot or name it (absolute, ``..``, ``.``, empty)."""
    parts = []
    for pat in patterns or []:
        if not isinstance(pat, str) or not pat.strip('/'):
            raise RootError('writable place %r must be a non-empty path relative to the docroot' % (pat,))
        if pat.startswith('/'):
            raise RootError('writable place %s is absolute; a path relative to the docroot is required'
                            % display_path(pat))
        if '\x00' in pat:
            raise RootError('writable place %s contains a NUL byte' % display_path(pat))
        comps = pat.rstrip('/').split('/')
        if any(c in ('', '.', '..') for c in comps):
            raise RootError('writable place %s has an empty, "." or ".." component; refusing' % display_path(pat))
        parts.append('/'.join(''.join('[^/]*' if ch == '*' else '[^/]' if ch == '?' else re.escape(ch)
                                      for ch in comp) for comp in comps))
    if not parts:
        return None
    return re.compile('|'.join('(?:%s)' % p for p in parts), re.DOTALL).fullmatch


def _put_acl(fd, name, wanted):
    """Write one ACL xattr through an open descriptor; None removes it."""
    if wanted is None:
        os.removexattr(fd, name)
    else:
        os.setxattr(fd, name, wanted)


def _get_acl(target, name, follow=True):
    """Raw xattr ``name`` of a path or descriptor; None when the entry has none."""
    try:
        return os.getxattr(target, name, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in _NO_ACL:
            return None
        raise


def _normalize(path):
    norm = os.path.normpath(path)
    if norm.startswith('//'):
        norm = '/' + norm.lstrip('/')
    return norm


def _check_policy(path, forbidden, allowed, what):
    if path in forbidden:
        raise RootError('%s %s is a forbidden path (forbidden_paths); refusing' % (what, display_path(path)))
    if not any(path.startswith(p.rstrip('/') + '/') for p in allowed):
        raise RootError('%s %s is not strictly below one of the allowed_prefixes %s; refusing'
                        % (what, display_path(path), ', '.join(allowed)))


def validate_roots(paths, forbidden_paths=None, allowed_prefixes=None, check_mode=False):
    """Validate and open every root before anything changes.

    The policy checks apply to the lexical, normalised path; open_root() then refuses a symlink in
    any component, so the lexical path is the real one. Returns (roots, missing): a list of
    (root, pinned directory descriptor) to walk (deduplicated, in order; the caller closes the
    descriptors) and roots that do not exist (only tolerated in check mode). Raises RootError with
    a clear message (no descriptor left open).
    """
    forbidden = {_normalize(p) for p in (DEFAULT_FORBIDDEN if forbidden_paths is None else forbidden_paths)}
    allowed = [_normalize(p) for p in (DEFAULT_ALLOWED if allowed_prefixes is None else allowed_prefixes)]
    if not paths:
        raise RootError('path must list at least one docroot')
    names = []
    for raw in paths:
        if not isinstance(raw, str) or not raw:
            raise RootError('docroot %r must be a non-empty string' % (raw,))
        if '\x00' in raw:
            raise RootError('docroot %s contains a NUL byte' % display_path(raw))
        if not raw.startswith('/'):
            raise RootError('docroot %s is relative; an absolute path is required' % display_path(raw))
        if '..' in raw.split('/'):
            raise RootError('docroot %s contains a ".." component; refusing' % display_path(raw))
        root = _normalize(raw)
        _check_policy(root, forbidden, allowed, 'docroot')
        if root not in names:
            names.append(root)
    roots, missing = [], []
    try:
        for root in names:
            try:
                fd = open_root(root)
            except FileNotFoundError:
                if check_mode:
                    missing.append(root)
                    continue
                raise RootError('docroot %s does not exist' % display_path(root))
            except OSError as exc:
                raise RootError('docroot %s cannot be opened: %s' % (display_path(root), exc.strerror or exc))
            roots.append((root, fd))
    except BaseException:
        for _root, fd in roots:
            os.close(fd)
        raise
    return roots, missing


def _glob_regex(pat):
    """Regex for one glob: ``*`` and ``?`` stay within a path component, ``**`` crosses ``/``,
    a ``**/`` matches zero or more directories, ``[...]`` is a character class."""
    out = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == '*':
            if pat.startswith('**', i):
                if pat.startswith('**/', i):
                    out.append('(?:.*/)?')
                    i += 3
                else:
                    out.append('.*')
                    i += 2
            else:
                out.append('[^/]*')
                i += 1
        elif c == '?':
            out.append('[^/]')
            i += 1
        elif c == '[':
            j = i + 1
            if j < n and pat[j] in '!^':
                j += 1
            if j < n and pat[j] == ']':
                j += 1
            while j < n and pat[j] != ']':
                j += 1
            if j >= n:
                out.append('\\[')
                i += 1
                continue
            body = pat[i + 1:j]
            neg = body[:1] in ('!', '^')
            if neg:
                body = body[1:]
            body = body.replace('\\', '\\\\').replace('[', '\\[')
            out.append('[' + ('^' if neg else '') + body + ']')
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return ''.join(out)


def compile_excludes(patterns):
    """(name_match, path_match): fullmatch functions (or None) for the gitignore-like exclusions.

    A pattern without ``/`` matches the entry's name at any depth (``.git``, ``*.sock``). A pattern
    with ``/`` matches the path relative to the root, anchored at the root (``uploads/private``,
    ``/cache``); a leading ``**/`` or ``*/`` matches at any depth, the root's own entries included,
    so the older ``*/.git`` keeps excluding every ``.git``. A trailing ``/`` is ignored.
    """
    names, paths = [], []
    for pat in patterns or []:
        if not pat:
            continue
        pat = pat.rstrip('/')
        anchored = pat.startswith('/')
        pat = pat.lstrip('/')
        if not pat:
            continue
        if not anchored and '/' not in pat:
            names.append(_glob_regex(pat))
        elif not anchored and pat.startswith('*/'):
            paths.append('(?:.*/)?' + _glob_regex(pat[2:]))
        else:
            paths.append(_glob_regex(pat))

    def build(parts):
        if not parts:
            return None
        return re.compile('|'.join('(?:%s)' % p for p in parts), re.DOTALL).fullmatch

    return build(names), build(paths)


def resolve_owner(owner, check_mode=False):
    """uid for a name or number; -1 = leave alone. Raises ValueError."""
    if owner is None or owner == '':
        return -1
    if isinstance(owner, bool):
        raise ValueError('owner must be a name or a uid, not a boolean')
    if isinstance(owner, int) or (isinstance(owner, str) and owner.isdigit()):
        if int(owner) < 0:
            raise ValueError('owner must be a name or a uid >= 0, not %s' % owner)
        return int(owner)
    try:
        return pwd.getpwnam(str(owner)).pw_uid
    except KeyError:
        if check_mode:
            return -2  # never equal to a real uid, so every entry is reported
        raise ValueError('owner %s does not exist' % owner)


_COUNTERS = ('scanned', 'group_fixed', 'owner_fixed', 'mode_fixed', 'world_writable_removed',
             'special_bits_cleared', 'excluded', 'vanished', 'error_count', 'hardlinks_skipped',
             'hardlinks_unsafe', 'unfixable', 'acl_fixed', 'acl_removed', 'web_owned_code')


class Remediator:
    """The walk. ``gid``: target gid (-1: unknown group, check mode only).
    ``uid``: -1 leave the owner alone, -2 unknown owner (check mode only), else target uid."""

    def __init__(self, gid, uid=-1, exclude=None, check_mode=False, sample_size=20, web_uid=None,
                 writable=None):
        self.gid = gid
        self.uid = uid
        # DR-06: the web server user's uid (None: ACLs left alone) and the writable places (a
        # compiled fullmatch, None: none declared). self.acl, per root: 'enforce', 'cleanup' or None.
        self.web_uid = web_uid
        self.writable_match = writable
        self.acl = None
        self.acl_cache = {}
        self.acl_samples = []
        self.web_owned_paths = []
        self.exclude_name, self.exclude_path = compile_excludes(exclude)
        self.check_mode = check_mode
        self.sample_size = max(0, int(sample_size))
        self.seen_links = set()
        self.samples = []
        self.errors = []
        self.special_paths = []
        self.skipped_special = []
        self.skipped_mounts = []
        self.hardlink_paths = []
        self.unfixable_paths = []
        self.mounts = frozenset()
        for name in _COUNTERS:
            setattr(self, name, 0)

    # -- reporting ---------------------------------------------------------------------------
    def _error(self, path, exc):
        if isinstance(exc, FileNotFoundError):
            self.vanished += 1
            msg = 'vanished during the walk'
        elif isinstance(exc, OSError):
            msg = exc.strerror or str(exc)
        else:
            msg = str(exc)
        self.error_count += 1
        self.errors.append({'path': display_path(path), 'error': msg})

    def _unfixable(self, path, kind, perm, exc):
        """An entry that needed a fix that failed (EPERM on an immutable file, EROFS...)."""
        self.unfixable += 1
        if len(self.unfixable_paths) < LIST_CAP:
            self.unfixable_paths.append({'path': display_path(path), 'type': kind, 'mode': '%04o' % perm,
                                         'error': exc.strerror or str(exc)})

    def _hardlink(self, path, kind, st):
        """A file (or symlink) with several links: left untouched, reported once per inode."""
        key = (st.st_dev, st.st_ino)
        if key in self.seen_links:
            return
        self.seen_links.add(key)
        perm = st.st_mode & 0o7777
        unsafe = kind == 'file' and bool(perm & (0o002 | FILE_SPECIAL))
        self.hardlinks_skipped += 1
        if unsafe:
            self.hardlinks_unsafe += 1
        if len(self.hardlink_paths) < LIST_CAP:
            self.hardlink_paths.append({'path': display_path(path), 'type': kind, 'mode': '%04o' % perm,
                                        'nlink': st.st_nlink, 'gid': st.st_gid, 'unsafe': unsafe})

    def _special(self, path, kind, before, after):
        self.special_bits_cleared += 1
        self.special_paths.append({'path': display_path(path), 'type': kind,
                                   'before': '%04o' % before, 'after': '%04o' % after})

    def _sample(self, path, kind, before, after, uid0, gid0, uid1, gid1):
        self.samples.append({'path': display_path(path), 'type': kind,
                             'before': {'mode': '%04o' % before, 'uid': uid0, 'gid': gid0},
                             'after': {'mode': '%04o' % after, 'uid': uid1, 'gid': gid1}})

    def _record(self, path, kind, before, after, uid0, gid0, uid1, gid1):
        """Accounting for directories and symlinks (regular files are counted inline in _scan)."""
        if gid0 != gid1:
            self.group_fixed += 1
        if uid0 != uid1:
            self.owner_fixed += 1
        if before != after:
            self.mode_fixed += 1
            if before & 0o002:
                self.world_writable_removed += 1
            if before & DIR_SPECIAL_CLEARED & ~after:
                self._special(path, kind, before, after)
        if len(self.samples) < self.sample_size:
            self._sample(path, kind, before, after, uid0, gid0, uid1, gid1)

    # -- fixes -------------------------------------------------------------------------------
    def _fix_dir(self, fd, st, path):
        """Fix a directory through its open, verified descriptor."""
        perm = st.st_mode & 0o7777
        want = DIR_TARGET[perm]
        uid = self.uid
        new_uid = st.st_uid if uid == -1 else uid
        if want == perm and st.st_gid == self.gid and new_uid == st.st_uid:
            return
        if not self.check_mode:
            chowned = False
            try:
                if st.st_gid != self.gid or new_uid != st.st_uid:
                    os.fchown(fd, uid, self.gid)
                    chowned = True
                if want != perm:
                    os.fchmod(fd, want)
            except OSError as exc:
                if chowned:  # the group (owner) did change
                    self._record(path, 'directory', perm, perm, st.st_uid, st.st_gid, new_uid, self.gid)
                self._unfixable(path, 'directory', perm, exc)
                return
        self._record(path, 'directory', perm, want, st.st_uid, st.st_gid, new_uid, self.gid)

    def _fix_file(self, dfd, name, st, dirpath):
        """Fix one regular file through an O_NOFOLLOW descriptor verified against the lstat.

        Returns (perm_before, perm_after, uid_before, gid_before) of what was (or, in check
        mode, would be) changed, or None. The caller does the accounting (hot path). A file with
        several hard links may be a link to a file outside the docroot: it is left untouched.
        """
        if st.st_nlink > 1:
            self._hardlink(dirpath + '/' + name, 'file', st)
            return None
        uid = self.uid
        gid = self.gid
        if self.check_mode:
            perm = st.st_mode & 0o7777
            return perm, FILE_TARGET[perm], st.st_uid, st.st_gid
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._error(dirpath + '/' + name,
                            OSError(errno.ELOOP, 'replaced by a symlink during the walk; not followed'))
            elif exc.errno == errno.ENOENT:
                self._error(dirpath + '/' + name, exc)
            else:
                self._unfixable(dirpath + '/' + name, 'file', st.st_mode & 0o7777, exc)
            return None
        chowned = False
        perm = st.st_mode & 0o7777
        try:
            fst = os.fstat(fd)
            if fst.st_ino != st.st_ino or fst.st_dev != st.st_dev:
                self._error(dirpath + '/' + name, 'replaced during the walk; skipped')
                return None
            perm = fst.st_mode & 0o7777
            if fst.st_nlink > 1:  # hard-linked since the lstat
                self._hardlink(dirpath + '/' + name, 'file', fst)
                return None
            want = FILE_TARGET[perm]
            uid0 = fst.st_uid
            gid0 = fst.st_gid
            if gid0 != gid or (uid != -1 and uid0 != uid):
                os.fchown(fd, uid, gid)  # before fchmod: chown may clear setuid/setgid
                chowned = True
            elif want == perm:
                return None  # fixed meanwhile
            if want != perm:
                os.fchmod(fd, want)
        except OSError as exc:
            if chowned:  # the group (owner) did change: account for it, the mode did not
                if gid0 != gid:
                    self.group_fixed += 1
                if uid != -1 and uid0 != uid:
                    self.owner_fixed += 1
            self._unfixable(dirpath + '/' + name, 'file', perm, exc)
            return None
        finally:
            os.close(fd)
        return perm, want, uid0, gid0

    def _fix_link(self, dfd, name, st, dirpath):
        if st.st_nlink > 1:  # a hard link to a symlink: its group is shared with the other name
            self._hardlink(dirpath + '/' + name, 'link', st)
            return
        uid = self.uid
        new_uid = st.st_uid if uid == -1 else uid
        perm = st.st_mode & 0o7777
        if not self.check_mode:
            try:
                os.chown(name, uid, self.gid, dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    self._error(dirpath + '/' + name, exc)
                else:
                    self._unfixable(dirpath + '/' + name, 'link', perm, exc)
                return
        self._record(dirpath + '/' + name, 'link', perm, perm, st.st_uid, st.st_gid, new_uid, self.gid)

    # -- DR-06: the web server user's ACL entries --------------------------------------------
    def _acl_mode(self, fd, root):
        """'enforce' with writable places declared; 'cleanup' without, when the root still carries
        the web server user's entry (DR-06 managed this tree before); else None (ACLs left alone)."""
        if self.web_uid is None:
            return None
        if self.writable_match is not None:
            return 'enforce'
        try:
            cur = acl_decode(_get_acl(fd, ACL_ACCESS))
        except (OSError, ValueError) as exc:
            self._error(root, 'ACL unreadable: %s' % (getattr(exc, 'strerror', None) or exc))
            return None
        return 'cleanup' if cur and (ACL_USER, self.web_uid) in cur else None

    def _acl_wanted(self, raw, mode, writable, default=False):
        """The xattr value DR-06 wants (None: no ACL) from the current one ``raw``, cached by input:
        a converged tree costs one getxattr and one dict lookup per entry."""
        if self.web_uid < 0:  # the web server user does not exist yet (check mode): all drift
            return b'?'
        key = (raw, mode, writable, default)
        try:
            return self.acl_cache[key]
        except KeyError:
            pass
        cur = acl_decode(raw)
        if self.acl == 'cleanup':
            want = acl_without(cur, self.web_uid)
        else:
            perm = ACL_WEB_WRITABLE if writable else ACL_WEB_CODE
            want = (acl_default_for if default else acl_access_for)(cur, mode, self.web_uid, perm)
        wanted = raw if want is cur else (None if want is None else acl_encode(want))
        if len(self.acl_cache) < 4096:
            self.acl_cache[key] = wanted
        return wanted

    def _acl_done(self, path, kind, writable, failed=None):
        if failed is not None:
            if not isinstance(failed, OSError):  # an ACL that cannot be parsed
                failed = OSError(errno.EINVAL, 'ACL: %s' % failed)
            self._unfixable(path, kind, 0, failed)
            return
        if self.acl == 'cleanup':
            self.acl_removed += 1
            web = 'removed'
        else:
            self.acl_fixed += 1
            web = 'rwx' if writable else 'r-x'
        if len(self.acl_samples) < self.sample_size:
            self.acl_samples.append({'path': display_path(path), 'type': kind, 'web': web})

    def _web_owned(self, path, st, writable):
        """Code owned by the web server user: as the owner it may write it (or change its ACL)
        whatever DR-06 sets; reported, left alone."""
        if self.acl == 'enforce' and not writable and st.st_uid == self.web_uid:
            self.web_owned_code += 1
            if len(self.web_owned_paths) < LIST_CAP:
                self.web_owned_paths.append(display_path(path))

    def _acl_dir(self, fd, st, path, writable):
        """The access and default ACLs of a directory, through its open, verified descriptor."""
        self._web_owned(path, st, writable)
        mode = DIR_TARGET[st.st_mode & 0o7777]
        try:
            todo = []
            for name, default in ((ACL_ACCESS, False), (ACL_DEFAULT, True)):
                raw = _get_acl(fd, name)
                wanted = self._acl_wanted(raw, mode, writable, default)
                if wanted != raw:
                    todo.append((name, wanted))
            if not todo:
                return
            if not self.check_mode:
                for name, wanted in todo:
                    _put_acl(fd, name, wanted)
        except (OSError, ValueError) as exc:
            self._acl_done(path, 'directory', writable, exc)
            return
        self._acl_done(path, 'directory', writable)

    def _acl_file(self, dfd, name, st, dirpath, mode, writable):
        """The access ACL of a regular file (``mode``: its DR-03 target). Read by name without
        following a symlink (lgetxattr below the pinned directory); changed only through an
        O_NOFOLLOW descriptor verified against the lstat, as DR-03 does."""
        path = dirpath + '/' + name
        self._web_owned(path, st, writable)
        try:
            raw = _get_acl('/proc/self/fd/%d/%s' % (dfd, name), ACL_ACCESS, follow=False)
            if self._acl_wanted(raw, mode, writable) == raw:
                return
        except FileNotFoundError as exc:
            self._error(path, exc)
            return
        except (OSError, ValueError) as exc:
            self._acl_done(path, 'file', writable, exc)
            return
        if not self.check_mode:
            try:
                fd = os.open(name, FILE_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOENT):
                    self._error(path, exc if exc.errno == errno.ENOENT else OSError(
                        errno.ELOOP, 'replaced by a symlink during the walk; not followed'))
                else:
                    self._acl_done(path, 'file', writable, exc)
                return
            try:
                fst = os.fstat(fd)
                if fst.st_ino != st.st_ino or fst.st_dev != st.st_dev or fst.st_nlink > 1:
                    self._error(path, 'replaced during the walk; skipped')
                    return
                raw = _get_acl(fd, ACL_ACCESS)
                wanted = self._acl_wanted(raw, FILE_TARGET[fst.st_mode & 0o7777], writable)
                if wanted == raw:
                    return
                _put_acl(fd, ACL_ACCESS, wanted)
            except (OSError, ValueError) as exc:
                self._acl_done(path, 'file', writable, exc)
                return
            finally:
                os.close(fd)
        self._acl_done(path, 'file', writable)

    # -- walk --------------------------------------------------------------------------------
    def _scan(self, fd, path, rel, dev, writable=False):
        """Examine every entry of one open directory; fix non-directories; return subdirs
        (name, inode, writable: in a DR-06 writable place)."""
        subdirs = []
        try:
            it = os.scandir(fd)
        except OSError as exc:
            self._error(path, exc)
            return subdirs
        gid = self.gid
        uid = self.uid
        check_owner = uid != -1
        good = GOOD_FILE_MODES
        excl_name = self.exclude_name
        excl_path = self.exclude_path
        mounts = self.mounts
        fix_file = self._fix_file
        acl = self.acl
        wmatch = self.writable_match if acl == 'enforce' else None
        acl_file = self._acl_file
        n = group_fixed = owner_fixed = mode_fixed = ww_removed = 0
        try:
            with it:
                for entry in it:
                    if excl_name is not None and excl_name(entry.name) or \
                            excl_path is not None and excl_path(rel + entry.name):
                        self.excluded += 1
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        self._error(path + '/' + entry.name, exc)
                        continue
                    n += 1
                    mode = st.st_mode
                    # Hot path first: a compliant regular file costs one set lookup and one compare.
                    if mode in good:
                        if st.st_gid == gid and (not check_owner or st.st_uid == uid):
                            if acl is not None and st.st_nlink == 1 and \
                                    not (mounts and path + '/' + entry.name in mounts):
                                acl_file(fd, entry.name, st, path, mode & 0o7777, writable or (
                                    wmatch is not None and wmatch(rel + entry.name) is not None))
                            continue
                    elif mode & _S_IFMT != _S_IFREG:
                        kind = mode & _S_IFMT
                        if kind == _S_IFDIR:
                            if st.st_dev != dev or (mounts and path + '/' + entry.name in mounts):
                                self.skipped_mounts.append(display_path(path + '/' + entry.name))
                            else:
                                subdirs.append((entry.name, st.st_ino, writable or (
                                    wmatch is not None and wmatch(rel + entry.name) is not None)))
                        elif kind == _S_IFLNK:
                            if st.st_gid != gid or (check_owner and st.st_uid != uid):
                                self._fix_link(fd, entry.name, st, path)
                        else:
                            self.skipped_special.append({'path': display_path(path + '/' + entry.name),
                                                         'type': _special_kind(mode)})
                        continue
                    if mounts and path + '/' + entry.name in mounts:  # a file bind-mounted here
                        self.skipped_mounts.append(display_path(path + '/' + entry.name))
                        continue
                    # A regular file needing a fix; accounting inline (the first run's hot path).
                    unfixable = self.unfixable
                    done = fix_file(fd, entry.name, st, path)
                    if acl is not None and st.st_nlink == 1 and self.unfixable == unfixable:
                        acl_file(fd, entry.name, st, path, FILE_TARGET[mode & 0o7777], writable or (
                            wmatch is not None and wmatch(rel + entry.name) is not None))
                    if done is None:
                        continue
                    perm, want, uid0, gid0 = done
                    if gid0 != gid:
                        group_fixed += 1
                    if check_owner and uid0 != uid:
                        owner_fixed += 1
                    if perm != want:
                        mode_fixed += 1
                        if perm & 0o002:
                            ww_removed += 1
                        if perm & FILE_SPECIAL:
                            self._special(path + '/' + entry.name, 'file', perm, want)
                    if len(self.samples) < self.sample_size:
                        self._sample(path + '/' + entry.name, 'file', perm, want, uid0, gid0,
                                     uid if check_owner else uid0, gid)
        except OSError as exc:  # error while reading the directory itself
            self._error(path, exc)
        self.group_fixed += group_fixed
        self.owner_fixed += owner_fixed
        self.mode_fixed += mode_fixed
        self.world_writable_removed += ww_removed
        self.scanned += n
        return subdirs

    def walk(self, root, fd, mounts=frozenset()):
        """Walk one validated root from its pinned descriptor ``fd`` (closed here); ``mounts``:
        mount points below the root (never entered). Returns the root's counters."""
        before = {name: getattr(self, name) for name in _COUNTERS}
        result = {'path': display_path(root)}
        self.mounts = mounts
        stack = []
        try:
            st = os.fstat(fd)
            dev = st.st_dev
            self.scanned += 1
            self.acl = self._acl_mode(fd, root)
            result['acl'] = self.acl or 'off'
            self._fix_dir(fd, st, root)
            if self.acl is not None:
                self._acl_dir(fd, st, root, False)
            stack.append((fd, root, '', self._scan(fd, root, '', dev, False)))
            fd = -1
            while stack:
                pfd, ppath, prel, subdirs = stack[-1]
                if not subdirs:
                    stack.pop()
                    os.close(pfd)
                    continue
                name, ino, writable = subdirs.pop()
                cpath = ppath + '/' + name
                try:
                    cfd = os.open(name, DIR_FLAGS, dir_fd=pfd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        exc = OSError(exc.errno, 'replaced during the walk; not followed')
                    self._error(cpath, exc)
                    continue
                try:
                    cst = os.fstat(cfd)
                    if cst.st_ino != ino or cst.st_dev != dev:
                        os.close(cfd)
                        self._error(cpath, 'replaced during the walk; skipped')
                        continue
                    self._fix_dir(cfd, cst, cpath)
                    if self.acl is not None:
                        self._acl_dir(cfd, cst, cpath, writable)
                    crel = prel + name + '/'
                    stack.append((cfd, cpath, crel, self._scan(cfd, cpath, crel, dev, writable)))
                except BaseException:
                    if not stack or stack[-1][0] != cfd:
                        os.close(cfd)
                    raise
        finally:
            if fd >= 0:
                os.close(fd)
            for frame in stack:
                os.close(frame[0])
            self.mounts = frozenset()
            self.acl = None
        result.update(self._delta(before))
        return result

    def _delta(self, before):
        return {name: getattr(self, name) - before[name] for name in _COUNTERS}

    def result(self):
        res = {name: getattr(self, name) for name in _COUNTERS}
        del res['error_count']
        res.update(samples=self.samples, errors=self.errors,
                   special_bits_cleared_paths=self.special_paths,
                   skipped_special_files=self.skipped_special,
                   skipped_mounts=self.skipped_mounts,
                   hardlinks_skipped_paths=self.hardlink_paths,
                   unfixable_paths=self.unfixable_paths,
                   acl_samples=self.acl_samples,
                   web_owned_code_paths=self.web_owned_paths)
        res['changed'] = bool(res['group_fixed'] or res['owner_fixed'] or res['mode_fixed']
                              or res['acl_fixed'] or res['acl_removed'])
        return res


def _special_kind(mode):
    if stat.S_ISFIFO(mode):
        return 'fifo'
    if stat.S_ISSOCK(mode):
        return 'socket'
    if stat.S_ISCHR(mode):
        return 'char device'
    if stat.S_ISBLK(mode):
        return 'block device'
    return 'unknown'


def remediate(paths, group, owner=None, exclude=None, check_mode=False, sample_size=20,
              forbidden_paths=None, allowed_prefixes=None, mountinfo=MOUNTINFO, web_user=None,
              web_writable=None):
    """Pure entry point (used by the module, the tests and the benchmark).

    Raises RootError / ValueError before anything changes on bad input. ``mountinfo``: the mount
    table to read (the tests inject one to simulate bind mounts).
    """
    writable = compile_writable(web_writable)
    roots, missing = validate_roots(paths, forbidden_paths, allowed_prefixes, check_mode)
    try:
        gid = resolve_group(group, check_mode)
        uid = resolve_owner(owner, check_mode)
        web_uid = None
        if web_user is not None and web_user != '':
            try:
                web_uid = resolve_owner(web_user, check_mode)
            except ValueError:
                if writable is not None:
                    raise
                # Nothing declared and no such user: no entry of it to remove either.
        rem = Remediator(gid, uid, exclude, check_mode, sample_size, web_uid, writable)
        points = read_mount_points(mountinfo) if roots else set()
    except BaseException:
        for _root, fd in roots:
            os.close(fd)
        raise
    per_root = []
    while roots:
        root, fd = roots.pop(0)
        try:
            per_root.append(rem.walk(root, fd, mounts_below(root, points)))
        except BaseException:
            for _root, other in roots:
                os.close(other)
            raise
    per_root.extend({'path': display_path(m), 'skipped': True} for m in missing)
    res = rem.result()
    res['roots'] = per_root
    res['gid'] = gid
    res['web_uid'] = -1 if web_uid is None else web_uid
    res['missing_roots'] = [display_path(m) for m in missing]
    return res


def render_diff(res, group, sample_size):
    """Ansible diff: counts by kind plus the bounded sample, old state vs new state."""
    head = ['scanned: %d' % res['scanned']]
    counts = ['group fixed: %d' % res['group_fixed'],
              'owner fixed: %d' % res['owner_fixed'],
              'mode fixed: %d' % res['mode_fixed'],
              'world-writable removed: %d' % res['world_writable_removed'],
              'special bits cleared: %d' % res['special_bits_cleared']]
    if res.get('web_uid', -1) != -1:  # DR-06 asked for
        counts += ['web server ACL set: %d' % res['acl_fixed'], 'web server ACL removed: %d' % res['acl_removed']]
    before = head + ['needing a fix: ' + c for c in counts]
    after = head + counts
    shown = res['samples'][:sample_size]
    if shown:
        before.append('sample of changed paths (%d shown):' % len(shown))
        after.append('sample of changed paths (%d shown, group %s):' % (len(shown), group))
        for s in shown:
            b, a = s['before'], s['after']
            before.append('  %s %s mode=%s uid=%s gid=%s' % (s['type'], s['path'], b['mode'], b['uid'], b['gid']))
            after.append('  %s %s mode=%s uid=%s gid=%s' % (s['type'], s['path'], a['mode'], a['uid'], a['gid']))
    return {'before': '\n'.join(before) + '\n', 'after': '\n'.join(after) + '\n',
            'before_header': 'docroot permissions (before)', 'after_header': 'docroot permissions (after)'}


def _first(items, fmt, limit=5):
    shown = ', '.join(fmt(i) for i in items[:limit])
    return shown + (', ...' if len(items) > limit else '')


def main():
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='list', elements='str', required=True, aliases=['paths']),
            group=dict(type='raw', required=True),
            owner=dict(type='raw'),
            exclude=dict(type='list', elements='str', default=[]),
            forbidden_paths=dict(type='list', elements='str', default=list(DEFAULT_FORBIDDEN)),
            allowed_prefixes=dict(type='list', elements='str', default=list(DEFAULT_ALLOWED)),
            sample_size=dict(type='int', default=20),
            web_user=dict(type='raw'),
            web_writable=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p['sample_size'] < 0:
        module.fail_json(msg='sample_size must be >= 0')
    try:
        res = remediate(p['path'], p['group'], owner=p['owner'], exclude=p['exclude'],
                        check_mode=module.check_mode, sample_size=p['sample_size'],
                        forbidden_paths=p['forbidden_paths'], allowed_prefixes=p['allowed_prefixes'],
                        web_user=p['web_user'], web_writable=p['web_writable'])
    except (RootError, ValueError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    if res['gid'] == -1:
        module.warn('group %s does not exist yet (check mode): every entry is reported as needing a group change'
                    % p['group'])
    for missing in res['missing_roots']:
        module.warn('docroot %s does not exist yet (check mode): skipped' % missing)
    if res['errors']:
        module.warn('%d docroot entries could not be examined (vanished: %d); see errors'
                    % (len(res['errors']), res['vanished']))
    if res['hardlinks_skipped']:
        module.warn('%d hard-linked files in the docroots left untouched (a hard link may point outside the '
                    'docroot), %d of them world-writable or with setuid/setgid/sticky bits; see '
                    'hardlinks_skipped_paths: %s'
                    % (res['hardlinks_skipped'], res['hardlinks_unsafe'],
                       _first(res['hardlinks_skipped_paths'], lambda h: '%s (%s, %d links)'
                              % (h['path'], h['mode'], h['nlink']))))
    if res['web_owned_code']:
        module.warn('%d entries of the site code (outside docroot_web_writable) are owned by the web server user: '
                    'as their owner it can still write them or change their ACL (DR-06); give them another '
                    'owner (docroot_owner): %s' % (res['web_owned_code'], _first(res['web_owned_code_paths'], str)))
    if module._diff:
        res['diff'] = render_diff(res, p['group'], p['sample_size'])
    bad = res['unfixable'] + res['hardlinks_unsafe']
    if bad:
        msg = ('%d docroot entries stay non-compliant: %d could not be fixed (%s), %d hard-linked files are '
               'world-writable or have special bits (%s); fix or unlink them by hand'
               % (bad, res['unfixable'],
                  _first(res['unfixable_paths'], lambda u: '%s: %s' % (u['path'], u['error'])) or 'none',
                  res['hardlinks_unsafe'],
                  _first([h for h in res['hardlinks_skipped_paths'] if h['unsafe']],
                         lambda h: '%s %s' % (h['path'], h['mode'])) or 'none'))
        if not module.check_mode:
            module.fail_json(msg=msg, **res)
        module.warn(msg + ' (check mode: drift)')
    module.exit_json(**res)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""CT-01: collect a breached host's evidence into a root-only bundle, read-only, before anything changes."""

from __future__ import annotations

DOCUMENTATION = r"""
module: contain_evidence
short_description: Collect the evidence of a host thought breached into a root-only bundle (CT-01)
description:
  - Writes a new directory O(dest) (mode 0700, refused when it exists) holding the journal
    (C(journalctl -o export), gzip), the process list with the sha256 of each executable read
    through C(/proc/PID/exe) (so a binary deleted after it started is still hashed, and copied),
    the open and listening sockets (the kernel's C(/proc/net) tables, parsed and mapped to their
    processes, and C(ss) output where iproute2 is installed), crontabs, at jobs and systemd
    timers and unit files, and the entries of the docroots changed (mtime or ctime) in the last
    O(changed_days) days.
  - Never follows a symlink: the docroot walk uses C(lstat), does not leave the docroot's file
    system, records links as links, and opens regular files with C(O_NOFOLLOW) and checks the
    opened descriptor is the entry it listed before it reads it.
  - Copied files are stored by content (C(files/<sha256>)); their original paths, escaped, are in
    C(files.tsv), so a file name chosen by an attacker never becomes a path in the bundle.
  - Writes C(SHA256SUMS) (C(sha256sum -c) format, relative paths) of every file of the bundle,
    then a tar archive of the bundle next to it (O(dest).tar) with its own sha256 file.
  - Changes nothing outside O(dest) and its archive. In check mode it writes nothing and
    reports what it would collect.
options:
  dest:
    description: The bundle directory, on the host; its parent is created root-only (0700).
    type: path
    required: true
  docroots:
    description: Docroots whose recently changed entries are listed and copied.
    type: list
    elements: path
    default: []
  changed_days:
    description: An entry changed (mtime or ctime) in the last this many days is listed.
    type: int
    default: 7
  copy_max_bytes:
    description: Regular files larger than this are listed and hashed but not copied.
    type: int
    default: 52428800
  journal:
    description: Export the journal (journalctl -o export, gzip).
    type: bool
    default: true
  extra_paths:
    description: Directories or files whose regular files are copied (crontabs, timers, unit files).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: vps-baseline
"""

EXAMPLES = r"""
- name: CT-01 | Evidence collected into a root-only bundle
  contain_evidence:
    dest: /var/lib/vps-baseline/evidence/20261203T150000Z
    docroots: [/var/www/html]
    changed_days: 7
"""

RETURN = r"""
bundle:
  description: The bundle directory.
  type: str
  returned: always
archive:
  description: The tar archive of the bundle.
  type: str
  returned: always
archive_sha256:
  description: sha256 of the archive (empty in check mode).
  type: str
  returned: always
manifest_sha256:
  description: sha256 of SHA256SUMS (empty in check mode).
  type: str
  returned: always
counts:
  description: Processes, sockets, changed docroot entries, copied files, files in the manifest.
  type: dict
  returned: always
"""

import gzip
import hashlib
import json
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
import tarfile
import time

from ansible.module_utils.basic import AnsibleModule

CHUNK = 1024 * 1024
# Where an intruder drops a binary: its executable is copied into the bundle when a process runs it.
SUSPECT_PREFIXES = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/home/", "/var/www/", "/srv/")
TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
    "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}
PROC_NET = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix", "packet")
# Commands whose output is kept when the tool is installed: (file, argv).
COMMANDS = (
    ("host/uname.txt", ["uname", "-a"]),
    ("host/uptime.txt", ["uptime"]),
    ("host/who.txt", ["who", "-a"]),
    ("host/last.txt", ["last", "-Fwx", "-n", "500"]),
    ("host/ps.txt", ["ps", "auxwwf"]),
    ("host/ip-addr.txt", ["ip", "-s", "addr"]),
    ("host/mounts.txt", ["cat", "/proc/mounts"]),
    ("sockets/ss.txt", ["ss", "-tuapenwx"]),
    ("timers/list-timers.txt", ["systemctl", "list-timers", "--all", "--no-pager"]),
    ("timers/unit-files.txt", ["systemctl", "list-unit-files", "--no-pager"]),
    ("timers/units.txt", ["systemctl", "list-units", "--all", "--no-pager"]),
    ("nft/ruleset.txt", ["nft", "list", "ruleset"]),
)


def escape(path):
    """A path as one printable line: backslash escapes for anything but printable ASCII."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    out = []
    for byte in raw:
        if 0x21 <= byte <= 0x7E and byte != 0x5C:
            out.append(chr(byte))
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)


def sha256_fd(fd):
    digest = hashlib.sha256()
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


def sha256_file(path):
    with open(path, "rb") as handle:
        return sha256_fd(handle.fileno())


class Bundle:
    """The bundle directory: every write goes through here (relative names chosen by this module)."""

    def __init__(self, root, copy_max_bytes):
        self.root = root
        self.copy_max_bytes = copy_max_bytes
        self.copied = {}

    def path(self, name):
        full = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(full), mode=0o700, exist_ok=True)
        return full

    def write(self, name, data):
        with open(self.path(name), "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)

    def copy_fd(self, fd, size):
        """Copy an open file by content into files/<sha256>; returns (sha256, copied)."""
        os.lseek(fd, 0, os.SEEK_SET)
        digest = sha256_fd(fd)
        if size > self.copy_max_bytes:
            return digest, False
        name = "files/" + digest
        if digest not in self.copied:
            os.lseek(fd, 0, os.SEEK_SET)
            with open(self.path(name), "wb") as out:
                while True:
                    chunk = os.read(fd, CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
            self.copied[digest] = size
        return digest, True


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def processes(bundle, suspect_prefixes=SUSPECT_PREFIXES):
    """Every process: ids, user, command line, executable and its sha256 read through /proc/PID/exe."""
    found = []
    for entry in sorted((e for e in os.listdir("/proc") if e.isdigit()), key=int):
        base = "/proc/" + entry
        try:
            with open(base + "/status", "rb") as handle:
                status = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
            with open(base + "/cmdline", "rb") as handle:
                cmdline = handle.read().rstrip(b"\0").split(b"\0")
        except OSError:
            continue  # gone meanwhile
        uid = int(status.get(b"Uid", b"-1").split()[0])
        item = {
            "pid": int(entry),
            "ppid": int(status.get(b"PPid", b"0").strip() or 0),
            "uid": uid,
            "user": user_name(uid),
            "name": status.get(b"Name", b"").strip().decode("utf-8", "backslashreplace"),
            "cmdline": [part.decode("utf-8", "backslashreplace") for part in cmdline if part],
            "exe": None, "exe_deleted": False, "exe_sha256": None, "exe_copied": False, "exe_source": None,
        }
        try:
            exe = os.readlink(base + "/exe")
        except OSError as err:
            exe = None  # kernel thread, gone, or no CAP_SYS_PTRACE (a container's root, another user's process)
            if item["cmdline"]:
                unverified(item, err)
        if exe is not None:
            item["exe"] = exe
            item["exe_source"] = "/proc/PID/exe"
            item["exe_deleted"] = exe.endswith(" (deleted)")
            try:
                fd = os.open(base + "/exe", os.O_RDONLY)
            except OSError:
                fd = None
            if fd is not None:
                try:
                    size = os.fstat(fd).st_size
                    suspect = item["exe_deleted"] or exe.startswith(suspect_prefixes)
                    if suspect:
                        item["exe_sha256"], item["exe_copied"] = bundle.copy_fd(fd, size)
                    else:
                        item["exe_sha256"] = sha256_fd(fd)
                except OSError:
                    pass
                finally:
                    os.close(fd)
        found.append(item)
    return found


def unverified(item, err):
    """Without /proc/PID/exe (root without CAP_SYS_PTRACE, as in a container, cannot read another
    user's): hash the file argv[0] names, marked unverified (a process chooses its argv[0]); never
    copied, and only a regular file."""
    argv0 = item["cmdline"][0]
    path = argv0 if argv0.startswith("/") else shutil.which(argv0)
    item["exe_source"] = "argv[0], unverified (/proc/PID/exe: %s)" % err.strerror
    if not path:
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            item["exe"], item["exe_sha256"] = path, sha256_fd(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def socket_owners():
    """{socket inode: [pid, ...]} from every process's descriptors."""
    owners = {}
    for entry in (e for e in os.listdir("/proc") if e.isdigit()):
        fd_dir = "/proc/%s/fd" % entry
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(target[8:-1], set()).add(int(entry))
    return {inode: sorted(pids) for inode, pids in owners.items()}


def decode_address(text):
    """'0100007F:0016' (or the IPv6 form) to ('127.0.0.1', 22)."""
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, struct.pack("<I", struct.unpack(">I", raw)[0]))
    else:
        words = struct.unpack(">4I", raw)
        host = socket.inet_ntop(socket.AF_INET6, struct.pack("<4I", *words))
    return host, int(port, 16)


def parse_proc_net(kind, text, owners):
    """The rows of /proc/net/{tcp,udp,raw}{,6}, decoded, with the processes that hold each socket."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote = decode_address(fields[1]), decode_address(fields[2])
        state = TCP_STATES.get(fields[3], fields[3]) if kind.startswith("tcp") else fields[3]
        rows.append({
            "proto": kind, "local": "%s:%d" % local, "remote": "%s:%d" % remote, "state": state,
            "uid": int(fields[7]), "inode": fields[9], "pids": owners.get(fields[9], []),
        })
    return rows


def sockets(bundle):
    owners = socket_owners()
    rows = []
    for kind in PROC_NET:
        try:
            with open("/proc/net/" + kind) as handle:
                text = handle.read()
        except OSError:
            continue
        bundle.write("sockets/proc-net-" + kind, text)
        if kind in ("unix", "packet"):
            continue
        rows += parse_proc_net(kind, text, owners)
    return rows


def changed_entries(bundle, top, since):
    """Entries below ``top`` changed since ``since`` (mtime or ctime), without following links
    and without leaving top's file system; regular files hashed (and copied) through a
    descriptor opened with O_NOFOLLOW that is checked to be the entry listed."""
    rows, notes = [], []
    try:
        top_stat = os.lstat(top)
    except OSError as err:
        return rows, ["%s: %s" % (escape(top), err.strerror)]
    if not stat.S_ISDIR(top_stat.st_mode):
        return rows, ["%s: not a directory (a symlink is never followed), not walked" % escape(top)]
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError as err:
            notes.append("%s: %s" % (escape(directory), err.strerror))
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if info.st_dev == top_stat.st_dev:
                    stack.append(path)
                else:
                    notes.append("%s: another file system, not entered" % escape(path))
            if max(info.st_mtime, info.st_ctime) < since:
                continue
            row = {
                "path": escape(path), "type": file_type(info.st_mode), "mode": "%04o" % stat.S_IMODE(info.st_mode),
                "uid": info.st_uid, "gid": info.st_gid, "size": info.st_size,
                "mtime": int(info.st_mtime), "ctime": int(info.st_ctime), "sha256": "", "copied": False, "link": "",
            }
            if stat.S_ISLNK(info.st_mode):
                try:
                    row["link"] = escape(os.readlink(path))
                except OSError:
                    pass
            elif stat.S_ISREG(info.st_mode):
                row["sha256"], row["copied"] = copy_regular(bundle, path, info)
            rows.append(row)
    return rows, notes


def copy_regular(bundle, path, info):
    """(sha256, copied) of a regular file opened without following a link; ('', False) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return "", False
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            return "", False
        return bundle.copy_fd(fd, opened.st_size)
    except OSError:
        return "", False
    finally:
        os.close(fd)


def file_type(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "link"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char"),
                       (stat.S_ISBLK, "block")):
        if test(mode):
            return name
    return "other"


def copy_paths(bundle, paths):
    """Regular files below each path (crontabs, timers, unit files), copied by content; links listed."""
    rows, notes = [], []
    for top in paths:
        rows_top, notes_top = changed_entries(bundle, top, since=0) if os.path.isdir(top) and not os.path.islink(top) \
            else single_file(bundle, top)
        rows += rows_top
        notes += notes_top
    return rows, notes


def single_file(bundle, path):
    try:
        info = os.lstat(path)
    except OSError:
        return [], []
    row = {"path": escape(path), "type": file_type(info.st_mode), "mode": "%04o" % stat.S_IMODE(info.st_mode),
           "uid": info.st_uid, "gid": info.st_gid, "size": info.st_size, "mtime": int(info.st_mtime),
           "ctime": int(info.st_ctime), "sha256": "", "copied": False, "link": ""}
    if stat.S_ISREG(info.st_mode):
        row["sha256"], row["copied"] = copy_regular(bundle, path, info)
    elif stat.S_ISLNK(info.st_mode):
        row["link"] = escape(os.readlink(path))
    return [row], []


TSV_FIELDS = ("type", "mode", "uid", "gid", "size", "mtime", "ctime", "sha256", "copied", "path", "link")


def tsv(rows):
    lines = ["\t".join(TSV_FIELDS)]
    for row in rows:
        lines.append("\t".join(str(row[field]) for field in TSV_FIELDS))
    return "\n".join(lines) + "\n"


def run_commands(bundle, commands=COMMANDS):
    ran = []
    for name, argv in commands:
        if shutil.which(argv[0]) is None:
            continue
        result = subprocess.run(argv, capture_output=True, check=False, timeout=120)
        bundle.write(name, result.stdout + (b"\n# stderr:\n" + result.stderr if result.stderr else b""))
        ran.append(name)
    return ran


def export_journal(bundle):
    """journalctl -o export, streamed through gzip into the bundle; returns journalctl's exit code."""
    if shutil.which("journalctl") is None:
        return None
    with gzip.open(bundle.path("journal/journal.export.gz"), "wb", compresslevel=6) as out:
        proc = subprocess.Popen(["journalctl", "--no-pager", "-o", "export"], stdout=subprocess.PIPE)
        for chunk in iter(lambda: proc.stdout.read(CHUNK), b""):
            out.write(chunk)
        return proc.wait()


def manifest(root, name="SHA256SUMS"):
    """Write sha256sum -c lines for every regular file below root (itself excluded); return its sha256."""
    lines = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for file_name in sorted(files):
            full = os.path.join(directory, file_name)
            rel = os.path.relpath(full, root)
            if rel == name or not os.path.isfile(full) or os.path.islink(full):
                continue
            lines.append("%s  %s\n" % (sha256_file(full), rel))
    with open(os.path.join(root, name), "w") as handle:
        handle.write("".join(lines))
    return sha256_file(os.path.join(root, name)), len(lines)


def archive(root):
    """A tar of the bundle directory next to it, and its sha256 file; returns (path, sha256)."""
    path = root.rstrip("/") + ".tar"
    old_umask = os.umask(0o077)
    try:
        with tarfile.open(path, "w") as tar:
            tar.add(root, arcname=os.path.basename(root.rstrip("/")))
        digest = sha256_file(path)
        with open(path + ".sha256", "w") as handle:
            handle.write("%s  %s\n" % (digest, os.path.basename(path)))
    finally:
        os.umask(old_umask)
    return path, digest


def collect(params, now=None):
    """Collect everything into params['dest']; returns the module's result."""
    dest = params["dest"].rstrip("/")
    now = time.time() if now is None else now
    since = now - params["changed_days"] * 86400
    parent = os.path.dirname(dest)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    if os.path.islink(parent) or os.stat(parent).st_uid != os.geteuid():
        raise ValueError("%s must be a directory of this user, not a link" % parent)
    os.chmod(parent, 0o700)
    os.mkdir(dest, 0o700)  # refused when it exists: every run writes a new bundle
    bundle = Bundle(dest, params["copy_max_bytes"])
    notes = []
    journal_rc = export_journal(bundle) if params["journal"] else None
    if journal_rc not in (None, 0):
        notes.append("journalctl exited %s" % journal_rc)
    procs = processes(bundle, SUSPECT_PREFIXES)
    bundle.write("processes/processes.json", json.dumps(procs, indent=1, sort_keys=True) + "\n")
    socks = sockets(bundle)
    bundle.write("sockets/sockets.json", json.dumps(socks, indent=1, sort_keys=True) + "\n")
    changed = []
    for top in params["docroots"]:
        rows, top_notes = changed_entries(bundle, top, since)
        changed += rows
        notes += top_notes
    bundle.write("docroots/changed.tsv", tsv(changed))
    copied_rows, copy_notes = copy_paths(bundle, params["extra_paths"])
    notes += copy_notes
    bundle.write("scheduled/files.tsv", tsv(copied_rows))
    ran = run_commands(bundle, COMMANDS)
    info = {
        "collected_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "hostname": socket.gethostname(), "changed_days": params["changed_days"],
        "docroots": params["docroots"], "commands": ran, "notes": notes,
    }
    bundle.write("collection.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    manifest_sha256, listed = manifest(dest)
    archive_path, archive_sha256 = archive(dest)
    return {
        "changed": True, "bundle": dest, "archive": archive_path, "archive_sha256": archive_sha256,
        "manifest_sha256": manifest_sha256, "notes": notes,
        "counts": {
            "processes": len(procs), "sockets": len(socks), "listening": sum(1 for s in socks if s["state"] == "LISTEN"),
            "established": sum(1 for s in socks if s["state"] == "ESTABLISHED"),
            "docroot_changed": len(changed), "copied_files": len(bundle.copied), "manifest_files": listed,
            "suspect_executables": sum(1 for p in procs if p["exe_copied"]),
        },
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "docroots": {"type": "list", "elements": "path", "default": []},
            "changed_days": {"type": "int", "default": 7},
            "copy_max_bytes": {"type": "int", "default": 52428800},
            "journal": {"type": "bool", "default": True},
            "extra_paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["changed_days"] < 1:
        module.fail_json(msg="changed_days must be at least 1 (got %d)" % params["changed_days"])
    if not os.path.isabs(params["dest"]):
        module.fail_json(msg="dest must be an absolute path (got %s)" % params["dest"])
    if os.path.lexists(params["dest"]):
        module.fail_json(msg="%s exists: every run writes a new bundle" % params["dest"])
    if module.check_mode:
        dest = params["dest"].rstrip("/")
        module.exit_json(changed=True, bundle=dest, archive=dest + ".tar", archive_sha256="",
                         manifest_sha256="", counts={}, notes=["check mode: nothing collected"])
    try:
        result = collect(params)
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        module.fail_json(msg="evidence collection failed: %s" % err)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Helpers shared by the testinfra tests of every scenario (on PYTHONPATH via Molecule)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import testinfra

PROJECT = Path(__file__).resolve().parents[2]
APPLY_ROLE = Path(__file__).with_name("apply_role.yml")

# Files that a refused run must leave byte-identical.
ACCOUNT_FILES = ("/etc/group", "/etc/passwd", "/etc/shadow", "/etc/gshadow")


def ansible_playbook(playbook, target, extra_vars=None, check=False, timeout=900, inventory=None, tags=None,
                     env=None):
    """Run ansible-playbook against one Molecule instance; return the CompletedProcess.

    ``inventory`` defaults to Molecule's (docker connection); the SSH tests pass their own.
    ``tags`` (a list of tags) becomes ``--tags``.
    ``env`` adds environment variables (for example role_checkpoint's, see checkpoint_env).
    """
    inventory = str(inventory or os.environ["MOLECULE_INVENTORY_FILE"])
    cmd = [str(PROJECT / ".venv/bin/ansible-playbook"), "-i", inventory, "--limit", target, str(playbook)]
    if check:
        cmd += ["--check", "--diff"]
    if tags:
        cmd += ["--tags", ",".join(tags)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as varfile:
        json.dump({"target": target, **(extra_vars or {})}, varfile)
    try:
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", **(env or {})}
        return subprocess.run(
            [*cmd, "-e", f"@{varfile.name}"],
            capture_output=True, text=True, env=env, cwd=PROJECT, timeout=timeout, check=False,
        )
    finally:
        os.unlink(varfile.name)


def checkpoint_env(host, peer, address, outfile):
    """Environment for ansible_playbook: at every role boundary (molecule/resources/callback_plugins/
    role_checkpoint.py), record which TCP ports of ``host`` the ``peer`` container can reach at
    ``address`` (exposure_probe.py) as JSON lines in ``outfile``; read them with checkpoints()."""
    resources = Path(__file__).parent
    probe = [sys.executable, str(resources / "exposure_probe.py"), host, peer, address, str(outfile)]
    return {
        "ANSIBLE_CALLBACK_PLUGINS": f"{PROJECT / 'plugins/callback'}:{resources / 'callback_plugins'}",
        "ANSIBLE_CALLBACKS_ENABLED": "compliance_report,role_checkpoint",
        "ROLE_CHECKPOINT_COMMAND": shlex.join(probe),
    }


def checkpoints(outfile):
    """The checkpoints recorded through checkpoint_env, in run order."""
    return [json.loads(line) for line in Path(outfile).read_text().splitlines()]


def run_role(host, role, extra_vars=None, check=False, inventory=None):
    """Apply one role to the testinfra host with extra vars (which beat the inventory)."""
    name = host.backend.get_hostname()
    return ansible_playbook(
        APPLY_ROLE, name, {"role_under_test": role, **(extra_vars or {})}, check, inventory=inventory
    )


def assert_reaches_the_sink(host, sink, prefix, log="/var/tmp/sink.log", tries=20):
    """A message logged on host (logger) arrives in the remote syslog sink's file within ~10 s."""
    tag = f"{prefix}-{time.time_ns()}"
    host.run_expect([0], f"logger {tag}")
    for _ in range(tries):
        if tag in sink.run(f"cat {log}").stdout:
            return
        time.sleep(0.5)
    assert tag in sink.run(f"cat {log}").stdout, f"{tag} never reached {log}"


def can_connect(host, address, port, timeout=3):
    """True when ``host`` (a testinfra host) completes a TCP handshake with address:port."""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {int(port)}), timeout={timeout}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    return host.run(f"python3 -c {shlex.quote(probe)}").rc == 0


def checksums(host, paths):
    """sha256 of each path on the host (None if missing)."""
    with host.sudo():
        return {p: host.file(p).sha256sum if host.file(p).exists else None for p in paths}


# Every entry below a tree, never through a link: type, mode, owner, group, sha256 of a file's
# content and the POSIX ACL xattrs (access and default), as JSON (the backup's restore proofs).
_TREE_MANIFEST = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
out = {}
def xattr(p, n):
    try:
        return os.getxattr(p, n, follow_symlinks=False).hex()
    except OSError:
        return None
for d, dirs, files in os.walk(root):
    for p in [d] + [os.path.join(d, f) for f in files]:
        st = os.lstat(p)
        entry = [stat.filemode(st.st_mode), oct(st.st_mode & 0o7777), st.st_uid, st.st_gid]
        if stat.S_ISREG(st.st_mode):
            entry.append(hashlib.sha256(open(p, 'rb').read()).hexdigest())
        entry += [xattr(p, 'system.posix_acl_access'), xattr(p, 'system.posix_acl_default')]
        out[os.path.relpath(p, root)] = entry
print(json.dumps(out, sort_keys=True))
"""


def tree_manifest(host, root):
    """{relative path: [type+mode, mode, uid, gid, sha256 (files), ACL access, ACL default]} for
    every entry below root on the host (run as the host's user: root over docker exec)."""
    return json.loads(host.check_output(f"python3 -c {shlex.quote(_TREE_MANIFEST)} {shlex.quote(root)}"))


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def output_text(result):
    """ansible-playbook output with colours removed, whitespace folded and quotes unescaped, for
    message checks. Under Molecule, Ansible colours every wrapped line of a message (ANSIBLE_FORCE_COLOR),
    so a message that wraps had escape codes in the middle of its words."""
    return " ".join(ANSI_ESCAPE.sub("", result.stdout + result.stderr).replace('\\"', '"').split())


def peer(name):
    """A testinfra host for another instance of the scenario (client, attacker)."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


SSH_OPTS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


def sftp(client, user, server, key, batch):
    """Run an sftp batch (commands separated by newlines) as user@server with a key."""
    return client.run(
        f"printf '%s\\n' {' '.join(repr(c) for c in batch.splitlines())} | "
        f"sftp {SSH_OPTS} -o BatchMode=yes -i {key} -b - {user}@{server}"
    )


def ssh_password(client, user, server, password, command="true"):
    """One password login attempt with ssh (SSH_ASKPASS, no sshpass needed); returns the result."""
    script = f"/tmp/askpass-{os.getpid()}"
    client.run(f"printf '#!/bin/sh\\necho %s\\n' {password!r} > {script} && chmod 700 {script}")
    return client.run(
        f"SSH_ASKPASS={script} SSH_ASKPASS_REQUIRE=force DISPLAY=none setsid -w ssh {SSH_OPTS} "
        f"-o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no "
        f"-o NumberOfPasswordPrompts=1 {user}@{server} {command} </dev/null"
    )


# Drives ssh in a pseudo-terminal through the forced change of an expired password: the login
# password, then passwd's prompts (current, new, retype). Prints the transcript.
_PASSWORD_CHANGE = r"""
import os, pty, select, sys, time
user, server, old, new = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("ssh", ["ssh", "-tt", *sys.argv[5:], "-o", "PreferredAuthentications=password",
                      "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                      f"{user}@{server}", "true"])
steps = [("'s password:", old), ("Current password:", old), ("New password:", new),
         ("Retype new password:", new)]
transcript, pending, deadline = b"", b"", time.monotonic() + 40
while time.monotonic() < deadline:
    if not select.select([fd], [], [], 1)[0]:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    transcript += chunk
    pending += chunk
    if steps and steps[0][0].encode() in pending:
        os.write(fd, (steps.pop(0)[1] + "\n").encode())
        pending = b""
status = os.waitpid(pid, 0)[1]
print(transcript.decode(errors="replace"))
print(f"ssh-exit={os.waitstatus_to_exitcode(status)} unanswered={len(steps)}")
"""


def ssh_change_expired_password(client, user, server, old, new):
    """Log in over SSH with an expired password ``old`` in a terminal, as a person (or whoever
    knows it) would, and answer the forced change with ``new``; returns the result (transcript
    in stdout, ending with ssh's exit code and the number of prompts never seen)."""
    return client.run(
        "timeout 60 python3 -c %s %s %s %s %s " + SSH_OPTS,
        _PASSWORD_CHANGE, user, server, old, new,
    )


def ftp_login(client, user, server, password):
    """One FTP login (and a listing) with curl from another container; returns the result.

    curl exits 0 on success, 67 when the server denies the login, 7 when the connection is
    refused and 28 on a timeout (a ban that drops instead of rejecting)."""
    return client.run(
        "curl -sS --connect-timeout 5 --max-time 20 --user %s ftp://%s/",
        f"{user}:{password}", server,
    )


def assert_sftp_upload_664(host, client, user, server, key, remote, on_server=None, group="workgroup"):
    """A 0666 local file uploaded over SFTP arrives 664 in the team group (internal-sftp -u 0002).

    remote is the path the member uploads to; on_server the resulting path (default: remote).
    """
    local = f"/tmp/upload-{user}.txt"
    client.run_expect([0], f"echo {user} > {local} && chmod 666 {local}")
    result = sftp(client, user, server, key, f"put {local} {remote}")
    assert result.rc == 0, result.stderr
    uploaded = host.file(on_server or remote)
    assert (uploaded.mode, uploaded.group, uploaded.user) == (0o664, group, user)


def assert_jailed(client, user, server, key):
    """The member's SFTP session sees only the jail: / holds /site, nothing of the real root."""
    listing = sftp(client, user, server, key, "cd ../..\npwd\nls -1 /")
    assert listing.rc == 0, listing.stderr
    assert "Remote working directory: /\n" in listing.stdout
    assert "/site" in listing.stdout
    assert "/etc" not in listing.stdout and "/home" not in listing.stdout
    assert sftp(client, user, server, key, "get /etc/shadow /tmp/stolen").rc != 0


# lftp with TLS required for the login and the data (FTP-05: vsftpd refuses plain FTP logins).
FTPS_LFTP = ["set ftp:ssl-force true", "set ftp:ssl-protect-data true"]
# curl with TLS required (AUTH TLS on port 21), for an FTP URL; the certificate is not verified
# (the hosts' certificates are self-signed; molecule/default test_tls.py verifies them).
FTPS_CURL = "--ssl-reqd --insecure"


def stats(host, paths):
    """(mode, owner, group) of each path on the host, None if missing: a refused run leaves them."""
    result = {}
    with host.sudo():
        for path in paths:
            f = host.file(path)
            result[path] = (oct(f.mode), f.user, f.group) if f.exists else None
    return result


def lftp(client, user, password, commands, server="127.0.0.1", timeout=60, tls=True, ca_file=None):
    """Run lftp on ``client`` against the FTP server at ``server`` as ``user``; return the
    testinfra result.

    FTPS (FTP-05): TLS required for the login and the data (``tls=False``: plain FTP, which the
    servers refuse); the certificate verified against ``ca_file`` (the host's own, copied to the
    client; the name is not checked, lftp connects to an address), or not verified without one.
    Passive mode, one attempt per command, so a refused login fails fast instead of retrying. The
    client is its own container (issue #10: never a client in the host under test)."""
    if not tls:
        settings = ["set ftp:ssl-allow no"]
    elif ca_file:
        settings = [*FTPS_LFTP, f"set ssl:ca-file {ca_file}", "set ssl:check-hostname no"]
    else:
        settings = [*FTPS_LFTP, "set ssl:verify-certificate no"]
    script = "; ".join(
        [
            *settings,
            "set ftp:passive-mode yes",
            "set net:max-retries 1",
            "set net:timeout 10",
            "set cmd:fail-exit yes",
            *commands,
            "bye",
        ]
    )
    return client.run(
        "timeout %s lftp -u %s,%s -e %s %s",
        str(timeout), user, password, script, server,
    )


def assert_refused(host, role, extra_vars, message, watched):
    """Apply `role` with bad input: the run must fail and print `message`, and nothing may change.

    watched: paths whose sha256 must stay identical, or a callable returning a snapshot
    (e.g. stats() of some paths) that must be equal before and after."""
    snapshot = watched if callable(watched) else (lambda: checksums(host, watched))
    before = snapshot()
    result = run_role(host, role, extra_vars)
    assert result.returncode != 0, result.stdout[-3000:]
    text = output_text(result)
    assert message in text, text[-3000:]
    assert snapshot() == before
    return result


def ssh_from_controller(address, user, key, command="true", timeout=30):
    """One SSH login from the controller itself (the operator's laptop or bastion) with a key,
    in batch mode: never a password prompt. Returns the CompletedProcess."""
    return subprocess.run(
        ["ssh", *SSH_OPTS.split(), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-i", str(key), f"{user}@{address}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


# DR-05 uploads (issue #10), shared by molecule/team and molecule/default: every client people
# use, with local files made under umask 022 (0644) and one 0600, as on a workstation.
UPLOAD_POLL = 5.0


def upload_clients(server, directory, key, ftp_password, user="wuser1", ftps=True):
    """{client: (shell command on the client, {remote name: local file or "dir"})}.

    ``ftps``: the FTP clients require TLS (FTP-05, the servers of site.yml); False for a server
    whose vsftpd has no certificate (a scenario without the web server, vsftpd_ftps: false)."""
    opts = f"{SSH_OPTS} -o BatchMode=yes -i {key}"
    ssh = f"ssh {opts}"
    curl_key = f"curl -sS --max-time 20 -k --key {key} --pubkey {key}.pub"
    curl_ftp = f"curl -sS --max-time 20 {FTPS_CURL if ftps else ''} --user {user}:{ftp_password}"
    lftp_tls = "".join(f"{c}; " for c in FTPS_LFTP + ["set ssl:verify-certificate no"]) if ftps else ""
    return {
        "openssh sftp": (
            f"printf 'put /tmp/dr05/f644 {directory}/sftp-644\\nput /tmp/dr05/f600 {directory}/sftp-600\\n"
            f"mkdir {directory}/sftp-dir\\n' | sftp {opts} -b - {user}@{server}",
            {"sftp-644": "f644", "sftp-600": "f600", "sftp-dir": "dir"},
        ),
        "openssh scp (SFTP protocol)": (
            f"scp {opts} /tmp/dr05/f644 {user}@{server}:{directory}/scp-644"
            f" && scp {opts} /tmp/dr05/f600 {user}@{server}:{directory}/scp-600",
            {"scp-644": "f644", "scp-600": "f600"},
        ),
        "openssh scp -O (legacy SCP protocol)": (
            f"scp -O {opts} /tmp/dr05/f644 {user}@{server}:{directory}/scpO-644",
            {"scpO-644": "f644"},
        ),
        "lftp sftp://": (
            f"lftp -e \"set sftp:connect-program '{ssh}'; put /tmp/dr05/f644 -o {directory}/lftps-644;"
            f" put /tmp/dr05/f600 -o {directory}/lftps-600; mkdir {directory}/lftps-dir; bye\" -u {user}, sftp://{server}",
            {"lftps-644": "f644", "lftps-600": "f600", "lftps-dir": "dir"},
        ),
        "lftp ftp://": (
            f"lftp -e '{lftp_tls}set net:max-retries 1; put /tmp/dr05/f644 -o {directory}/lftpf-644;"
            f" put /tmp/dr05/f600 -o {directory}/lftpf-600; mkdir {directory}/lftpf-dir; bye'"
            f" -u {user},{ftp_password} ftp://{server}",
            {"lftpf-644": "f644", "lftpf-600": "f600", "lftpf-dir": "dir"},
        ),
        "curl ftp://": (
            f"{curl_ftp} -T /tmp/dr05/f644 ftp://{server}/%2F{directory[1:]}/curlf-644"
            f" && {curl_ftp} -T /tmp/dr05/f600 ftp://{server}/%2F{directory[1:]}/curlf-600"
            f" && {curl_ftp} -Q 'MKD {directory}/curlf-dir' ftp://{server}/",
            {"curlf-644": "f644", "curlf-600": "f600", "curlf-dir": "dir"},
        ),
        "curl sftp://": (
            f"{curl_key} -T /tmp/dr05/f644 sftp://{user}@{server}{directory}/curls-644"
            f" && {curl_key} -T /tmp/dr05/f600 sftp://{user}@{server}{directory}/curls-600"
            f" && {curl_key} -Q 'mkdir {directory}/curls-dir' sftp://{user}@{server}/",
            {"curls-644": "f644", "curls-600": "f600", "curls-dir": "dir"},
        ),
    }


def upload_compliant(mode, kind):
    """Directories exactly 2775; files group read-write, never world-writable, no special bit
    (0644 -> 0664 and 0600 -> 0660 when the client sent its mode; 0664 when it sent none)."""
    if kind == "dir":
        return mode == 0o2775
    return mode & 0o060 == 0o060 and not mode & 0o7002


def upload_modes(host, directory, names):
    """{name: (mode, group)} of entries of ``directory`` on the server, None when missing; one command."""
    with host.sudo():
        out = host.check_output(
            f"cd {directory} && for n in {' '.join(names)}; do stat -c '%n %a %G' \"$n\" 2>/dev/null"
            f" || echo \"$n - -\"; done")
    seen = {}
    for line in out.splitlines():
        name, mode, group = line.split()
        seen[name] = None if mode == "-" else (int(mode, 8), group)
    return seen


def run_uploads(host, client, clients, directory, ftp_password, user="wuser1"):
    """Every client of ``clients`` (upload_clients) uploads once into a fresh ``directory``;
    returns {client: {file: modes right after the upload and after at most UPLOAD_POLL s}}.
    ``user`` gets ``ftp_password`` for the FTP clients and its old hash back at the end."""
    with host.sudo():
        before = host.check_output(f"getent shadow {user}").split(":")[1]
        host.run_expect([0], f"echo '{user}:{ftp_password}' | chpasswd")
        host.run_expect([0], f"rm -rf {directory} && install -d -o root -g workgroup -m 2775 {directory}")
    client.run_expect([0], "rm -rf /tmp/dr05 && mkdir /tmp/dr05 && umask 022 && echo page > /tmp/dr05/f644"
                           " && (umask 077 && echo secret > /tmp/dr05/f600) && stat -c '%a' /tmp/dr05/f644 /tmp/dr05/f600")
    results = {}
    try:
        for name, (command, files) in clients.items():
            started = time.monotonic()
            run = client.run(command)
            assert run.rc == 0, (name, run.stdout, run.stderr)
            first = upload_modes(host, directory, files)
            seen = first
            while time.monotonic() - started < UPLOAD_POLL and any(
                    seen[f] is None or not upload_compliant(seen[f][0], kind) for f, kind in files.items()):
                time.sleep(0.2)
                seen = upload_modes(host, directory, files)
            results[name] = {f: {"local": kind, "right after": "%o" % first[f][0] if first[f] else None,
                                 "after poll": "%o" % seen[f][0] if seen[f] else None,
                                 "group": seen[f][1] if seen[f] else None,
                                 "seconds": round(time.monotonic() - started, 2)}
                             for f, kind in files.items()}
    finally:
        with host.sudo():
            host.run_expect([0], f"usermod -p '{before}' {user}")
    return results


def upload_landed(results, files):
    """{file: (compliant after the poll, group)} of one client's results, for the assertion."""
    return {f: (results[f]["after poll"] is not None and upload_compliant(int(results[f]["after poll"], 8),
                                                                         results[f]["local"]), results[f]["group"])
            for f in files}

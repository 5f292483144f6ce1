"""Helpers shared by the testinfra tests of every scenario (on PYTHONPATH via Molecule)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
APPLY_ROLE = Path(__file__).with_name("apply_role.yml")

# Files that a refused run must leave byte-identical.
ACCOUNT_FILES = ("/etc/group", "/etc/passwd", "/etc/shadow", "/etc/gshadow")


def ansible_playbook(playbook, target, extra_vars=None, check=False, timeout=900):
    """Run ansible-playbook against one Molecule instance; return the CompletedProcess."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    cmd = [str(PROJECT / ".venv/bin/ansible-playbook"), "-i", inventory, "--limit", target, str(playbook)]
    if check:
        cmd += ["--check", "--diff"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as varfile:
        json.dump({"target": target, **(extra_vars or {})}, varfile)
    try:
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(
            [*cmd, "-e", f"@{varfile.name}"],
            capture_output=True, text=True, env=env, cwd=PROJECT, timeout=timeout, check=False,
        )
    finally:
        os.unlink(varfile.name)


def run_role(host, role, extra_vars=None, check=False):
    """Apply one role to the testinfra host with extra vars (which beat the inventory)."""
    name = host.backend.get_hostname()
    return ansible_playbook(APPLY_ROLE, name, {"role_under_test": role, **(extra_vars or {})}, check)


def checksums(host, paths):
    """sha256 of each path on the host (None if missing)."""
    with host.sudo():
        return {p: host.file(p).sha256sum if host.file(p).exists else None for p in paths}


def output_text(result):
    """ansible-playbook output with whitespace folded and quotes unescaped, for message checks."""
    return " ".join((result.stdout + result.stderr).replace('\\"', '"').split())


def stats(host, paths):
    """(mode, owner, group) of each path on the host, None if missing: a refused run leaves them."""
    result = {}
    with host.sudo():
        for path in paths:
            f = host.file(path)
            result[path] = (oct(f.mode), f.user, f.group) if f.exists else None
    return result


def lftp(host, user, password, commands, timeout=60):
    """Run lftp inside the container against 127.0.0.1 as `user`; return the testinfra result.

    Plain FTP on loopback (the container's own vsftpd), passive mode, one attempt per command,
    so a refused login fails fast instead of retrying."""
    script = "; ".join(
        [
            "set ftp:ssl-allow no",
            "set ftp:passive-mode yes",
            "set net:max-retries 1",
            "set net:timeout 10",
            "set cmd:fail-exit yes",
            *commands,
            "bye",
        ]
    )
    return host.run(
        "timeout %s lftp -u %s,%s -e %s 127.0.0.1",
        str(timeout), user, password, script,
    )


def assert_refused(host, role, extra_vars, message, snapshot):
    """Apply `role` with bad input: the run must fail, print `message`, and leave `snapshot()`
    (a callable returning what must not change, e.g. checksums or stats) identical."""
    before = snapshot()
    result = run_role(host, role, extra_vars)
    assert result.returncode != 0, result.stdout[-3000:]
    text = output_text(result)
    assert message in text, text[-3000:]
    assert snapshot() == before
    return result

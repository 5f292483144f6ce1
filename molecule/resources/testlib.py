"""Helpers shared by the testinfra tests of every scenario (on PYTHONPATH via Molecule)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
APPLY_ROLE = Path(__file__).with_name("apply_role.yml")

# Files that a refused run must leave byte-identical.
ACCOUNT_FILES = ("/etc/group", "/etc/passwd", "/etc/shadow", "/etc/gshadow")


def ansible_playbook(playbook, target, extra_vars=None, check=False, timeout=900, inventory=None):
    """Run ansible-playbook against one Molecule instance; return the CompletedProcess.

    ``inventory`` defaults to Molecule's (docker connection); the SSH tests pass their own.
    """
    inventory = str(inventory or os.environ["MOLECULE_INVENTORY_FILE"])
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


def run_role(host, role, extra_vars=None, check=False, inventory=None):
    """Apply one role to the testinfra host with extra vars (which beat the inventory)."""
    name = host.backend.get_hostname()
    return ansible_playbook(
        APPLY_ROLE, name, {"role_under_test": role, **(extra_vars or {})}, check, inventory=inventory
    )


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


def output_text(result):
    """ansible-playbook output with whitespace folded and quotes unescaped, for message checks."""
    return " ".join((result.stdout + result.stderr).replace('\\"', '"').split())

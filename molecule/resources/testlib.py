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


def peer(name):
    """A testinfra host for another instance of the scenario (client, attacker)."""
    import testinfra  # noqa: PLC0415 - only the verifier has it

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

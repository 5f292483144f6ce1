# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""The test-only role_checkpoint callback (molecule/resources/callback_plugins) labels role
boundaries right: the fail-closed proof in molecule/incident rests on it (issue #9)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def run(tmp_path, fail_in_second=False):
    """A play of three roles: `first` includes `second`'s validate.yml (as preflight does),
    `second` notifies and flushes a handler of `first` mid-role, `third` ends the play."""
    write(tmp_path / "roles/first/tasks/main.yml", """\
        - name: first includes second's validation
          ansible.builtin.include_role:
            name: second
            tasks_from: validate.yml
        - name: first works
          ansible.builtin.debug:
            msg: first
          changed_when: true
          notify: first handler
        """)
    write(tmp_path / "roles/first/handlers/main.yml", """\
        - name: first handler
          ansible.builtin.debug:
            msg: handler
        """)
    write(tmp_path / "roles/second/tasks/validate.yml", """\
        - name: second validates
          ansible.builtin.debug:
            msg: validate
        """)
    write(tmp_path / "roles/second/tasks/main.yml", """\
        - name: second flushes the handlers
          ansible.builtin.meta: flush_handlers
        - name: second works (or fails)
          ansible.builtin.assert:
            that: not fail_in_second | bool
        """)
    write(tmp_path / "roles/third/tasks/main.yml", """\
        - name: third works
          ansible.builtin.debug:
            msg: third
        """)
    write(tmp_path / "play.yml", """\
        - name: Three roles
          hosts: localhost
          connection: local
          gather_facts: false
          roles: [first, second, third]
        """)
    write(tmp_path / "ansible.cfg", "[defaults]\n")
    out = tmp_path / "labels.txt"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "molecule/resources/callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "role_checkpoint",
        "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
        "ROLE_CHECKPOINT_COMMAND": f"sh -c 'echo \"$0\" >> {out}'",
    }
    result = subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", str(tmp_path / "play.yml"),
                             "-e", f"fail_in_second={fail_in_second}",
                             "-e", f"ansible_python_interpreter={sys.executable}"],
                            capture_output=True, text=True, env=env, check=False, timeout=120)
    return result, out.read_text().split()


def test_every_role_boundary_is_labelled_once(tmp_path):
    result, labels = run(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert labels == ["before", "after:first", "after:second", "after:third", "end"]


def test_a_failure_is_labelled_in_its_role(tmp_path):
    result, labels = run(tmp_path, fail_in_second=True)
    assert result.returncode != 0, result.stdout[-2000:]
    assert labels == ["before", "after:first", "failed-in:second", "end"]

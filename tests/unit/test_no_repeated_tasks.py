# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""No task logic is copied from role to role (issue #11: the package install was copied 7 times).

The `duplicates` tool does not read YAML, so this reads every role's task and handler files: two
consecutive tasks that stand, the same, in two roles fail the test. "The same" ignores names,
tags, conditions, notify/register and the role prefix of variables (`__vsftpd_x` ~ `__ssh_x`),
so a copy renamed for its role is still found. Imports and includes of a role's own files (the
table of contents in tasks/main.yml) and of another role's entry points (roles/packages'
install.yml, imported by each control with its own packages) are calls, not logic, and are left
out; the logic they call is compared where it stands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
ROLE_PREFIX = re.compile(r"\b_*(%s)_" % "|".join(ROLES))
IGNORED_KEYS = {"name", "tags", "when", "notify", "register", "listen", "loop_control", "vars"}
CALLS = {"ansible.builtin.import_tasks", "ansible.builtin.include_tasks", "import_tasks", "include_tasks",
         "ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"}
RUN = 2


def flatten(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        if "block" in task:
            for key in ("block", "rescue", "always"):
                yield from flatten(task.get(key))
        else:
            yield task


def shape(task):
    kept = {k: v for k, v in task.items() if k not in IGNORED_KEYS}
    return ROLE_PREFIX.sub("ROLE_", json.dumps(kept, sort_keys=True))


def sequences(root=ROOT):
    """{role/file: [task shape, ...]} without the calls of a role's own task files."""
    found = {}
    for path in sorted(root.glob("roles/*/tasks/*.yml")) + sorted(root.glob("roles/*/handlers/*.yml")):
        tasks = [t for t in flatten(yaml.safe_load(path.read_text()) or []) if not CALLS & t.keys()]
        found[path.relative_to(root).as_posix()] = [shape(t) for t in tasks]
    return found


def repeated_runs(found, run=RUN):
    """Runs of `run` consecutive task shapes that stand in two different roles."""
    places = {}
    for name, shapes in found.items():
        for i in range(len(shapes) - run + 1):
            places.setdefault(tuple(shapes[i:i + run]), []).append(f"{name}#{i + 1}")
    return [sorted(where) for where in places.values() if len({w.split("/")[1] for w in where}) > 1]


def test_no_task_logic_repeated_across_roles():
    assert repeated_runs(sequences()) == []


def test_a_copy_renamed_for_its_role_is_found(tmp_path):
    """The check can fail: two roles with the same two tasks, variables renamed per role."""
    for role in ("alpha", "beta"):
        tasks = tmp_path / "roles" / role / "tasks"
        tasks.mkdir(parents=True)
        (tasks / "main.yml").write_text(
            f"- name: One\n  ansible.builtin.apt:\n    name: \"{{{{ __{role}_packages }}}}\"\n"
            f"- name: Two\n  ansible.builtin.debug:\n    msg: done\n")
    global ROLE_PREFIX  # the fixture's roles, as the real ones
    saved = ROLE_PREFIX
    ROLE_PREFIX = re.compile(r"\b_*(alpha|beta)_")
    try:
        assert len(repeated_runs(sequences(tmp_path))) == 1
    finally:
        ROLE_PREFIX = saved

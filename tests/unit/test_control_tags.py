# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Every task carries exactly one control tag, or is a pre-flight task (issue #11).

The rule (docs/controls.md, intro): each task in roles/*/tasks/*.yml, with the tags it inherits
from the imports that bring it in and from its role's entry in the playbooks, carries exactly one
control-ID tag (``^[a-z]+-[0-9]+$``) and its name starts with that ID in upper case
(``FW-02 | ...``), or it carries no ID and is a pre-flight task tagged ``always`` or
``preflight`` (validation, include_vars, read-only probes) whose name starts with no ID.
Handlers are exempt (Ansible does not select handlers by tag); the tasks that a handler
includes are checked like any other task, with the tags of the handler's ``apply``.

The walk is static and mirrors Ansible's inheritance: ``import_tasks``/``import_role`` pass their
own tags down; ``include_tasks``/``include_role`` do not (their included tasks get the tags of
``apply`` and those of the include's parents); blocks pass their tags down; a role's tags come from
its entry in playbooks/*.yml (a role applied alone gets none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
PLAYBOOKS = REPO / "playbooks"
CATALOG = REPO / "docs" / "controls.md"

TAG_ID_RE = re.compile(r"^[a-z]+-[0-9]+$")
NAME_ID_RE = re.compile(r"^\s*([A-Z]+-[0-9]+)\b")
PRELIM_TAGS = {"always", "preflight"}
IMPORT_TASKS = {"import_tasks", "ansible.builtin.import_tasks"}
INCLUDE_TASKS = {"include_tasks", "ansible.builtin.include_tasks", "include", "ansible.builtin.include"}
IMPORT_ROLE = {"import_role", "ansible.builtin.import_role"}
INCLUDE_ROLE = {"include_role", "ansible.builtin.include_role"}
BLOCK_KEYS = ("block", "rescue", "always")
_JINJA = jinja2.Environment(undefined=jinja2.ChainableUndefined)


@dataclass
class TaskSeen:
    """One task as reached through one chain of imports."""

    file: str
    name: str
    tags: frozenset[str]
    via: str

    @property
    def ids(self) -> set[str]:
        return {tag for tag in self.tags if TAG_ID_RE.match(tag)}

    @property
    def name_id(self) -> str | None:
        match = NAME_ID_RE.match(self.name)
        return match.group(1) if match else None


@dataclass
class Walk:
    tasks: list[TaskSeen] = field(default_factory=list)
    files: set[Path] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def _tags(value) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {part.strip() for part in value.split(",") if part.strip()}
    return {str(tag) for tag in value}


def _action(task: dict) -> tuple[str | None, object]:
    for key in IMPORT_TASKS | INCLUDE_TASKS | IMPORT_ROLE | INCLUDE_ROLE:
        if key in task:
            return key, task[key]
    return None, None


def _render_name(name: str, variables: dict) -> str:
    if "{{" not in name:
        return name
    try:
        return _JINJA.from_string(name).render(**variables)
    except jinja2.TemplateError:
        return name


def _load(path: Path) -> list:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data or []


def catalog_ids() -> set[str]:
    return set(re.findall(r'<a id="([a-z]+-[0-9]+)"></a>', CATALOG.read_text(encoding="utf-8")))


def walk_file(walk: Walk, path: Path, role: str, tags: set[str], variables: dict, via: str,
              depth: int = 0) -> None:
    if depth > 12:
        walk.errors.append(f"{via}: import depth above 12 (a loop?) at {path}")
        return
    if not path.is_file():
        walk.errors.append(f"{via}: {path.relative_to(REPO)} does not exist")
        return
    walk.files.add(path)
    walk_list(walk, _load(path), path, role, tags, variables, via, depth)


def walk_list(walk: Walk, tasks: list, path: Path, role: str, tags: set[str], variables: dict,
              via: str, depth: int, handlers: bool = False) -> None:
    rel = str(path.relative_to(REPO))
    for task in tasks:
        if not isinstance(task, dict):
            continue
        own = _tags(task.get("tags"))
        if any(key in task for key in BLOCK_KEYS):
            block_vars = {**variables, **(task.get("vars") or {})}
            for key in BLOCK_KEYS:
                walk_list(walk, task.get(key) or [], path, role, tags | own, block_vars, via, depth, handlers)
            continue
        action, args = _action(task)
        name = _render_name(str(task.get("name", "")), variables)
        task_vars = {**variables, **(task.get("vars") or {})}
        if action is None:
            if not handlers:
                walk.tasks.append(TaskSeen(rel, name, frozenset(tags | own), via))
            continue
        if isinstance(args, str):
            args = {"file": args} if action in IMPORT_TASKS | INCLUDE_TASKS else {"name": args}
        args = args or {}
        static = action in IMPORT_TASKS | IMPORT_ROLE
        if not static and not handlers:
            # An include is a task of its own (it reports), with its own tags.
            walk.tasks.append(TaskSeen(rel, name, frozenset(tags | own), via))
        child_tags = tags | own if static else tags | _tags((args.get("apply") or {}).get("tags"))
        child_via = f"{via} > {rel}"
        if action in IMPORT_TASKS | INCLUDE_TASKS:
            target = args.get("file") or args.get("_raw_params")
            if "{{" in str(target):
                walk.errors.append(f"{rel}: task {name!r} includes a templated file {target!r}: not followed")
                continue
            # Ansible looks next to the including file, then in the role's tasks/ (handlers too).
            near = path.parent / str(target)
            resolved = near if near.is_file() else ROLES / role / "tasks" / str(target)
            walk_file(walk, resolved, role, child_tags, task_vars, child_via, depth + 1)
        else:
            target_role = str(args.get("name", ""))
            tasks_from = str(args.get("tasks_from", "main"))
            if not tasks_from.endswith((".yml", ".yaml")):
                tasks_from += ".yml"
            if "{{" in target_role:
                # roles/preflight's loop over the play's roles: every role that has the file.
                targets = sorted(ROLES.glob(f"*/tasks/{tasks_from}"))
            else:
                targets = [ROLES / target_role / "tasks" / tasks_from]
            for target in targets:
                walk_file(walk, target, target.parent.parent.name, child_tags, task_vars, child_via,
                          depth + 1)


def playbook_role_entries() -> list[tuple[str, str, set[str]]]:
    """(playbook, role, tags of the play and the role entry) for every role in playbooks/*.yml."""
    entries = []
    for book in sorted(PLAYBOOKS.glob("*.yml")):
        for play in _load(book):
            if not isinstance(play, dict):
                continue
            play_tags = _tags(play.get("tags"))
            for entry in play.get("roles") or []:
                role = entry if isinstance(entry, str) else entry.get("role") or entry.get("name")
                entry_tags = set() if isinstance(entry, str) else _tags(entry.get("tags"))
                entries.append((book.name, str(role), play_tags | entry_tags))
    return entries


def walk_playbook_tasks(walk: Walk) -> None:
    """The tasks of the plays themselves (site.yml's first play imports the firewall's release.yml)."""
    for book in sorted(PLAYBOOKS.glob("*.yml")):
        for play in _load(book):
            if not isinstance(play, dict):
                continue
            for key in ("pre_tasks", "tasks", "post_tasks"):
                walk_list(walk, play.get(key) or [], book, "", _tags(play.get("tags")), {},
                          f"{book.name}: {key}", 0)


def walk_everything() -> Walk:
    walk = Walk()
    in_playbooks = set()
    walk_playbook_tasks(walk)
    for book, role, tags in playbook_role_entries():
        in_playbooks.add(role)
        walk_file(walk, ROLES / role / "tasks" / "main.yml", role, tags, {}, f"{book}: {role}")
    for role_dir in sorted(p for p in ROLES.iterdir() if (p / "tasks" / "main.yml").is_file()):
        # Applied alone (molecule/resources/apply_role.yml): no role tags.
        walk_file(walk, role_dir / "tasks" / "main.yml", role_dir.name, set(), {},
                  f"{role_dir.name} alone")
        handlers = role_dir / "handlers" / "main.yml"
        if handlers.is_file():
            walk.files.add(handlers)
            # Handlers themselves are exempt; what they include is walked like any task file.
            walk_list(walk, _load(handlers), handlers, role_dir.name, set(), {},
                      f"{role_dir.name} handlers", 0, handlers=True)
    return walk


def violations(walk: Walk, ids: set[str]) -> list[str]:
    found: dict[tuple[str, str, str], str] = {}

    def add(task: TaskSeen, problem: str) -> None:
        found.setdefault((task.file, task.name, problem),
                         f"{task.file}: {task.name!r}: {problem} (tags {sorted(task.tags)}, via {task.via})")

    for task in walk.tasks:
        task_ids = task.ids
        if len(task_ids) > 1:
            add(task, f"{len(task_ids)} control IDs {sorted(task_ids)}, exactly one allowed")
        elif len(task_ids) == 1:
            (tag_id,) = task_ids
            if tag_id not in ids:
                add(task, f"control ID {tag_id} is not in docs/controls.md")
            if task.name_id != tag_id.upper():
                add(task, f"tagged {tag_id} but the name starts with {task.name_id or 'no ID'}")
        else:
            if not task.tags & PRELIM_TAGS:
                add(task, "no control ID and not a pre-flight task (tag always or preflight)")
            if task.name_id:
                add(task, f"named {task.name_id} but carries no {task.name_id.lower()} tag")
    return sorted(found.values())


@pytest.fixture(scope="module")
def walked() -> Walk:
    return walk_everything()


def test_the_walk_follows_every_import(walked):
    assert walked.errors == []


def test_every_task_file_is_reached(walked):
    task_files = {p for p in ROLES.glob("*/tasks/*.yml")}
    assert sorted(str(p.relative_to(REPO)) for p in task_files - walked.files) == []


def test_every_task_carries_exactly_one_control_tag_or_is_preflight(walked):
    found = violations(walked, catalog_ids())
    assert found == [], "\n".join(found)


def test_every_control_in_the_catalog_has_a_task_of_its_own(walked):
    tagged = {tag for task in walked.tasks for tag in task.ids}
    assert sorted(catalog_ids() - tagged) == []


def test_fw02_has_a_task_of_its_own(walked):
    assert [t for t in walked.tasks if t.ids == {"fw-02"}]


# The checker itself must be able to fail.
@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([{"name": "FW-01 | x", "ansible.builtin.debug": {}, "tags": ["fw-01", "fw-02"]}], "2 control IDs"),
        ([{"name": "FW-01 | x", "ansible.builtin.debug": {}, "tags": ["fw-02"]}], "name starts with FW-01"),
        ([{"name": "Probe", "ansible.builtin.debug": {}}], "not a pre-flight task"),
        ([{"name": "XX-99 | x", "ansible.builtin.debug": {}, "tags": ["xx-99"]}], "not in docs/controls.md"),
        ([{"name": "FW-01 | x", "ansible.builtin.debug": {}, "tags": ["always"]}], "carries no fw-01 tag"),
        ([{"block": [{"name": "FW-01 | x", "ansible.builtin.debug": {}}], "tags": ["fw-01", "fw-04"]}],
         "2 control IDs"),
    ],
)
def test_the_checker_refuses(tasks, expected):
    walk = Walk()
    walk_list(walk, tasks, ROLES / "firewall" / "tasks" / "main.yml", "firewall", set(), {}, "test", 0)
    found = violations(walk, catalog_ids())
    assert any(expected in line for line in found), found


def test_the_checker_follows_imports_includes_and_apply(tmp_path):
    walk = Walk()
    tasks = [
        {"name": "Imported", "ansible.builtin.import_role": {"name": "packages", "tasks_from": "install.yml"},
         "vars": {"packages_control": "FW-02", "packages_present": ["nftables"]}, "tags": ["fw-02"]},
    ]
    walk_list(walk, tasks, ROLES / "firewall" / "tasks" / "main.yml", "firewall", {"firewall"}, {}, "test", 0)
    names = {t.name: t.tags for t in walk.tasks}
    assert names["FW-02 | Packages present: nftables"] >= {"fw-02", "firewall"}
    # include_tasks: the included tasks get apply's tags and the include's parents', not its own.
    installed = [t for t in walk.tasks if t.name == "FW-02 | Installed: nftables"]
    assert installed and all({"always", "fw-02"} <= t.tags for t in installed)

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""One convention for reading the team interface (issue #11, README "Team interface").

The workgroup role owns the team variables (its defaults declare them). Every other role reads
each one it needs once, in its vars/main.yml, into a `__<role>_...` variable with the workgroup
role's default as the fallback (`workgroup_members | default([])`); its tasks, handlers and
templates read only that variable. So a `workgroup_members | default([])` (or a bare
`workgroup_name`) at a point of use fails here, and so does a fallback that differs from the
workgroup role's default."""

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
OWNER = "workgroup"
WORKGROUP_DEFAULTS = yaml.safe_load((ROLES / OWNER / "defaults" / "main.yml").read_text())
# The team interface: what the other roles may read of the workgroup role's variables.
TEAM_VARS = ("workgroup_name", "workgroup_umask", "workgroup_members")
TEAM_RE = re.compile(r"\b(%s)\b" % "|".join(TEAM_VARS))
FALLBACK_RE = re.compile(r"\b(%s)\s*\|\s*default\(([^()]*)\)" % "|".join(TEAM_VARS))
JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
# Task keywords whose value is a bare Jinja expression.
BARE_EXPRESSION_KEYS = {"when", "that", "changed_when", "failed_when", "until"}
READER_DIRS = ("tasks", "handlers", "templates", "defaults", "vars")


def reader_roles():
    return sorted(p.name for p in ROLES.iterdir() if p.is_dir() and p.name != OWNER)


def expressions(node, bare=False):
    """Every Jinja expression in a loaded YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from expressions(value, bare=key in BARE_EXPRESSION_KEYS)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item, bare)
    elif isinstance(node, str):
        if bare:
            yield node
        else:
            yield from JINJA_RE.findall(node)


def reads(path):
    """The team variables a role file reads (Jinja only: comments and message text do not count)."""
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        found = expressions(yaml.safe_load(text))
    else:
        found = JINJA_RE.findall(text)
    return sorted({name for expression in found for name in TEAM_RE.findall(expression)})


def test_the_owner_declares_the_team_interface():
    for name in TEAM_VARS:
        assert name in WORKGROUP_DEFAULTS, f"roles/workgroup/defaults/main.yml must declare {name}"


@pytest.mark.parametrize("role", reader_roles())
def test_team_variables_are_read_only_in_vars_main(role):
    declarations = ROLES / role / "vars" / "main.yml"
    offenders = []
    for folder in READER_DIRS:
        for path in sorted((ROLES / role / folder).rglob("*")):
            if path.is_file() and path != declarations:
                offenders += [f"{path.relative_to(ROLES.parent)}: {name}" for name in reads(path)]
    assert not offenders, (
        "read the team interface once in vars/main.yml (`__%s_members: \"{{ workgroup_members"
        " | default([]) }}\"`), and that variable at the point of use: %s" % (role, offenders))


@pytest.mark.parametrize("role", reader_roles())
def test_each_team_variable_is_declared_once_with_the_owners_default(role):
    path = ROLES / role / "vars" / "main.yml"
    if not path.exists():
        return
    seen = {}
    for key, value in (yaml.safe_load(path.read_text()) or {}).items():
        for expression in expressions({key: value}):
            for name in TEAM_RE.findall(expression):
                assert key.startswith(f"__{role}_"), f"{path}: {key} reads {name}; name it __{role}_..."
                assert name not in seen or seen[name] == key, (
                    f"{path}: {name} is read by both {seen.get(name)} and {key}; declare it once")
                seen[name] = key
            fallbacks = FALLBACK_RE.findall(expression)
            for name in TEAM_RE.findall(expression):
                assert name in [n for n, _ in fallbacks], (
                    f"{path}: {key} must read {name} with the workgroup role's default as fallback")
            for name, fallback in fallbacks:
                assert yaml.safe_load(fallback) == WORKGROUP_DEFAULTS[name], (
                    f"{path}: {key} falls back to {fallback} for {name}, but the workgroup role's"
                    f" default is {WORKGROUP_DEFAULTS[name]!r}")


def test_the_check_sees_a_point_of_use(tmp_path):
    """The scan finds a read in a task and in a template, and ignores message text."""
    task = tmp_path / "t.yml"
    task.write_text(
        "- name: X\n"
        "  ansible.builtin.debug:\n"
        "    msg: \"workgroup_members says {{ workgroup_members | default([]) | length }}\"\n"
        "  when: workgroup_name != ''\n")
    assert reads(task) == ["workgroup_members", "workgroup_name"]
    template = tmp_path / "t.j2"
    template.write_text("# workgroup_umask\n{% for m in workgroup_members | default([]) %}{% endfor %}\n")
    assert reads(template) == ["workgroup_members"]

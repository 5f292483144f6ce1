# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""One convention for reading another role's variables (issue #11, README "Role interfaces").

A role's public variables are the keys of its defaults/main.yml, and that role owns them. Another
role reads one only in its own vars/main.yml (into a `__<reader>_...` variable) or, when the
operator may need to set the reader's value apart, as the default of one of its own public
variables in defaults/main.yml (`firewall_ssh_port: "{{ ssh_port | default(22) }}"`). Either way it
reads it once, with the owner's default as the fallback, so a role applied alone behaves as in the
whole play. Tasks, handlers and templates read only the reader's variable. So a
`workgroup_members | default([])` or a bare `webserver_user` at a point of use fails here, and so
does a fallback that differs from the owner's default (a copy of www-data that drifts)."""

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
STRING_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
# Task keywords whose value is a bare Jinja expression.
BARE_EXPRESSION_KEYS = {"when", "that", "changed_when", "failed_when", "until"}
READER_DIRS = ("tasks", "handlers", "templates", "defaults", "vars")


def role_names():
    return sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())


def defaults(role):
    path = ROLES / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


# Every role's public variables, with their defaults.
PUBLIC = {role: defaults(role) for role in role_names()}
OWNER = {name: role for role, names in PUBLIC.items() for name in names}


def foreign_re(reader):
    names = sorted(n for n, owner in OWNER.items() if owner != reader)
    return re.compile(r"\b(%s)\b" % "|".join(map(re.escape, names)))


def fallback_re(reader):
    names = sorted(n for n, owner in OWNER.items() if owner != reader)
    return re.compile(r"\b(%s)\s*\|\s*default\(([^()]*)\)" % "|".join(map(re.escape, names)))


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


def code(expression):
    """An expression without its string literals ('logging_remote_host' as a label is no read)."""
    return STRING_RE.sub("''", expression)


def reads(path, pattern):
    """The variables matching pattern that a role file reads (Jinja only: comments and text do not count)."""
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        found = expressions(yaml.safe_load(text))
    else:
        found = JINJA_RE.findall(text)
    return sorted({name for expression in found for name in pattern.findall(code(expression))})


def test_every_role_has_public_variables_and_no_name_has_two_owners():
    seen = {}
    for role, names in PUBLIC.items():
        for name in names:
            assert name not in seen, f"{name} is declared in the defaults of both {seen[name]} and {role}"
            seen[name] = role


@pytest.mark.parametrize("role", role_names())
def test_other_roles_variables_are_read_only_in_vars_or_defaults_main(role):
    pattern = foreign_re(role)
    declarations = {ROLES / role / "vars" / "main.yml", ROLES / role / "defaults" / "main.yml"}
    offenders = []
    for folder in READER_DIRS:
        for path in sorted((ROLES / role / folder).rglob("*")):
            if path.is_file() and path not in declarations:
                offenders += [f"{path.relative_to(ROLES.parent)}: {name}" for name in reads(path, pattern)]
    assert not offenders, (
        "read another role's variable once in vars/main.yml (`__%s_members: \"{{ workgroup_members"
        " | default([]) }}\"`), and that variable at the point of use: %s" % (role, offenders))


@pytest.mark.parametrize("role", role_names())
def test_each_foreign_variable_is_read_once_with_the_owners_default(role):
    pattern, fallback_pattern = foreign_re(role), fallback_re(role)
    seen = {}
    for folder, prefix in (("vars", f"__{role}_"), ("defaults", f"{role}_")):
        path = ROLES / role / folder / "main.yml"
        if not path.exists():
            continue
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            for expression in expressions({key: value}):
                names = pattern.findall(code(expression))
                for name in names:
                    assert key.startswith(prefix), f"{path}: {key} reads {name}; name it {prefix}..."
                    assert name not in seen or seen[name] == key, (
                        f"{path}: {name} is read by both {seen.get(name)} and {key}; read it once")
                    seen[name] = key
                fallbacks = fallback_pattern.findall(expression)
                bare = pattern.findall(fallback_pattern.sub("", code_outside_defaults(expression)))
                assert not bare, f"{path}: {key} reads {bare} without the owner's default as fallback"
                for name, fallback in fallbacks:
                    owner_default = PUBLIC[OWNER[name]][name]
                    assert yaml.safe_load(fallback) == owner_default, (
                        f"{path}: {key} falls back to {fallback} for {name}, but the {OWNER[name]} role's"
                        f" default is {owner_default!r}")


def code_outside_defaults(expression):
    """The expression with string literals blanked, except inside default(...) (the fallback)."""
    parts = re.split(r"(\|\s*default\([^()]*\))", expression)
    return "".join(part if part.lstrip("| ").startswith("default(") else code(part) for part in parts)


def test_the_check_sees_a_point_of_use(tmp_path):
    """The scan finds a read in a task and in a template, and ignores message text and labels."""
    pattern = foreign_re("ssh")
    task = tmp_path / "t.yml"
    task.write_text(
        "- name: X\n"
        "  ansible.builtin.debug:\n"
        "    msg: \"workgroup_members says {{ workgroup_members | default([]) | length }}\"\n"
        "  when: workgroup_name != '' and 'webserver_user' != ''\n")
    assert reads(task, pattern) == ["workgroup_members", "workgroup_name"]
    template = tmp_path / "t.j2"
    template.write_text("# workgroup_umask\n{% for m in workgroup_members | default([]) %}{% endfor %}\n"
                        "{{ webserver_user }}\n")
    assert reads(template, pattern) == ["webserver_user", "workgroup_members"]

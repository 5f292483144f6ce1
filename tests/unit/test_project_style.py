# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Leftovers of issue #11, item 8, in one style: one licence (LICENSE, the roles' metadata and the
Python headers agree), and handlers named `<Verb> <what>` that every `notify:` finds."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HEADER = ["# Copyright: vps-baseline contributors", "# SPDX-License-Identifier: MIT"]
SKIP_DIRS = {".git", ".venv", ".cache", ".ansible", "build", "reports", "__pycache__", ".pytest_cache"}
# A handler (or the topic it listens to) says what it does: "Restart vsftpd", "Reload sshd".
HANDLER_RE = re.compile(r"^(Restart|Reload|Compile|Load|Test|Wait until) \S")


def project_files():
    for path in sorted(REPO.rglob("*")):
        if SKIP_DIRS.intersection(path.relative_to(REPO).parts) or not path.is_file() or path.is_symlink():
            continue
        yield path


def python_files():
    for path in project_files():
        if path.suffix == ".py":
            yield path
        elif path.suffix == "" and path.read_bytes()[:64].startswith(b"#!") and b"python" in path.read_bytes()[:64]:
            yield path


def header_of(path):
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return lines[:2]


def test_one_licence_mit():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) vps-baseline contributors" in text
    for meta in sorted(REPO.glob("roles/*/meta/main.yml")):
        assert yaml.safe_load(meta.read_text())["galaxy_info"]["license"] == "MIT", meta


@pytest.mark.parametrize("path", list(python_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_python_header(path):
    assert header_of(path) == HEADER, (
        f"{path.relative_to(REPO)} must start (after a shebang) with:\n" + "\n".join(HEADER))
    assert not re.search(r"GNU\s+General\s+Public", path.read_text()), "the project is MIT (LICENSE)"


def test_the_header_check_sees_python_scripts():
    found = {str(p.relative_to(REPO)) for p in python_files()}
    assert "scripts/gen-var-docs" in found
    assert "plugins/modules/team_directory.py" in found
    assert "roles/docroot/files/vps_upload_perms.py" in found


def handlers(role):
    path = role / "handlers" / "main.yml"
    return yaml.safe_load(path.read_text()) or [] if path.exists() else []


def notified(node):
    if isinstance(node, dict):
        if "notify" in node:
            value = node["notify"]
            yield from [value] if isinstance(value, str) else value
        for value in node.values():
            yield from notified(value)
    elif isinstance(node, list):
        for item in node:
            yield from notified(item)


@pytest.mark.parametrize("role", sorted(p for p in (REPO / "roles").iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_handler_names_and_notify_targets(role):
    names = set()
    for handler in handlers(role):
        listens = handler.get("listen", [])
        listens = [listens] if isinstance(listens, str) else listens
        for name in [handler["name"], *listens]:
            assert HANDLER_RE.match(name), f"{role.name}: handler {name!r} should read '<Verb> <what>' (Restart vsftpd)"
            names.add(name)
    for path in sorted((role / "tasks").glob("*.yml")):
        for target in notified(yaml.safe_load(path.read_text())):
            assert target in names, f"{path.relative_to(REPO)} notifies {target!r}, which no handler of {role.name} is"

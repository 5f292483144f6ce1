# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Every test that docs/controls.md and docs/threat-model.md name as a proof exists: a
`file.py::test_name` reference (a `*` in the name stands for any suffix) must match a
`def test_...` in a test file of that name (tests/unit or a Molecule scenario's tests/), and a
bare `test_name` in backticks must match a `def test_...` in some test file."""

import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DOCS = ["docs/controls.md", "docs/threat-model.md"]
REF = re.compile(r"(?:[\w./-]*/)?(test_\w+\.py)::(test_[\w*]+)")
# A test named without its file: `test_name` alone in backticks (not a file name, not file::name).
BARE = re.compile(r"`(test_[\w*]+)`")


def collect_test_files():
    files = {}
    for path in [*PROJECT.glob("tests/unit/test_*.py"), *PROJECT.glob("molecule/*/tests/test_*.py")]:
        files.setdefault(path.name, []).append(path.read_text())
    return files


FILES = collect_test_files()


def references():
    found = []
    for doc in DOCS:
        for line_no, line in enumerate((PROJECT / doc).read_text().splitlines(), 1):
            found += [(doc, line_no, f, name) for f, name in REF.findall(line)]
    return found


def test_the_docs_name_tests():
    assert len(references()) > 50  # a parse that finds fewer is broken


def bare_references():
    found = []
    for doc in DOCS:
        for line_no, line in enumerate((PROJECT / doc).read_text().splitlines(), 1):
            found += [(doc, line_no, name) for name in BARE.findall(line)]
    return found


def defines(text, name):
    pattern = re.compile(r"^(?:async )?def " + re.escape(name).replace(r"\*", r"\w*") + r"\b", re.M)
    return pattern.search(text) is not None


def test_the_docs_name_tests_without_their_file():
    assert len(bare_references()) > 50  # a parse that finds fewer is broken


@pytest.mark.parametrize("doc,line,name", bare_references(), ids=lambda v: str(v))
def test_every_test_named_without_its_file_exists(doc, line, name):
    assert any(defines(text, name) for texts in FILES.values() for text in texts), \
        f"{doc}:{line}: no test file defines {name}"


@pytest.mark.parametrize("doc,line,file,name", references(), ids=lambda v: str(v))
def test_every_named_test_exists(doc, line, file, name):
    assert file in FILES, f"{doc}:{line}: no test file {file}"
    assert any(defines(text, name) for text in FILES[file]), f"{doc}:{line}: {file} has no {name}"

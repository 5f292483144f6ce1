# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""README.md's variable tables are generated from roles/*/meta/argument_specs.yml by
scripts/gen-var-docs (issue #11): this fails when one is stale, missing or hand-edited."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_loader = importlib.machinery.SourceFileLoader("gen_var_docs", str(REPO / "scripts" / "gen-var-docs"))
_spec = importlib.util.spec_from_loader("gen_var_docs", _loader)
gen = importlib.util.module_from_spec(_spec)
_loader.exec_module(gen)


def test_readme_tables_are_current():
    text = gen.README.read_text()
    assert gen.render(text) == text, "README.md's variable tables are stale: run scripts/gen-var-docs"


def test_every_role_with_a_spec_has_its_table():
    text = gen.README.read_text()
    for spec in sorted(gen.ROLES.glob("*/meta/argument_specs.yml")):
        role = spec.parent.parent.name
        assert f"<!-- BEGIN GENERATED VARIABLES: {role} " in text
        assert f"<!-- END GENERATED VARIABLES: {role} -->" in text


def test_a_hand_edit_or_a_spec_change_is_stale():
    """The check can fail: a changed cell inside a block is rewritten, text outside is kept."""
    text = gen.README.read_text()
    row = "| `vsftpd_min_uid` | int | `500` |"
    assert row in text
    edited = text.replace(row, "| `vsftpd_min_uid` | int | `100` |")
    assert gen.render(edited) != edited
    assert gen.render(edited) == text
    outside = text.replace("Decisions:", "Decisions (hand-written):", 1)
    assert gen.render(outside) == outside


def test_a_role_without_its_block_is_refused():
    text = gen.README.read_text()
    start = text.index("<!-- BEGIN GENERATED VARIABLES: vsftpd ")
    end = text.index("<!-- END GENERATED VARIABLES: vsftpd -->") + len("<!-- END GENERATED VARIABLES: vsftpd -->")
    with pytest.raises(SystemExit, match="vsftpd"):
        gen.render(text[:start] + text[end:])


def test_cells_are_escaped_and_markup_converted():
    assert gen.cell("a | b\n c") == "a \\| b c"
    assert gen.description_of({"description": ["See C(LOG-02).", "Two"]}) == "See `LOG-02`. Two"
    assert gen.code("") == '`""`'
    assert gen.code("002") == '`"002"`'
    assert gen.code(["::1", "127.0.0.1/8"]) == '`["::1", 127.0.0.1/8]`'


def test_check_mode_exit_code(monkeypatch, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(gen.README.read_text().replace("| `vsftpd_min_uid` | int | `500` |", "| `vsftpd_min_uid` | x |"))
    monkeypatch.setattr(gen, "README", readme)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""roles/workgroup/library/team_group_members.py: membership planning and the module run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "roles/workgroup/library/team_group_members.py"
_spec = importlib.util.spec_from_file_location("team_group_members", MODULE)
tgm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tgm)


@pytest.mark.parametrize(
    ("current", "members", "absent", "exclusive", "target", "added", "removed"),
    [
        (["a", "x"], ["a", "b"], [], True, ["a", "b"], ["b"], ["x"]),
        (["a", "x"], ["a", "b"], [], False, ["a", "x", "b"], ["b"], []),
        (["a", "x", "gone"], ["a"], ["gone"], False, ["a", "x"], [], ["gone"]),
        (["a", "b"], ["b", "a"], [], True, ["b", "a"], [], []),
        ([], ["a", "a"], [], True, ["a"], ["a"], []),
        (["x"], [], [], True, [], [], ["x"]),
    ],
)
def test_plan(current, members, absent, exclusive, target, added, removed):
    assert tgm.plan(current, members, absent, exclusive) == (target, added, removed)


def test_plan_refuses_member_both_declared_and_absent():
    with pytest.raises(ValueError, match="both declared and absent: a"):
        tgm.plan([], ["a"], ["a"], True)


def run_module(tmp_path, args, check_mode=False):
    args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": True}
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, str(MODULE), str(path)], capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)


def test_module_missing_group_fails_outside_check_mode(tmp_path):
    out = run_module(tmp_path, {"group": "no-such-group-vpsb", "members": ["a"]})
    assert out["failed"] is True
    assert "does not exist" in out["msg"]


def test_module_missing_group_in_check_mode_plans_creation(tmp_path):
    out = run_module(tmp_path, {"group": "no-such-group-vpsb", "members": ["a"]}, check_mode=True)
    assert out["changed"] is True
    assert out["added"] == ["a"]
    assert out["diff"]["after"] == "a\n"


def test_module_check_mode_reports_without_changing(tmp_path):
    # root's group exists everywhere; in check mode nothing is written.
    out = run_module(tmp_path, {"group": "root", "members": ["nobody-vpsb"], "exclusive": False}, check_mode=True)
    assert out["changed"] is True
    assert "nobody-vpsb" in out["added"]
    import grp

    assert "nobody-vpsb" not in grp.getgrnam("root").gr_mem

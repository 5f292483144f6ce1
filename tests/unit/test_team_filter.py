# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""plugins/filter/team.py: the one place the team interface's defaults live."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "team_filter", Path(__file__).resolve().parents[2] / "plugins/filter/team.py"
)
team = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(team)

MEMBERS = [
    {"name": "wuser1", "uid": 601, "ftp": True},
    {"name": "wuser2", "chroot": "/var/www/html/ir", "shell": "/bin/sh"},
    {"name": "gone", "state": "absent"},
]


def test_present_members_get_defaults():
    got = team.team_members(MEMBERS)
    assert [m["name"] for m in got] == ["wuser1", "wuser2"]
    assert got[0] == {
        "name": "wuser1", "uid": 601, "ftp": True, "state": "present",
        "ssh_keys": [], "chroot": None, "shell": "/bin/bash",
    }
    assert got[1]["shell"] == "/bin/sh"
    assert got[1]["ftp"] is False


def test_absent_and_all():
    assert [m["name"] for m in team.team_members(MEMBERS, "absent")] == ["gone"]
    assert len(team.team_members(MEMBERS, "all")) == 3


def test_default_shell_and_explicit_none():
    got = team.team_members([{"name": "a", "shell": None}], default_shell="/bin/zsh")
    assert got[0]["shell"] == "/bin/zsh"


def test_input_is_not_modified():
    members = [{"name": "a"}]
    team.team_members(members)
    assert members == [{"name": "a"}]


def test_empty_and_none():
    assert team.team_members([]) == []
    assert team.team_members(None) == []


def test_bad_state_is_refused():
    with pytest.raises(ValueError, match="state must be"):
        team.team_members(MEMBERS, "gone")


def test_registered_as_filter():
    assert team.FilterModule().filters()["team_members"] is team.team_members

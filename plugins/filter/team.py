# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Filters shared by the roles that read the team interface (``workgroup_members``)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: team_members
short_description: Normalised team members, filtered by state
description:
  - Fills the defaults of each C(workgroup_members) entry (state present, ftp false,
    no ssh_keys, no chroot, the default shell) and keeps those in the given state.
  - Every role that reads the team interface uses it, so the defaults live in one place.
positional: state
options:
  _input:
    description: The C(workgroup_members) list.
    type: list
    elements: dict
    required: true
  state:
    description: Keep members in this state; C(all) keeps everyone.
    type: str
    default: present
    choices: [present, absent, all]
  default_shell:
    description: Shell of members that do not declare one.
    type: str
    default: /bin/bash
"""

EXAMPLES = r"""
- name: Accounts of the current team
  ansible.builtin.debug:
    msg: "{{ workgroup_members | team_members | map(attribute='name') }}"
- name: Offboarded members
  ansible.builtin.debug:
    msg: "{{ workgroup_members | team_members('absent') | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: Member dicts with keys name, state, shell, ssh_keys, ftp, chroot (and uid if given).
  type: list
  elements: dict
"""

_DEFAULTS = {"state": "present", "ssh_keys": [], "ftp": False, "chroot": None}


def team_members(members, state="present", default_shell="/bin/bash"):
    """Return the members in ``state`` with every optional key filled in."""
    if state not in ("present", "absent", "all"):
        raise ValueError(f"team_members: state must be present, absent or all, not {state!r}")
    result = []
    for member in members or []:
        full = {**_DEFAULTS, "shell": default_shell, **member}
        if full.get("shell") is None:
            full["shell"] = default_shell
        if state == "all" or full["state"] == state:
            result.append(full)
    return result


class FilterModule:
    """Team interface filters."""

    def filters(self):
        return {"team_members": team_members}

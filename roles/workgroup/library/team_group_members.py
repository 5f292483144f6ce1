#!/usr/bin/python
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Set the member list of a local group, with check mode and diff."""

from __future__ import annotations

DOCUMENTATION = r"""
module: team_group_members
short_description: Make a local group hold the declared members
description:
  - Adds the declared users to a local group and removes the users listed as absent.
  - With O(exclusive), also removes every member that is not declared. Accounts are
    never created or deleted here, only group membership changes.
  - Uses C(gpasswd), so /etc/group and /etc/gshadow stay consistent.
options:
  group:
    description: Name of an existing local group.
    type: str
    required: true
  members:
    description: Users that must be members.
    type: list
    elements: str
    default: []
  absent:
    description: Users that must not be members (offboarded).
    type: list
    elements: str
    default: []
  exclusive:
    description: Remove members that are not in O(members).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: vps-baseline
"""

EXAMPLES = r"""
- name: WG-01 | Team group holds exactly the declared members
  team_group_members:
    group: workgroup
    members: [wuser1, wuser2]
    exclusive: true
"""

RETURN = r"""
added:
  description: Users added to the group.
  type: list
  elements: str
  returned: always
removed:
  description: Users removed from the group.
  type: list
  elements: str
  returned: always
members:
  description: The group's members after the run (in check mode, what they would be).
  type: list
  elements: str
  returned: always
"""

import grp

from ansible.module_utils.basic import AnsibleModule


def plan(current, members, absent, exclusive):
    """Return (target member list, added, removed) for the group."""
    wanted = list(dict.fromkeys(members))
    overlap = sorted(set(wanted) & set(absent))
    if overlap:
        raise ValueError(f"users both declared and absent: {', '.join(overlap)}")
    if exclusive:
        target = wanted
    else:
        target = [u for u in current if u not in absent]
        target += [u for u in wanted if u not in target]
    added = [u for u in target if u not in current]
    removed = [u for u in current if u not in target]
    return target, added, removed


def run_module():
    module = AnsibleModule(
        argument_spec={
            "group": {"type": "str", "required": True},
            "members": {"type": "list", "elements": "str", "default": []},
            "absent": {"type": "list", "elements": "str", "default": []},
            "exclusive": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    group = module.params["group"]
    try:
        current = list(grp.getgrnam(group).gr_mem)
    except KeyError:
        if not module.check_mode:
            module.fail_json(msg=f"group {group} does not exist")
        current = []  # check mode on a fresh host: the group task would create it
    try:
        target, added, removed = plan(
            current, module.params["members"], module.params["absent"], module.params["exclusive"]
        )
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    changed = bool(added or removed)
    result = {
        "changed": changed,
        "added": added,
        "removed": removed,
        "members": target,
        "diff": {
            "before_header": f"group {group} members",
            "after_header": f"group {group} members",
            "before": "\n".join(sorted(current)) + "\n",
            "after": "\n".join(sorted(target)) + "\n",
        },
    }
    if changed and not module.check_mode:
        gpasswd = module.get_bin_path("gpasswd", required=True)
        module.run_command([gpasswd, "-M", ",".join(target), group], check_rc=True)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()

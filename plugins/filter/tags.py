# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Whether this run's tag selection runs the tasks of a control (issue #11: `--tags <id>`)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: tags_select
short_description: Whether this run's --tags/--skip-tags run a task with the given tags
description:
  - True when a task tagged with C(tags) (a control's ID tag and its role's tag in the playbook)
    runs under this run's selection, by Ansible's own rule for tasks that are not tagged
    C(always) or C(never), that is when C(--tags) names C(all), C(tagged) or one of C(tags),
    and C(--skip-tags) names none of them, nor C(all) or C(tagged).
  - Lets a role skip the host probes and the work that serve only a control this run does not
    apply (memory's swap probes in the pre-flight, DR-06's ACLs in DR-03's walk), so that
    C(--tags <id>) of another control reads and changes nothing of theirs.
positional: skip_tags, tags
options:
  _input:
    description: This run's C(ansible_run_tags).
    type: list
    elements: str
    required: true
  skip_tags:
    description: This run's C(ansible_skip_tags).
    type: list
    elements: str
    required: true
  tags:
    description: The tags of the task, for example C([mem-01, memory]).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: MEM-01's swap probes run only when MEM-01 does
  ansible.builtin.include_tasks: swap_probes.yml
  when: ansible_run_tags | tags_select(ansible_skip_tags, ['mem-01', 'memory'])
"""

RETURN = r"""
_value:
  description: Whether such a task runs in this run.
  type: bool
"""


def tags_select(run_tags, skip_tags, tags):
    """Ansible's selection of a task tagged ``tags`` (neither always nor never) by the run's tags."""
    run, skip, own = set(run_tags or []), set(skip_tags or []), set(tags)
    selected = bool(run & ({"all", "tagged"} | own))
    skipped = bool(skip & ({"all", "tagged"} | own))
    return selected and not skipped


class FilterModule:
    def filters(self):
        return {"tags_select": tags_select}

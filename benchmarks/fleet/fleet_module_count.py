# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Module executions per host, for benchmarks/fleet (not enabled by the project's ansible.cfg)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_module_count
type: aggregate
short_description: Count, per host, the module executions that ran on the host
description:
  - Counts, per host, the results that were not skipped of tasks whose action runs on the host;
    a loop counts one per item that was not skipped.
  - Not counted - actions that run on the controller only (assert, set_fact, debug, fail, meta,
    include_*/import_*, validate_argument_spec, add_host, group_by, include_vars, pause, ...)
    and tasks delegated to localhost.
  - At the end of the run it writes C({"host": count}) as JSON to E(FLEET_MODULE_COUNT_FILE) when set.
  - Enabled by benchmarks/fleet/run only, through E(ANSIBLE_CALLBACK_PLUGINS) and
    E(ANSIBLE_CALLBACKS_ENABLED).
"""

import json
import os

from ansible.plugins.callback import CallbackBase

CONTROLLER_ONLY = frozenset((
    'assert', 'set_fact', 'debug', 'fail', 'meta', 'include_tasks', 'include_role', 'import_tasks',
    'import_role', 'import_playbook', 'validate_argument_spec', 'add_host', 'group_by',
    'include_vars', 'pause', 'set_stats', 'fact_cache', 'wait_for_connection', 'async_status',
))
LOCAL = frozenset(('localhost', '127.0.0.1', '::1'))


def short_action(action: str) -> str:
    """`ansible.builtin.stat` and `ansible.legacy.stat` are both `stat`."""
    for prefix in ('ansible.builtin.', 'ansible.legacy.'):
        if action.startswith(prefix):
            return action[len(prefix):]
    return action


def runs_on_host(task) -> bool:
    """True when the task's action is a module run on the target host."""
    if short_action(task.action or '') in CONTROLLER_ONLY:
        return False
    return str(getattr(task, 'delegate_to', None) or '') not in LOCAL


def executions(result: dict) -> int:
    """Module executions in one task result: one, or one per loop item that was not skipped."""
    items = result.get('results')
    if isinstance(items, list):
        return sum(1 for item in items if isinstance(item, dict) and not item.get('skipped'))
    return 0 if result.get('skipped') else 1


class CallbackModule(CallbackBase):
    """Counts module executions per host."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'fleet_module_count'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts: dict[str, int] = {}

    def _count(self, result) -> None:
        host = result.host.get_name()
        self.counts.setdefault(host, 0)
        if runs_on_host(result.task):
            self.counts[host] += executions(result.result)

    def v2_runner_on_ok(self, result, **kwargs):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('FLEET_MODULE_COUNT_FILE')
        if path:
            with open(path, 'w', encoding='utf-8') as out:
                json.dump(self.counts, out, sort_keys=True)

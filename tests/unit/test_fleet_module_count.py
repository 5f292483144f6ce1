# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""benchmarks/fleet's callback counts module executions on the host, per host."""

import json
import os
import sys
from types import SimpleNamespace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'benchmarks', 'fleet'))

import fleet_module_count as fmc  # noqa: E402


class FakeHost:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


def fake(host, action, data=None, delegate_to=None):
    """Shape of ansible-core 2.19 CallbackTaskResult as the callback reads it."""
    task = SimpleNamespace(action=action, delegate_to=delegate_to)
    return SimpleNamespace(host=FakeHost(host), task=task, result=data or {})


def test_counts_host_modules_items_and_failures_only(tmp_path, monkeypatch):
    out = tmp_path / 'counts.json'
    monkeypatch.setenv('FLEET_MODULE_COUNT_FILE', str(out))
    cb = fmc.CallbackModule()
    cb.v2_runner_on_ok(fake('a', 'ansible.builtin.stat'))
    cb.v2_runner_on_ok(fake('a', 'ansible.legacy.command'))
    cb.v2_runner_on_failed(fake('a', 'ansible.builtin.apt'))
    # a loop: two items ran, one was skipped
    cb.v2_runner_on_ok(fake('a', 'ansible.builtin.file',
                            {'results': [{'changed': False}, {'skipped': True}, {'changed': False}]}))
    # controller-only actions and localhost delegation are not module runs on the host
    for action in ('ansible.builtin.assert', 'ansible.builtin.set_fact', 'ansible.builtin.debug',
                   'ansible.builtin.include_tasks', 'ansible.builtin.meta',
                   'ansible.builtin.validate_argument_spec', 'include_vars'):
        cb.v2_runner_on_ok(fake('a', action))
    cb.v2_runner_on_ok(fake('a', 'ansible.builtin.command', delegate_to='localhost'))
    cb.v2_runner_on_ok(fake('b', 'ansible.builtin.set_fact'))
    cb.v2_playbook_on_stats(None)
    assert json.loads(out.read_text()) == {'a': 5, 'b': 0}

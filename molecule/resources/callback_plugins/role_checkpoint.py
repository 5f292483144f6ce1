# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Test-only callback: run a probe at every role boundary of a play (issue #9, fail closed).

Enabled by the tests through ANSIBLE_CALLBACKS_ENABLED with ROLE_CHECKPOINT_COMMAND set to a
command line; the command runs with one more argument, the checkpoint's label:

- ``before``: at the play's first task, before anything ran;
- ``after:<role>``: when the first task of the next top-level role starts, so every task of
  <role> has run on every host and nothing after it. Handlers do not move the boundary: a role's
  own flush_handlers belongs to that role, and for the play's last role the checkpoint comes at
  the end of the run, after the play's final handlers (meta tasks send no callback, so the
  implicit flush cannot be told from a role's own);
- ``failed-in:<role>``: the run stopped on a failure in <role>;
- ``end``: when the run is over: after the last role and the handlers, or after a failure.

Why a boundary checkpoint equals "a failure injected after <role>": with the linear strategy a
task starts only when the previous one is done on every host; when a task fails, the play stops
for the host and handlers that were notified but not yet run are never run (force_handlers is
off, which the test asserts). At ``after:<role>`` the host is exactly in that state: every change
of <role> applied, its handlers still pending, nothing of the next role started.

Tasks that roles include from other roles (preflight includes every role's validate.yml, a role
imports a shared task file) belong to the top-level role of the play that included them.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: role_checkpoint
type: aggregate
short_description: run ROLE_CHECKPOINT_COMMAND at every role boundary (tests only)
description: See the module docstring.
requirements: [ROLE_CHECKPOINT_COMMAND in the environment]
"""


def top_role(task):
    """The outermost role whose block holds ``task`` (None for play-level tasks)."""
    name, node = None, task
    while node is not None:
        role = getattr(node, "_role", None)
        if role is not None:
            name = role.get_name()
        node = getattr(node, "_parent", None)
    return name


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "role_checkpoint"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._command = shlex.split(os.environ.get("ROLE_CHECKPOINT_COMMAND", ""))
        self._current = None
        self._started = False

    def _checkpoint(self, label):
        if self._command:
            subprocess.run([*self._command, label], check=True, timeout=120)

    def _boundary(self, role):
        if not self._started:
            self._started = True
            self._checkpoint("before")
        elif role != self._current and self._current is not None:
            self._checkpoint(f"after:{self._current}")
        self._current = role

    def v2_playbook_on_play_start(self, play):
        self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._boundary(top_role(task))

    def v2_playbook_on_stats(self, stats):
        if self._current is not None:
            stopped = any(stats.failures.values()) or any(stats.dark.values())
            self._checkpoint(f"{'failed-in' if stopped else 'after'}:{self._current}")
        self._checkpoint("end")

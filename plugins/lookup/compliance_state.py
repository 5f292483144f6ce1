# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Read the current run's per-control statuses written by the compliance_report callback."""

from __future__ import annotations

DOCUMENTATION = r"""
name: compliance_state
short_description: Control statuses of a host in the current run (from the compliance_report callback)
description:
  - Reads C(.in-progress.json), which the C(compliance_report) callback rewrites at the start of every play,
    and returns a mapping of control ID to status (C(compliant), C(drift), C(remediated), C(failed),
    C(not_applicable)) for each requested host.
  - Meant for a final "audit gate" play that fails hosts with drift, because a callback cannot change the
    exit code of C(ansible-playbook). The gate must be a separate play placed after the audited plays.
  - Fails when the file is missing, unreadable, or written by another run (a stale file from an earlier run
    or a concurrent run), and when the C(compliance_report) callback is not enabled for the current run.
  - A host for which no control task ran yields an empty mapping.
version_added: "1.0.0"
author: vps-baseline contributors
options:
  _terms:
    description: Inventory host names; defaults to the current C(inventory_hostname).
    required: false
    type: list
    elements: str
  report_dir:
    description:
      - Directory holding C(.in-progress.json); must match the callback's O(report_dir).
      - Defaults to C(reports/) at the root of the vps-baseline project that contains this plugin.
    type: path
    env:
      - name: VPS_BASELINE_REPORT_DIR
    ini:
      - section: compliance_report
        key: report_dir
"""

EXAMPLES = r"""
# The audit gate: the last task of playbooks/audit.yml, run on every host.
- name: Fail hosts with drift or failed controls
  vars:
    __audit_states: "{{ lookup('compliance_state') }}"
    __audit_bad: >-
      {{ __audit_states | dict2items | selectattr('value', 'in', ['drift', 'failed'])
         | map(attribute='key') | list }}
  ansible.builtin.assert:
    that: __audit_bad | length == 0
    fail_msg: "Controls not compliant on {{ inventory_hostname }}: {{ __audit_bad | join(', ') }}"
    success_msg: "{{ __audit_states | length }} controls checked, no drift"
    quiet: true

- name: Statuses of two named hosts
  ansible.builtin.debug:
    msg: "{{ lookup('compliance_state', 'web1', 'web2', wantlist=True) }}"
"""

RETURN = r"""
_list:
  description: One mapping per requested host, control ID to status.
  type: list
  elements: dict
  sample:
    - {"DR-02": "compliant", "WG-01": "drift"}
"""

import json
import os
from pathlib import Path

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# Must match plugins/callback/compliance_report.py (checked by tests/unit/test_compliance_report.py).
SCHEMA = 1
DEFAULT_REPORT_DIR = Path(__file__).resolve().parents[2] / "reports"
IN_PROGRESS_NAME = ".in-progress.json"
RUN_ID_ENV = "VPS_BASELINE_REPORT_RUN_ID"


def read_state(path: Path, run_id: str | None) -> dict:
    """Load and validate the in-progress state file of run run_id."""
    if not run_id:
        raise AnsibleLookupError(
            f"compliance_state: {RUN_ID_ENV} is not set: enable the compliance_report callback "
            "(callbacks_enabled = compliance_report) so the current run's state is recorded")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AnsibleLookupError(f"compliance_state: {path} does not exist; is the compliance_report "
                                 "callback enabled with the same report_dir?") from exc
    except (OSError, ValueError) as exc:
        raise AnsibleLookupError(f"compliance_state: cannot read {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("schema") != SCHEMA or not isinstance(state.get("hosts"), dict):
        raise AnsibleLookupError(f"compliance_state: {path} is not a schema {SCHEMA} compliance state")
    if state.get("run_id") != run_id:
        raise AnsibleLookupError(f"compliance_state: {path} belongs to another run "
                                 f"({state.get('run_id')!r}, expected {run_id!r}); stale file or concurrent run")
    return state


class LookupModule(LookupBase):
    """Return {control_id: status} for each requested host."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        configured = self.get_option("report_dir")
        report_dir = Path(configured) if configured else DEFAULT_REPORT_DIR
        hosts = list(terms) or [(variables or {}).get("inventory_hostname")]
        if None in hosts:
            raise AnsibleLookupError("compliance_state: no host given and inventory_hostname is undefined")
        state = read_state(report_dir / IN_PROGRESS_NAME, os.environ.get(RUN_ID_ENV))
        return [
            {cid: entry["status"] for cid, entry in state["hosts"].get(str(host), {}).items()}
            for host in hosts
        ]

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""tags_select (plugins/filter/tags.py) decides like Ansible's own tag selection.

Each case runs a real ansible-playbook on localhost with the case's --tags/--skip-tags: a task
tagged like a control (its ID and its role's tag) sets a fact when it runs, and an `always` task
sets what the filter says; a last `always` task prints both from the run's ansible_run_tags/ansible_skip_tags. Both must agree,
so the filter cannot drift from the engine it stands in for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))
from tags import tags_select  # noqa: E402

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: What the filter says
      ansible.builtin.set_fact:
        said: "{{ ansible_run_tags | tags_select(ansible_skip_tags, ['mem-01', 'memory']) }}"
      tags: [always]
    - name: A task of MEM-01 in the memory role
      ansible.builtin.set_fact:
        ran: true
      tags: [mem-01, memory]
    - name: Record both
      ansible.builtin.debug:
        msg: "SEEN {{ {'said': said | bool, 'ran': ran | default(false)} | to_json }} END"
      tags: [always]
"""

CASES = [
    # (--tags, --skip-tags)
    ([], []),
    (["mem-01"], []),
    (["memory"], []),
    (["ssh-01"], []),
    (["ssh-01", "mem-01"], []),
    (["tagged"], []),
    (["untagged"], []),
    ([], ["mem-01"]),
    ([], ["memory"]),
    (["memory"], ["mem-01"]),
    ([], ["ssh-01"]),
    (["always"], []),
]


@pytest.mark.parametrize(("tags", "skip"), CASES, ids=lambda v: ",".join(v) or "-")
def test_filter_selects_like_ansible(tmp_path, tags, skip):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local", str(play)]
    if tags:
        cmd += ["--tags", ",".join(tags)]
    if skip:
        cmd += ["--skip-tags", ",".join(skip)]
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {**os.environ, "ANSIBLE_FILTER_PLUGINS": str(REPO / "plugins" / "filter"), "ANSIBLE_CONFIG": str(cfg)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.split("SEEN ", 1)[1].split(" END", 1)[0].replace('\\"', '"'))
    assert seen["said"] is seen["ran"], (tags, skip, seen)
    run_tags = tags or ["all"]
    assert tags_select(run_tags, skip, ["mem-01", "memory"]) is seen["ran"]

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Unit and end-to-end tests for the compliance_report callback and the compliance_state lookup."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from ansible import context
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import callback_loader, lookup_loader

ROOT = Path(__file__).resolve().parents[2]
CALLBACK_DIR = ROOT / "plugins" / "callback"
LOOKUP_DIR = ROOT / "plugins" / "lookup"
MALICIOUS = '<script>alert("x")</script>'


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cr = _load(CALLBACK_DIR / "compliance_report.py", "vps_compliance_report")
cs = _load(LOOKUP_DIR / "compliance_state.py", "vps_compliance_state")
callback_loader.add_directory(str(CALLBACK_DIR))
lookup_loader.add_directory(str(LOOKUP_DIR))


# ---------------------------------------------------------------- fakes for the callback API


class FakeHost:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_name(self) -> str:
        return self.name


def fake_result(host: str, name: str, data: dict[str, Any] | None = None, *,
                tags: list[str] | None = None, check_mode: Any = None) -> SimpleNamespace:
    """Shape of ansible-core 2.19 CallbackTaskResult as used by the callback.

    Like every vps-baseline task, a task named with an ID carries its tag unless tags are given.
    """
    if tags is None:
        named = cr.NAME_ID_RE.match(name)
        tags = [named.group(1).lower()] if named else []
    task = SimpleNamespace(name=name, tags=tags or [], check_mode=check_mode)
    fields: dict[str, Any] = {"name": name, "tags": tags or []}
    if check_mode is not None:
        fields["check_mode"] = check_mode
    return SimpleNamespace(host=FakeHost(host), task=task, task_fields=fields, result=data or {})


@pytest.fixture
def callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A callback loaded through Ansible's loader (so options resolve) writing into tmp_path."""
    monkeypatch.setenv(cr.RUN_ID_ENV, "placeholder")  # restored after the callback overwrites it
    monkeypatch.setenv("VPS_BASELINE_REPORT_DIR", str(tmp_path / "reports"))

    def make(check: bool = False):
        monkeypatch.setattr(context, "CLIARGS", {"check": check})
        plugin = callback_loader.get("compliance_report")
        plugin.set_options()
        messages: list[str] = []
        monkeypatch.setattr(plugin._display, "display", lambda msg, *a, **kw: messages.append(msg))
        plugin.messages = messages
        plugin.v2_playbook_on_start(SimpleNamespace(_file_name="/x/playbooks/audit.yml"))
        return plugin

    return make


# ---------------------------------------------------------------- control ID parsing


@pytest.mark.parametrize(("name", "tags", "expected"), [
    # The ID tag decides; the name is not read (tests/unit/test_control_tags.py keeps them equal).
    ("WG-01 | Team group exists", ["workgroup", "wg-01"], "WG-01"),
    ("Group exists", ["workgroup", "wg-01"], "WG-01"),
    ("WG-01 | Named only", [], None),
    ("WG-01 | Named only", None, None),
    ("DR-02 | name and tag differ", ["wg-01"], "WG-01"),
    ("x", ["sshd-10"], "SSHD-10"),
    ("x", ["webserver-01"], None),
    ("x", ["ssh-1"], None),
    ("x", ["FW-02"], "FW-02"),
    # Several ID tags: the name's, if it is one of them, else the first (a failure is never dropped).
    ("FW-03 | x", ["fw-01", "fw-03", "fw-05"], "FW-03"),
    ("FW-09 | x", ["fw-05", "fw-01"], "FW-01"),
    # Pre-flight: no ID tag, tagged always or preflight.
    ("Validate | inputs", ["firewall", "always"], cr.PREFLIGHT),
    ("Gathering Facts", ["always"], cr.PREFLIGHT),
    ("Probe", ["preflight"], cr.PREFLIGHT),
    ("FW-05 | Load", ["always", "fw-05"], "FW-05"),
    ("No id", ["workgroup"], None),
    (None, None, None),
])
def test_control_id(name, tags, expected):
    assert cr.control_id(name, tags) == expected


# ---------------------------------------------------------------- aggregation


def _status(state, host: str, cid: str) -> str:
    return state.as_dict(final=False)["hosts"][host][cid]["status"]


def test_precedence_failed_over_drift_over_remediated_over_compliant():
    state = cr.ComplianceState(run_id="r")
    for outcome, check in [("ok", False), ("changed", False), ("changed", True), ("failed", False)]:
        state.record("h", "AA-01", outcome, f"AA-01 | {outcome}", check, {})
    state.record("h", "AA-02", "ok", "AA-02 | ok", False, {})
    state.record("h", "AA-02", "changed", "AA-02 | fix", False, {})
    state.record("h", "AA-02", "changed", "AA-02 | audit only", True, {})
    state.record("h", "AA-03", "ok", "AA-03 | ok", False, {})
    state.record("h", "AA-03", "changed", "AA-03 | fix", False, {})
    state.record("h", "AA-04", "ok", "AA-04 | ok", False, {})
    state.record("h", "AA-04", "skipped", "AA-04 | skip", False, {})
    state.record("h", "AA-05", "skipped", "AA-05 | skip", False, {})
    assert [_status(state, "h", f"AA-0{i}") for i in range(1, 6)] == [
        "failed", "drift", "remediated", "compliant", "not_applicable"]
    report = state.as_dict(final=False)
    assert report["hosts"]["h"]["AA-01"]["tasks"] == {"ok": 1, "changed": 2, "failed": 1, "skipped": 0}
    assert report["summary"]["h"] == {"failed": 1, "drift": 1, "remediated": 1, "compliant": 1,
                                      "not_applicable": 1}
    assert report["controls"] == ["AA-01", "AA-02", "AA-03", "AA-04", "AA-05"]


def test_unreachable_fails_control_and_lists_host():
    state = cr.ComplianceState(run_id="r")
    state.record("h", "AA-01", "ok", "AA-01 | ok", False, {})
    state.record("h", "AA-01", "unreachable", "AA-01 | x", False, {"msg": "ssh: timeout"})
    state.record("gone", None, "unreachable", "Gathering Facts", False, {})
    report = state.as_dict(final=True)
    entry = report["hosts"]["h"]["AA-01"]
    assert entry["status"] == "failed"
    assert entry["details"]["unreachable"] is True
    assert entry["details"]["failed_tasks"] == [{"task": "AA-01 | x", "msg": "ssh: timeout"}]
    assert report["hosts"]["gone"] == {}
    assert report["unreachable"] == ["gone", "h"]


def test_changed_task_names_deduplicated_and_bounded_messages_truncated():
    state = cr.ComplianceState(run_id="r")
    for i in range(cr.MAX_TASK_NAMES + 5):
        state.record("h", "AA-01", "changed", f"AA-01 | task {i}", False, {})
        state.record("h", "AA-01", "changed", f"AA-01 | task {i}", False, {})
    state.record("h", "AA-02", "failed", "AA-02 | t", False, {"msg": "m" * 1000})
    report = state.as_dict(final=True)
    names = report["hosts"]["h"]["AA-01"]["changed_tasks"]
    assert len(names) == cr.MAX_TASK_NAMES and len(set(names)) == len(names)
    assert report["hosts"]["h"]["AA-01"]["tasks"]["changed"] == 2 * (cr.MAX_TASK_NAMES + 5)
    assert len(report["hosts"]["h"]["AA-02"]["details"]["failed_tasks"][0]["msg"]) == cr.MAX_MSG_CHARS


def test_docroot_perms_counters_summed_over_tasks_and_loop_items():
    state = cr.ComplianceState(run_id="r")
    state.record("h", "DR-02", "changed", "DR-02 | a", False,
                 {"scanned": 10, "mode_fixed": 2, "group_fixed": 0, "world_writable_removed": ["/a", "/b"],
                  "changed": True, "diff": {"before": "huge"}})
    state.record("h", "DR-02", "ok", "DR-02 | b", False,
                 {"results": [{"scanned": 5, "mode_fixed": 1}, {"scanned": 7, "group_fixed": 3}, "junk"]})
    state.record("h", "DR-03", "ok", "DR-03 | c", False, {"scanned": True, "msg": "x"})
    hosts = state.as_dict(final=True)["hosts"]["h"]
    assert hosts["DR-02"]["details"] == {"scanned": 22, "mode_fixed": 3, "group_fixed": 3,
                                         "world_writable_removed": 2}
    assert hosts["DR-03"]["details"] == {}


def test_notice_of_a_compliant_control_in_the_json_and_the_html():
    """A standing risk stated by a task (compliance_notice, DR-06's default) is kept, whatever the status."""
    state = cr.ComplianceState(run_id="r")
    notice = "site code writable by the web server: <www-data>\n  may rewrite every file"
    for _ in range(2):  # once per notice, whitespace collapsed
        state.record("h", "DR-06", "ok", "DR-06 | notice", False, {"compliance_notice": notice})
    state.record("h", "DR-06", "skipped", "DR-06 | skipped", False, {"compliance_notice": "not said"})
    state.record("h", "DR-05", "ok", "DR-05 | other", False, {"compliance_notice": ["not a string"]})
    report = state.as_dict(final=True)
    entry = report["hosts"]["h"]["DR-06"]
    assert entry["status"] == "compliant"
    assert entry["details"]["notices"] == ["site code writable by the web server: <www-data> may rewrite every file"]
    assert "notices" not in report["hosts"]["h"]["DR-05"]["details"]
    html = cr.render_html(report)
    assert "Notice: site code writable by the web server: &lt;www-data&gt; may rewrite every file" in html
    assert "<www-data>" not in html


# ---------------------------------------------------------------- callback driven by fake results


def test_callback_check_mode_detection_and_loop_result(callback, tmp_path):
    audit = callback(check=True)
    audit.v2_runner_on_ok(fake_result("h", "AA-01 | probe", {"changed": False}, check_mode=False))
    audit.v2_runner_on_ok(fake_result("h", "AA-02 | would change", {"changed": True}))
    audit.v2_runner_on_ok(fake_result("h", "AA-03 | loop", {"changed": True, "results": [
        {"changed": False}, {"changed": True}]}, check_mode=True))
    audit.v2_runner_on_skipped(fake_result("h", "Tagged only", {"skipped": True}, tags=["aa-04"]))
    audit.v2_runner_on_ok(fake_result("h", "No id at all", {"changed": True}))
    assert audit.state.mode == "audit"
    hosts = audit.state.as_dict(final=False)["hosts"]["h"]
    assert {cid: e["status"] for cid, e in hosts.items()} == {
        "AA-01": "compliant", "AA-02": "drift", "AA-03": "drift", "AA-04": "not_applicable"}
    assert hosts["AA-03"]["tasks"] == {"ok": 0, "changed": 1, "failed": 0, "skipped": 0}

    remediate = callback(check=False)
    remediate.v2_runner_on_ok(fake_result("h", "AA-02 | fix", {"changed": True}))
    remediate.v2_runner_on_ok(fake_result("h", "AA-05 | audit-only task", {"changed": True}, check_mode=True))
    remediate.v2_runner_on_failed(fake_result("h", "AA-06 | broken", {"failed": True, "msg": "nope"}),
                                  ignore_errors=True)
    remediate.v2_runner_on_unreachable(fake_result("u", "AA-02 | fix", {"unreachable": True}))
    report = remediate.state.as_dict(final=True)
    assert report["mode"] == "remediate"
    assert {cid: e["status"] for cid, e in report["hosts"]["h"].items()} == {
        "AA-02": "remediated", "AA-05": "drift", "AA-06": "failed"}
    assert report["hosts"]["u"]["AA-02"]["status"] == "failed"


class FakePlay:
    def __init__(self, play_vars: dict[str, Any]) -> None:
        self._vars = play_vars

    def get_vars(self) -> dict[str, Any]:
        return self._vars


def test_audit_playbook_without_cli_check_is_an_audit(callback, tmp_path):
    """audit.yml sets baseline_audit on the imported plays instead of relying on --check."""
    plugin = callback(check=False)
    plugin.v2_playbook_on_play_start(FakePlay({"baseline_audit": True}))
    assert plugin.state.mode == "audit"
    plain = callback(check=False)
    plain.v2_playbook_on_play_start(FakePlay({"baseline_audit": "yes, but not a bool"}))
    plain.v2_playbook_on_play_start(FakePlay({}))
    assert plain.state.mode == "remediate"


def test_callback_writes_in_progress_and_reports(callback, tmp_path):
    plugin = callback(check=True)
    report_dir = tmp_path / "reports"
    plugin.v2_playbook_on_play_start(FakePlay({}))
    in_progress = json.loads((report_dir / ".in-progress.json").read_text())
    assert in_progress["final"] is False and in_progress["hosts"] == {}
    assert in_progress["run_id"] == os.environ[cr.RUN_ID_ENV] == plugin.state.run_id

    plugin.v2_runner_on_ok(fake_result("web1", "WG-01 | Team group exists", {"changed": True}))
    plugin.v2_playbook_on_play_start(FakePlay({}))
    in_progress = json.loads((report_dir / ".in-progress.json").read_text())
    assert in_progress["hosts"]["web1"]["WG-01"]["status"] == "drift"

    plugin.v2_playbook_on_stats(SimpleNamespace())
    [json_path] = report_dir.glob("*-audit-audit.json")
    html_path = json_path.with_suffix(".html")
    assert plugin.messages == [f"Compliance report: {html_path} (json: {json_path})"]
    assert (report_dir / "latest.json").read_bytes() == json_path.read_bytes()
    assert (report_dir / "latest.html").read_bytes() == html_path.read_bytes()
    report = json.loads(json_path.read_text())
    assert report["final"] is True and report["playbook"] == "audit.yml"
    assert {k for k in report} >= {"schema", "generated", "playbook", "mode", "catalog", "hosts",
                                   "summary", "controls"}
    assert json.loads((report_dir / ".in-progress.json").read_text())["final"] is True


def test_write_reports_names_links_and_collisions(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "PROJECT_ROOT", tmp_path)
    state = cr.ComplianceState(run_id="r")
    state.playbooks.append("site.yml")
    state.record("web1", "WG-01", "ok", "WG-01 | Team group exists", False, {})
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    html_path, json_path = cr.write_reports(state, tmp_path / "reports", now=now)
    assert json_path.name == "20260102T030405Z-site-remediate.json"
    assert html_path.name == "20260102T030405Z-site-remediate.html"
    assert json.loads(json_path.read_text())["generated"] == "2026-01-02T03:04:05+00:00"
    html = html_path.read_text()
    # Self-contained: the header links to the page's own control entry (no catalog here: the
    # project root is tmp_path), never to a file beside the report.
    assert 'href="#control-wg-01"' in html and 'id="control-wg-01"' in html
    assert "(not in the catalog)" in html and "docs/controls.md#" not in html
    assert 'class="compliant"' in html
    again, _ = cr.write_reports(state, tmp_path / "reports", now=now)
    assert again.name == "20260102T030405Z-site-remediate-2.html"


def test_html_escapes_untrusted_host_and_task_names(tmp_path):
    state = cr.ComplianceState(run_id="r")
    state.playbooks.append('"><img src=x onerror=alert(1)>.yml')
    state.record(MALICIOUS, "WG-01", "changed", f"WG-01 | {MALICIOUS}", True, {})
    state.record(MALICIOUS, "WG-02", "failed", "WG-02 | t", False, {"msg": "<b>bad</b> & worse"})
    catalog = {"WG-01": {"title": MALICIOUS, "enforces": "<i>e</i>", "source": "s"}}
    html = cr.render_html(state.as_dict(final=True), catalog)
    assert "<script>" not in html and "<img" not in html and "<b>bad" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "WG-01 | &lt;script&gt;" in html
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in html
    assert "&lt;i&gt;e&lt;/i&gt;" in html and 'title="WG-01: &lt;script&gt;' in html
    assert "<link" not in html and "src=" not in html.replace("src=x", "")


def test_html_empty_run():
    state = cr.ComplianceState(run_id="r")
    html = cr.render_html(state.as_dict(final=True))
    assert "No task with a control ID ran." in html


# ---------------------------------------------------------------- lookup


def test_lookup_constants_match_callback():
    assert (cs.SCHEMA, cs.IN_PROGRESS_NAME, cs.RUN_ID_ENV, cs.DEFAULT_REPORT_DIR) == (
        cr.SCHEMA, cr.IN_PROGRESS_NAME, cr.RUN_ID_ENV, cr.DEFAULT_REPORT_DIR)
    assert cs.DEFAULT_REPORT_DIR == ROOT / "reports"


@pytest.fixture
def state_file(tmp_path, monkeypatch):
    state = cr.ComplianceState(run_id="run-1")
    state.record("web1", "WG-01", "changed", "WG-01 | x", True, {})
    state.record("web1", "DR-02", "ok", "DR-02 | y", True, {})
    state.record("web2", "WG-01", "failed", "WG-01 | x", True, {})
    cr.write_in_progress(state, tmp_path, final=False)
    monkeypatch.setenv("VPS_BASELINE_REPORT_DIR", str(tmp_path))
    monkeypatch.setenv(cs.RUN_ID_ENV, "run-1")
    return tmp_path / cs.IN_PROGRESS_NAME


def _lookup(*terms, variables=None, **kwargs):
    return lookup_loader.get("compliance_state").run(list(terms), variables=variables, **kwargs)


def test_lookup_current_host_and_named_hosts(state_file):
    assert _lookup(variables={"inventory_hostname": "web1"}) == [{"DR-02": "compliant", "WG-01": "drift"}]
    assert _lookup("web2", "nohost", variables={}) == [{"WG-01": "failed"}, {}]


def test_lookup_report_dir_option(state_file, tmp_path, monkeypatch):
    monkeypatch.setenv("VPS_BASELINE_REPORT_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(AnsibleLookupError, match="does not exist"):
        _lookup("web1")
    assert _lookup("web1", report_dir=str(tmp_path)) == [{"DR-02": "compliant", "WG-01": "drift"}]


@pytest.mark.parametrize(("content", "run_id", "message"), [
    (None, "run-1", "another run"),
    ("{not json", "run-1", "cannot read"),
    ('{"schema": 99, "hosts": {}}', "run-1", "not a schema 1"),
    (None, None, "is not set"),
])
def test_lookup_errors(state_file, monkeypatch, content, run_id, message):
    if content is not None:
        state_file.write_text(content)
    elif run_id:
        monkeypatch.setenv(cs.RUN_ID_ENV, "run-2")
    if run_id is None:
        monkeypatch.delenv(cs.RUN_ID_ENV)
    with pytest.raises(AnsibleLookupError, match=message):
        _lookup("web1")


def test_lookup_needs_a_host(state_file):
    with pytest.raises(AnsibleLookupError, match="no host given"):
        _lookup(variables={})


# ---------------------------------------------------------------- end to end with ansible-playbook

PLAYBOOK = """
- name: Controls
  hosts: all
  gather_facts: false
  tasks:
    - name: "Validate | Inputs are fine (pre-flight)"
      ansible.builtin.debug:
        msg: validated
      tags: [always]
    - name: "XX-01 | Probe, always compliant"
      ansible.builtin.debug:
        msg: probe
      tags: [xx-01]
    - name: "XX-02 | Changes unless already done"
      ansible.builtin.copy:
        content: "x\\n"
        dest: "{{ marker_dir }}/{{ inventory_hostname | hash('sha1') }}"
        mode: "0644"
      register: xx02_copy
      tags: [xx-02]
    - name: "XX-02 | Loop with one changed item"
      ansible.builtin.debug:
        msg: "{{ item }}"
      loop: [1, 2]
      changed_when: item == 2 and xx02_copy is changed
      tags: [xx-02]
    - name: "XX-03 | Never applies"
      ansible.builtin.debug:
        msg: skipped
      when: false
      tags: [xx-03]
    - name: "XX-04 | Fails on the bad host"
      ansible.builtin.assert:
        that: inventory_hostname != 'bad'
        fail_msg: "bad <host> & stuff"
      tags: [xx-04]
    - name: "XX-05 | Check-only task"
      ansible.builtin.debug:
        msg: audit only
      check_mode: true
      changed_when: true
      tags: [xx-05]
    - name: Inherited tag
      tags: [xx-06]
      block:
        - name: Tagged control
          ansible.builtin.debug:
            msg: tag
    - name: "XX-07 | Named but not tagged: not a control"
      ansible.builtin.debug:
        msg: ignored
      changed_when: true
    - name: No control here
      ansible.builtin.debug:
        msg: ignored
      changed_when: true

- name: Audit gate
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail hosts with drift or failed controls
      vars:
        __states: "{{ lookup('compliance_state') }}"
        __bad: "{{ __states | dict2items | selectattr('value', 'in', ['drift', 'failed'])
                   | map(attribute='key') | list }}"
      ansible.builtin.assert:
        that: __bad | length == 0
        fail_msg: "GATE {{ inventory_hostname }}: {{ __bad | join(',') }}"
"""


def _run_playbook(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    inventory = tmp_path / "hosts.yml"  # JSON is YAML; keeps the malicious host name verbatim
    inventory.write_text(json.dumps({"all": {
        "hosts": {"good": None, "bad": None, MALICIOUS: None},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "marker_dir": str(tmp_path / "markers")}}}))
    (tmp_path / "markers").mkdir(exist_ok=True)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VPS_BASELINE_"))}
    env.update(ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR), ANSIBLE_CALLBACKS_ENABLED="compliance_report",
               ANSIBLE_LOOKUP_PLUGINS=str(LOOKUP_DIR), VPS_BASELINE_REPORT_DIR=str(tmp_path / "reports"),
               ANSIBLE_HOME=str(tmp_path / ".ansible"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "pb.yml", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads((tmp_path / "reports" / "latest.json").read_text())
    return proc, report


def _statuses(report: dict, host: str) -> dict[str, str]:
    return {cid: entry["status"] for cid, entry in report["hosts"][host].items()}


def test_end_to_end_audit_then_remediate(tmp_path):
    audit, report = _run_playbook(tmp_path, "--check")
    assert audit.returncode != 0, audit.stdout
    assert report["mode"] == "audit" and report["playbook"] == "pb.yml"
    assert _statuses(report, "good") == {"XX-01": "compliant", "XX-02": "drift", "XX-03": "not_applicable",
                                         "XX-04": "compliant", "XX-05": "drift", "XX-06": "compliant"}
    assert _statuses(report, "bad")["XX-04"] == "failed"
    assert report["hosts"]["bad"]["XX-04"]["details"]["failed_tasks"][0]["msg"] == "bad <host> & stuff"
    assert report["hosts"]["good"]["XX-02"]["changed_tasks"] == [
        "XX-02 | Changes unless already done", "XX-02 | Loop with one changed item"]
    assert "GATE good: XX-02,XX-05" in audit.stdout
    assert "XX-07" not in report["controls"]
    assert report["preflight"]["good"]["status"] == "compliant"
    assert report["preflight"]["good"]["tasks"] == {"ok": 1, "changed": 0, "failed": 0, "skipped": 0}
    assert "pre-flight" not in report["hosts"]["good"]
    assert "Compliance report: " + str(tmp_path / "reports") in audit.stdout
    assert not list((tmp_path / "markers").iterdir())

    remediate, report = _run_playbook(tmp_path)
    assert report["mode"] == "remediate"
    good = _statuses(report, "good")
    assert good["XX-02"] == "remediated" and good["XX-05"] == "drift"
    assert report["hosts"]["good"]["XX-02"]["tasks"] == {"ok": 0, "changed": 2, "failed": 0, "skipped": 0}
    assert remediate.returncode != 0  # XX-05 is check-only, so the gate still fails

    _, report = _run_playbook(tmp_path)
    assert _statuses(report, "good")["XX-02"] == "compliant"  # idempotent second run
    assert report["summary"]["good"] == {"failed": 0, "drift": 1, "remediated": 0, "compliant": 4,
                                         "not_applicable": 1}

    html = (tmp_path / "reports" / "latest.html").read_text()
    assert MALICIOUS in report["hosts"] and "<script>" not in html
    assert "&lt;script&gt;" in html and "bad &lt;host&gt; &amp; stuff" in html
    assert 'href="#control-xx-01"' in html and "XX-02 | Changes unless already done" not in html  # compliant now
    # The third run is compared with the second (same inventory, playbook and mode), not the audit.
    assert {"host": "good", "control": "XX-02", "before": "remediated", "after": "compliant"} in (
        report["since_previous"]["changes"])
    assert len(list((tmp_path / "reports").glob("*-pb-*.json"))) == 3


def test_preflight_is_its_own_line_never_a_control():
    state = cr.ComplianceState()
    name = "Validate | Admin sources"
    state.record("h", cr.control_id(name, ["firewall", "always"]), "failed", name, False, {"msg": "refused <x>"})
    state.record("h", cr.control_id("Gathering Facts", ["always"]), "ok", "Gathering Facts", False, {})
    report = state.as_dict(final=True)
    assert report["hosts"] == {"h": {}} and report["controls"] == []
    assert report["summary"]["h"]["failed"] == 0  # not a control: the gate and the counts ignore it
    assert report["preflight"]["h"]["status"] == "failed"
    assert report["preflight"]["h"]["tasks"] == {"ok": 1, "changed": 0, "failed": 1, "skipped": 0}
    html = cr.render_html(report)
    assert "Pre-flight" in html and "Validate | Admin sources" in html and "refused &lt;x&gt;" in html


# ---------------------------------------------------------------- fleet page (issue #14 part 4)

def test_catalog_gives_every_control_a_title_a_description_and_a_source():
    catalog = cr.load_catalog()
    anchors = [a.upper() for a in cr.re.findall(r'<a id="([a-z]{2,4}-\d{2})"></a>',
                                                 (cr.PROJECT_ROOT / cr.CATALOG).read_text())]
    assert sorted(catalog) == sorted(anchors) and len(anchors) > 30
    for cid, entry in catalog.items():
        assert entry["title"] and len(entry["title"]) <= 60, cid
        assert len(entry["enforces"]) > len(entry["title"]) and entry["source"], cid
        assert "`" not in entry["enforces"] and "](" not in entry["source"], cid


def test_catalog_row_with_an_escaped_pipe_and_a_link(tmp_path):
    md = tmp_path / "controls.md"
    md.write_text('| <a id="xx-01"></a>XX-01 | Title | a \\| b in `code` | [blog](x.md#1) item | t |\n'
                  "| not a row |\n")
    assert cr.load_catalog(md) == {"XX-01": {"title": "Title", "enforces": "a | b in code",
                                             "source": "blog item"}}
    assert cr.load_catalog(tmp_path / "missing.md") == {}


def _fleet_run(report_dir, run_id, statuses, when, inventory="/inv/prod", mode_check=True):
    """Write one report of an audit of several hosts: statuses {host: {control: outcome}}."""
    state = cr.ComplianceState(run_id=run_id)
    state.playbooks.append("audit.yml")
    state.check_mode = mode_check
    state.inventory = {"sources": [inventory], "limit": None}
    for host, controls in statuses.items():
        for cid, outcome in controls.items():
            state.record(host, cid, outcome, f"{cid} | task", mode_check, {})
    return cr.write_reports(state, report_dir, now=when)


def test_report_says_what_changed_since_the_previous_report_of_the_same_inventory(tmp_path):
    reports = tmp_path / "reports"
    t0 = datetime.datetime(2026, 1, 2, 3, 0, 0, tzinfo=datetime.UTC)
    _fleet_run(reports, "a", {"web1": {"WG-01": "ok", "FW-02": "ok"}, "web2": {"WG-01": "ok"}}, t0)
    # Another inventory and a remediation run in between: neither is "the previous audit".
    _fleet_run(reports, "x", {"web1": {"WG-01": "changed"}}, t0 + datetime.timedelta(minutes=1), inventory="/inv/test")
    _fleet_run(reports, "y", {"web1": {"WG-01": "failed"}}, t0 + datetime.timedelta(minutes=2), mode_check=False)
    (reports / "20260102T030300Z-foreign.json").write_text("[not a report")
    html_path, json_path = _fleet_run(
        reports, "b", {"web1": {"WG-01": "changed", "FW-02": "ok"}, "web3": {"WG-01": "ok"}},
        t0 + datetime.timedelta(minutes=5))
    since = json.loads(json_path.read_text())["since_previous"]
    assert since["previous"] == "20260102T030000Z-audit-audit.json"
    assert since["hosts_added"] == ["web3"] and since["hosts_gone"] == ["web2"]
    assert since["changes"] == [{"host": "web1", "control": "WG-01", "before": "compliant", "after": "drift"}]
    html = html_path.read_text()
    assert "Compared with <code>20260102T030000Z-audit-audit.json</code>" in html
    assert "Hosts new in this report: web3" in html and "Hosts no longer in this report: web2" in html
    # The first report of an inventory has nothing to compare with.
    first = json.loads((reports / "20260102T030100Z-audit-audit.json").read_text())
    assert first["since_previous"] is None and first["inventory"]["sources"] == ["/inv/test"]


def test_counts_per_control_across_hosts_and_titles_in_the_page(tmp_path):
    hosts = {f"web{i}": {"WG-01": "ok", "FW-02": "changed" if i % 2 else "ok"} for i in range(1, 6)}
    html_path, json_path = _fleet_run(tmp_path, "c", hosts, datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC))
    report = json.loads(json_path.read_text())
    assert report["titles"] == {"FW-02": "Egress denied by default", "WG-01": "Team group holds the declared members"}
    html = html_path.read_text()
    # tfoot: hosts compliant / with drift, per control (FW-02: web2, web4 compliant; 1, 3, 5 drift).
    assert 'title="FW-02 across hosts: failed 0, drift 3, remediated 0, compliant 2, n/a 0, not run 0">2 / 3<' in html
    assert ">5 / 0<" in html
    assert '<tr id="control-fw-02">' in html and "<strong>Egress denied by default</strong>" in html

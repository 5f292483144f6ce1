# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Per-host, per-control compliance report (JSON + self-contained HTML)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: compliance_report
type: aggregate
short_description: Write a per-host, per-control compliance report (JSON and HTML)
description:
  - Aggregates every task by the control ID tag it carries (for example C(wg-01), reported as C(WG-01)), into
    one status per host and control. Every task of vps-baseline carries exactly one such tag
    (C(tests/unit/test_control_tags.py)); the task name is not read, except to choose among several ID tags.
  - Tasks without an ID tag but tagged C(always) or C(preflight) (validation, include_vars, read-only probes,
    fact gathering) are aggregated into one C(pre-flight) status per host, kept apart from the controls.
  - Status precedence per host and control is C(failed) > C(drift) > C(remediated) > C(compliant);
    a control whose tasks were all skipped is C(not_applicable). Other tasks are ignored.
  - A changed task is C(drift) when it ran in check mode and C(remediated) otherwise. An unreachable host
    or a failed task (also inside a C(rescue)d block) makes the control C(failed).
  - At the end of the run it writes C(<UTC timestamp>-<playbook>-<audit|remediate>.json) and C(.html) plus
    C(latest.json) and C(latest.html) copies into O(report_dir) and prints their paths.
  - One page for a fleet - an audit of N hosts gives one report - with the control titles and
    descriptions from the catalog (C(docs/controls.md)) inside the page, counts per control across hosts,
    and what changed since the previous report of the same inventory, playbook and mode in O(report_dir).
    The page is self-contained, its links point inside it, so a copy opened anywhere works.
  - At the start of every play and at the end of the run it also writes the current state to
    C(.in-progress.json) in O(report_dir) so that a final play can fail the run on drift
    (see the P(compliance_state#lookup) lookup plugin and C(docs/report.md)).
version_added: "1.0.0"
author: vps-baseline contributors
requirements:
  - jinja2 (already required by ansible-core)
options:
  report_dir:
    description:
      - Directory where the reports are written; created when missing.
      - Defaults to C(reports/) at the root of the vps-baseline project that contains this plugin.
    type: path
    env:
      - name: VPS_BASELINE_REPORT_DIR
    ini:
      - section: compliance_report
        key: report_dir
notes:
  - Enable it in C(ansible.cfg) with C(callbacks_enabled = compliance_report).
  - Reports can contain host and task names; the HTML page escapes all of them.
"""

import datetime
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ansible import context
from ansible.plugins.callback import CallbackBase
from jinja2 import Environment, FileSystemLoader, StrictUndefined

SCHEMA = 1
CATALOG = "docs/controls.md"
# A catalog row: | <a id="wg-01"></a>WG-01 | title | enforces | source | test |
CATALOG_ROW_RE = re.compile(r'^\|\s*<a id="[a-z0-9-]+"></a>([A-Z]{2,4}-\d{2})\s*\|(.*)\|\s*$')
MD_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPORT_DIR = PROJECT_ROOT / "reports"
IN_PROGRESS_NAME = ".in-progress.json"
RUN_ID_ENV = "VPS_BASELINE_REPORT_RUN_ID"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "compliance_report.html.j2"

NAME_ID_RE = re.compile(r"^\s*([A-Z]{2,4}-\d{2})\b")
TAG_ID_RE = re.compile(r"^([A-Za-z]{2,4}-\d{2})$")
# Tasks of the pre-flight/prelim (validation, include_vars, read-only probes) carry no ID tag and
# one of these; they are reported on their own line, never as a control.
PREFLIGHT = "pre-flight"
PREFLIGHT_TAGS = ("always", "preflight")

STATUSES = ("failed", "drift", "remediated", "compliant", "not_applicable")
# docroot_perms module return values surfaced per control
DETAIL_COUNTERS = ("scanned", "mode_fixed", "group_fixed", "world_writable_removed")
MAX_TASK_NAMES = 20
# A task states a standing risk of its control (a plain sentence, whatever its status) in this key
# of its result, e.g. `ansible.builtin.debug: var: compliance_notice` (DR-06's default).
NOTICE_KEY = "compliance_notice"
MAX_NOTICES = 5
MAX_MSG_CHARS = 300


def control_id(name: str | None, tags: Any = None) -> str | None:
    """Return the control ID of a task from its ID tag, PREFLIGHT for a pre-flight task, else None.

    A task carries exactly one ID tag (tests/unit/test_control_tags.py). Should one carry several,
    the one its name starts with wins, else the first in order: a failure is never dropped.
    """
    tag_list = [str(tag) for tag in tags] if isinstance(tags, (list, tuple, set, frozenset)) else []
    ids = sorted({match.group(1).upper() for match in map(TAG_ID_RE.match, tag_list) if match})
    if len(ids) > 1:
        named = NAME_ID_RE.match(name or "")
        return named.group(1) if named and named.group(1) in ids else ids[0]
    if ids:
        return ids[0]
    if any(tag in PREFLIGHT_TAGS for tag in tag_list):
        return PREFLIGHT
    return None


def _plain(cell: str) -> str:
    """Markdown cell text as plain text: links become their text, code spans lose their backticks."""
    return MD_LINK_RE.sub(r"\1", cell).replace("`", "").replace("\\|", "|").strip()


def load_catalog(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The controls of the catalog (default: the project's docs/controls.md): {ID: {"title",
    "enforces", "source"}} read from its table rows.

    {} when the file is missing (the report then shows IDs only). A cell may hold an escaped pipe.
    """
    path = path or PROJECT_ROOT / CATALOG
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    catalog = {}
    for line in lines:
        match = CATALOG_ROW_RE.match(line)
        if not match:
            continue
        cells = [_plain(cell) for cell in re.split(r"(?<!\\)\|", match.group(2))]
        cells += [""] * (3 - len(cells))
        catalog[match.group(1)] = {"title": cells[0], "enforces": cells[1], "source": cells[2]}
    return catalog


def inventory_key() -> dict[str, Any]:
    """What makes two reports comparable: the inventory sources (absolute) and the --limit."""
    sources = context.CLIARGS.get("inventory") or []
    if isinstance(sources, str):
        sources = [sources]
    resolved = [os.path.abspath(source) if os.path.exists(source) else source for source in sources]
    return {"sources": sorted(resolved), "limit": context.CLIARGS.get("subset") or None}


def _statuses(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {host: {cid: entry["status"] for cid, entry in controls.items()}
            for host, controls in report.get("hosts", {}).items()}


def compare_reports(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """What changed from one report to the next: hosts added or gone, and every (host, control)
    whose status differs ("not_run" when the control has no entry on that host)."""
    before, after = _statuses(previous), _statuses(current)
    changes = []
    for host in sorted(set(before) & set(after)):
        for cid in sorted(set(before[host]) | set(after[host])):
            was, now = before[host].get(cid, "not_run"), after[host].get(cid, "not_run")
            if was != now:
                changes.append({"host": host, "control": cid, "before": was, "after": now})
    return {
        "hosts_added": sorted(set(after) - set(before)),
        "hosts_gone": sorted(set(before) - set(after)),
        "changes": changes,
    }


def previous_report(report_dir: Path, report: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The newest final report in report_dir of the same inventory, playbook and mode, generated
    before this one (by its file name's timestamp), as (file name, report); None when there is none.
    Unreadable or foreign JSON files are passed over."""
    candidates = []
    for path in report_dir.glob("[0-9]*T[0-9]*Z-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(data, dict) and data.get("final") is True and data.get("run_id") != report["run_id"]
                and data.get("inventory") == report["inventory"] and data.get("playbook") == report["playbook"]
                and data.get("mode") == report["mode"] and str(data.get("generated", "")) <= report["generated"]):
            candidates.append((str(data.get("generated", "")), path.name, data))
    if not candidates:
        return None
    _generated, name, data = max(candidates, key=lambda item: (item[0], item[1]))
    return name, data


def _counter(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple, set)):
        return len(value)
    return None


class ControlResult:
    """Aggregated outcome of all tasks of one control on one host."""

    def __init__(self) -> None:
        self.tasks = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        self.drift = False
        self.remediated = False
        self.changed_tasks: list[str] = []
        self.failed_tasks: list[dict[str, str]] = []
        self.counters: dict[str, int] = {}
        self.notices: list[str] = []
        self.unreachable = False

    @property
    def status(self) -> str:
        if self.tasks["failed"]:
            return "failed"
        if self.drift:
            return "drift"
        if self.remediated:
            return "remediated"
        if self.tasks["ok"]:
            return "compliant"
        return "not_applicable"

    def add(self, outcome: str, task_name: str, check_mode: bool, result: dict[str, Any]) -> None:
        """Record one task result; outcome is ok, changed, failed, skipped or unreachable."""
        if outcome == "unreachable":
            self.unreachable = True
            outcome = "failed"
        self.tasks[outcome] += 1
        if outcome == "changed":
            if check_mode:
                self.drift = True
            else:
                self.remediated = True
            if task_name not in self.changed_tasks and len(self.changed_tasks) < MAX_TASK_NAMES:
                self.changed_tasks.append(task_name)
        elif outcome == "failed" and len(self.failed_tasks) < MAX_TASK_NAMES:
            msg = str(result.get("msg") or result.get("reason") or "")
            self.failed_tasks.append({"task": task_name, "msg": msg[:MAX_MSG_CHARS]})
        self._add_counters(result)
        notice = result.get(NOTICE_KEY)
        if outcome != "skipped" and isinstance(notice, str) and notice.strip():
            notice = " ".join(notice.split())[:MAX_MSG_CHARS]
            if notice not in self.notices and len(self.notices) < MAX_NOTICES:
                self.notices.append(notice)

    def _add_counters(self, result: dict[str, Any]) -> None:
        items = result.get("results")
        sources = [result] + ([r for r in items if isinstance(r, dict)] if isinstance(items, list) else [])
        for source in sources:
            for key in DETAIL_COUNTERS:
                count = _counter(source.get(key))
                if count is not None:
                    self.counters[key] = self.counters.get(key, 0) + count

    def as_dict(self) -> dict[str, Any]:
        details: dict[str, Any] = dict(self.counters)
        if self.failed_tasks:
            details["failed_tasks"] = list(self.failed_tasks)
        if self.unreachable:
            details["unreachable"] = True
        if self.notices:
            details["notices"] = list(self.notices)
        return {
            "status": self.status,
            "tasks": dict(self.tasks),
            "changed_tasks": list(self.changed_tasks),
            "details": details,
        }


class ComplianceState:
    """Run-wide state: hosts x controls, independent of Ansible objects."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex
        self.playbooks: list[str] = []
        self.check_mode = False
        self.hosts: dict[str, dict[str, ControlResult]] = {}
        self.preflight: dict[str, ControlResult] = {}
        self.unreachable: set[str] = set()
        self.inventory: dict[str, Any] = {"sources": [], "limit": None}

    @property
    def mode(self) -> str:
        return "audit" if self.check_mode else "remediate"

    def record(self, host: str, cid: str | None, outcome: str, task_name: str,
               check_mode: bool, result: dict[str, Any]) -> None:
        """Record one task result; results of tasks without a control ID only mark unreachable hosts."""
        if outcome == "unreachable":
            self.unreachable.add(host)
            self.hosts.setdefault(host, {})
        if cid is None:
            return
        if cid == PREFLIGHT:
            # The host gets its row even when no control ran (a refusal stops it before any).
            self.hosts.setdefault(host, {})
            self.preflight.setdefault(host, ControlResult()).add(outcome, task_name, check_mode, result)
            return
        self.hosts.setdefault(host, {}).setdefault(cid, ControlResult()).add(outcome, task_name, check_mode, result)

    def as_dict(self, final: bool, now: datetime.datetime | None = None) -> dict[str, Any]:
        generated = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
        hosts = {
            host: {cid: controls[cid].as_dict() for cid in sorted(controls)}
            for host, controls in sorted(self.hosts.items())
        }
        summary = {host: {status: 0 for status in STATUSES} for host in hosts}
        for host, controls in hosts.items():
            for entry in controls.values():
                summary[host][entry["status"]] += 1
        return {
            "schema": SCHEMA,
            "generated": generated,
            "final": final,
            "run_id": self.run_id,
            "playbook": ",".join(self.playbooks),
            "mode": self.mode,
            "catalog": CATALOG,
            "inventory": self.inventory,
            "hosts": hosts,
            "summary": summary,
            "controls": sorted({cid for controls in self.hosts.values() for cid in controls}),
            "preflight": {host: entry.as_dict() for host, entry in sorted(self.preflight.items())},
            "unreachable": sorted(self.unreachable),
        }


def render_html(report: dict[str, Any], catalog: dict[str, dict[str, str]] | None = None) -> str:
    """Render the report dict as a self-contained HTML page (autoescaped): every link points to an
    anchor of the page itself, the controls' titles and descriptions are in it (from catalog)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    totals = {status: 0 for status in STATUSES}
    for counts in report["summary"].values():
        for status, count in counts.items():
            totals[status] += count
    per_control = {cid: dict.fromkeys((*STATUSES, "not_run"), 0) for cid in report["controls"]}
    for host in report["hosts"]:
        for cid in report["controls"]:
            entry = report["hosts"][host].get(cid)
            per_control[cid][entry["status"] if entry else "not_run"] += 1
    return env.get_template(TEMPLATE_NAME).render(
        report=report, catalog=catalog or {}, statuses=STATUSES, totals=totals, per_control=per_control,
        since=report.get("since_previous"))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _safe_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text) or "playbook"


def write_reports(state: ComplianceState, report_dir: Path,
                  now: datetime.datetime | None = None) -> tuple[Path, Path]:
    """Write the timestamped JSON/HTML reports and the latest.* copies; return (html, json) paths."""
    now = now or datetime.datetime.now(datetime.UTC)
    report_dir.mkdir(parents=True, exist_ok=True)
    report = state.as_dict(final=True, now=now)
    stem = "+".join(Path(p).stem for p in state.playbooks) or "playbook"
    base = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{_safe_stem(stem)}-{state.mode}"
    name, n = base, 1
    while (report_dir / f"{name}.json").exists() or (report_dir / f"{name}.html").exists():
        n += 1
        name = f"{base}-{n}"
    json_path, html_path = report_dir / f"{name}.json", report_dir / f"{name}.html"
    catalog = load_catalog()
    report["titles"] = {cid: catalog[cid]["title"] for cid in report["controls"] if cid in catalog}
    previous = previous_report(report_dir, report)
    report["since_previous"] = (
        dict(compare_reports(previous[1], report), previous=previous[0], previous_generated=previous[1]["generated"])
        if previous else None)
    html = render_html(report, catalog)
    _write_atomic(json_path, json.dumps(report, indent=2) + "\n")
    _write_atomic(html_path, html)
    shutil.copyfile(json_path, report_dir / "latest.json")
    shutil.copyfile(html_path, report_dir / "latest.html")
    return html_path, json_path


def write_in_progress(state: ComplianceState, report_dir: Path, final: bool) -> Path:
    """Write the current state for the audit gate (see the compliance_state lookup)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / IN_PROGRESS_NAME
    _write_atomic(path, json.dumps(state.as_dict(final=final), indent=2) + "\n")
    return path


class CallbackModule(CallbackBase):
    """Aggregate control results per host and write the compliance report."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "compliance_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.state = ComplianceState()
        os.environ[RUN_ID_ENV] = self.state.run_id

    def _report_dir(self) -> Path:
        configured = self.get_option("report_dir")
        return Path(configured) if configured else DEFAULT_REPORT_DIR

    def _record(self, result: Any, outcome: str) -> None:
        fields = result.task_fields
        name = str(fields.get("name") or result.task.name or "")
        cid = control_id(name, fields.get("tags", result.task.tags))
        check_mode = fields.get("check_mode", result.task.check_mode)
        if not isinstance(check_mode, bool):
            check_mode = self.state.check_mode
        data = result.result
        if outcome == "ok" and data.get("changed"):
            outcome = "changed"
        self.state.record(result.host.get_name(), cid, outcome, name, check_mode, data)

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self.state.check_mode = bool(context.CLIARGS.get("check", False))
        self.state.inventory = inventory_key()
        self.state.playbooks.append(os.path.basename(playbook._file_name))

    def v2_playbook_on_play_start(self, play: Any) -> None:
        # playbooks/audit.yml imports site.yml with baseline_audit: true, which puts its plays in
        # check mode without --check on the command line: the run is an audit all the same.
        if play.get_vars().get("baseline_audit") is True:
            self.state.check_mode = True
        write_in_progress(self.state, self._report_dir(), final=False)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        report_dir = self._report_dir()
        write_in_progress(self.state, report_dir, final=True)
        html_path, json_path = write_reports(self.state, report_dir)
        self._display.display(f"Compliance report: {html_path} (json: {json_path})")

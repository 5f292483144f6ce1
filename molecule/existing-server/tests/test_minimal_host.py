# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #10 on a provider's minimal install (no python3-apt): the audit (prepare) installed and
changed nothing and still reported every missing package as its control's drift; site.yml then
provided python3-apt once and installed each control's packages through roles/packages."""

import json
import os
from pathlib import Path

from testlib import PROJECT, ansible_playbook

testinfra_hosts = ["ansible://baseline"]

REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports"
# What the legacy server lacks, by the control that needs it (it had apache2 and vsftpd).
MISSING = {
    "FW-01": "nftables",
    "FW-04": "ulogd2",
    "BF-01": "fail2ban",
    "LOG-01": "rsyslog",
    "LOG-02": "auditd",
    "UPD-01": "unattended-upgrades",
    "FIM-01": "aide",
}


def _runs(playbook, mode):
    """Reports of this scenario's runs of one playbook in one mode, oldest first."""
    return sorted(p for p in REPORTS.glob(f"*-{playbook}-{mode}*.json") if not p.name.startswith("latest"))


def _controls(report_path):
    report = json.loads(report_path.read_text())
    (host,) = report["hosts"]
    return report["hosts"][host]


def _dpkg(host, path):
    with host.sudo():
        return dict(line.split("\t", 1) for line in host.file(path).content_string.splitlines())


def test_audit_without_python3_apt_installed_nothing(host):
    before = _dpkg(host, "/root/dpkg-before-audit.txt")
    after = _dpkg(host, "/root/dpkg-after-audit.txt")
    assert "python3-apt" not in before
    assert set(MISSING.values()).isdisjoint(before)
    assert after == before


def test_audit_reported_each_missing_package_as_its_controls_drift():
    (audit,) = _runs("audit", "audit")
    controls = _controls(audit)
    assert "failed" not in {entry["status"] for entry in controls.values()}, controls
    for cid, package in MISSING.items():
        assert controls[cid]["status"] == "drift", (cid, controls[cid])
        assert [t for t in controls[cid]["changed_tasks"]
                if t.startswith(f"{cid} | Not installed") and package in t], (cid, controls[cid])
    for cid in ("WEB-01", "FTP-01"):  # installed on the legacy server: no install drift
        assert not [t for t in controls[cid]["changed_tasks"] if "Not installed" in t], controls[cid]


def test_site_provided_python3_apt_and_each_controls_packages(host):
    assert host.package("python3-apt").is_installed
    first = _controls(_runs("converge", "remediate")[0])
    for cid, package in MISSING.items():
        assert host.package(package).is_installed, package
        assert first[cid]["status"] == "remediated", (cid, first[cid])
        assert [t for t in first[cid]["changed_tasks"]
                if t.startswith(f"{cid} | Installed") and package in t], (cid, first[cid])


def test_package_controls_run_alone_in_check_mode(host, tmp_path, monkeypatch):
    """Issue #11: `--tags log-02` skipped the package read tagged log-01, and `--tags fw-05` read
    __firewall_install, registered only under fw-04: both failed in check mode."""
    monkeypatch.setenv("VPS_BASELINE_REPORT_DIR", str(tmp_path))
    alone = ["log-02", "fw-05", "bf-01"]
    run = ansible_playbook(PROJECT / "playbooks/site.yml", host.backend.get_hostname(), check=True, tags=alone)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " changed=0 " in run.stdout and " failed=0 " in run.stdout, run.stdout[-1500:]
    controls = _controls(tmp_path / "latest.json")
    for cid in (tag.upper() for tag in alone):
        assert controls[cid]["status"] == "compliant", (cid, controls[cid])
    assert {entry["status"] for entry in controls.values()} <= {"compliant", "not_applicable"}, controls

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""FW-05 live state is the truth (issue 9): the live table, not the file, is compared with the
intended one; an unconfirmed ruleset never reaches the boot file; the remote syslog egress rule
comes from the logging role's inputs, not from a fact that role sets at run time."""

import json
import re
from pathlib import Path

from testlib import can_connect, checksums, output_text, run_role

testinfra_hosts = ["ansible://baseline"]

SINK = "10.47.113.20"
RULES = "/etc/nftables.d/vps_baseline.nft"
MAIN = "/etc/nftables.conf"
# A stand-in for a run that dies between staging the ruleset and arming the rollback.
BROKEN_SYSTEMD_RUN = "/usr/local/sbin/systemd-run"


def live(host):
    with host.sudo():
        return host.check_output("nft -s list table inet vps_baseline")


def report(result):
    """The compliance report (JSON) the run wrote, fw-host's controls."""
    path = re.search(r"\(json: (\S+\.json)\)", result.stdout).group(1)
    return json.loads(Path(path).read_text())["hosts"]["fw-host"]


def test_fw05_live_edit_is_drift_then_reloaded(host):
    """`nft insert rule ... output accept` opens egress: check mode reports FW-05 drift, the
    next run reloads the intended table (egress closed again), the run after is changed=0."""
    intended = live(host)
    assert not can_connect(host, SINK, 443, timeout=2)
    with host.sudo():
        host.run_expect([0], "nft insert rule inet vps_baseline output accept")
    assert can_connect(host, SINK, 443), "the inserted rule must open egress (the attack)"
    rules = checksums(host, [RULES])

    check = run_role(host, "firewall", check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert report(check)["FW-05"]["status"] == "drift", "the audit must see the live edit"
    assert "FW-05 drift: the live vps-baseline table differs from the intended one" in output_text(check)
    assert live(host) != intended, "check mode must change nothing"

    fix = run_role(host, "firewall")
    assert fix.returncode == 0, fix.stdout[-3000:]
    assert report(fix)["FW-05"]["status"] == "remediated"
    assert live(host) == intended
    assert checksums(host, [RULES]) == rules
    assert not can_connect(host, SINK, 443, timeout=2), "egress to an undeclared port must be blocked again"

    again = run_role(host, "firewall")
    assert again.returncode == 0, again.stdout[-3000:]
    recap = re.sub(r"\x1b\[[0-9;]*m", "", again.stdout)  # Molecule forces colour
    assert re.search(r"fw-host\s+: ok=\d+\s+changed=0\s", recap), recap[-2000:]


def test_fw05_unconfirmed_ruleset_never_reaches_the_boot_file(host):
    """A run that fails after the new ruleset is staged, before it is confirmed live, leaves the
    boot file and the live table as they were; the next run loads and persists the change."""
    extra = {"firewall_admin_sources": ["10.47.113.40", "10.47.113.1", "10.47.113.50"]}
    before = (checksums(host, [RULES, MAIN]), live(host))
    with host.sudo():
        host.run_expect([0], f"printf '#!/bin/sh\\nexit 1\\n' > {BROKEN_SYSTEMD_RUN} && chmod 755 {BROKEN_SYSTEMD_RUN}")
    try:
        interrupted = run_role(host, "firewall", extra)
    finally:
        with host.sudo():
            host.run_expect([0], f"rm -f {BROKEN_SYSTEMD_RUN}")
    assert interrupted.returncode != 0, interrupted.stdout[-3000:]
    assert (checksums(host, [RULES, MAIN]), live(host)) == before, "the unconfirmed ruleset reached the boot file"

    rerun = run_role(host, "firewall", extra)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    with host.sudo():
        assert "10.47.113.50" in host.check_output("nft list set inet vps_baseline in_ssh_v4")
        assert "10.47.113.50" in host.file(RULES).content_string
    # Back to the scenario's declaration.
    restore = run_role(host, "firewall")
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert (checksums(host, [RULES, MAIN]), live(host)) == before


def test_fw01_distribution_nftables_conf_backed_up_once(host):
    with host.sudo():
        backups = host.check_output(f"ls -1 {MAIN}.*~ 2>/dev/null || true").split()
        assert len(backups) == 1, backups
        assert "flush ruleset" in host.file(backups[0]).content_string


def test_fw02_remote_syslog_egress_from_the_logging_inputs(host):
    """The firewall alone (as with --tags firewall, or before the logging role) opens the egress
    to logging_remote_host:logging_remote_port from those inputs; nothing else is needed."""
    assert not can_connect(host, SINK, 443, timeout=2)
    syslog = {"logging_remote_host": SINK, "logging_remote_port": 443, "logging_remote_protocol": "tcp"}
    result = run_role(host, "firewall", syslog)
    assert result.returncode == 0, result.stdout[-3000:]
    try:
        with host.sudo():
            assert SINK in host.check_output("nft list set inet vps_baseline out_extra_remote_syslog_v4")
        assert can_connect(host, SINK, 443), "the remote syslog host must be reachable on its port"
        assert not can_connect(host, SINK, 25000, timeout=2), "only on its port"
    finally:
        restore = run_role(host, "firewall")
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert not can_connect(host, SINK, 443, timeout=2)

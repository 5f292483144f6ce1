# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Each FW control runs alone (issue #11): `site.yml --tags fw-0N` on the converged host changes
nothing; FW-02 has its own line in the report, and `--tags fw-02` alone reloads a drifted egress
part through FW-05's handler, with the rollback armed."""

import json
import re
from pathlib import Path

import pytest
from testlib import PROJECT, ansible_playbook, can_connect, checksums, output_text

testinfra_hosts = ["ansible://baseline"]

SINK = "10.47.113.20"
RULES = "/etc/nftables.d/vps_baseline.nft"
SITE = PROJECT / "playbooks" / "site.yml"
AUDIT = PROJECT / "playbooks" / "audit.yml"
# site.yml's pre-flight judges every role's inputs; this scenario declares no team, and an
# exclusive team group without members is refused (WG-01).
SITE_VARS = {"workgroup_exclusive": False}


def live(host):
    with host.sudo():
        return host.check_output("nft -s list table inet vps_baseline")


def report(result):
    """The compliance report (JSON) the run wrote."""
    path = re.search(r"\(json: (\S+\.json)\)", result.stdout).group(1)
    return json.loads(Path(path).read_text())


def recap_changed(result, name):
    recap = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    match = re.search(rf"{name}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0\s", recap)
    assert match, recap[-3000:]
    return int(match.group(1))


@pytest.mark.parametrize("tag", ["fw-01", "fw-02", "fw-03", "fw-04", "fw-05"])
def test_each_fw_control_alone_on_the_converged_host_changes_nothing(host, tag):
    name = host.backend.get_hostname()
    result = ansible_playbook(SITE, name, SITE_VARS, tags=[tag])
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_changed(result, name) == 0
    controls = report(result)["hosts"][name]
    assert {cid for cid in controls if cid.startswith("FW-")} == {tag.upper()}, controls
    assert controls[tag.upper()]["status"] == "compliant"


def test_fw02_alone_reloads_a_drifted_egress_part_with_the_rollback(host):
    name = host.backend.get_hostname()
    intended = live(host)
    rules = checksums(host, [RULES])
    assert not can_connect(host, SINK, 443, timeout=2)
    with host.sudo():
        host.run_expect([0], "nft insert rule inet vps_baseline output accept")
    assert can_connect(host, SINK, 443), "the inserted rule must open egress (the attack)"

    audit = ansible_playbook(SITE, name, SITE_VARS, check=True, tags=["fw-01", "fw-02", "fw-03", "fw-04"])
    assert audit.returncode == 0, audit.stdout[-3000:]
    data = report(audit)
    statuses = {cid: entry["status"] for cid, entry in data["hosts"][name].items() if cid.startswith("FW-")}
    assert statuses == {"FW-01": "compliant", "FW-02": "drift", "FW-03": "compliant", "FW-04": "compliant"}
    assert data["preflight"][name]["status"] == "compliant", "validation is the pre-flight, not a control"
    assert live(host) != intended, "check mode must change nothing"

    fix = ansible_playbook(SITE, name, SITE_VARS, tags=["fw-02"])
    assert fix.returncode == 0, fix.stdout[-3000:]
    assert "FW-05 | Arm the rollback timer on the host before loading" in fix.stdout
    assert "FW-05 | Disarm the rollback, Ansible reconnected" in fix.stdout
    controls = report(fix)["hosts"][name]
    assert controls["FW-02"]["status"] == "remediated"
    assert controls["FW-05"]["status"] == "remediated", "the load is FW-05's, run by its handler"
    assert live(host) == intended
    assert checksums(host, [RULES]) == rules
    assert not can_connect(host, SINK, 443, timeout=2), "egress to an undeclared port must be blocked again"

    again = ansible_playbook(SITE, name, SITE_VARS, tags=["fw-02"])
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap_changed(again, name) == 0


def restore_live(host, listing):
    """The live table back to a stateless listing, as the role's rollback file does it."""
    restore = f"table inet vps_baseline {{}}\ndelete table inet vps_baseline\n{listing}\n"
    with host.sudo():
        host.run_expect([0], f"cat > /root/fw-restore.nft <<'NFT'\n{restore}NFT\n"
                             "nft -f /root/fw-restore.nft && rm /root/fw-restore.nft")


def test_fw01_alone_writes_the_boot_file_only_from_a_confirmed_table(host):
    """The boot file is FW-01's (persistence), and only a confirmed table reaches it (FW-05).
    `--tags fw-01` with a drifted boot file while another part of the live table differs (an
    inserted `output accept`, FW-02's part): no load, the boot file left as it is, a warning. Once
    the live table is the intended one again, `--tags fw-01` alone rewrites the boot file."""
    name = host.backend.get_hostname()
    intended = live(host)
    rules = checksums(host, [RULES])
    stray = "add rule inet vps_baseline input tcp dport 9177 accept"
    with host.sudo():
        assert "9177" not in host.file(RULES).content_string
        host.run_expect([0], f"echo '{stray}' >> {RULES}")
        host.run_expect([0], "nft insert rule inet vps_baseline output accept")
    drifted = checksums(host, [RULES])
    try:
        held = ansible_playbook(SITE, name, SITE_VARS, tags=["fw-01"])
        assert held.returncode == 0, held.stdout[-3000:]
        assert "WARNING FW-01: the boot file" in output_text(held), held.stdout[-3000:]
        assert "FW-05 | Arm the rollback timer" not in held.stdout, "--tags fw-01 must not load FW-02's part"
        assert checksums(host, [RULES]) == drifted, "an unconfirmed live table reached the boot file"
        assert live(host) != intended
        assert recap_changed(held, name) == 0
        # The audit of FW-01 alone still sees the drifted boot file (it reported FW-01 compliant).
        audit = ansible_playbook(AUDIT, name, SITE_VARS, check=True, tags=["fw-01"])
        assert audit.returncode == 2, audit.stdout[-3000:]
        assert report(audit)["hosts"][name]["FW-01"]["status"] == "drift"
        assert checksums(host, [RULES]) == drifted

        restore_live(host, intended)
        assert live(host) == intended
        fix = ansible_playbook(SITE, name, SITE_VARS, tags=["fw-01"])
        assert fix.returncode == 0, fix.stdout[-3000:]
        assert "FW-05 | Arm the rollback timer" not in fix.stdout
        assert checksums(host, [RULES]) == rules
        assert report(fix)["hosts"][name]["FW-01"]["status"] == "remediated"
        assert recap_changed(fix, name) == 1
    finally:
        # A failure here must not leave the drift to the next tests.
        with host.sudo():
            host.run_expect([0], f"sed -i '/dport 9177 accept/d' {RULES}")
        if live(host) != intended:
            restore_live(host, intended)

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""FW-01..FW-05 proven by real connections across fw-net (see molecule.yml for the addresses)."""

import time

import pytest
import testinfra
from testlib import can_connect

testinfra_hosts = ["ansible://baseline"]

HOST = "10.47.113.10"
SINK = "10.47.113.20"
PREFIX = "VPS-FW-EGRESS-DROP:"


@pytest.fixture(scope="module")
def client():
    return testinfra.get_host("docker://fw-client")


@pytest.fixture(scope="module")
def admin():
    return testinfra.get_host("docker://fw-admin")


def counter(host, name):
    with host.sudo():
        out = host.check_output(f"nft list counter inet vps_baseline {name}")
    return int(out.split("packets")[1].split()[0])


def stateless_table(host):
    with host.sudo():
        return host.check_output("nft -s list table inet vps_baseline")


def test_fw02_exfiltration_replay(host):
    """The sink is a declared destination on 587 only: 443 to it is dropped, counted and logged."""
    before = counter(host, "egress_dropped")
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    assert can_connect(host, SINK, 587), "declared destination and port (SMTP relay) must be reachable"
    assert not can_connect(host, SINK, 443, timeout=2), "exfiltration over 443 to an undeclared host must fail"
    assert counter(host, "egress_dropped") > before
    for _ in range(10):
        with host.sudo():
            log = host.run(f"journalctl --no-pager -q -t ulogd --since '{since}'").stdout
        if any(PREFIX in line and f"DST={SINK}" in line and "DPT=443" in line for line in log.splitlines()):
            break
        time.sleep(1)
    else:
        pytest.fail(f"no '{PREFIX}' line for {SINK}:443 in the journal:\n{log}")


def test_fw02_undeclared_port_to_declared_host_blocked(host):
    """A declared destination is reachable only on its declared ports."""
    before = counter(host, "egress_dropped")
    assert not can_connect(host, SINK, 25000, timeout=2)
    assert counter(host, "egress_dropped") > before


def test_fw01_client_reaches_web_port(client):
    assert can_connect(client, HOST, 80)


@pytest.mark.parametrize("port", [22, 9100])
def test_fw01_client_cannot_reach_admin_ports(host, client, port):
    before = counter(host, "ingress_dropped")
    assert not can_connect(client, HOST, port, timeout=2)
    assert counter(host, "ingress_dropped") > before


@pytest.mark.parametrize("port", [21, 30000])
def test_fw03_ftp_closed_to_non_ftp_source(client, port):
    assert not can_connect(client, HOST, port, timeout=2)


def test_fw01_admin_reaches_ssh(admin):
    banner = admin.run(
        "python3 -c \"import socket; s=socket.create_connection(('%s', 22), timeout=5); print(s.recv(64).decode())\"" % HOST
    )
    assert banner.rc == 0, banner.stderr
    assert banner.stdout.startswith("SSH-2.0-")


@pytest.mark.parametrize("port", [21, 30000, 9100])
def test_fw03_ftp_and_rule_ports_open_to_their_sources(admin, port):
    assert can_connect(admin, HOST, port)


def test_fw01_rules_survive_restart_and_leave_other_tables(host, client):
    before = stateless_table(host)
    with host.sudo():
        host.run_expect([0], "nft add table ip fw_test_foreign && nft add chain ip fw_test_foreign c")
        host.run_expect([0], "systemctl restart nftables")
        foreign = host.run("nft list table ip fw_test_foreign")
        host.run("nft delete table ip fw_test_foreign")
    assert foreign.rc == 0, "restarting nftables must leave other software's tables alone"
    assert stateless_table(host) == before
    assert can_connect(client, HOST, 80)
    assert not can_connect(client, HOST, 22, timeout=2)


def test_fw01_rules_reload_from_file(host, client):
    """Reboot-equivalent: the table is gone, the service's config brings it back unchanged."""
    before = stateless_table(host)
    with host.sudo():
        host.run_expect([0], "systemctl stop nftables")
        gone = host.run("nft list table inet vps_baseline")
        host.run_expect([0], "nft -f /etc/nftables.conf")
        enabled = host.check_output("systemctl is-enabled nftables")
        host.run_expect([0], "systemctl start nftables")
    assert gone.rc != 0, "stopping nftables removes the vps-baseline table"
    assert enabled == "enabled"
    assert stateless_table(host) == before
    assert not can_connect(client, HOST, 22, timeout=2)


def test_fw05_no_rollback_armed_after_a_good_run(host):
    with host.sudo():
        timers = host.check_output("systemctl list-units --all --plain --no-legend 'vps-baseline-fw-rollback*'")
    assert timers == ""

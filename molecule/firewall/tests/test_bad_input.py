# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Bad input is refused with a clear message before the ruleset changes; check mode shows a diff."""

import re
from pathlib import Path

import pytest
from testlib import checksums, output_text, run_role

testinfra_hosts = ["ansible://baseline"]

RULES = "/etc/nftables.d/vps_baseline.nft"

CASES = {
    "CIDR with host bits": (
        {"firewall_admin_sources": ["10.47.113.40", "10.0.0.5/24"]},
        'firewall_admin_sources holds malformed addresses/CIDRs ["10.0.0.5/24"]',
    ),
    "ANY as an FTP source": (
        {"firewall_ftp_sources": ["any"]},
        'firewall_ftp_sources holds malformed addresses/CIDRs ["any"]',
    ),
    "port out of range": (
        {"firewall_web_ports": [80, 70000]},
        "firewall_web_ports holds malformed ports [70000]",
    ),
    "reversed port range": (
        {"firewall_ingress_rules": [{"name": "mon", "proto": "tcp", "ports": ["9200-9100"], "sources": ["10.47.113.40"]}]},
        'firewall_ingress_rules entry "mon"',
    ),
    "malformed egress destination": (
        {"firewall_egress_extra": [{"name": "backup", "addresses": ["10.47.113.300"], "ports": [8873]}]},
        'malformed: ["10.47.113.300"]',
    ),
    "log prefix with a quote": (
        {"firewall_log_prefix": 'DROP" accept'},
        "firewall_log_prefix must be 1-64 letters",
    ),
    # Issue 9: "any" spelled as a CIDR, web ports over FTP, sources that never match.
    "0.0.0.0/0 as an FTP source": (
        {"firewall_ftp_sources": ["10.47.113.40", "0.0.0.0/0"]},
        'firewall_ftp_sources holds ["0.0.0.0/0"], which covers every address: FTP never opens to every source',
    ),
    "::/0 as an admin source": (
        {"firewall_admin_sources": ["10.47.113.40", "10.47.113.1", "::/0"]},
        'firewall_admin_sources holds ["::/0"], which covers every address',
    ),
    "web ports with the FTP port": (
        {"webserver_ports": [80, 443, 21]},
        "firewall_web_ports (webserver_ports) port(s) [21] overlap firewall_ftp_ports",
    ),
    "IPv4-mapped FTP source": (
        {"firewall_ftp_sources": ["::ffff:10.47.113.40"]},
        'firewall_ftp_sources holds IPv4-mapped IPv6 addresses ["::ffff:10.47.113.40"], which never match a '
        'packet: write the IPv4 form ["10.47.113.40"]',
    ),
    "unresolvable package mirror": (
        {"firewall_egress_package_mirrors": ["mirror.nonexistent.invalid"]},
        'firewall_egress_package_mirrors: ["mirror.nonexistent.invalid"] did not resolve on the host',
    ),
    # Issue #10: fw-host's resolv.conf names Docker's embedded DNS (127.0.0.11), a local stub whose
    # upstreams nothing on the host lists: egress deny would have cut DNS silently.
    "local DNS stub with unknown upstreams": (
        {"firewall_egress_dns_servers": []},
        "/etc/resolv.conf names the local DNS stub 127.0.0.11, whose own queries to its upstream resolvers",
    ),
}


def live(host):
    with host.sudo():
        return host.check_output("nft -s list table inet vps_baseline")


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_any_change(host, case):
    extra_vars, message = CASES[case]
    before = (checksums(host, [RULES]), live(host))
    result = run_role(host, "firewall", extra_vars)
    assert result.returncode != 0, result.stdout[-3000:]
    assert message in output_text(result), result.stdout[-3000:]
    assert (checksums(host, [RULES]), live(host)) == before


def test_check_mode_shows_the_ruleset_diff(host):
    before = (checksums(host, [RULES]), live(host))
    result = run_role(host, "firewall", {"firewall_admin_sources": ["10.47.113.40", "10.47.113.1", "192.0.2.0/24"]}, check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "+\t\telements = { 10.47.113.40, 10.47.113.1, 192.0.2.0/24 }" in result.stdout
    assert (checksums(host, [RULES]), live(host)) == before


def test_fw02_systemd_resolved_upstreams_are_allowed(host):
    """Issue #10: on a cloud image, /etc/resolv.conf names systemd-resolved's stub (127.0.0.53) and
    the stub's queries go to the upstreams in /run/systemd/resolve/resolv.conf: those, not the
    stub, must be in the DNS egress set, or DNS dies after the run. fw-host stands in for such an
    image: its stub is Docker's (127.0.0.11), which forwards from inside the container to this
    machine's resolvers; the test writes those as the stub's upstreams, as systemd-resolved would."""
    resolvers = re.findall(r"^nameserver\s+([0-9.]+)", Path("/etc/resolv.conf").read_text(), re.M)
    assert resolvers, "the machine's /etc/resolv.conf names no IPv4 resolver"
    upstreams = "/run/systemd/resolve/resolv.conf"
    lines = "".join(f"nameserver {address}\\n" for address in resolvers)
    with host.sudo():
        host.run_expect([0], f"mkdir -p /run/systemd/resolve && printf '{lines}' > {upstreams}")
    try:
        result = run_role(host, "firewall", {"firewall_egress_dns_servers": []})
        assert result.returncode == 0, result.stdout[-3000:]
        with host.sudo():
            dns = host.check_output("nft list set inet vps_baseline out_dns_v4")
            resolved = host.run("getent ahosts deb.debian.org")
        assert all(address in dns for address in resolvers) and "127.0.0.11" not in dns, dns
        assert resolved.rc == 0 and resolved.stdout.strip(), "DNS died behind the new ruleset"
    finally:
        with host.sudo():
            host.run_expect([0], f"rm -f {upstreams}")
        restored = run_role(host, "firewall")
        assert restored.returncode == 0, restored.stdout[-3000:]

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""plugins/filter/firewall.py: address/CIDR and port validation for the firewall role."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "firewall_filter", Path(__file__).resolve().parents[2] / "plugins/filter/firewall.py"
)
fw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fw)


def test_split_by_family_and_normalise_hosts():
    got = fw.fw_addresses(["192.0.2.7", "198.51.100.0/24", "2001:db8::1/128", "2001:db8::/32", "192.0.2.7/32"])
    assert got == {
        "ipv4": ["192.0.2.7", "198.51.100.0/24"],
        "ipv6": ["2001:db8::1", "2001:db8::/32"],
        "invalid": [],
    }


@pytest.mark.parametrize("bad", ["10.0.0.5/24", "10.0.0.0/33", "300.1.1.1", "example.org", "", " 10.0.0.1", 42, None])
def test_malformed_addresses_are_reported(bad):
    assert fw.fw_addresses(["10.0.0.1", bad])["invalid"] == [bad]


def test_ports_and_ranges():
    assert fw.fw_bad_ports([22, "80", "30000-30100", 65535]) == []
    assert fw.fw_bad_ports([0, 65536, "100-50", "a-b", "1-2-3", True, "22/tcp", None]) == [
        0, 65536, "100-50", "a-b", "1-2-3", True, "22/tcp", None,
    ]


def test_contains():
    assert fw.fw_contains(["10.47.113.0/24"], "10.47.113.40")
    assert fw.fw_contains(["10.47.113.40"], "::ffff:10.47.113.40")
    assert not fw.fw_contains(["10.47.113.40"], "10.47.113.30")
    assert not fw.fw_contains(["bogus", "2001:db8::/32"], "10.0.0.1")
    assert not fw.fw_contains(["10.0.0.0/8"], "not-an-address")


def test_hostnames_are_the_non_addresses():
    assert fw.fw_hostnames(["deb.debian.org", "192.0.2.1", "2001:db8::/32", "10.0.0.5/24"]) == [
        "deb.debian.org", "10.0.0.5/24",
    ]


def test_rules_are_normalised_for_the_template():
    rules = [{"name": "mon", "sources": ["192.0.2.10", "2001:db8::/64"], "proto": "udp", "ports": [161, "1000-1010"]}]
    assert fw.fw_rules(rules, "in_rule_", "sources") == [{
        "name": "in_rule_mon", "ipv4": ["192.0.2.10"], "ipv6": ["2001:db8::/64"],
        "protos": ["udp"], "ports": ["161", "1000-1010"],
    }]
    assert fw.fw_rules([{"name": "dns", "addresses": [], "proto": ["udp", "tcp"], "ports": [53]}])[0]["protos"] == ["udp", "tcp"]


def test_resolved_mirrors():
    results = [
        {"item": "deb.example", "ansible_facts": {"getent_ahosts": {"203.0.113.80": ["STREAM"], "2001:db8::80": []}}},
        {"item": "gone.invalid", "ansible_facts": {"getent_ahosts": {"gone.invalid": None}}},
        {"item": "mirror.example", "ansible_facts": {"getent_ahosts": {"203.0.113.80": []}}},
    ]
    assert fw.fw_resolved(results) == {"addresses": ["2001:db8::80", "203.0.113.80"], "unresolved": ["gone.invalid"]}


@pytest.mark.parametrize("everything", ["0.0.0.0/0", "::/0", "0::0/0", "0.0.0.0/00", "0/0", "0.0/0", "::0/0"])
def test_every_spelling_of_everything_is_refused(everything):
    messages = fw.fw_address_refusals(["10.47.113.40", everything], "firewall_admin_sources")
    assert len(messages) == 1
    assert messages[0].startswith(f'firewall_admin_sources holds ["{everything}"], which covers every address')
    assert "firewall_wide_prefixes_reason" in messages[0]


@pytest.mark.parametrize("wide", ["10.0.0.0/7", "0.0.0.0/1", "128.0.0.0/1", "2000::/3", "2001:db8::/31", "8000::/1"])
def test_prefixes_wider_than_the_threshold_are_refused(wide):
    messages = fw.fw_address_refusals([wide], "firewall_egress_extra entry \"backup\" addresses")
    assert messages == [
        f'firewall_egress_extra entry "backup" addresses holds ["{wide}"], wider than /8 (IPv4) or /32 (IPv6): '
        "narrow it, or set firewall_wide_prefixes_reason to say why."
    ]


@pytest.mark.parametrize("fine", ["10.0.0.0/8", "172.16.0.0/16", "198.51.100.7", "2001:db8::/32", "2001:db8:100::/48", "::1"])
def test_prefixes_at_or_below_the_threshold_pass(fine):
    assert fw.fw_address_refusals([fine], "firewall_admin_sources") == []


def test_malformed_entries_are_left_to_fw_addresses():
    assert fw.fw_address_refusals(["any", "10.0.0.5/24", 42, None, "example.org"], "x") == []


def test_a_reason_lets_wide_and_everything_through_except_for_ftp():
    entries = ["0.0.0.0/0", "::/0", "10.0.0.0/6"]
    assert fw.fw_address_refusals(entries, "firewall_admin_sources", "public SSH, keys only (ticket 42)") == []
    assert fw.fw_address_refusals(entries, "firewall_admin_sources", "   ") != []
    ftp = fw.fw_address_refusals(entries, "firewall_ftp_sources", "customers everywhere", everything_overridable=False)
    assert ftp == [
        'firewall_ftp_sources holds ["0.0.0.0/0", "::/0"], which covers every address: FTP never opens to every '
        "source: list the client addresses or networks."
    ]


@pytest.mark.parametrize(("mapped", "v4"), [
    ("::ffff:10.47.113.40", "10.47.113.40"),
    ("::ffff:a2f:7128", "10.47.113.40"),
    ("::ffff:10.47.113.0/120", "10.47.113.0/24"),
    ("::ffff:0:0/96", "0.0.0.0/0"),
])
def test_ipv4_mapped_sources_are_refused_with_the_ipv4_form(mapped, v4):
    messages = fw.fw_address_refusals([mapped], "firewall_ftp_sources", "a reason does not help")
    assert messages == [
        f'firewall_ftp_sources holds IPv4-mapped IPv6 addresses ["{mapped}"], which never match a packet: '
        f'write the IPv4 form ["{v4}"].'
    ]


@pytest.mark.parametrize("unicode", ["٢٢", "2²", "２２", "３００００-３０１００", "80\u00a0"])
def test_non_ascii_digits_in_ports_are_refused_with_a_message(unicode):
    assert fw.fw_bad_ports([unicode]) == [unicode]
    messages = fw.fw_port_refusals([80, unicode], "firewall_web_ports")
    assert len(messages) == 1
    assert messages[0].startswith(f'firewall_web_ports holds ports written with non-ASCII characters ["{unicode}"] (U+')
    assert "ASCII digits 0-9" in messages[0]


def test_port_refusals_keep_the_malformed_message():
    assert fw.fw_port_refusals([80, 70000, "٢"], "firewall_web_ports") == [
        'firewall_web_ports holds ports written with non-ASCII characters ["٢"] (U+0662): write ports with the '
        'ASCII digits 0-9, such as 22 or "30000-30100".',
        'firewall_web_ports holds malformed ports [70000]: use numbers 1-65535 or ranges such as "30000-30100".',
    ]
    assert fw.fw_port_refusals([22, "30000-30100"], "x") == []


RESERVED = [
    {"name": "firewall_ssh_port", "ports": [22], "why": "SSH, admin sources only"},
    {"name": "firewall_ftp_ports", "ports": [21, "30000-30100"], "why": "FTP, FTP sources only"},
]


@pytest.mark.parametrize(("ports", "hits", "name"), [
    ([80, 443, 21], [21], "firewall_ftp_ports"),
    ([80, "30050"], ["30050"], "firewall_ftp_ports"),
    (["29990-30000"], ["29990-30000"], "firewall_ftp_ports"),
    ([22, 80], [22], "firewall_ssh_port"),
    (["20-23"], ["20-23"], "firewall_ssh_port"),
])
def test_ports_overlapping_ssh_or_ftp_are_refused(ports, hits, name):
    messages = [m for m in fw.fw_port_overlaps(ports, "firewall_web_ports", RESERVED) if f"overlap {name}" in m]
    assert len(messages) == 1
    assert messages[0].startswith(f"firewall_web_ports port(s) {fw._show(hits)} overlap {name}")


def test_ports_apart_from_ssh_and_ftp_pass():
    assert fw.fw_port_overlaps([80, 443, "8000-8080", 30101, 20, 70000, "bad"], "firewall_web_ports", RESERVED) == []


def test_diff_of_listings():
    assert fw.fw_diff("a\nb\n", "a\nb\n") == ""
    assert "\n-\t\taccept\n" in fw.fw_diff("chain output {\n\t\taccept\n}\n", "chain output {\n}\n")


def test_refusals_without_an_override_do_not_name_one():
    """bruteforce_ignoreip has no override: its messages never point at the firewall's reason variable."""
    messages = fw.fw_address_refusals(["0.0.0.0/0", "16.0.0.0/4"], "bruteforce_ignoreip", "", True, "")
    assert len(messages) == 2
    assert all("firewall_wide_prefixes_reason" not in message for message in messages)
    assert fw.fw_address_refusals(["127.0.0.1/8", "::1", "203.0.113.0/24"], "bruteforce_ignoreip", "", True, "") == []


def test_nameservers_of_a_resolv_conf():
    text = "# stub\nnameserver 127.0.0.53\noptions edns0\n  nameserver 10.0.0.2 # comment\nnameserver fe80::1%eth0\nsearch x\nnameserver\n"
    assert fw.fw_nameservers(text) == ["127.0.0.53", "10.0.0.2", "fe80::1"]
    assert fw.fw_nameservers("") == []


# nft -s list table inet vps_baseline of a small ruleset (nft 1.0, loaded in a network namespace).
LISTING = """\
table inet vps_baseline {
\tcounter ingress_dropped {
\t}

\tcounter egress_dropped {
\t}

\tset in_ssh_4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 192.0.2.10, 198.51.100.0/24 }
\t}

\tset in_ssh_6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t}

\tset in_ftp_4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 203.0.113.7 }
\t}

\tset out_dns_4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 10.0.0.1-10.0.0.14 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiif "lo" accept
\t\tct state vmap { invalid : drop, established : accept, related : accept }
\t\ttcp dport { 80, 443 } accept
\t\ttcp dport 22 ip saddr @in_ssh_4 accept
\t\ttcp dport { 21, 30000-30010 } ip saddr @in_ftp_4 accept
\t\tcounter name "ingress_dropped"
\t}

\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t\toif "lo" accept
\t\tct state vmap { invalid : drop, established : accept, related : accept }
\t\ttcp sport 22 ip daddr @in_ssh_4 accept
\t\tmeta l4proto { tcp, udp } th dport 53 ip daddr @out_dns_4 accept
\t\tcounter name "egress_dropped"
\t\tlimit rate 10/minute log prefix "VPS-EGRESS-DROP: " group 5
\t}
}
"""


def test_each_control_owns_its_part_of_the_table():
    ingress, egress, ftp, log = (fw.fw_section(LISTING, c) for c in ("FW-01", "FW-02", "FW-03", "FW-04"))
    assert "set in_ssh_4: elements = { 192.0.2.10, 198.51.100.0/24 }" in ingress
    assert "chain input: tcp dport 22 ip saddr @in_ssh_4 accept" in ingress
    assert "chain input: type filter hook input priority filter; policy drop;" in ingress
    assert "in_ftp" not in ingress and "out_" not in ingress and "counter name" not in ingress
    assert "set out_dns_4: elements = { 10.0.0.1-10.0.0.14 }" in egress
    assert "chain output: type filter hook output priority filter; policy drop;" in egress
    assert "chain output: tcp sport 22 ip daddr @in_ssh_4 accept" in egress
    assert "log prefix" not in egress and "chain input" not in egress
    assert ftp.splitlines() == [
        "set in_ftp_4", "set in_ftp_4: type ipv4_addr", "set in_ftp_4: flags interval",
        "set in_ftp_4: auto-merge", "set in_ftp_4: elements = { 203.0.113.7 }",
        "chain input: tcp dport { 21, 30000-30010 } ip saddr @in_ftp_4 accept"]
    assert log.splitlines() == [
        "counter ingress_dropped", "counter egress_dropped",
        'chain input: counter name "ingress_dropped"', 'chain output: counter name "egress_dropped"',
        'chain output: limit rate 10/minute log prefix "VPS-EGRESS-DROP: " group 5']


def test_a_live_edit_is_drift_of_the_control_that_owns_it_only():
    edited = LISTING.replace('\t\toif "lo" accept\n', '\t\toif "lo" accept\n\t\ttcp dport 443 accept\n')
    assert edited != LISTING
    assert fw.fw_section(edited, "FW-02") != fw.fw_section(LISTING, "FW-02")
    for other in ("FW-01", "FW-03", "FW-04"):
        assert fw.fw_section(edited, other) == fw.fw_section(LISTING, other)
    widened = LISTING.replace("elements = { 203.0.113.7 }", "elements = { 203.0.113.0/24 }")
    assert fw.fw_section(widened, "FW-03") != fw.fw_section(LISTING, "FW-03")
    assert fw.fw_section(widened, "FW-01") == fw.fw_section(LISTING, "FW-01")


FTP_PORTS = [21, "30000-30010"]


def test_an_input_rule_on_the_ftp_ports_is_ftp_drift_whatever_its_sources():
    """FW-03 owns any input rule that can match a TCP FTP port (the control port or the passive
    range): `nft insert rule ... input tcp dport 21 accept` opens FTP to every source."""
    parts = {c: fw.fw_section(LISTING, c, FTP_PORTS) for c in ("FW-01", "FW-02", "FW-03", "FW-04")}
    # No intended rule moves: the web, SSH and FTP rules stay where they were.
    assert parts == {c: fw.fw_section(LISTING, c) for c in parts}
    opened = ["tcp dport 21 accept", "th dport 30005 accept", "meta l4proto { tcp, udp } th dport { 21, 53 } accept",
              "tcp dport 29000-30000 accept", "tcp dport != 22 accept", "tcp dport >= 1024 accept",
              "tcp dport vmap { 21 : accept }", "ip saddr 192.0.2.0/24 tcp dport { 21 } accept"]
    for rule in opened:
        edited = LISTING.replace('\t\tiif "lo" accept\n', f'\t\tiif "lo" accept\n\t\t{rule}\n')
        assert fw.fw_section(edited, "FW-03", FTP_PORTS) != parts["FW-03"], rule
        for other in ("FW-01", "FW-02", "FW-04"):
            assert fw.fw_section(edited, other, FTP_PORTS) == parts[other], (rule, other)
    # Not FTP: other ports, UDP, a negation or a bound that leaves every FTP port out, no port.
    others = ["tcp dport 2100 accept", "udp dport 21 accept", "meta l4proto udp th dport 21 accept",
              "tcp dport != { 21, 30000-30010 } accept", "tcp dport < 21 accept", "tcp dport > 30010 accept",
              "ip saddr 192.0.2.7 accept"]
    for rule in others:
        edited = LISTING.replace('\t\tiif "lo" accept\n', f'\t\tiif "lo" accept\n\t\t{rule}\n')
        assert fw.fw_section(edited, "FW-01", FTP_PORTS) != parts["FW-01"], rule
        assert fw.fw_section(edited, "FW-03", FTP_PORTS) == parts["FW-03"], rule
    # In the output chain an FTP port is egress (FW-02).
    egress = LISTING.replace('\t\toif "lo" accept\n', '\t\toif "lo" accept\n\t\ttcp dport 21 accept\n')
    assert fw.fw_section(egress, "FW-02", FTP_PORTS) != parts["FW-02"]
    assert fw.fw_section(egress, "FW-03", FTP_PORTS) == parts["FW-03"]


def test_an_empty_or_missing_listing_has_empty_parts():
    assert fw.fw_section("", "FW-02") == ""
    assert fw.fw_section(None, "FW-01") == ""

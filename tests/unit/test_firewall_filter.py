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

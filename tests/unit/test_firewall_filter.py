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

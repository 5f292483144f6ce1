"""Filters the firewall role uses to validate and split address lists and ports."""

from __future__ import annotations

import ipaddress

DOCUMENTATION = r"""
name: fw_addresses
short_description: Split addresses/CIDRs into IPv4 and IPv6 lists, and list the malformed ones
description:
  - C(fw_addresses) returns C({ipv4, ipv6, invalid}); an entry with host bits set below its
    prefix (C(10.0.0.5/24)) is invalid, so a typo never silently widens a rule.
  - C(fw_bad_ports) returns the entries of a port list that are not a port (1-65535) or a
    range C("low-high") with low < high.
  - C(fw_hostnames) keeps the entries that are not addresses/CIDRs.
  - C(fw_resolved) collects the addresses of a looped getent ahosts result, and the names
    that did not resolve.
  - C(fw_rules) normalises rule dicts for the ruleset template (sets split by family).
  - C(fw_contains) tells whether an address lies in one of the given CIDRs.
positional: _input
options:
  _input:
    description: A list of addresses or CIDRs (fw_addresses), ports (fw_bad_ports).
    type: list
    required: true
"""

EXAMPLES = r"""
- name: Admin sources by family
  ansible.builtin.debug:
    msg: "{{ ['192.0.2.0/24', '2001:db8::/32'] | fw_addresses }}"
- name: Malformed ports
  ansible.builtin.debug:
    msg: "{{ [22, '30000-30100', 70000] | fw_bad_ports }}"
- name: Is the controller an admin source
  ansible.builtin.debug:
    msg: "{{ ['192.0.2.0/24'] | fw_contains('192.0.2.7') }}"
"""

RETURN = r"""
_value:
  description: dict with keys ipv4, ipv6, invalid (fw_addresses); list (fw_bad_ports); bool (fw_contains).
  type: raw
"""


def _network(entry):
    if not isinstance(entry, str) or not entry.strip() or entry != entry.strip():
        return None
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        return None


def fw_addresses(entries):
    """Normalised {ipv4, ipv6, invalid} lists (single addresses lose their /32 or /128)."""
    result = {"ipv4": [], "ipv6": [], "invalid": []}
    for entry in entries or []:
        net = _network(entry)
        if net is None:
            result["invalid"].append(entry)
            continue
        full = net.prefixlen == net.max_prefixlen
        text = str(net.network_address) if full else str(net)
        key = f"ipv{net.version}"
        if text not in result[key]:
            result[key].append(text)
    return result


def _port(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 65535 else None
    if isinstance(value, str) and value.isdigit():
        return _port(int(value))
    return None


def fw_bad_ports(ports):
    """Entries that are neither a port 1-65535 nor a "low-high" range with low < high."""
    bad = []
    for value in ports or []:
        if isinstance(value, str) and value.count("-") == 1:
            low, high = (_port(part) for part in value.split("-"))
            if low is not None and high is not None and low < high:
                continue
        elif _port(value) is not None:
            continue
        bad.append(value)
    return bad


def fw_hostnames(entries):
    """The entries that are not addresses/CIDRs (to be resolved as hostnames)."""
    return [entry for entry in entries or [] if _network(entry) is None]


def fw_contains(cidrs, address):
    """True when ``address`` lies in one of ``cidrs`` (malformed entries never match)."""
    try:
        addr = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for entry in cidrs or []:
        net = _network(entry)
        if net is not None and net.version == addr.version and addr in net:
            return True
    return False


def fw_resolved(results):
    """From a looped ansible.builtin.getent (ahosts) result list: {addresses, unresolved}."""
    addresses, unresolved = [], []
    for result in results or []:
        found = fw_addresses(list((result.get("ansible_facts") or {}).get("getent_ahosts") or {}))
        if not found["ipv4"] and not found["ipv6"]:
            unresolved.append(result.get("item"))
        addresses += found["ipv4"] + found["ipv6"]
    return {"addresses": sorted(set(addresses)), "unresolved": unresolved}


def fw_rules(entries, prefix="", key="addresses"):
    """Normalise rule dicts ({name, <key>, proto: str or list, ports}) for the ruleset template."""
    rules = []
    for entry in entries or []:
        split = fw_addresses(entry.get(key) or [])
        protos = entry.get("proto") or "tcp"
        rules.append({
            "name": prefix + entry["name"],
            "ipv4": split["ipv4"],
            "ipv6": split["ipv6"],
            "protos": [protos] if isinstance(protos, str) else list(protos),
            "ports": [str(port) for port in entry.get("ports") or []],
        })
    return rules


class FilterModule:
    """Firewall address and port filters."""

    def filters(self):
        return {
            "fw_addresses": fw_addresses,
            "fw_bad_ports": fw_bad_ports,
            "fw_contains": fw_contains,
            "fw_hostnames": fw_hostnames,
            "fw_resolved": fw_resolved,
            "fw_rules": fw_rules,
        }

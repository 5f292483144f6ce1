# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Filters the firewall role uses to validate and split address lists and ports."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re

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
  - C(fw_address_refusals) lists, as messages naming the variable, the entries of an address
    list that cover every address (C(0.0.0.0/0), C(::/0) and other spellings of C(/0)), that
    are wider than C(/8) (IPv4) or C(/32) (IPv6) without an override reason, or that are
    IPv4-mapped IPv6 (C(::ffff:192.0.2.1), which never matches a packet).
  - C(fw_port_refusals) lists, as messages naming the variable, malformed ports and ports
    written with non-ASCII digits.
  - C(fw_port_overlaps) lists, as messages naming the variable, the ports of a list that fall
    on reserved ports (SSH, FTP control and passive range).
  - C(fw_diff) is a unified diff of two texts (live and intended ruleset listings).
  - C(fw_nameservers) lists the nameserver addresses of a resolv.conf text.
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


# FW-01..FW-03: the widest prefix accepted without firewall_wide_prefixes_reason, per IP version.
# IPv4 /8 still allows a large private network (10.0.0.0/8, a VPN); IPv6 /32 is a whole
# provider allocation, far wider than any office (/48, /56).
WIDEST_PREFIX = {4: 8, 6: 32}
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_EVERYTHING_RE = re.compile(r"/0+$")


def _port(value):
    """An int 1-65535 from an int or a string of ASCII digits, else None (never raises)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 65535 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return _port(int(value))
    return None


def _port_range(value):
    """(low, high) of a valid port or "low-high" range, else None."""
    if isinstance(value, str) and value.count("-") == 1:
        low, high = (_port(part) for part in value.split("-"))
        if low is not None and high is not None and low < high:
            return low, high
        return None
    port = _port(value)
    return None if port is None else (port, port)


def _non_ascii(value):
    return isinstance(value, str) and not value.isascii()


def _show(values):
    return json.dumps(values, ensure_ascii=False)


def fw_bad_ports(ports):
    """Entries that are neither a port 1-65535 nor a "low-high" range with low < high."""
    return [value for value in ports or [] if _port_range(value) is None]


def fw_port_refusals(ports, variable):
    """Messages naming ``variable`` for malformed ports and for ports with non-ASCII digits."""
    ports = ports if isinstance(ports, list) else [ports]
    unicode = [value for value in ports if _non_ascii(value)]
    bad = [value for value in fw_bad_ports(ports) if value not in unicode]
    messages = []
    if unicode:
        points = ", ".join(" ".join(f"U+{ord(c):04X}" for c in value if not c.isascii()) for value in unicode)
        messages.append(
            f"{variable} holds ports written with non-ASCII characters {_show(unicode)} ({points}): "
            f"write ports with the ASCII digits 0-9, such as 22 or \"30000-30100\"."
        )
    if bad:
        messages.append(
            f"{variable} holds malformed ports {_show(bad)}: use numbers 1-65535 "
            f"or ranges such as \"30000-30100\"."
        )
    return messages


def fw_port_overlaps(ports, variable, reserved):
    """Messages naming ``variable`` for its ports that fall on a reserved port list.

    ``reserved`` is a list of {name, ports, why}: for instance the SSH port (admin sources
    only) and the FTP ports (FTP sources only), which a port open to more sources would widen.
    Malformed ports are left to fw_port_refusals.
    """
    messages = []
    spans = [(value, _port_range(value)) for value in (ports if isinstance(ports, list) else [ports])]
    for entry in reserved or []:
        theirs = [_port_range(value) for value in entry.get("ports") or []]
        theirs = [span for span in theirs if span is not None]
        hits = [value for value, span in spans
                if span is not None and any(span[0] <= high and low <= span[1] for low, high in theirs)]
        if hits:
            messages.append(
                f"{variable} port(s) {_show(hits)} overlap {entry['name']} {_show(entry.get('ports') or [])}"
                f"{' (' + entry['why'] + ')' if entry.get('why') else ''}: that would open them to more sources "
                f"than intended; remove them from {variable} or move the other service."
            )
    return messages


def fw_address_refusals(entries, variable, reason="", everything_overridable=True,
                        override="firewall_wide_prefixes_reason"):
    """Messages naming ``variable`` for entries that are too wide or IPv4-mapped.

    Refused: any spelling of a /0 prefix (covers everything; also when the rest is not an
    address, such as "0/0"), a prefix shorter than WIDEST_PREFIX for its IP version, and
    IPv4-mapped IPv6 (::ffff:a.b.c.d), with the IPv4 form to write instead. A non-empty
    ``reason`` (firewall_wide_prefixes_reason) lets wide and /0 prefixes through, except when
    ``everything_overridable`` is false (FTP sources: never from any). Malformed entries are
    left to fw_addresses. ``override`` names the reason variable in the messages; empty when
    there is none (bruteforce_ignoreip: nothing may make every source unbannable).
    """
    reason = reason.strip() if isinstance(reason, str) else ""
    everything, wide, mapped = [], [], []
    for entry in entries or []:
        net = _network(entry)
        if net is None:
            if isinstance(entry, str) and _EVERYTHING_RE.search(entry.strip()):
                everything.append(entry)
            continue
        if net.version == 6 and net.subnet_of(_MAPPED):
            v4 = ipaddress.ip_network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
            mapped.append((entry, str(v4.network_address) if v4.prefixlen == 32 else str(v4)))
        elif net.prefixlen == 0:
            everything.append(entry)
        elif net.prefixlen < WIDEST_PREFIX[net.version]:
            wide.append(entry)
    messages = []
    if mapped:
        messages.append(
            f"{variable} holds IPv4-mapped IPv6 addresses {_show([entry for entry, _ in mapped])}, which "
            f"never match a packet: write the IPv4 form {_show([v4 for _, v4 in mapped])}."
        )
    if everything and (not reason or not everything_overridable):
        hint = (
            "FTP never opens to every source: list the client addresses or networks"
            if not everything_overridable
            else "list the addresses or networks" + (f", or set {override} to say why" if override else "")
        )
        messages.append(f"{variable} holds {_show(everything)}, which covers every address: {hint}.")
    if wide and not reason:
        messages.append(
            f"{variable} holds {_show(wide)}, wider than /{WIDEST_PREFIX[4]} (IPv4) or "
            f"/{WIDEST_PREFIX[6]} (IPv6): narrow it" + (f", or set {override} to say why." if override else ".")
        )
    return messages


def fw_diff(before, after, before_name="live", after_name="intended"):
    """Unified diff of two texts, as one string (empty when they are equal)."""
    return "\n".join(difflib.unified_diff(
        (before or "").splitlines(), (after or "").splitlines(), before_name, after_name, lineterm="",
    ))


def fw_nameservers(text):
    """The nameserver addresses of a resolv.conf text, in order, without an IPv6 zone (%eth0)."""
    servers = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1].split("%", 1)[0])
    return servers


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


# FW-05 loads the one table atomically; FW-01..FW-04 each own a part of it. fw_section() picks a
# control's part out of a stateless listing (`nft -s list table`), so each control compares its own
# part of the live table with the intended one (roles/firewall/tasks/ruleset.yml).
_OBJECT_RE = re.compile(r"^\s*(set|map|counter|chain|quota|limit|flowtable|ct \w+)\s+(\S+)\s*\{")
# A TCP destination port match as nft lists it (numeric: `nft` without -S): `tcp dport 21`,
# `th dport { 21, 30000-30100 }` (after `meta l4proto tcp`, or `{ tcp, udp }`, or none), `tcp dport
# != 22`, `tcp dport >= 1024`, `tcp dport vmap { 21 : accept }`. FTP is TCP: `udp dport 21` is not.
_L4PROTO_RE = re.compile(r"\bmeta\s+l4proto\s+(\{[^}]*\}|\S+)")
_DPORT_RE = re.compile(
    r"\b(?P<proto>th|tcp)\s+dport\s+"
    r"(?:(?P<op>!=|==|<=|>=|<|>|eq|ne|le|ge|lt|gt)\s+)?(?:(?P<map>v?map)\s+)?"
    r"(?P<value>\{[^}]*\}|[^\s{}]+)"
)
_PORT_MAX = 65535


def _span_list(value, is_map=False):
    """[(low, high)] of an nft port value (`21`, `30000-30100`, `{ 21, 80 }`), or None when a
    part is not numeric (a named set `@ports`, a service name): the owner cannot be told."""
    items = value.strip("{} ").split(",") if value.startswith("{") else [value]
    spans = []
    for item in items:
        item = item.split(":", 1)[0].strip() if is_map else item.strip()
        if not item:
            continue
        span = _port_range(item)
        if span is None:
            return None
        spans.append(span)
    return spans


def _overlaps(spans, reserved):
    return any(low <= r_high and r_low <= high for low, high in spans for r_low, r_high in reserved)


def _uncovered(reserved, spans):
    """True when a port of the ``reserved`` spans lies outside every one of ``spans``."""
    for r_low, r_high in reserved:
        port = r_low
        for low, high in sorted(spans):
            if low <= port <= high:
                port = high + 1
        if port <= r_high:
            return True
    return False


def _matches_ports(line, reserved):
    """True when a rule's TCP destination port match can match one of the ``reserved`` spans: a
    port, list or range that overlaps them, a negation that leaves one of them out, a comparison
    (`>= 1024`) whose side holds one of them. A rule without a port match is not counted here, nor
    a match whose ports are not numbers (a named set `@ports`)."""
    l4proto = _L4PROTO_RE.search(line)
    tcp = l4proto is None or re.search(r"\b(tcp|6)\b", l4proto.group(1)) is not None
    for match in _DPORT_RE.finditer(line):
        if match.group("proto") == "th" and not tcp:
            continue
        op = match.group("op") or "=="
        spans = _span_list(match.group("value"), bool(match.group("map")))
        if spans is None:
            continue
        if op in ("==", "eq"):
            hit = _overlaps(spans, reserved)
        elif op in ("!=", "ne"):
            # Matches every port outside spans: one of the reserved ports that spans leave out.
            hit = _uncovered(reserved, spans)
        else:
            bound = spans[0][0]
            side = {"<": (1, bound - 1), "lt": (1, bound - 1), "<=": (1, bound), "le": (1, bound),
                    ">": (bound + 1, _PORT_MAX), "gt": (bound + 1, _PORT_MAX),
                    ">=": (bound, _PORT_MAX), "ge": (bound, _PORT_MAX)}[op]
            hit = side[0] <= side[1] and _overlaps([side], reserved)
        if hit:
            return True
    return False


def _object_control(kind, name):
    if kind == "set" or kind == "map":
        if name.startswith("in_ftp_"):
            return "FW-03"
        if name.startswith("in_"):
            return "FW-01"
        if name.startswith("out_"):
            return "FW-02"
    if kind == "counter" and name in ("ingress_dropped", "egress_dropped"):
        return "FW-04"
    return None


def _rule_control(chain, line, ftp_spans):
    if "counter name" in line or re.search(r"\blog\b", line):
        return "FW-04"
    if chain == "input":
        # FW-03 owns every input rule on the FTP ports, whatever its sources: "FTP never open to
        # any source" is FW-03's promise, and a rule such as `tcp dport 21 accept` inserted by hand
        # breaks it, not the general allowlist. So `--tags fw-03` alone sees and reloads it. No
        # intended rule moves: the pre-flight refuses web, SSH and ingress rule ports that overlap
        # the FTP ports (fw_port_overlaps), so only the in_ftp_* rules match them. A rule without
        # a port match (`ip saddr 192.0.2.1 accept`) stays FW-01's.
        if "@in_ftp_" in line or (ftp_spans and _matches_ports(line, ftp_spans)):
            return "FW-03"
        return "FW-01"
    if chain == "output":
        return "FW-02"
    return None


def fw_section(listing, control, ftp_ports=None):
    """The lines of a stateless nft table listing that belong to one control (FW-01..FW-04).

    Sets in_ftp_* and the input rules that use them or match a destination port of ``ftp_ports``
    (the FTP control port and passive range, firewall_ftp_ports): FW-03; other in_* sets and the
    input chain: FW-01; out_* sets and the output chain: FW-02; the drop counters and the rules
    that count or log: FW-04. Anything else (a chain or set the role does not write) belongs to no
    part: the whole-table comparison (FW-05) sees it. Each kept line is prefixed with its object,
    so a rule moved from one chain to another differs.
    """
    ftp_spans = [span for span in map(_port_range, ftp_ports or []) if span is not None]
    kept = []
    depth = 0
    kind = name = None
    for raw in (listing or "").splitlines():
        line = raw.strip()
        if depth == 1:
            match = _OBJECT_RE.match(line)
            if match:
                kind, name = match.group(1), match.group(2)
                if _object_control(kind, name) == control:
                    kept.append(f"{kind} {name}")
        elif depth >= 2 and kind is not None and line not in ("", "}"):
            owner = _object_control(kind, name)
            if kind == "chain":
                header = line.startswith("type ") or line.startswith("policy ")
                owner = ({"input": "FW-01", "output": "FW-02"}.get(name) if header
                         else _rule_control(name, line, ftp_spans))
            if owner == control:
                kept.append(f"{kind} {name}: {line}")
        depth += line.count("{") - line.count("}")
        if depth <= 1:
            kind = name = None
    return "\n".join(kept)


class FilterModule:
    """Firewall address and port filters."""

    def filters(self):
        return {
            "fw_address_refusals": fw_address_refusals,
            "fw_addresses": fw_addresses,
            "fw_bad_ports": fw_bad_ports,
            "fw_contains": fw_contains,
            "fw_diff": fw_diff,
            "fw_hostnames": fw_hostnames,
            "fw_nameservers": fw_nameservers,
            "fw_port_overlaps": fw_port_overlaps,
            "fw_port_refusals": fw_port_refusals,
            "fw_resolved": fw_resolved,
            "fw_rules": fw_rules,
            "fw_section": fw_section,
        }

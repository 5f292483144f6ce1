# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Filters for ``key=value`` configuration files edited key by key (vsftpd.conf)."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: conf_keys_to_set
short_description: The keys of a key=value file that an in-place edit would change
description:
  - Given the file's text and the wanted keys, returns the keys (with their wanted values) that
    C(ansible.builtin.lineinfile) with C(regexp='^\s*#?\s*KEY=') and C(line='KEY=VALUE') would
    change, by lineinfile's own rule; the last line matching the pattern (the key, or its
    commented default) must equal the wanted line; with no such line, the wanted line must be
    somewhere in the file.
  - One read of the file replaces a dry run of the lineinfile loop (one module call per key); the
    loop then runs over these keys only, so a converged file costs one read.
options:
  _input:
    description: The file's text (C(slurp)'s content, decoded); none or empty for a missing file.
    type: str
    required: true
  keys:
    description: The wanted keys and values.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Keys of vsftpd.conf to set
  ansible.builtin.debug:
    msg: "{{ conf_text | conf_keys_to_set({'local_umask': '002'}) }}"
"""

RETURN = r"""
_value:
  description: The keys to set, with their wanted values (empty when the file has them all).
  type: dict
"""


def conf_keys_to_set(text, keys):
    # Split on "\n" only: like lineinfile, a line ending in "\r\n" differs from the wanted line.
    lines = (text or "").split("\n")
    result = {}
    for key, value in keys.items():
        wanted = f"{key}={value}"
        pattern = re.compile(r"^\s*#?\s*" + str(key) + "=")
        matching = [line for line in lines if pattern.search(line)]
        if (matching[-1] != wanted) if matching else (wanted not in lines):
            result[key] = value
    return result


class FilterModule:
    def filters(self):
        return {"conf_keys_to_set": conf_keys_to_set}

#!/usr/bin/python
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""ACC-02: audit the local accounts (read-only); ACC-05: find the leftover passwords it acts on."""

from __future__ import annotations

DOCUMENTATION = r"""
module: account_audit
short_description: Report risky local accounts (read-only)
description:
  - Reads /etc/passwd and /etc/shadow and reports accounts that have a usable password never
    changed since the account was created, an empty password, uid 0 besides root, or a login
    shell while they are not declared (neither team members nor allowlisted).
  - The creation day of an account is the birth time of its home directory when the file
    system records it; without it, only a password whose change is pending (last change 0)
    counts as never changed.
  - Also lists the leftover passwords (O(leftover)) for ACC-05: every password never changed
    since the account was created, usable, pending a change, or locked. A locked leftover stays
    listed (its hash and last change day are kept by C(usermod -L)), so a run after the lock,
    or after an interrupted one, still knows it and says so.
  - A member declared with an initial password (O(initial), ACC-01) that now holds another
    password with a change day has changed it (ACC-01 gives the declared hash only to an account
    without a password), even on the day the account was created.
  - Changes nothing; always reports C(changed=false).
options:
  declared:
    description: Declared accounts (team members, present or offboarded).
    type: list
    elements: str
    default: []
  allowlist:
    description: Service or admin accounts allowed to have a login shell.
    type: list
    elements: str
    default: []
  initial:
    description:
      - Declared initial password hashes (ACC-01), by user name. Never logged.
      - The account still holding its declared hash is ACC-01's (state V(initial) in O(leftover)).
    type: dict
    default: {}
  passwd:
    description: Path of the passwd file.
    type: path
    default: /etc/passwd
  shadow:
    description: Path of the shadow file.
    type: path
    default: /etc/shadow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: vps-baseline
"""

EXAMPLES = r"""
- name: ACC-02 | Audit the local accounts
  account_audit:
    declared: [wuser1, wuser2]
    allowlist: [deploy]
  register: audit
"""

RETURN = r"""
findings:
  description: One entry per problem, with user, check and detail.
  type: list
  elements: dict
  returned: always
undeclared:
  description: Undeclared accounts that have a login shell (root excluded).
  type: list
  elements: str
  returned: always
leftover:
  description:
    - Passwords never changed since the account was created, one entry per account, with user,
      state and detail. State V(usable) (never changed), V(pending) (change pending, last change
      0), V(locked) (locked with its never-changed hash, C(usermod -L)), V(initial) (the
      declared ACC-01 initial password, still in place).
  type: list
  elements: dict
  returned: always
report:
  description: The findings as readable lines.
  type: list
  elements: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

NO_LOGIN_SHELLS = frozenset(
    {"", "/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync"}
)
SECONDS_PER_DAY = 86400


def parse(text, fields):
    """Parse a colon-separated database into {name: [fields...]}, padded to ``fields``."""
    rows = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        parts += [""] * (fields - len(parts))
        rows[parts[0]] = parts
    return rows


def usable(hashed):
    """A password hash someone can log in with (not locked, not disabled, not empty)."""
    return bool(hashed) and not hashed.startswith(("!", "*"))


def never_changed(name, hashed, lastchg, day, initial):
    """True when the password (locked or not) was never changed since the account was created.

    lastchg 0 means a change is pending; otherwise the last change is on or before the creation
    day (day, None when unknown). A member with a declared initial hash (ACC-01) that holds
    another hash with a change day changed it, on any day."""
    core = hashed[1:] if hashed.startswith("!") else hashed
    if not usable(core):
        return False
    if lastchg == "0":
        return True
    if name in initial and core != initial[name]:
        return False
    return lastchg.isdigit() and day is not None and int(lastchg) <= day


def leftover_state(name, hashed, lastchg, initial):
    """usable, pending, locked or initial (see RETURN) for a never-changed password."""
    if hashed.startswith("!"):
        return "locked"
    if name in initial and hashed == initial[name]:
        return "initial"
    return "pending" if lastchg == "0" else "usable"


def audit(passwd, shadow, declared, allowlist, created_day=None, initial=None):
    """Return (findings, undeclared, leftover) for parsed passwd/shadow rows.

    created_day(name, home) -> day number (days since epoch) or None.
    initial: {name: declared initial hash} (ACC-01).
    """
    initial = initial or {}
    findings = []
    undeclared = []
    leftover = []
    known = set(declared) | set(allowlist) | {"root"}
    for name, row in passwd.items():
        uid, home, shell = row[2], row[5], row[6]
        sh = shadow.get(name)
        hashed = sh[1] if sh else ""
        if uid == "0" and name != "root":
            findings.append({"user": name, "check": "uid0", "detail": "uid 0 besides root"})
        if sh is not None and hashed == "":
            findings.append({"user": name, "check": "empty", "detail": "empty password"})
        if sh is not None and usable(hashed.lstrip("!")):
            lastchg = sh[2]
            day = created_day(name, home) if created_day else None
            if never_changed(name, hashed, lastchg, day, initial):
                if lastchg == "0":
                    detail = "password never changed (change pending since it was set)"
                else:
                    detail = f"password never changed since the account was created (day {day})"
                state = leftover_state(name, hashed, lastchg, initial)
                leftover.append({"user": name, "state": state, "detail": detail})
                if usable(hashed):
                    findings.append({"user": name, "check": "unchanged", "detail": "usable " + detail})
        if shell not in NO_LOGIN_SHELLS and name not in known:
            undeclared.append(name)
            findings.append({
                "user": name, "check": "undeclared",
                "detail": f"login shell {shell} but neither a team member nor allowlisted",
            })
    return findings, undeclared, leftover


def home_birth_day(module):
    """created_day callback: birth time of the home directory via stat(1), if recorded."""
    stat = module.get_bin_path("stat")

    def created_day(name, home):
        if not stat or not home or not os.path.isdir(home):
            return None
        rc, out, _err = module.run_command([stat, "-c", "%W", home])
        if rc != 0 or not out.strip().isdigit() or int(out) <= 0:
            return None
        return int(out) // SECONDS_PER_DAY

    return created_day


def run_module():
    module = AnsibleModule(
        argument_spec={
            "declared": {"type": "list", "elements": "str", "default": []},
            "allowlist": {"type": "list", "elements": "str", "default": []},
            "initial": {"type": "dict", "default": {}, "no_log": True},
            # A path, not a secret: no_log False says so (Ansible warns on option names like "passwd").
            "passwd": {"type": "path", "default": "/etc/passwd", "no_log": False},
            "shadow": {"type": "path", "default": "/etc/shadow"},
        },
        supports_check_mode=True,
    )
    try:
        with open(module.params["passwd"], encoding="utf-8") as fh:
            passwd = parse(fh.read(), 7)
        with open(module.params["shadow"], encoding="utf-8") as fh:
            shadow = parse(fh.read(), 9)
    except OSError as exc:
        module.fail_json(msg=f"cannot read the account databases: {exc}")
    findings, undeclared, leftover = audit(
        passwd, shadow, module.params["declared"], module.params["allowlist"], home_birth_day(module),
        module.params["initial"],
    )
    report = [f"{f['user']}: {f['detail']}" for f in findings]
    module.exit_json(changed=False, findings=findings, undeclared=undeclared, leftover=leftover, report=report)


def main():
    run_module()


if __name__ == "__main__":
    main()

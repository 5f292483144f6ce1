# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""roles/accounts/library/account_audit.py: the ACC-02 checks on sample databases."""

import importlib.util
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "roles/accounts/library/account_audit.py"
_spec = importlib.util.spec_from_file_location("account_audit", MODULE)
aa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aa)

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
toor:x:0:0::/root2:/bin/sh
wuser1:x:601:601::/home/wuser1:/bin/bash
migrated:x:1001:1001::/home/migrated:/bin/bash
changed:x:1002:1002::/home/changed:/bin/bash
pending:x:1003:1003::/home/pending:/bin/bash
deploy:x:1004:1004::/home/deploy:/bin/bash
blank:x:1005:1005::/home/blank:/usr/sbin/nologin
"""
SHADOW = """\
root:$y$j9T$abc:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
toor:!:20000::::::
wuser1:!:20700:0:99999:7:::
migrated:$y$j9T$tmp:20700:0:99999:7:::
changed:$y$j9T$new:20710:0:99999:7:::
pending:$y$j9T$init:0:0:99999:7:::
deploy:!:20700::::::
blank::20700::::::
"""
CREATED = {"migrated": 20700, "changed": 20700, "pending": 20705}


def run(declared=(), allowlist=(), created=CREATED):
    findings, undeclared = aa.audit(
        aa.parse(PASSWD, 7), aa.parse(SHADOW, 9), list(declared), list(allowlist),
        lambda name, home: created.get(name),
    )
    return {(f["user"], f["check"]) for f in findings}, undeclared


def test_uid0_besides_root():
    found, _ = run()
    assert ("toor", "uid0") in found
    assert ("root", "uid0") not in found


def test_empty_password_even_without_login_shell():
    found, _ = run()
    assert ("blank", "empty") in found


def test_password_unchanged_since_creation():
    found, _ = run()
    assert ("migrated", "unchanged") in found
    assert ("changed", "unchanged") not in found


def test_pending_forced_change_is_unchanged():
    found, _ = run()
    assert ("pending", "unchanged") in found


def test_unknown_creation_day_only_flags_pending():
    found, _ = run(created={})
    assert ("migrated", "unchanged") not in found
    assert ("pending", "unchanged") in found


def test_locked_password_is_not_usable():
    found, _ = run()
    assert ("wuser1", "unchanged") not in found
    assert not aa.usable("!$y$j9T$x")
    assert not aa.usable("*")
    assert not aa.usable("")
    assert aa.usable("$y$j9T$x")


def test_undeclared_login_accounts():
    _, undeclared = run(declared=["wuser1", "pending"], allowlist=["deploy"])
    assert undeclared == ["toor", "migrated", "changed"]


def test_root_never_undeclared():
    _, undeclared = run()
    assert "root" not in undeclared
    assert "daemon" not in undeclared and "blank" not in undeclared


def test_parse_pads_short_lines():
    assert aa.parse("a:x\n\n# c\n", 4) == {"a": ["a", "x", "", ""]}

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""roles/accounts/library/account_audit.py: the ACC-02 checks and ACC-05's leftover passwords on
sample databases."""

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
locked:x:1006:1006::/home/locked:/bin/bash
newhire:x:1007:1007::/home/newhire:/bin/bash
fresh:x:1008:1008::/home/fresh:/bin/bash
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
locked:!$y$j9T$old:20700:0:99999:7:::
newhire:$y$j9T$mine:20800:0:99999:7:::
fresh:$y$j9T$init:0:0:99999:7:::
"""
CREATED = {"migrated": 20700, "changed": 20700, "pending": 20705, "locked": 20700, "newhire": 20800,
           "fresh": 20800}
# ACC-01's declared initial hashes: newhire changed it the day it was created, fresh has not yet.
INITIAL = {"newhire": "$y$j9T$init", "fresh": "$y$j9T$init"}


def audit(declared=(), allowlist=(), created=CREATED, initial=None, shadow=SHADOW):
    return aa.audit(
        aa.parse(PASSWD, 7), aa.parse(shadow, 9), list(declared), list(allowlist),
        lambda name, home: created.get(name), INITIAL if initial is None else initial,
    )


def run(declared=(), allowlist=(), created=CREATED, initial=None):
    findings, undeclared, _leftover = audit(declared, allowlist, created, initial)
    return {(f["user"], f["check"]) for f in findings}, undeclared


def leftover(created=CREATED, initial=None, shadow=SHADOW):
    return {e["user"]: e["state"] for e in audit(created=created, initial=initial, shadow=shadow)[2]}


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
    _, undeclared = run(declared=["wuser1", "pending", "newhire", "fresh"], allowlist=["deploy"])
    assert undeclared == ["toor", "migrated", "changed", "locked"]


def test_root_never_undeclared():
    _, undeclared = run()
    assert "root" not in undeclared
    assert "daemon" not in undeclared and "blank" not in undeclared


def test_parse_pads_short_lines():
    assert aa.parse("a:x\n\n# c\n", 4) == {"a": ["a", "x", "", ""]}


# ACC-05: the leftover passwords it acts on.


def test_leftover_states():
    assert leftover() == {
        "migrated": "usable", "pending": "pending", "locked": "locked", "fresh": "initial",
    }


def test_locked_leftover_is_still_known_so_a_rerun_reports_it():
    """usermod -L keeps the hash and the change day: the next run (or one after an interrupted
    run) finds the lock, instead of forgetting the account because its password is not usable."""
    relocked = SHADOW.replace("migrated:$y$j9T$tmp:", "migrated:!$y$j9T$tmp:")
    assert leftover(shadow=relocked)["migrated"] == "locked"
    found, _ = run()
    assert ("locked", "unchanged") not in found  # ACC-02 lists usable passwords only


def test_expired_leftover_stays_a_leftover_until_changed():
    """chage -d 0 (ACC-05 expire) sets the change day to 0: still listed, as pending."""
    expired = SHADOW.replace("migrated:$y$j9T$tmp:20700:", "migrated:$y$j9T$tmp:0:")
    assert leftover(shadow=expired)["migrated"] == "pending"
    changed = SHADOW.replace("migrated:$y$j9T$tmp:20700:", "migrated:$y$j9T$own:20701:")
    assert "migrated" not in leftover(shadow=changed)


def test_initial_password_changed_on_the_creation_day_is_not_a_leftover():
    """A new hire who changed the ACC-01 password the day the account was created (the day is
    all shadow records) was flagged for ever, and ACC-05 would have locked it."""
    found, _ = run()
    assert ("newhire", "unchanged") not in found
    assert "newhire" not in leftover()
    assert ("newhire", "unchanged") in run(initial={})[0]
    assert leftover(initial={})["newhire"] == "usable"


def test_initial_password_still_in_place_is_acc01s():
    found, _ = run()
    assert ("fresh", "unchanged") in found  # ACC-02 still reports it
    assert leftover()["fresh"] == "initial"
    assert leftover(initial={})["fresh"] == "pending"


def test_unknown_creation_day_lists_only_pending_leftovers():
    assert leftover(created={}) == {"pending": "pending", "fresh": "initial"}


def test_disabled_and_empty_passwords_are_not_leftovers():
    states = leftover()
    for name in ("daemon", "toor", "wuser1", "deploy", "blank", "root", "changed"):
        assert name not in states



def test_the_module_runs_without_a_no_log_warning(tmp_path):
    """Run by Ansible itself: an option named like a password ("passwd") without an explicit
    no_log made every run print "Module did not set no_log for passwd"."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "shadow").write_text(SHADOW)
    env = dict(os.environ, ANSIBLE_LIBRARY=str(MODULE.parent), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="true")
    args = json.dumps({"passwd": str(tmp_path / "passwd"), "shadow": str(tmp_path / "shadow")})
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "account_audit", "-a", args],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not set no_log" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "toor: uid 0 besides root" in result.stdout

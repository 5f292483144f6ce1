# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""bruteforce, logging, updates and accounts refuse bad input with a clear message before any change."""

import pytest
from testlib import ACCOUNT_FILES, assert_refused

testinfra_hosts = ["ansible://baseline"]

WATCHED = (
    "/etc/fail2ban/jail.d/vps-baseline.local",
    "/etc/systemd/journald.conf.d/00-vps-baseline.conf",
    "/etc/audit/rules.d/50-vps-baseline.rules",
    "/etc/logrotate.d/rsyslog",
    "/etc/apt/apt.conf.d/52vps-baseline-unattended-upgrades",
)

CASES = {
    "iptables ban action": (
        "bruteforce", {"bruteforce_banaction": "iptables-multiport"},
        "the ban actions nftables ones",
    ),
    "every source ignored by fail2ban": (
        "bruteforce", {"bruteforce_ignoreip": ["127.0.0.1/8", "0.0.0.0/0"]},
        'bruteforce_ignoreip holds ["0.0.0.0/0"], which covers every address: list the addresses or networks.',
    ),
    "a /4 ignored by fail2ban": (
        "bruteforce", {"bruteforce_ignoreip": ["16.0.0.0/4"]},
        'bruteforce_ignoreip holds ["16.0.0.0/4"], wider than /8 (IPv4) or /32 (IPv6): narrow it.',
    ),
    "retention shorter than 180 days": (
        "logging", {"logging_retention_days": 30},
        "logging_retention_days must be at least 180",
    ),
    "remote syslog host by name": (
        "logging", {"logging_remote_host": "syslog.example.com"},
        "logging_remote_host empty or an IP address",
    ),
    "reboot time not HH:MM": (
        "updates", {"updates_reboot_time": "3am"},
        "updates_reboot_time HH:MM or now",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_any_change(host, case):
    role, extra_vars, message = CASES[case]
    assert_refused(host, role, extra_vars, message, WATCHED)


@pytest.mark.parametrize("action", ["delete"])
def test_acc05_unknown_leftover_password_action_is_refused_by_the_preflight(host, action):
    """The pre-flight judges accounts' validate.yml before any role changes anything (site.yml)."""
    assert_refused(
        host, "preflight", {"preflight_roles": ["accounts"], "accounts_leftover_password_action": action},
        "accounts_leftover_password_action must be lock, expire or report", ACCOUNT_FILES,
    )

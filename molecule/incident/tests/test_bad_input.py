# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""bruteforce, logging, updates, accounts and contain refuse bad input with a clear message before any change."""

import os
import subprocess

import pytest
from testlib import ACCOUNT_FILES, PROJECT, assert_refused, output_text

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


# contain.yml (CT-01..CT-04): a refusal takes no evidence, loads no table, stops nothing.
CONTAIN_CASES = {
    "empty admin sources": (
        {"contain_admin_sources": []},
        "contain_admin_sources must list the addresses or networks that keep SSH while the host is contained",
    ),
    "admin sources covering everything": (
        {"contain_admin_sources": ["0.0.0.0/0"]},
        'contain_admin_sources holds ["0.0.0.0/0"], which covers every address',
    ),
    "changed days 0": (
        {"contain_changed_days": 0},
        "contain_changed_days must be a whole number of days from 1 to 3650 (got 0)",
    ),
    "collector not in the baseline's egress": (
        {"contain_collector": {"address": "172.31.250.40", "user": "evidence", "path": "/srv/evidence",
                               "private_key": str(PROJECT / "LICENSE"), "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"}},
        "does not allow the collector 172.31.250.40, so the copy would be dropped",
    ),
    "collector is the host itself": (
        {"contain_collector": {"address": "172.31.250.10", "user": "evidence", "path": "/srv/evidence",
                               "private_key": str(PROJECT / "LICENSE"), "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"}},
        "contain_collector must name another host by IP address (not loopback, not one of the addresses of this host",
    ),
}


def contain_state(host):
    """What contain.yml would change: its evidence, the nftables tables, the services it stops."""
    def snapshot():
        with host.sudo():
            return host.run("ls -lR /var/lib/vps-baseline/evidence /etc/nftables.d 2>&1; nft list tables;"
                            " systemctl is-active vsftpd cron ssh").stdout
    return snapshot


@pytest.mark.parametrize("case", sorted(CONTAIN_CASES))
def test_contain_refused_before_any_change(host, case):
    extra_vars, message = CONTAIN_CASES[case]
    assert_refused(host, "contain", extra_vars, message, contain_state(host))


def test_contain_without_limit_is_refused_on_every_host(host):
    """A forgotten --limit would contain the whole inventory: refused (in check mode, so that a
    broken guard could still change nothing)."""
    snapshot = contain_state(host)
    before = snapshot()
    result = subprocess.run(
        [str(PROJECT / ".venv/bin/ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         str(PROJECT / "playbooks/contain.yml"), "--check"],
        capture_output=True, text=True, cwd=PROJECT, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
    assert result.returncode != 0, result.stdout[-3000:]
    text = output_text(result)
    assert "name the host(s) with --limit" in text, text[-3000:]
    assert "failed=1" in result.stdout and "changed=" in result.stdout
    assert snapshot() == before

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""FW-05 over SSH from the controller across fw-net (not docker exec): the lockout refusal, a
good apply that reconnects and disarms, and a ruleset that cuts its own access and is rolled
back by the host itself. The controller is 10.47.113.1 on fw-net."""

import json
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from testlib import PROJECT, ansible_playbook, checksums, output_text, run_role

testinfra_hosts = ["ansible://baseline"]

HOST = "10.47.113.10"
RULES = "/etc/nftables.d/vps_baseline.nft"
ROLLBACK_TIMEOUT = 40


@pytest.fixture(scope="module")
def ssh_inventory(tmp_path_factory):
    """fw-host reached over SSH with the key prepare.yml authorised; the scenario's group vars."""
    molecule_inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "fw_controller_key"
    directory = tmp_path_factory.mktemp("ssh-inventory")
    shutil.copytree(molecule_inventory / "group_vars", directory / "group_vars")
    (directory / "hosts.yml").write_text(json.dumps({"baseline": {"hosts": {"fw-host": {
        "ansible_host": HOST,
        "ansible_connection": "ssh",
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        # Throwaway test container: its host key is new on every create.
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }}}}))
    return directory


def ssh_open(timeout=1.0, port=22):
    """The controller completes a TCP handshake with the host's SSH port."""
    try:
        socket.create_connection((HOST, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def state(host):
    with host.sudo():
        return checksums(host, [RULES]), host.check_output("nft -s list table inet vps_baseline")


def test_fw05_controller_reaches_ssh_before():
    assert ssh_open(), "the controller must reach fw-host's SSH over fw-net before the tests"


def test_fw05_refuses_to_lock_out_the_controller(host, ssh_inventory):
    before = state(host)
    result = run_role(host, "firewall", {"firewall_admin_sources": ["10.47.113.40"]}, inventory=ssh_inventory)
    assert result.returncode != 0, result.stdout[-3000:]
    text = output_text(result)
    assert "Ansible connects over SSH from 10.47.113.1, which is not in firewall_admin_sources" in text, text[-3000:]
    assert "would lock this controller out" in text
    assert state(host) == before
    assert ssh_open()


def test_fw05_good_change_over_ssh_reconnects_and_disarms(host, ssh_inventory):
    extra = {"firewall_admin_sources": ["10.47.113.40", "10.47.113.1", "10.47.113.50"]}
    result = run_role(host, "firewall", extra, inventory=ssh_inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "FW-05 | Disarm the rollback" in result.stdout
    with host.sudo():
        assert host.check_output("systemctl list-units --all --plain --no-legend 'vps-baseline-fw-rollback*'") == ""
        assert "10.47.113.50" in host.check_output("nft list set inet vps_baseline in_ssh_v4")
    # Back to the scenario's declaration (over SSH too).
    result = run_role(host, "firewall", inventory=ssh_inventory)
    assert result.returncode == 0, result.stdout[-3000:]


def test_fw05_ruleset_that_cuts_ssh_is_rolled_back_by_the_host(host, ssh_inventory):
    before = state(host)
    cutting = {
        "firewall_admin_sources": ["10.47.113.40"],
        "firewall_allow_lockout_override": True,
        "firewall_rollback_timeout": ROLLBACK_TIMEOUT,
    }
    start = time.time()
    # Watch the controller's SSH while the play runs: the new ruleset must cut it.
    cut_at = None
    with ThreadPoolExecutor(1) as pool:
        play = pool.submit(run_role, host, "firewall", cutting, inventory=ssh_inventory)
        while not play.done():
            if cut_at is None and not ssh_open(timeout=1):
                cut_at = time.time()
            time.sleep(0.2)
        result = play.result()
    failed_at = time.time()
    assert result.returncode != 0, result.stdout[-3000:]
    text = output_text(result)
    assert "FW-05 firewall rollback" in text and "restores the previous ruleset by itself" in text, text[-3000:]
    assert cut_at is not None, "the applied ruleset must cut the controller's SSH"

    deadline = start + ROLLBACK_TIMEOUT + 60
    while not ssh_open(timeout=0.5) and time.time() < deadline:
        time.sleep(0.2)
    ssh_back_at = time.time()
    assert ssh_open(), f"SSH still cut {ssh_back_at - start:.1f} s after the run started"
    assert state(host) == before, "the host must restore the previous ruleset, in memory and on disk"
    # The container shares this machine's clock: journal timestamps compare with time.time().
    with host.sudo():
        restored = host.check_output(f"journalctl -o short-unix --no-pager -q -t vps-baseline-firewall --since @{int(start)}")
        pid1 = host.check_output(f"journalctl -o short-unix --no-pager -q _PID=1 --since @{int(start)}")
    assert "FW-05 rollback: previous ruleset restored" in restored
    restored_at = float(restored.splitlines()[-1].split()[0])
    armed_at = float([line for line in pid1.splitlines() if "Started vps-baseline-fw-rollback-" in line
                      and ".timer" in line][-1].split()[0])
    assert armed_at < cut_at, "the rollback must be armed before the new ruleset cuts SSH"
    assert ROLLBACK_TIMEOUT - 1 <= restored_at - armed_at <= ROLLBACK_TIMEOUT + 5
    assert failed_at < restored_at + 1, "the play must report the failure by the time the host rolls back"

    timing = {
        "rollback_timeout_s": ROLLBACK_TIMEOUT,
        "play_start_to_armed_s": round(armed_at - start, 1),
        "armed_to_ssh_cut_s": round(cut_at - armed_at, 1),
        "armed_to_play_failed_s": round(failed_at - armed_at, 1),
        "armed_to_host_restored_s": round(restored_at - armed_at, 1),
        "armed_to_ssh_back_s": round(ssh_back_at - armed_at, 1),
    }
    reports = PROJECT / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "firewall-rollback-timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(f"FW-05 rollback timing: {timing}")


def sshd_ports(host):
    with host.sudo():
        return sorted(int(line.split()[1]) for line in host.check_output("sshd -T").splitlines()
                      if line.startswith("port "))


def test_ssh01_port_change_over_ssh_keeps_the_connected_port_until_proven(host, ssh_inventory):
    """Issue #9: changing ssh_port moved sshd mid-play and the FW-05 reconnect (old port) failed.
    Now the port Ansible is connected on stays open in sshd and the firewall, the new one is proven
    from the controller, and the old one closes on the first run made over the new port."""
    playbook = Path(__file__).resolve().parents[1] / "ssh_port.yml"
    name = host.backend.get_hostname()
    try:
        moved = ansible_playbook(playbook, name, {"ssh_port": 2222}, inventory=ssh_inventory)
        assert moved.returncode == 0, moved.stdout[-3000:]
        assert sshd_ports(host) == [22, 2222]
        assert ssh_open(port=22) and ssh_open(port=2222)

        over_new = ansible_playbook(playbook, name, {"ssh_port": 2222, "ansible_port": 2222}, inventory=ssh_inventory)
        assert over_new.returncode == 0, over_new.stdout[-3000:]
        assert sshd_ports(host) == [2222]
        assert ssh_open(port=2222) and not ssh_open(port=22)
    finally:
        for extra in ({"ssh_port": 22, "ansible_port": 2222}, {"ssh_port": 22}):
            back = ansible_playbook(playbook, name, extra, inventory=ssh_inventory)
            assert back.returncode == 0, back.stdout[-3000:]
    assert sshd_ports(host) == [22]

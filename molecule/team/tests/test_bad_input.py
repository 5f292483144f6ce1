# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""ssh and accounts refuse bad input with a clear message before anything changes."""

import pytest
from testlib import ACCOUNT_FILES, assert_refused

testinfra_hosts = ["ansible://baseline"]

WATCHED = (*ACCOUNT_FILES, "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/00-vps-baseline.conf")
NEWCOMER = {"name": "newcomer", "uid": 640, "password_hash": "$y$j9T$abcdefgh$ABCDEFGHIJKLMNOPQRSTUVWXYZ012345678"}

CASES = {
    "ssh port out of range": (
        "ssh", {"ssh_port": 70000},
        "ssh_port must be 1-65535",
    ),
    "private key given as a member key": (
        "ssh", {"workgroup_members": [{"name": "wuser1", "ssh_keys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}]},
        "workgroup_members entry wuser1: every ssh_keys item must be one public key line",
    ),
    "root login by password": (
        "ssh", {"ssh_permit_root_login": "yes"},
        "value of ssh_permit_root_login must be one of: prohibit-password, no",
    ),
    "root with a password while root logins become key-only": (
        "ssh", {"ansible_user": "root", "ansible_password": "provider-Pass-1"},
        "Ansible connects as root with a password, and ssh_permit_root_login prohibit-password would refuse",
    ),
    "plaintext initial password": (
        "accounts", {"workgroup_members": [NEWCOMER, {"name": "temp", "password_hash": "Summer2024!"}]},
        "workgroup_members entry temp: password_hash must be a crypt(3) hash",
    ),
    "chroot outside every docroot": (
        "docroot", {"workgroup_members": [{"name": "newcomer", "uid": 640, "chroot": "/etc"}]},
        'member chroot "/etc" is refused: a chroot must lie strictly below a declared docroot',
    ),
    "chroot at the docroot prefix": (
        "docroot", {"workgroup_members": [{"name": "newcomer", "uid": 640, "chroot": "/var/www"}]},
        'member chroot "/var/www" is refused',
    ),
    "a string as the upload watcher switch": (
        "docroot", {"docroot_upload_watch_enabled": "no"},
        'docroot_upload_watch_enabled "no" is refused: true or false',
    ),
    "sudo as the team group": (
        "workgroup", {"workgroup_name": "sudo", "workgroup_gid": 27},
        'workgroup_name "sudo" (gid 27) is refused as the team group',
    ),
    "a system group of a system account as the team group": (
        "workgroup", {"workgroup_name": "www-data", "workgroup_gid": 33},
        'workgroup_name "www-data" (gid 33) is refused as the team group',
    ),
    "umask that makes uploads world-writable": (
        "workgroup", {"workgroup_umask": "000"},
        'workgroup_umask "000" is refused: it must remove world write',
    ),
    "system account as a member": (
        "workgroup", {"workgroup_members": [NEWCOMER, {"name": "daemon"}]},
        'workgroup_members entry "daemon" is refused: it is a system account',
    ),
    "offboarding the connecting account": (
        "accounts", {"workgroup_members": [{"name": "opsadmin", "state": "absent"}],
                     "ansible_user": "opsadmin", "ansible_become": True},
        "workgroup_members marks opsadmin as absent (offboarded), but that is the account Ansible is connected as",
    ),
    "locking the connecting account": (
        "accounts", {"accounts_lock_undeclared": True, "ansible_user": "opsadmin", "ansible_become": True},
        "accounts_lock_undeclared would lock opsadmin, the account Ansible is connected as: refusing",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_any_change(host, case):
    role, extra_vars, message = CASES[case]
    assert_refused(host, role, extra_vars, message, WATCHED)
    assert not host.user("newcomer").exists
    with host.sudo():
        assert host.check_output("passwd -S opsadmin").split()[1] == "P"

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Shared fixtures for the unit tests (run as root: they create a temporary group)."""

import grp
import os
import subprocess
import sys
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCROOT_LIBRARY = os.path.join(REPO, 'roles', 'docroot', 'library')
# Role modules are plain files, not a package: make them importable for their pure functions.
PLUGIN_MODULES = os.path.join(REPO, 'plugins', 'modules')
# Shared module_utils: importable as Ansible does it for a module (ansible.module_utils.<name>),
# and under its plain name as the DR-05 watcher on the host imports it (next to it on disk).
MODULE_UTILS = os.path.join(REPO, 'plugins', 'module_utils')
DOCROOT_FILES = os.path.join(REPO, 'roles', 'docroot', 'files')
for _path in (DOCROOT_LIBRARY, PLUGIN_MODULES, MODULE_UTILS):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import ansible.module_utils  # noqa: E402 (after the path set-up above)

if MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(MODULE_UTILS)

# Python code that a test's subprocess runs first: the same module_utils path (as Ansible ships it).
MODULE_UTILS_BOOT = 'import ansible.module_utils as _mu; _mu.__path__.append(%r)\n' % MODULE_UTILS


def module_argv(module_file, *args):
    """argv running a module file as a script in a subprocess, with the shared module_utils."""
    return [sys.executable, '-c', MODULE_UTILS_BOOT + 'import runpy, sys; sys.argv[0] = %r; '
            'runpy.run_path(%r, run_name="__main__")' % (module_file, module_file)] + list(args)


@pytest.fixture(scope='session')
def team_group():
    """A throw-away group (name, gid), removed after the session."""
    if os.geteuid() != 0:
        pytest.fail('these tests change group ownership and must run as root')
    name = 'dpt-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['groupadd', name], check=True)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(['groupdel', name], check=True)

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
for _path in (DOCROOT_LIBRARY, PLUGIN_MODULES):
    if _path not in sys.path:
        sys.path.insert(0, _path)


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

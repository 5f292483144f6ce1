# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""The incident scenario's peers, shared by its test files: the attacker (inside the admin
network, outside the FTP sources) and the client (the office, the log sink, the collector)."""

import pytest
from testlib import peer


@pytest.fixture(scope="module")
def attacker():
    return peer("inc-attacker")


@pytest.fixture(scope="module")
def client():
    return peer("inc-client")

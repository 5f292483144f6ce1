# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""conf_keys_to_set (plugins/filter/conf.py) decides like lineinfile with the same regexp.

The cases are lineinfile's rule: the last line matching ``^\\s*#?\\s*KEY=`` must equal the wanted
line; when none matches, the wanted line must be present. Each case is also run through
lineinfile itself (Ansible's module, in check mode on a temporary file), so the filter cannot
drift from the module it stands in for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from conf import conf_keys_to_set  # noqa: E402

CASES = [
    # (file text, key, value, expected "to set")
    ("local_umask=002\n", "local_umask", "002", False),
    ("local_umask=022\n", "local_umask", "002", True),
    ("#local_umask=022\n", "local_umask", "002", True),
    ("# local_umask=002\n", "local_umask", "002", True),
    ("", "local_umask", "002", True),
    ("listen=NO\n", "listen", "YES", True),
    ("local_umask=002\nlocal_umask=022\n", "local_umask", "002", True),
    ("local_umask=022\nlocal_umask=002\n", "local_umask", "002", False),
    ("local_umask=002\n#local_umask=022\n", "local_umask", "002", True),
    ("  local_umask=002\n", "local_umask", "002", True),
    ("xferlog_enable=YES\n", "xferlog_std_format", "NO", True),
    ("anonymous_enable=NO\r\n", "anonymous_enable", "NO", True),
]


@pytest.mark.parametrize(("text", "key", "value", "to_set"), CASES)
def test_filter_decides_like_lineinfile(text, key, value, to_set):
    assert (key in conf_keys_to_set(text, {key: value})) is to_set


@pytest.mark.parametrize(("text", "key", "value", "to_set"), CASES)
def test_lineinfile_agrees(tmp_path, text, key, value, to_set):
    conf = tmp_path / "f.conf"
    conf.write_bytes(text.encode())
    args = {"ANSIBLE_MODULE_ARGS": {"path": str(conf), "regexp": rf"^\s*#?\s*{key}=",
                                    "line": f"{key}={value}", "_ansible_check_mode": True}}
    result = subprocess.run([sys.executable, "-m", "ansible.modules.lineinfile"], input=json.dumps(args),
                            capture_output=True, text=True, check=False, env=dict(os.environ))
    assert json.loads(result.stdout)["changed"] is to_set, result.stdout + result.stderr


def test_several_keys_only_the_differing_ones():
    text = "listen=YES\n#anonymous_enable=YES\nlocal_umask=002\n"
    keys = {"listen": "YES", "anonymous_enable": "NO", "local_umask": "002", "pasv_enable": "YES"}
    assert conf_keys_to_set(text, keys) == {"anonymous_enable": "NO", "pasv_enable": "YES"}


def test_missing_file():
    assert conf_keys_to_set(None, {"listen": "YES"}) == {"listen": "YES"}

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Unit tests for roles/integrity/templates/vps-integrity.j2 (FIM-01, FIM-02): the command rendered
as the role renders it, with a stand-in for aide that prints what AIDE 0.18/0.19 print, and a
small SMTP server on loopback: the summary line names every added, removed and changed path (not
the "File: /path" lines of the details), and with a relay declared the findings are mailed."""

import importlib.util
import json
import socketserver
import threading
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "roles/integrity/templates/vps-integrity.j2"

# What `aide --check` printed on op-debian12 (0.18.3), shortened.
AIDE_OUTPUT = """Start timestamp: 2026-12-03 18:30:12 +0000 (AIDE 0.18.3)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t1469
  Added entries:\t\t1
  Removed entries:\t\t1
  Changed entries:\t\t2

---------------------------------------------------
Added entries:
---------------------------------------------------

f+++++++++++++++++: /var/www/html/new.php

---------------------------------------------------
Removed entries:
---------------------------------------------------

f-----------------: /var/www/html/old.php

---------------------------------------------------
Changed entries:
---------------------------------------------------

f > ... mc..H..   : /var/www/html/checkout.php
d = ... mc.. ..   : /var/www/html

---------------------------------------------------
Detailed information about changes:
---------------------------------------------------

File: /var/www/html/checkout.php
 Size      : 10703                            | 10707
Directory: /var/www/html
 Mtime     : 2026-12-03 18:28:24 +0000        | 2026-12-03 18:30:10 +0000
"""
PATHS = ["/var/www/html/new.php", "/var/www/html/old.php", "/var/www/html/checkout.php", "/var/www/html"]


class Sink(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message (no STARTTLS offered)."""

    received = []

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 sink")
        data = None
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if data is not None:
                if line == ".":
                    Sink.received.append("\n".join(data))
                    data = None
                    self.reply("250 queued")
                else:
                    data.append(line)
            elif line.upper().startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif line.upper() == "DATA":
                data = []
                self.reply("354 go on")
            elif line.upper() == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def render(tmp_path, mail_to="", relay=""):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "# " + text
    env.filters["to_json"] = json.dumps
    text = env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="Ansible managed", __integrity_conf=str(tmp_path / "aide.conf"),
        __integrity_db=str(tmp_path / "aide.db"), __integrity_db_new=str(tmp_path / "aide.db.new"),
        __integrity_db_dir=str(tmp_path), __integrity_syslog_identifier="vps-integrity-test",
        integrity_mail_to=mail_to, integrity_smtp_relay=relay)
    path = tmp_path / "vps_integrity.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("vps_integrity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    aide = tmp_path / "aide"
    (tmp_path / "aide.out").write_text(AIDE_OUTPUT)
    aide.write_text(f"#!/bin/sh\ncat {tmp_path / 'aide.out'}\nexit 5\n")
    aide.chmod(0o755)
    module.AIDE = str(aide)
    (tmp_path / "aide.db").write_text("")
    return module


@pytest.fixture(autouse=True)
def under_systemd(monkeypatch):
    """As the service runs it: output to stdout only (no syslog from the tests)."""
    monkeypatch.setenv("INVOCATION_ID", "0")


def test_summary_names_every_added_removed_and_changed_path_once(tmp_path):
    module = render(tmp_path)
    assert module.changed_paths(AIDE_OUTPUT.splitlines()) == PATHS


def test_check_reports_the_paths_first_and_returns_aides_status(tmp_path, capsys):
    module = render(tmp_path)
    assert module.check() == 5
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "FINDINGS: 4 entries added, removed or changed: " + " ".join(PATHS)


def test_findings_are_mailed_through_the_declared_relay(tmp_path, capsys):
    Sink.received = []
    server = socketserver.TCPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.handle_request, daemon=True).start()
    port = server.server_address[1]
    module = render(tmp_path, "ops@example.org", f"127.0.0.1:{port}")
    try:
        assert module.check() == 5
    finally:
        server.server_close()
    out = capsys.readouterr().out
    assert f"findings mailed to ops@example.org through 127.0.0.1:{port}" in out
    assert len(Sink.received) == 1
    message = Sink.received[0]
    assert "To: ops@example.org" in message
    assert "Subject: [vps-integrity]" in message and "4 entries added, removed or changed" in message
    assert "/var/www/html/checkout.php" in message


def test_no_relay_no_mail(tmp_path, capsys):
    module = render(tmp_path)
    assert module.check() == 5
    assert "mailed" not in capsys.readouterr().out

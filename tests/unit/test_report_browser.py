# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #14 part 4: the fleet report, opened in a real headless browser (Debian's chromium).

An audit of five hosts is written twice (the second with drift and a failure), with the project's
real catalog; the second page is then copied alone into another directory, as a copy mailed to a
manager would be, and opened there by chromium, in a network namespace with no network (nothing
can leave the machine, whatever the browser tries). What must hold in the page the browser built:
- the matrix renders: one row per host, one column per control, the coloured cells painted (the
  screenshot holds the compliant green, the drift amber and the failed red);
- every link resolves inside the page (each href is "#<id>" of an element that exists), and there
  is no other href or src at all, so the copy works anywhere;
- each control's title and description are in the page, and the change since the previous audit.
`make test` and `make unit` install chromium first (scripts/ensure-browser); a missing browser
fails this test, it is never skipped. The screenshot stays in pytest's temporary directory and its
path is printed (`pytest -s`).
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("compliance_report", REPO / "plugins/callback/compliance_report.py")
cr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cr)

HOSTS = [f"web{i}.example.test" for i in range(1, 6)]
CONTROLS = ["WG-01", "DR-02", "FW-02", "SSH-01"]
# Cell colours of the page's CSS (compliant, drift, failed).
GREEN, AMBER, RED = (0x2D, 0xA4, 0x4E), (0xD4, 0xA7, 0x2C), (0xCF, 0x22, 0x2E)


class Dom(HTMLParser):
    """The ids, links, sources and table rows of the DOM chromium dumped."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.matrix_rows = 0
        self._tables = 0
        self._section = ""
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if "src" in attrs:
            self.srcs.append(attrs["src"])
        if tag == "table":
            self._tables += 1
        if tag in ("thead", "tbody", "tfoot"):
            self._section = tag
        if tag == "tr" and self._tables == 1 and self._section == "tbody":
            self.matrix_rows += 1

    def handle_data(self, data):
        self.text.append(data)


def chromium(*args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: run scripts/ensure-browser (make test and make unit do)"
    # No network at all for the browser: a namespace of its own (root: unshare -n; else a user
    # namespace too). --no-sandbox: chromium refuses to run as root with its sandbox.
    isolate = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    command = [*isolate, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", "--user-data-dir=" + str(Path(args[-1][len("file://"):]).parent / ".chromium"),
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def png_pixels(path: Path) -> tuple[int, int, set[tuple[int, int, int]]]:
    """(width, height, set of RGB colours) of an 8-bit RGB/RGBA PNG: enough to see painted cells."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours, offset = bytearray(stride), set(), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(tuple(line[i:i + 3]) for i in range(0, stride, bpp))
        previous = line
    return width, height, colours


@pytest.fixture(scope="module")
def mailed_copy(tmp_path_factory):
    """The second audit's page, alone in a directory of its own."""
    reports = tmp_path_factory.mktemp("reports")
    when = datetime.datetime(2026, 12, 3, 18, 0, tzinfo=datetime.UTC)
    for run, drifted in (("first", set()), ("second", {("web2.example.test", "FW-02"), ("web4.example.test", "DR-02")})):
        state = cr.ComplianceState(run_id=run)
        state.playbooks.append("audit.yml")
        state.check_mode = True
        state.inventory = {"sources": ["/srv/fleet/inventory"], "limit": None}
        for host in HOSTS:
            for cid in CONTROLS:
                outcome = "changed" if (host, cid) in drifted else "ok"
                state.record(host, cid, outcome, f"{cid} | task", True, {})
        if run == "second":
            state.record("web5.example.test", "SSH-01", "failed", "SSH-01 | task", True, {"msg": "sshd -t failed"})
        html, _json = cr.write_reports(state, reports, now=when)
        when += datetime.timedelta(days=1)
    copy_dir = tmp_path_factory.mktemp("mailed")
    copy = copy_dir / "fleet-audit.html"
    shutil.copyfile(html, copy)
    return copy


def test_fleet_report_renders_in_a_headless_browser_with_links_that_resolve_in_a_copy(mailed_copy):
    url = "file://" + str(mailed_copy)
    dom = Dom()
    dom.feed(chromium("--dump-dom", url).stdout)
    text = " ".join(dom.text)

    assert dom.matrix_rows == len(HOSTS)
    assert all(f"control-{cid.lower()}" in dom.ids for cid in CONTROLS)
    unresolved = [href for href in dom.hrefs if not href.startswith("#") or href[1:] not in dom.ids]
    assert dom.hrefs and not unresolved, f"links that do not resolve inside the copy: {unresolved}"
    assert not dom.srcs, f"the page loads something: {dom.srcs}"
    catalog = cr.load_catalog()
    for cid in CONTROLS:
        assert catalog[cid]["title"] in text and catalog[cid]["enforces"][:60] in text
    assert "web2.example.test" in text and "Compared with" in text
    assert "sshd -t failed" in text

    shot = mailed_copy.parent / "fleet-audit.png"
    chromium("--window-size=1400,1000", f"--screenshot={shot}", url)
    width, height, colours = png_pixels(shot)
    print(f"screenshot: {shot} ({width}x{height})")
    assert (width, height) == (1400, 1000)
    missing = [name for name, rgb in (("green", GREEN), ("amber", AMBER), ("red", RED)) if rgb not in colours]
    assert not missing, f"cells not painted: {missing}"

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""roles/contain/library/contain_evidence.py (CT-01): the bundle, its manifest, and the docroot walk
that never follows a link, on temporary trees."""

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "roles/contain/library/contain_evidence.py"
_spec = importlib.util.spec_from_file_location("contain_evidence", MODULE)
ce = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ce)


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def quick(monkeypatch, tmp_path):
    """No host commands but one (fast, deterministic); /tmp-like suspect prefix = this tmp_path."""
    monkeypatch.setattr(ce, "COMMANDS", (("host/uname.txt", ["uname", "-a"]),))
    monkeypatch.setattr(ce, "SUSPECT_PREFIXES", (str(tmp_path) + "/",))


def params(tmp_path, docroots, days=7):
    return {"dest": str(tmp_path / "evidence" / "bundle"), "docroots": [str(d) for d in docroots],
            "changed_days": days, "copy_max_bytes": 1024 * 1024, "journal": False, "extra_paths": []}


@pytest.fixture
def docroot(tmp_path):
    """A docroot with a page, a web shell in a subdirectory, a link to a root-only secret outside
    it, and a name with a newline (an attacker chooses names)."""
    root = tmp_path / "www" / "html"
    (root / "uploads").mkdir(parents=True)
    (root / "index.html").write_bytes(b"<h1>ferry</h1>\n")
    (root / "uploads" / "shell.php").write_bytes(b"<?php system($_GET['c']); ?>\n")
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$secret-hash-never-copied:20000::::::\n")
    secret.chmod(0o600)
    (root / "uploads" / "link").symlink_to(secret)
    (root / "odd\nname.php").write_bytes(b"odd\n")
    return root, secret


def test_bundle_lists_changed_files_never_through_a_link_and_matches_its_manifest(quick, tmp_path, docroot):
    root, secret = docroot
    result = ce.collect(params(tmp_path, [root]))
    bundle = Path(result["bundle"])
    assert oct(bundle.stat().st_mode & 0o777) == "0o700"
    assert oct(bundle.parent.stat().st_mode & 0o777) == "0o700"
    rows = (bundle / "docroots/changed.tsv").read_text().splitlines()
    by_path = {line.split("\t")[9]: line.split("\t") for line in rows[1:]}
    shell = by_path[str(root / "uploads" / "shell.php")]
    assert shell[0] == "file" and shell[7] == sha(b"<?php system($_GET['c']); ?>\n") and shell[8] == "True"
    assert (bundle / "files" / shell[7]).read_bytes() == b"<?php system($_GET['c']); ?>\n"
    link = by_path[str(root / "uploads" / "link")]
    assert link[0] == "link" and link[7] == "" and link[10] == str(secret)
    # The secret behind the link was never read: its content is nowhere in the bundle.
    secret_sha = sha(secret.read_bytes())
    assert not (bundle / "files" / secret_sha).exists()
    assert all(secret.read_bytes() not in p.read_bytes() for p in bundle.rglob("*") if p.is_file())
    # A newline in a name stays on one escaped line.
    assert str(root) + "/odd\\x0aname.php" in by_path
    # The manifest passes sha256sum -c, and the archive holds it with the sha256 returned.
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "docroots/changed.tsv: OK" in check.stdout
    assert result["manifest_sha256"] == sha((bundle / "SHA256SUMS").read_bytes())
    archive = Path(result["archive"])
    assert result["archive_sha256"] == sha(archive.read_bytes())
    assert (archive.parent / (archive.name + ".sha256")).read_text() == f"{result['archive_sha256']}  {archive.name}\n"
    with tarfile.open(archive) as tar:
        assert "bundle/SHA256SUMS" in tar.getnames()
    assert result["counts"]["docroot_changed"] >= 4


def test_the_manifest_check_fails_on_a_changed_file(quick, tmp_path, docroot):
    """The test above can fail: one changed byte in the bundle and sha256sum -c says so."""
    result = ce.collect(params(tmp_path, [docroot[0]]))
    bundle = Path(result["bundle"])
    (bundle / "docroots/changed.tsv").write_text("tampered\n")
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, capture_output=True).returncode != 0


def test_old_entries_are_not_listed(quick, tmp_path, docroot):
    """changed_days counts back from the collection time: 40 days later, nothing here is recent."""
    result = ce.collect(params(tmp_path, [docroot[0]]), now=time.time() + 40 * 86400)
    assert result["counts"]["docroot_changed"] == 0


def test_a_docroot_that_is_a_link_is_not_walked(quick, tmp_path, docroot):
    alias = tmp_path / "alias"
    alias.symlink_to(docroot[0])
    result = ce.collect(params(tmp_path, [alias]))
    assert result["counts"]["docroot_changed"] == 0
    assert any("symlink is never followed" in note for note in result["notes"])


def test_every_run_writes_a_new_bundle(quick, tmp_path, docroot):
    ce.collect(params(tmp_path, [docroot[0]]))
    with pytest.raises(FileExistsError):
        ce.collect(params(tmp_path, [docroot[0]]))


def test_processes_carry_the_sha256_of_their_executable_even_deleted(quick, tmp_path):
    """A miner that deleted its binary after it started: hashed and copied through /proc/PID/exe."""
    binary = tmp_path / "kworker-miner"
    shutil.copy("/bin/sleep", binary)
    expected = sha(binary.read_bytes())
    proc = subprocess.Popen([str(binary), "30"])
    try:
        time.sleep(0.2)
        binary.unlink()
        result = ce.collect(params(tmp_path, []))
    finally:
        proc.kill()
        proc.wait()
    bundle = Path(result["bundle"])
    procs = {p["pid"]: p for p in json.loads((bundle / "processes/processes.json").read_text())}
    miner = procs[proc.pid]
    assert miner["exe_deleted"] and miner["exe_sha256"] == expected and miner["exe_copied"]
    assert sha((bundle / "files" / expected).read_bytes()) == expected
    me = procs[os.getpid()]
    assert me["exe_sha256"] == sha(Path(os.path.realpath("/proc/self/exe")).read_bytes())
    assert not me["exe_copied"]


def test_sockets_are_mapped_to_their_processes(quick, tmp_path):
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        result = ce.collect(params(tmp_path, []))
    finally:
        listener.close()
    rows = json.loads((Path(result["bundle"]) / "sockets/sockets.json").read_text())
    mine = [r for r in rows if r["local"] == f"127.0.0.1:{port}"]
    assert mine and mine[0]["state"] == "LISTEN" and os.getpid() in mine[0]["pids"]
    assert (Path(result["bundle"]) / "sockets/proc-net-tcp").is_file()


@pytest.mark.parametrize(("text", "expected"), [
    ("0100007F:0016", ("127.0.0.1", 22)),
    ("0AFAFCAC:01BB", ("172.252.250.10", 443)),
    ("00000000000000000000000001000000:0050", ("::1", 80)),
    ("B80D0120000000000000000001000000:1F90", ("2001:db8::1", 8080)),
])
def test_proc_net_addresses_are_decoded(text, expected):
    assert ce.decode_address(text) == expected


def test_without_proc_exe_argv0_is_hashed_and_marked_unverified():
    """A container's root cannot read another user's /proc/PID/exe (no CAP_SYS_PTRACE)."""
    item = {"cmdline": ["sleep", "30"]}
    ce.unverified(item, PermissionError(13, "Permission denied"))
    assert item["exe"] == shutil.which("sleep")
    assert item["exe_sha256"] == sha(Path(shutil.which("sleep")).read_bytes())
    assert item["exe_source"] == "argv[0], unverified (/proc/PID/exe: Permission denied)"

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #14, part 2: the AWX execution environment (execution-environment.yml, bindep.txt).

`ansible-builder create` runs offline into a temporary directory, and the build context it writes
is checked against the project's own pins: requirements.txt (parsed here, never a copy) and
requirements.yml. The image cannot be built here (no registry), so the context is the proof."""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
BUILDER = Path(sys.executable).parent / "ansible-builder"
BASE_IMAGE = "quay.io/centos/centos:stream9"
# What AWX runs in the image: the ansible bundle (with its collections) and ansible-runner.
EE_ROOTS = ("ansible", "ansible-core", "ansible-runner")


def pins(path):
    """{canonical name: (name as written, version)} of a pip requirements file, `name==version` only."""
    out = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path}: {line!r} is not pinned with =="
        out[canonicalize_name(req.name)] = (req.name, specs[0].version)
    return out


def runtime_closure(roots):
    """The installed distributions that the roots need at run time (no extras), from .venv's metadata."""
    seen, todo = set(), list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in distribution(name).requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.fixture(scope="module")
def definition():
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The build context, made offline: any network attempt goes to a closed local port."""
    out = tmp_path_factory.mktemp("ee") / "context"
    env = dict(os.environ, http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="")
    result = subprocess.run(
        [str(BUILDER), "create", "-f", "execution-environment.yml", "--context", str(out),
         "--output-filename", "Containerfile"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def project_pins():
    return pins(REPO / "requirements.txt")


def test_builder_is_the_pinned_one(project_pins):
    assert BUILDER.exists(), "ansible-builder is missing from .venv: make setup"
    assert distribution("ansible-builder").version == project_pins["ansible-builder"][1]


def test_schema_3_and_the_base_image(definition, context):
    assert definition["version"] == 3
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{BASE_IMAGE}"' in containerfile
    # The interpreter of the image is the one the pins were resolved and tested with (.venv's).
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert f'ARG PYCMD="/usr/bin/{here}"' in containerfile
    assert f'ARG PYPKG="{here}"' in containerfile
    assert 'ARG PKGMGR="/usr/bin/dnf"' in containerfile


def test_ansible_core_and_runner_are_the_pinned_ones(context, project_pins):
    containerfile = (context / "Containerfile").read_text()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"$', containerfile, re.M)
    assert refs, containerfile
    wanted = {f"{project_pins[n][0]}=={project_pins[n][1]}" for n in ("ansible-core", "ansible-runner")}
    assert set(refs.group(1).split()) == wanted


def test_python_requirements_equal_requirements_txt(context, project_pins):
    ee = pins(context / "_build" / "requirements.txt")
    assert ee, "the context has no python requirements"
    for name, (written, version) in ee.items():
        assert name in project_pins, f"{written} is in the EE but not pinned in requirements.txt"
        assert version == project_pins[name][1], (
            f"{written}=={version} in the EE, {project_pins[name][1]} in requirements.txt")
    # Nothing the tool chain needs at run time is left for pip to choose on the day of the build.
    needed = runtime_closure(EE_ROOTS) - {"ansible-core", "ansible-runner"}
    assert needed - set(ee) == set(), "run-time dependencies not pinned in the EE"
    # .venv (where the closure was read) is requirements.txt, for these.
    for name in runtime_closure(EE_ROOTS):
        assert distribution(name).version == project_pins[name][1], name


def test_every_pip_call_is_constrained_by_requirements_txt(context):
    containerfile = (context / "Containerfile").read_text()
    copied = context / "_build" / "configs" / "requirements.txt"
    assert copied.read_text() == (REPO / "requirements.txt").read_text()
    lines = containerfile.splitlines()
    constraint = lines.index("ENV PIP_CONSTRAINT=/etc/vps-baseline/constraints.txt")
    assert "COPY _build/configs/requirements.txt /etc/vps-baseline/constraints.txt" in lines[:constraint]
    first_pip = next(i for i, line in enumerate(lines) if "pip_install" in line or "pip install" in line)
    assert constraint < first_pip, "a pip call runs before the constraints are set"


def test_collections_come_from_the_pinned_bundle_not_galaxy(context, project_pins):
    containerfile = (context / "Containerfile").read_text()
    assert not (context / "_build" / "requirements.yml").exists()
    assert "ansible-galaxy collection install" not in containerfile
    assert ("ansible", project_pins["ansible"][1]) in pins(context / "_build" / "requirements.txt").values()
    # The bundle in .venv is that same ansible package: each collection of requirements.yml is in
    # it at a version the requirement accepts, and so is awx.awx (awx/configure.yml).
    assert distribution("ansible").version == project_pins["ansible"][1]
    root = Path(distribution("ansible").locate_file("ansible_collections"))
    wanted = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    wanted = wanted + [{"name": "awx.awx", "version": ">=24.0.0"}]
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        manifest = root / namespace / name / "MANIFEST.json"
        assert manifest.is_file(), f"{entry['name']} is not in ansible {project_pins['ansible'][1]}"
        version = json.loads(manifest.read_text())["collection_info"]["version"]
        assert Version(version) in SpecifierSet(entry.get("version", ">=0")), (entry, version)


def test_system_packages(context):
    text = (context / "_build" / "bindep.txt").read_text()
    assert text == (REPO / "bindep.txt").read_text()
    depends = Depends(text)
    # The base image is dnf-based: the ssh client must be named for rpm there.
    on_rpm = [rule[0] for rule in depends.active_rules(["platform:rpm", "platform:centos", "platform:redhat"])]
    assert on_rpm == ["openssh-clients"]
    on_dpkg = [rule[0] for rule in depends.active_rules(["platform:dpkg", "platform:debian"])]
    assert on_dpkg == ["openssh-client"]


def test_the_project_is_not_in_the_image(context):
    """AWX checks the repository out for each job: the image carries the tool chain only."""
    files = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
    allowed = re.compile(r"^(Containerfile|_build/(requirements\.txt|bindep\.txt|configs/requirements\.txt|scripts/[^/]+))$")
    assert [f for f in files if not allowed.match(f)] == []
    containerfile = (context / "Containerfile").read_text()
    for line in containerfile.splitlines():
        if line.startswith(("COPY", "ADD")):
            assert line.split()[1].startswith(("_build/", "--from=builder")), line
    for part in ("playbooks", "roles", "plugins", "ansible.cfg", "inventory"):
        assert part not in containerfile

# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Issue #14, part 2: the AWX layout as code (awx/configure.yml, docs/awx.md).

Nothing here talks to an AWX: the playbook is syntax-checked with the awx.awx collection of the
pinned ansible bundle, and its objects are read and judged: one job template per playbook of
playbooks/, the audit in check mode, contain behind a limit, and the workflow where a failed
audit (its exit code) leads to an approval and only then to site.yml."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGURE = REPO / "awx" / "configure.yml"


class _Loader(yaml.SafeLoader):
    """Reads Ansible's !unsafe as the plain string it wraps."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def play():
    plays = yaml.load(CONFIGURE.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    assert len(plays) == 1
    return plays[0]


def task(play, module):
    found = [t for t in play["tasks"] if module in t]
    assert len(found) == 1, f"expected one {module} task"
    return found[0]


def templates(play):
    return {jt["playbook"]: jt for jt in play["vars"]["awx_job_templates"]}


def test_syntax_check_with_the_bundled_awx_collection():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", str(CONFIGURE)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_playbook_has_a_job_template(play):
    playbooks = {str(p.relative_to(REPO)) for p in (REPO / "playbooks").glob("*.yml")}
    assert playbooks, "no playbooks found"
    listed = [jt["playbook"] for jt in play["vars"]["awx_job_templates"]]
    assert len(listed) == len(set(listed)), "a playbook has two job templates"
    assert set(listed) == playbooks, "job templates and playbooks/ differ"
    names = [jt["name"] for jt in play["vars"]["awx_job_templates"]]
    assert len(names) == len(set(names))


def test_the_job_template_task_takes_the_list_and_asks_for_a_limit(play):
    jt = task(play, "awx.awx.job_template")
    assert jt["loop"] == "{{ awx_job_templates }}"
    args = jt["awx.awx.job_template"]
    assert args["playbook"] == "{{ item.playbook }}"
    assert args["job_type"] == "{{ item.job_type }}"
    assert args["ask_limit_on_launch"] is True
    assert args["allow_simultaneous"] is False
    assert args["execution_environment"] == "vps-baseline-ee"


def test_audit_runs_in_check_mode_with_diff_and_the_others_do_not(play):
    jts = templates(play)
    assert jts["playbooks/audit.yml"]["job_type"] == "check"  # AWX passes --check (audit.yml requires it)
    assert jts["playbooks/audit.yml"]["diff_mode"] is True
    for playbook in ("playbooks/site.yml", "playbooks/team.yml", "playbooks/contain.yml"):
        assert jts[playbook]["job_type"] == "run", playbook


def test_contain_needs_a_limit_and_its_sources_at_launch(play):
    jt = templates(play)["playbooks/contain.yml"]
    assert jt["ask_variables_on_launch"] is True
    assert "contain_admin_sources" in jt["description"]
    # The job template cannot make --limit mandatory: contain.yml does (fail closed without one).
    validate = (REPO / "roles" / "contain" / "tasks" / "validate.yml").read_text()
    assert "ansible_limit is defined and ansible_limit | length > 0" in validate


def test_a_failed_audit_gates_the_remediation(play):
    wf = task(play, "awx.awx.workflow_job_template")["awx.awx.workflow_job_template"]
    nodes = {n["identifier"]: n for n in wf["workflow_nodes"]}
    assert set(nodes) == {"audit", "approve", "site"}
    jts = {jt["name"]: jt["playbook"] for jt in play["vars"]["awx_job_templates"]}
    audit, approve, site = nodes["audit"], nodes["approve"], nodes["site"]
    assert jts[audit["unified_job_template"]["name"]] == "playbooks/audit.yml"
    assert jts[site["unified_job_template"]["name"]] == "playbooks/site.yml"
    assert approve["unified_job_template"]["type"] == "workflow_approval"
    # The audit's failure (exit code != 0: drift or a failed control) leads to the approval only;
    # a clean audit ends the workflow; site.yml runs only after an approval.
    assert audit["related"] == {"failure_nodes": [{"identifier": "approve"}]}
    assert approve["related"] == {"success_nodes": [{"identifier": "site"}]}
    assert "related" not in site
    assert wf["ask_limit_on_launch"] is True


def test_host_keys_stay_checked(play):
    ctype = task(play, "awx.awx.credential_type")["awx.awx.credential_type"]
    args = ctype["injectors"]["extra_vars"]["ansible_ssh_common_args"]
    assert "UserKnownHostsFile={{ tower.filename }}" in args
    assert "StrictHostKeyChecking=yes" in args
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    assert cfg.getboolean("defaults", "host_key_checking") is True
    assert "awx_machine_credential, awx_known_hosts_credential]" in play["vars"]["__awx_credentials"]


def test_secrets_come_from_the_environment_and_are_not_logged(play):
    checked = []
    for t in play["tasks"]:
        args = t.get("awx.awx.credential")
        if args is None:
            continue
        for name, value in args["inputs"].items():
            if any(word in name for word in ("key", "password", "known_hosts")):
                assert "lookup('ansible.builtin.env'" in value, (t["name"], name)
                checked.append(name)
        if args["credential_type"] in ("Machine", "Vault"):
            assert t.get("no_log") is True, t["name"]
    assert sorted(checked) == ["known_hosts", "ssh_key_data", "vault_password"]


def test_the_awx_project_is_this_repository(play):
    """AWX runs ansible-playbook from the project's root: ansible.cfg there finds the roles and
    plugins, the inventory source is a path of the repository, and the callback path handed to
    the controller is ansible.cfg's callback_plugins inside the job's project (/runner/project)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    for key in ("roles_path", "library", "module_utils", "filter_plugins", "lookup_plugins", "callback_plugins"):
        assert (REPO / cfg.get("defaults", key)).is_dir(), key
    # AWX passes ansible.cfg's callback_plugins (relative: the job's working directory is the
    # project's root) and callbacks_enabled on to the job: the audit gate's callback loads without a
    # controller-wide setting, which stays opt-in and, when used, names the same directory.
    assert not Path(cfg.get("defaults", "callback_plugins")).is_absolute()
    assert "compliance_report" in [c.strip() for c in cfg.get("defaults", "callbacks_enabled").split(",")]
    assert play["vars"]["awx_manage_callback_setting"] is False
    assert play["vars"]["awx_callback_plugins_path"] == "/runner/project/" + cfg.get("defaults", "callback_plugins")
    assert (REPO / play["vars"]["awx_inventory_source_path"]).is_file()
    project = task(play, "awx.awx.project")["awx.awx.project"]
    assert project["scm_type"] == "git" and project["default_environment"] == "vps-baseline-ee"
    assert "scm_subdir" not in project


def test_documented(play):
    doc = (REPO / "docs" / "awx.md").read_text()
    for jt in play["vars"]["awx_job_templates"]:
        assert jt["name"] in doc and jt["playbook"] in doc, jt["name"]
    assert play["vars"]["awx_workflow"] in doc
    assert "docs/awx.md" in (REPO / "README.md").read_text()

"""Render the webserver and vsftpd roles' OS values (vars/Debian.yml, vars/RedHat.yml) with the
roles' own defaults, task paths and templates. No RHEL image can be built here, so this is where
the RHEL values (httpd, apache, /etc/httpd, /etc/vsftpd/...) are proven to fit the roles."""

import importlib.util
import json
from pathlib import Path

import jinja2
import jinja2.nativetypes
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"

_spec = importlib.util.spec_from_file_location("team_filter", ROOT / "plugins/filter/team.py")
_team = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_team)

MEMBERS = [
    {"name": "wuser1", "ftp": True},
    {"name": "wuser2", "ftp": True, "chroot": "/var/www/html/ir"},
    {"name": "wdev"},
    {"name": "gone", "ftp": True, "state": "absent"},
]


def _env(native=False):
    kind = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
    # trim_blocks: as the template module renders.
    env = kind(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    env.filters.update(
        comment=lambda text: "\n".join("# " + line for line in str(text).splitlines()),
        team_members=_team.team_members,
        combine=lambda a, b: {**a, **b},
        to_json=json.dumps,
        string=str,
    )
    return env


def _render(env, value, variables):
    """Render a var the way Ansible does: strings templated to native values, recursively."""
    if isinstance(value, str):
        out = env.from_string(value).render(variables)
        return out.strip() if isinstance(out, str) and value.startswith("{{") else out
    if isinstance(value, list):
        return [_render(env, v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _render(env, v, variables) for k, v in value.items()}
    return value


def role_vars(role, os_family, extra=None):
    """The role's defaults, then vars/main.yml, then vars/<os_family>.yml, all rendered."""
    env, native = _env(), _env(native=True)
    raw = {"workgroup_name": "workgroup", "workgroup_umask": "002", "workgroup_members": MEMBERS,
           "ansible_managed": "Managed by vps-baseline"}
    for path in ("defaults/main.yml", "vars/main.yml", f"vars/{os_family}.yml"):
        file = ROLES / role / path
        if file.exists():
            raw.update(yaml.safe_load(file.read_text()) or {})
    raw.update(extra or {})
    rendered = dict(raw)
    for _ in range(5):  # vars refer to vars: settle them in passes, like Ansible's lazy templating
        for key, value in raw.items():
            try:
                rendered[key] = _render(native, value, rendered)
            except jinja2.UndefinedError:
                pass  # depends on a var not settled yet: next pass
    return env, {k: _render(native, v, rendered) for k, v in raw.items()}


def task_paths(role, env, variables):
    """Every dest/path of the role's file-writing tasks, rendered (loops skipped)."""
    paths = set()
    for file in sorted((ROLES / role / "tasks").glob("*.yml")):
        for task in yaml.safe_load(file.read_text()) or []:
            for module in ("ansible.builtin.template", "ansible.builtin.file", "ansible.builtin.lineinfile"):
                args = task.get(module) or {}
                for key in ("dest", "path"):
                    if key in args and "item" not in str(args[key]):
                        paths.add(env.from_string(str(args[key])).render(variables))
    return paths


def render_template(role, name, env, variables, **extra):
    text = (ROLES / role / "templates" / name).read_text()
    return env.from_string(text).render({**variables, **extra})


@pytest.mark.parametrize(
    "os_family, package, user, service, conf, configtest",
    [
        ("Debian", "apache2", "www-data", "apache2", "/etc/apache2/conf-available/vps-baseline.conf",
         ["apache2ctl", "configtest"]),
        ("RedHat", "httpd", "apache", "httpd", "/etc/httpd/conf.d/vps-baseline.conf", ["apachectl", "configtest"]),
    ],
)
def test_webserver_os_values(os_family, package, user, service, conf, configtest):
    env, v = role_vars("webserver", os_family)
    assert v["__webserver_packages"] == [package]
    assert v["__webserver_user"] == user
    assert v["__webserver_configtest"] == configtest
    paths = task_paths("webserver", env, v)
    assert f"/etc/systemd/system/{service}.service.d/umask.conf" in paths
    assert conf in paths
    # RHEL includes conf.d/*.conf directly; Debian enables conf-available with a link.
    assert bool(v["__webserver_conf_link"]) == (os_family == "Debian")
    dropin = render_template("webserver", "umask.conf.j2", env, v)
    assert dropin.startswith("# Managed by vps-baseline\n")
    assert "[Service]\nUMask=0002\n" in dropin
    tokens = render_template("webserver", "vps-baseline.conf.j2", env, v)
    assert "ServerTokens Prod\nServerSignature Off\nTraceEnable Off\n" in tokens


@pytest.mark.parametrize(
    "os_family, conf, chroot_list, user_list, ftpusers",
    [
        ("Debian", "/etc/vsftpd.conf", "/etc/vsftpd.chroot_list", "/etc/vsftpd.user_list", "/etc/ftpusers"),
        ("RedHat", "/etc/vsftpd/vsftpd.conf", "/etc/vsftpd/chroot_list", "/etc/vsftpd/user_list",
         "/etc/vsftpd/ftpusers"),
    ],
)
def test_vsftpd_os_values(os_family, conf, chroot_list, user_list, ftpusers):
    env, v = role_vars("vsftpd", os_family)
    paths = task_paths("vsftpd", env, v)
    assert {conf, chroot_list, user_list, ftpusers, "/etc/vsftpd/user_conf"} <= paths
    assert v["__vsftpd_settings_ftp01"]["local_umask"] == "002"
    assert v["__vsftpd_settings_ftp02"]["chroot_list_file"] == chroot_list
    assert v["__vsftpd_settings_ftp02"]["allow_writeable_chroot"] == "NO"
    assert v["__vsftpd_settings_ftp03"]["userlist_file"] == user_list
    assert v["__vsftpd_settings_ftp03"]["userlist_deny"] == "NO"
    assert v["__vsftpd_settings_ftp03"]["anonymous_enable"] == "NO"
    net = v["__vsftpd_settings_ftp04"]
    assert (net["pasv_min_port"], net["pasv_max_port"], net["ssl_enable"]) == ("30000", "30100", "NO")
    assert "rsa_cert_file" not in net
    users = render_template("vsftpd", "user_list.j2", env, v)
    assert [line for line in users.splitlines() if not line.startswith("#")] == ["wuser1", "wuser2"]
    jailed = render_template("vsftpd", "chroot_list.j2", env, v)
    assert [line for line in jailed.splitlines() if not line.startswith("#")] == ["wuser2"]
    member = v["__vsftpd_jailed"][0]
    per_user = render_template("vsftpd", "user_conf.j2", env, v, item=member)
    assert "local_root=/var/www/html/ir\nallow_writeable_chroot=YES\n" in per_user


def test_vsftpd_ftps_settings_only_with_cert_and_key():
    _, v = role_vars("vsftpd", "Debian", {"vsftpd_ssl_cert": "/etc/ssl/ftp.pem", "vsftpd_ssl_key": "/etc/ssl/ftp.key"})
    net = v["__vsftpd_settings_ftp04"]
    assert net["ssl_enable"] == "YES"
    assert net["rsa_cert_file"] == "/etc/ssl/ftp.pem"
    assert net["force_local_logins_ssl"] == "YES"

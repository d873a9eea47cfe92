"""The K3s roles' options checked before any node changes (k3s_server_config / k3s_agent_config keys the
roles compute, k3s_registries' shape, k3s_server_manifests' names, proxy values), and the stand-in K3s's
join requests going direct whatever HTTP(S)_PROXY says, as K3s's own client does.

The playbook runs are infra.k3s.k3s_cluster with --check against this machine (local connections), the
way tests/integration/test_k3s_inputs.py runs them, so even a wrong pass would change nothing."""
from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from standins.k3s import node
from support.paths import PROJECT_ROOT

VERSION = "v1.31.4+k3s1"
TOKENS = {"k3s_token": "server-token-0123456789abcdef", "k3s_agent_token": "agent-token-0123456789abcdef"}


def run_checks(run_ansible, tmp_path, server_vars=None, agent_vars=None, all_vars=None):
    """The option checks (roles/k3s/tasks/options_check.yml, the end of the preflight the first play of
    infra.k3s.k3s_cluster runs on every node before the download) on a server and an agent, in check mode."""
    hosts = {"ansible_connection": "local", "tailscale_ip": "100.64.0.1"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"server1": dict(hosts)}, "vars": server_vars or {}},
        "k3s_workers": {"hosts": {"agent1": dict(hosts)}, "vars": agent_vars or {}},
    }, "vars": {**TOKENS, "k3s_version": VERSION, **(all_vars or {})}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "options", "hosts": "k3s_cluster", "gather_facts": False, "any_errors_fatal": True,
        "tasks": [{"name": "options", "ansible.builtin.include_role": {"name": "infra.k3s.k3s", "tasks_from": "options_check"}},
                  {"name": "passed", "ansible.builtin.debug": {"msg": "CHECKS PASSED"}}]}]))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "play.yml", cwd=tmp_path)
    return result.returncode, result.stdout + result.stderr


def test_options_check_runs_in_the_preflight():
    """Before the download and before any K3s play: the first play's preflight ends with these checks."""
    preflight = yaml.safe_load((PROJECT_ROOT / "roles" / "k3s" / "tasks" / "preflight.yml").read_text())
    includes = [t.get("ansible.builtin.include_tasks") for t in preflight]
    assert "options_check.yml" in includes
    prepare = yaml.safe_load((PROJECT_ROOT / "roles" / "k3s" / "tasks" / "prepare.yml").read_text())
    steps = [t.get("ansible.builtin.include_tasks") for t in prepare]
    assert steps.index("preflight.yml") < steps.index("download.yml")


def test_good_options_pass(run_ansible, tmp_path):
    returncode, output = run_checks(
        run_ansible, tmp_path,
        server_vars={"k3s_server_config": {"cluster-cidr": "10.52.0.0/16", "secrets-encryption": True},
                     "k3s_server_manifests": [str(tmp_path / "app.yaml"), str(tmp_path / "db.yml.j2")]},
        agent_vars={"k3s_agent_config": {"kubelet-arg": ["max-pods=50"]}},
        all_vars={"k3s_https_proxy": "http://user:p%27ss@proxy.example:3128", "k3s_no_proxy": ["10.0.0.0/8"],
                  "k3s_service_env": {"CONTAINERD_HTTP_PROXY": "http://proxy.example:3128"},
                  "k3s_registries": {"mirrors": {"docker.io": {"endpoint": ["https://mirror.example:5000"]}},
                                     "configs": {"mirror.example:5000": {"auth": {"username": "u", "password": "p"}}}}})
    assert returncode == 0, output
    assert output.count("CHECKS PASSED") == 2, output


def assert_refused(returncode, output, *messages):
    """Refused by the checks (the play stops there), nothing changed."""
    assert returncode == 2, output
    flat = " ".join(output.split())
    for message in messages:
        assert message in flat, output
    assert "CHECKS PASSED" not in output, output
    for changed in re.findall(r"\S+\s+: ok=\d+\s+changed=(\d+)", output):
        assert changed == "0", output


def test_server_config_may_not_override_computed_keys(run_ansible, tmp_path):
    returncode, output = run_checks(run_ansible, tmp_path,
                                    server_vars={"k3s_server_config": {"token-file": "/root/t", "node-ip": "10.0.0.9",
                                                                       "cluster-cidr": "10.52.0.0/16"}})
    assert_refused(returncode, output,
                   "k3s_server_config sets node-ip, token-file, which the role computes.",
                   "Use instead: k3s_node_ip; k3s_token (servers) or k3s_agent_token, from the vault")
    # A key the role leaves to the user (cluster-cidr) is not named.
    assert "cluster-cidr, " not in output and "sets cluster-cidr" not in output


def test_agent_config_may_not_override_computed_keys(run_ansible, tmp_path):
    returncode, output = run_checks(run_ansible, tmp_path,
                                    agent_vars={"k3s_agent_config": {"server": "https://10.0.0.1:6443", "node-label": ["a=b"]}})
    assert_refused(returncode, output, "k3s_agent_config sets node-label, server, which the role computes.",
                   "Use instead: k3s_node_labels; k3s_first_server or k3s_server_url")


def test_registries_outside_k3s_schema_are_refused_without_showing_credentials(run_ansible, tmp_path):
    secret = "registry-password-5f1c"
    registries = {"mirrors": {"docker.io": {"endpoint": ["https://mirror.example:5000"]}},
                  "configs": {"mirror.example:5000": {"auth": {"username": "u", "password": secret}, "tsl": {}}}}
    returncode, output = run_checks(run_ansible, tmp_path, all_vars={"k3s_registries": registries})
    assert_refused(returncode, output, "k3s_registries follows K3s's registries.yaml")
    assert secret not in output


@pytest.mark.parametrize("name", ["coredns.yaml", "traefik.yaml.j2", "infra-k3s-velero.yaml", "app.txt"])
def test_manifests_that_would_clobber_k3s_own_are_refused(run_ansible, tmp_path, name):
    manifest = tmp_path / name
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    returncode, output = run_checks(run_ansible, tmp_path, server_vars={"k3s_server_manifests": [str(manifest)]})
    assert_refused(returncode, output, "k3s_server_manifests must name .yaml, .yml or .json files",
                   f"given: {name.removesuffix('.j2')}")


def test_proxy_with_a_quote_is_refused_without_showing_it(run_ansible, tmp_path):
    proxy = "http://user:pa'ss@proxy.example:3128"
    returncode, output = run_checks(run_ansible, tmp_path, all_vars={"k3s_https_proxy": proxy})
    assert_refused(returncode, output, "no value may hold a single quote")
    assert "pa'ss" not in output


def test_service_env_may_not_set_the_join_through_k3s_variables(run_ansible, tmp_path):
    """K3S_TOKEN and K3S_URL in the unit's environment would override the token file and the server URL."""
    returncode, output = run_checks(run_ansible, tmp_path, all_vars={"k3s_service_env": {"K3S_URL": "https://10.0.0.1:6443"}})
    assert_refused(returncode, output, "may not set K3S_TOKEN, K3S_TOKEN_FILE")


class _Json(BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


def test_standin_requests_ignore_the_proxy_environment(monkeypatch):
    """The unit's environment file may name a proxy (here one that refuses connections, with no NO_PROXY):
    the stand-in's join and heartbeat requests still go direct, as K3s's clientaccess client does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # closed once the with block ends: nothing listens there
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Json)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{dead}")
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        assert node.request(f"http://127.0.0.1:{server.server_address[1]}/v1-k3s/readyz", ssl.create_default_context()) == {"ok": True}
    finally:
        server.shutdown()

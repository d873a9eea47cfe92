"""infra.k3s.ingress refuses bad input before any change: run infra.k3s.platform with --check against this
machine (local connections), so even a wrong pass would change nothing, and look for the refusal's message."""
from __future__ import annotations

import re

import pytest
import yaml

from support.recap import play_recap

TOKEN = "cf-token-0123456789abcdef-ingress"


def run_platform(run_ansible, tmp_path, variables=None, hosts=None):
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hosts = hosts or {"server1": {"public_ip": "192.0.2.11"}, "agent1": {"public_ip": "192.0.2.21"}}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"server1": {**local, **hosts["server1"]}}},
        "k3s_workers": {"hosts": {"agent1": {**local, **hosts["agent1"]}}},
    }, "vars": {"k3s_version": "v1.36.4+k3s1", "dns_zone": "example.com", "dns_cloudflare_api_token": TOKEN,
                "ingress_firewall": False,  # the firewall play would run on this machine (Molecule checks it)
                "ingress_acme_email": "ops@example.org",
                "ingress_k3s_bin": str(tmp_path / "no-k3s"), **(variables or {})}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "infra.k3s.platform", cwd=tmp_path)
    return result.returncode, result.stdout + result.stderr


def assert_refused(returncode, output, message):
    assert returncode == 2, output
    assert message in output, output
    for changed in re.findall(r"\S+\s+: ok=\d+\s+changed=(\d+)", output):
        assert changed == "0", output
    assert TOKEN not in output


def test_good_inputs_pass_the_checks(run_ansible, tmp_path):
    returncode, output = run_platform(run_ansible, tmp_path)
    assert returncode == 0, output
    assert play_recap(output)["server1"]["failed"] == 0
    assert TOKEN not in output


def test_no_zone(run_ansible, tmp_path):
    assert_refused(*run_platform(run_ansible, tmp_path, {"dns_zone": ""}), "Set ingress_zone (or dns_zone)")


@pytest.mark.parametrize("port", [80, 443])
def test_listener_on_the_service_port(run_ansible, tmp_path, port):
    assert_refused(*run_platform(run_ansible, tmp_path, {"ingress_https_port": port}),
                   "A Gateway listener on 80 or 443 matches no Traefik entrypoint")


def test_no_k3s_version(run_ansible, tmp_path):
    assert_refused(*run_platform(run_ansible, tmp_path, {"k3s_version": ""}), "Set k3s_version (or ingress_k3s_version)")


def test_k3s_with_traefik_v2(run_ansible, tmp_path):
    assert_refused(*run_platform(run_ansible, tmp_path, {"k3s_version": "v1.31.9+k3s1"}),
                   "K3s v1.31.9+k3s1 bundles Traefik v2 and no Gateway API CRDs")


def test_traefik_disabled(run_ansible, tmp_path):
    assert_refused(*run_platform(run_ansible, tmp_path, {"k3s_server_disable": ["servicelb", "traefik"]}),
                   "k3s_server_disable has traefik")


def test_gateway_api_crd_disabled_from_1_37(run_ansible, tmp_path):
    assert_refused(*run_platform(run_ansible, tmp_path, {"k3s_version": "v1.37.2+k3s1",
                                                         "k3s_server_disable": ["gateway-api-crd"]}),
                   "k3s_server_disable has gateway-api-crd")


def test_gateway_api_crd_before_1_37_is_not_an_add_on(run_ansible, tmp_path):
    returncode, output = run_platform(run_ansible, tmp_path, {"k3s_server_disable": ["gateway-api-crd"]})
    assert returncode == 0, output


def test_ingress_node_without_external_ip(run_ansible, tmp_path):
    hosts = {"server1": {"public_ip": "192.0.2.11"},
             "agent1": {"public_ip": "192.0.2.21", "dns_ingress": True, "k3s_node_external_ip": ""}}
    assert_refused(*run_platform(run_ansible, tmp_path, hosts=hosts), "agent1: no k3s_node_external_ip")


def test_ingress_node_with_a_tailnet_external_ip(run_ansible, tmp_path):
    hosts = {"server1": {"public_ip": "100.70.0.11"}, "agent1": {"public_ip": "192.0.2.21"}}
    assert_refused(*run_platform(run_ansible, tmp_path, hosts=hosts),
                   "server1: k3s_node_external_ip 100.70.0.11 is in the tailnet range 100.64.0.0/10")


def test_tailnet_ip_on_a_node_without_ingress_is_fine(run_ansible, tmp_path):
    hosts = {"server1": {"public_ip": "192.0.2.11", "k3s_node_external_ip": "100.70.0.11"},
             "agent1": {"public_ip": "192.0.2.21", "dns_ingress": True}}
    returncode, output = run_platform(run_ansible, tmp_path, hosts=hosts)
    assert returncode == 0, output


def test_host_without_public_ip(run_ansible, tmp_path):
    hosts = {"server1": {"public_ip": "192.0.2.11"}, "agent1": {}}
    assert_refused(*run_platform(run_ansible, tmp_path, hosts=hosts), "hosts without public_ip: agent1")

"""The infra.k3s.ingress role through infra.k3s.platform, against the stand-in K3s server on loopback.

The server host runs with ansible_connection=local; the role's paths (k3s binary, kubeconfig, manifests) are
its ordinary variables pointed into the test's directory. A second Node object stands for a worker.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support import crd_cel  # noqa: E402
from support.k3s_process import K3s  # noqa: E402
from support.paths import UPSTREAM_CRDS  # noqa: E402

TOKEN = "cf-token-0123456789abcdef-ingress-role"
ENABLELB = "svccontroller.k3s.cattle.io/enablelb"


@pytest.fixture(scope="module")
def k3s(tmp_path_factory):
    server = K3s(tmp_path_factory.mktemp("k3s"))
    server.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}))
    # The Gateway API CRDs K3s's traefik-crd chart installs (39.0.x: v1.4.0 standard), unless the stand-in has them
    if server.get("crd", "gateways.gateway.networking.k8s.io") is None:
        server.kubectl("apply", "-f", str(UPSTREAM_CRDS / "gateway-api-v1.4.0-standard"))
    yield server
    server.stop()


def platform(run_ansible, tmp_path, k3s_server: K3s, hosts: dict, variables=None, check=False):
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}", "ansible_become": False}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"master-1": {**local, **hosts["master-1"]}}},
        "k3s_workers": {"hosts": {"worker-1.example.net": {**local, **hosts["worker-1.example.net"]}}},
    }, "vars": {"k3s_version": "v1.35.8+k3s1", "dns_zone": "example.com", "dns_cloudflare_api_token": TOKEN,
                "ingress_firewall": False,  # the firewall play would run on this machine (Molecule checks it)
                "ingress_acme_email": "ops@example.org",
                "ingress_k3s_bin": str(k3s_server.bin), "ingress_kubeconfig": str(k3s_server.kubeconfig),
                "ingress_manifest_dir": str(k3s_server.manifests), "ingress_wait_timeout": 60, "ingress_wait_delay": 1,
                **(variables or {})}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    args = ["-i", "hosts.yml", "infra.k3s.platform"] + (["--check"] if check else [])
    result = run_ansible("ansible-playbook", *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert TOKEN not in output
    return output


def changed(output: str) -> int:
    return sum(int(n) for n in __import__("re").findall(r"\S+\s+: ok=\d+\s+changed=(\d+)", output))


def labels(k3s_server: K3s) -> dict:
    return {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ENABLELB) for n in k3s_server.get("nodes")["items"]}


def test_converges_and_is_idempotent(run_ansible, tmp_path, k3s):
    hosts = {"master-1": {"public_ip": "192.0.2.11"}, "worker-1.example.net": {"public_ip": "192.0.2.21", "dns_ingress": True}}
    check = platform(run_ansible, tmp_path, k3s, hosts, check=True)
    assert labels(k3s) == {"master-1": None, "worker-1": None}, check  # check mode changed nothing
    first = platform(run_ansible, tmp_path, k3s, hosts)
    assert changed(first) > 0
    assert labels(k3s) == {"master-1": "false", "worker-1": "true"}
    config = (k3s.manifests / "infra-k3s-traefik-config.yaml").read_text()
    assert "kubernetesGateway" in config and "192.0.2" not in config  # no host data in the shared file
    assert "Gateway API v1.4.0 (standard channel)" in first
    stored = [k3s.get("gateways.gateway.networking.k8s.io", "public", "-n", "ingress"),
              k3s.get("httproutes.gateway.networking.k8s.io", "https-redirect", "-n", "ingress")]
    schemas = crd_cel.storage_schemas(UPSTREAM_CRDS / "gateway-api-v1.4.0-standard")
    for obj in stored:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "infra.k3s"
        assert crd_cel.violations(obj, schemas) == []
    assert [(item["name"], item["port"]) for item in stored[0]["spec"]["listeners"]] == [("web", 8000), ("websecure", 8443)]
    second = platform(run_ansible, tmp_path, k3s, hosts)
    assert changed(second) == 0, second
    # the ingress moves: the labels follow the inventory
    hosts = {"master-1": {"public_ip": "192.0.2.11", "dns_ingress": True}, "worker-1.example.net": {"public_ip": "192.0.2.21"}}
    platform(run_ansible, tmp_path, k3s, hosts, {"ingress_http_redirect": False})
    assert labels(k3s) == {"master-1": "true", "worker-1": "false"}
    assert k3s.get("httproutes.gateway.networking.k8s.io", "https-redirect", "-n", "ingress") is None
    # no public entry (the tunnel alone: ingress_public defaults to false with it): no node gets svclb pods, so none
    # answers on 80/443; the ingress node's external IP no longer matters (a tailnet one is accepted)
    hosts = {"master-1": {"public_ip": "100.64.0.1", "dns_ingress": True}, "worker-1.example.net": {"public_ip": "192.0.2.21"}}
    platform(run_ansible, tmp_path, k3s, hosts, {"ingress_public": False})
    assert labels(k3s) == {"master-1": "false", "worker-1": "false"}

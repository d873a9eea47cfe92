"""Traefik's HelmChartConfig of infra.k3s.ingress, rendered by the real helm with the K3s-packaged Traefik chart.

The role writes the file (tasks/traefik.yml, run here on localhost); the test checks it against the real
helm.cattle.io CRD, then renders ../shared/upstream/charts/traefik-39.0.701+up39.0.7.tgz the way K3s's
helm-controller does: K3s's own valuesContent, then the HelmChartConfig's, as successive --values, and the
HelmChart's spec.set last (helm-controller v0.17.7 pkg/controllers/chart/chart.go; the stand-in's
helm.values_files() and set_args() follow it).
"""
from __future__ import annotations

import json
import subprocess

import pytest

from standins.k3s import helm, schema, traefik, yamlish
from support.paths import UPSTREAM_CHARTS, UPSTREAM_CRDS, upstream_bin

CHART = UPSTREAM_CHARTS / "traefik-39.0.701+up39.0.7.tgz"
KUBE_VERSION = "v1.35.8"  # the Molecule scenarios' K3s (its Traefik chart is newer: docs/ingress.md "K3s versions")

# K3s's HelmChart for its bundled Traefik, as K3s writes it to server/manifests/traefik.yaml: the stand-in K3s
# writes the same file (standins/k3s/traefik.py MANIFEST, which cites k3s-io/k3s manifests/traefik.yaml), so one copy.
K3S_TRAEFIK = next(doc for doc in yamlish.load_all(traefik.MANIFEST) if doc and doc["metadata"]["name"] == "traefik")


def write_config(run_ansible, tmp_path, **variables) -> dict:
    """Run the role's traefik.yml on localhost into tmp_path; the HelmChartConfig it wrote, parsed."""
    manifests = tmp_path / "manifests"
    manifests.mkdir(exist_ok=True)
    play = [{"name": "traefik config", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "role", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "traefik.yml"}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps({"ingress_manifest_dir": str(manifests), **variables}))
    result = run_ansible("ansible-playbook", "-i", "localhost,", "play.yml", "-e", "@vars.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    path = manifests / "infra-k3s-traefik-config.yaml"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return yamlish.load(path.read_text())


def render(tmp_path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    args = [upstream_bin("helm"), "template", "traefik", str(CHART), "--namespace", "kube-system", "--kube-version", KUBE_VERSION]
    for name, text in helm.values_files(K3S_TRAEFIK, config):
        (tmp_path / name).write_text(text)
        args += ["--values", str(tmp_path / name)]
    args += helm.set_args(K3S_TRAEFIK["spec"]) + list(extra)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HELM_CACHE_HOME": str(tmp_path / "cache"),
           "HELM_CONFIG_HOME": str(tmp_path / "config"), "HELM_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)


def objects(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc, unused in helm.split_manifest(proc.stdout)}


@pytest.fixture
def config(run_ansible, tmp_path):
    return write_config(run_ansible, tmp_path)


def test_the_helmchartconfig_passes_the_real_crd(config):
    crd = yamlish.load((UPSTREAM_CRDS / "helm.cattle.io_helmchartconfigs.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    assert schema.validate(json.loads(json.dumps(config)), version["schema"]["openAPIV3Schema"]) == []
    # helm-controller finds a chart's config by the chart's own name and namespace (chart.go, confCache.Get)
    assert (config["metadata"]["name"], config["metadata"]["namespace"]) == ("traefik", "kube-system")


def test_k3s_traefik_with_the_gateway_provider(config, tmp_path):
    rendered = objects(render(tmp_path, config))
    args = rendered[("Deployment", "traefik")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--providers.kubernetesgateway" in args
    # the Gateways' status addresses: the traefik Service's load balancer addresses (ServiceLB's)
    assert "--providers.kubernetesgateway.statusaddress.service.name=traefik" in args
    assert "--providers.kubernetesgateway.statusaddress.service.namespace=kube-system" in args
    assert not [a for a in args if a.startswith("--providers.kubernetesgateway.statusaddress.ip")]
    # the listeners' ports are the entrypoints' ports in the container; the Service exposes them on 80/443
    assert "--entryPoints.web.address=:8000/tcp" in args and "--entryPoints.websecure.address=:8443/tcp" in args
    service = rendered[("Service", "traefik")]["spec"]
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["ports"]} == {("web", 80, "web"), ("websecure", 443, "websecure")}
    assert service["type"] == "LoadBalancer" and service["allocateLoadBalancerNodePorts"] is False
    # the chart's GatewayClass, no chart Gateway (the role applies its own)
    assert rendered[("GatewayClass", "traefik")]["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert not [key for key in rendered if key[0] == "Gateway"]
    # K3s's own values are still there (merged, not replaced)
    assert rendered[("Deployment", "traefik")]["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"


def test_without_the_helmchartconfig_no_gateway_provider(tmp_path):
    """The same render without the role's values: K3s's Traefik has no Gateway provider (the test can fail)."""
    rendered = objects(render(tmp_path, None))
    args = rendered[("Deployment", "traefik")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--providers.kubernetesgateway" not in args
    assert not [key for key in rendered if key[0] in ("Gateway", "GatewayClass")]


def test_other_entrypoint_ports_follow_the_listener_ports(run_ansible, tmp_path):
    config = write_config(run_ansible, tmp_path, ingress_http_port=8080, ingress_https_port=8444, ingress_gateway_class="edge")
    rendered = objects(render(tmp_path, config))
    args = rendered[("Deployment", "traefik")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--entryPoints.web.address=:8080/tcp" in args and "--entryPoints.websecure.address=:8444/tcp" in args
    assert ("GatewayClass", "edge") in rendered


def test_a_listener_on_port_80_fails_in_the_chart(config, tmp_path):
    """K3s's chart refuses a Gateway listener on the Service port (templates/gateway.yaml), as Traefik would not match it.
    The listener comes as YAML values (a HelmChartConfig's valuesContent), as a user would set it."""
    bad = tmp_path / "listener.yaml"
    bad.write_text("gateway:\n  enabled: true\n  listeners:\n    web:\n      port: 80\n")
    proc = render(tmp_path, config, "--values", str(bad))
    assert proc.returncode != 0
    assert "ERROR: port 80 is not declared in ports" in proc.stderr
    # the same values with the entrypoint's port render the chart's Gateway
    bad.write_text("gateway:\n  enabled: true\n  listeners:\n    web:\n      port: 8000\n")
    rendered = objects(render(tmp_path, config, "--values", str(bad)))
    assert rendered[("Gateway", "traefik-gateway")]["spec"]["listeners"][0]["port"] == 8000

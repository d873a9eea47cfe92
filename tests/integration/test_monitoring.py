"""infra.k3s.monitoring against the stand-in K3s server on loopback, and kube-prometheus-stack rendered by the real helm.

The stand-in's helm-controller installs the real kube-prometheus-stack chart (../shared/upstream/charts) with the
values the role wrote, through the real helm. The chart is rendered once more here (once per module) with the same
values, and its monitoring.coreos.com objects are validated against the real CRDs: ../shared/upstream/crds for the
kinds it holds (ServiceMonitor, PodMonitor, PrometheusRule), the chart's own crds/ for the others (Prometheus,
Alertmanager). The role runs with ansible_connection=local on a host named as the stand-in's node (master-1).
"""
from __future__ import annotations

import base64
import copy
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from standins.k3s import apiserver, yamlish  # noqa: E402
from support import crd_cel  # noqa: E402
from support.paths import UPSTREAM_CHARTS, UPSTREAM_CRDS, upstream_bin  # noqa: E402
from support.play import local_server, role_runner  # noqa: E402
from support.poll import wait_for  # noqa: E402
from support.recap import play_recap  # noqa: E402
from support.secret_watch import leaks, watched  # noqa: E402

NODE = "master-1"  # the stand-in K3s's node name (support/k3s_process.py)
TAILNET_IP = "100.64.0.11"
PASSWORD = "gr4fana-ADMIN_pw-0123456789abcdefXYZ"
CHART = UPSTREAM_CHARTS / "kube-prometheus-stack-88.5.3.tgz"
CRITICAL = {"backup.infra.k3s/tier": "critical"}
PIN = {"kubernetes.io/hostname": NODE}
MANIFEST = "infra-k3s-monitoring.yaml"


def secrets_of(password=PASSWORD) -> tuple:
    return password, base64.b64encode(password.encode()).decode()


def role_vars(server, **extra) -> dict:
    base = {"monitoring_grafana_admin_password": PASSWORD, "monitoring_k3s_bin": str(server.bin),
            "monitoring_kubeconfig": str(server.kubeconfig), "monitoring_manifest_dir": str(server.manifests)}
    base.update(extra)
    return base


@pytest.fixture
def converge(run_ansible, tmp_path):
    """Run the role (tasks/main.yml, after its argument spec) on the one server of k3s_cluster, a host named as the
    stand-in's node with connection local; the variables go in a 0600 file (the vault's stand-in)."""
    return role_runner(run_ansible, tmp_path, "infra.k3s.monitoring",
                       local_server(NODE, tailscale_ip=TAILNET_IP, public_ip="192.0.2.11"))


def recap(proc) -> dict:
    counts = play_recap(proc.stdout).get(NODE)
    if counts is None:
        raise AssertionError(proc.stdout + proc.stderr)
    return counts


def assert_no_password(proc, password=PASSWORD):
    output = proc.stdout + proc.stderr
    for secret in secrets_of(password):
        assert secret not in output


def values_of(manifest: Path) -> dict:
    chart = yamlish.load(manifest.read_text(encoding="utf-8"))
    return yamlish.load(chart["spec"]["valuesContent"])


def render(values: dict, tmp_path: Path) -> list:
    """The real helm renders the real chart (with its crds/) for the release the HelmChart names."""
    path = tmp_path / "values.yaml"
    path.write_text(json.dumps(values), encoding="utf-8")
    proc = subprocess.run([upstream_bin("helm"), "template", "kube-prometheus-stack", str(CHART), "--namespace", "monitoring",
                           "--include-crds", "--values", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.load_all(proc.stdout, Loader=_Loader) if d]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # pylint: disable=too-many-ancestors
    """PyYAML's safe loader (its C version: the chart renders 5 MB) reading a plain `=` as the string it is in YAML 1.2
    (a Grafana dashboard has one; PyYAML would take it as YAML 1.1's value key tag)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in docs if d["kind"] == kind])
    return found[0]


def names(docs, kind) -> set:
    return {d["metadata"]["name"] for d in docs if d["kind"] == kind}


class K3sPaths:  # pylint: disable=too-few-public-methods
    """Where a K3s that is not there would keep its files."""

    def __init__(self, root: Path):
        self.bin = root / "k3s"
        self.kubeconfig = root / "k3s.yaml"
        self.manifests = root / "manifests"


# --- the role against the stand-in K3s -------------------------------------------------------------------------------

def test_check_mode_against_a_fresh_server(converge, k3s):
    proc = converge(role_vars(k3s), check=True, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert not (k3s.manifests / MANIFEST).exists()
    assert k3s.get("namespace", "monitoring") is None
    assert_no_password(proc)


def test_install_then_idempotent(converge, k3s, ansible_env, tmp_path):
    proc, watch = watched(lambda: converge(role_vars(k3s), verbosity=3), secrets_of())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert recap(proc)["changed"] == 2  # the namespace with the Secret; the HelmChart
    # the password is in no output (-vvv), no process's arguments, no file but the API's datastore
    assert_no_password(proc)
    assert watch.looks > 10 and watch.seen == []
    assert leaks(k3s, tmp_path, secrets_of(), ansible_env["ANSIBLE_HOME"]) == []

    secret = k3s.get("secret", "-n", "monitoring", "grafana-admin")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"admin-user": "admin", "admin-password": PASSWORD}
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "infra.k3s", **CRITICAL}

    manifest = k3s.manifests / MANIFEST
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    chart = yamlish.load(manifest.read_text(encoding="utf-8"))
    assert chart["kind"] == "HelmChart" and chart["metadata"] == {
        "name": "kube-prometheus-stack", "namespace": "kube-system", "labels": {"app.kubernetes.io/managed-by": "infra.k3s"}}
    assert {k: chart["spec"][k] for k in ("repo", "chart", "version", "targetNamespace")} == {
        "repo": "https://prometheus-community.github.io/helm-charts", "chart": "kube-prometheus-stack", "version": "88.5.3",
        "targetNamespace": "monitoring"}
    values = values_of(manifest)
    assert values["grafana"]["service"] == {"type": "ClusterIP", "port": 3000, "externalIPs": [TAILNET_IP]}
    assert "grafana.ini" not in values["grafana"]  # no public URL without a hostname

    again = converge(role_vars(k3s), verbosity=3)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0
    assert_no_password(again)


def test_the_chart_is_installed_pinned_and_labelled(k3s):
    """K3s's helm-controller (stand-in, real helm, real chart) installed the release; the stand-in API validated each
    custom object against the chart's CRDs on the way in."""
    def installed():
        chart = k3s.get("helmchart", "-n", "kube-system", "kube-prometheus-stack")
        return chart if (chart.get("status") or {}).get("conditions") else None
    helmchart = wait_for(installed, timeout=240, what="the kube-prometheus-stack HelmChart's status")
    assert {c["type"]: c["status"] for c in helmchart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}
    prometheus = k3s.get("prometheuses.monitoring.coreos.com", "-n", "monitoring", "kube-prometheus-stack-prometheus")
    assert prometheus["spec"]["nodeSelector"] == PIN
    assert CRITICAL.items() <= prometheus["metadata"]["labels"].items()
    grafana = k3s.get("deployment", "-n", "monitoring", "kube-prometheus-stack-grafana")
    assert grafana["spec"]["template"]["spec"]["nodeSelector"] == PIN
    claim = k3s.get("pvc", "-n", "monitoring", "kube-prometheus-stack-grafana")
    assert CRITICAL.items() <= claim["metadata"]["labels"].items()
    assert claim["spec"]["storageClassName"] == "local-path" and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    service = k3s.get("service", "-n", "monitoring", "kube-prometheus-stack-grafana")
    assert service["spec"]["externalIPs"] == [TAILNET_IP] and service["spec"]["ports"][0]["port"] == 3000


# --- the chart, rendered once by the real helm with the values the role wrote ------------------------------------------

@pytest.fixture(scope="module")
def rendered(k3s, tmp_path_factory):
    return render(values_of(k3s.manifests / MANIFEST), tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def crd_store(rendered):
    """An API with only the real CRDs: ../shared/upstream's monitoring.coreos.com ones, and the chart's crds/ for the
    kinds that directory does not hold; the same CRDs' CEL rules (support/crd_cel.py)."""
    shared = sorted(UPSTREAM_CRDS.glob("monitoring.coreos.com_*.yaml"))
    crds = apiserver.load_crd_files(shared)
    have = {c["spec"]["names"]["kind"] for c in crds}
    assert have == {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    chart_crds = [d for d in rendered if d["kind"] == "CustomResourceDefinition" and d["spec"]["names"]["kind"] not in have]
    store = apiserver.Store(None)
    store.create(store.find("", "v1", "namespaces"), {"metadata": {"name": "monitoring"}}, None)
    for crd in crds + chart_crds:
        store.create(store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), copy.deepcopy(crd), None)
    plurals = {c["spec"]["names"]["kind"]: c["spec"]["names"]["plural"] for c in crds + chart_crds}
    return store, crd_cel.schemas_of(crds + chart_crds), plurals


def test_monitoring_objects_validate_against_the_real_crds(rendered, crd_store):
    store, schemas, plurals = crd_store
    objects = [d for d in rendered if d["apiVersion"].startswith("monitoring.coreos.com/")]
    kinds = {d["kind"] for d in objects}
    assert {"Prometheus", "Alertmanager", "ServiceMonitor", "PrometheusRule"} <= kinds
    for obj in objects:
        group, version = obj["apiVersion"].split("/")
        res = store.find(group, version, plurals[obj["kind"]])
        store.create(res, copy.deepcopy(obj), obj["metadata"].get("namespace", "monitoring"))
        assert crd_cel.violations(copy.deepcopy(obj), schemas) == [], obj["metadata"]["name"]
    # a broken copy is refused (the validation is real): a claim size that is no quantity
    broken = copy.deepcopy(find(rendered, "Prometheus"))
    broken["metadata"]["name"] = "broken"
    broken["spec"]["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] = ["10Gi"]
    with pytest.raises(apiserver.ApiError) as err:
        store.create(store.find("monitoring.coreos.com", "v1", "prometheuses"), broken, "monitoring")
    assert err.value.code == 422 and "storage" in err.value.message


def test_rendered_pins_storage_and_labels(rendered):
    prometheus = find(rendered, "Prometheus")["spec"]
    assert prometheus["nodeSelector"] == PIN
    assert prometheus["retention"] == "15d" and prometheus["retentionSize"] == "9GB"
    assert prometheus["podMetadata"]["labels"] == CRITICAL
    template = prometheus["storage"]["volumeClaimTemplate"]
    assert template["metadata"]["labels"] == CRITICAL
    assert template["spec"] == {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "10Gi"}}}
    assert CRITICAL.items() <= find(rendered, "Prometheus")["metadata"]["labels"].items()

    grafana = find(rendered, "Deployment", "kube-prometheus-stack-grafana")
    assert CRITICAL.items() <= grafana["metadata"]["labels"].items()
    pod = grafana["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == PIN and CRITICAL.items() <= pod["metadata"]["labels"].items()
    assert grafana["spec"]["strategy"] == {"type": "Recreate"}
    claim = find(rendered, "PersistentVolumeClaim", "kube-prometheus-stack-grafana")
    assert CRITICAL.items() <= claim["metadata"]["labels"].items()
    assert claim["spec"]["storageClassName"] == "local-path" and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v] == [
        "kube-prometheus-stack-grafana"]


def test_rendered_grafana_reads_the_admin_secret(rendered):
    """Grafana's admin user and password come from the role's Secret; the chart renders no password of its own."""
    grafana = find(rendered, "Deployment", "kube-prometheus-stack-grafana")
    container = next(c for c in grafana["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana")
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
    assert env["GF_SECURITY_ADMIN_USER"] == {"name": "grafana-admin", "key": "admin-user"}
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == {"name": "grafana-admin", "key": "admin-password"}
    assert "kube-prometheus-stack-grafana" not in names(rendered, "Secret")  # the chart's own admin Secret


def test_rendered_k3s_scrape_targets(rendered):
    """K3s serves the control plane's metrics from one process: no scheduler, controller-manager or kube-proxy targets
    (always down on K3s), the API server and kubelets as usual, and no etcd target without etcd-expose-metrics."""
    monitors = names(rendered, "ServiceMonitor")
    prefix = "kube-prometheus-stack-"
    assert {prefix + n for n in ("apiserver", "kubelet", "coredns")} <= monitors
    for off in ("kube-controller-manager", "kube-scheduler", "kube-proxy", "kube-etcd"):
        assert prefix + off not in monitors and prefix + off not in names(rendered, "Service")
    groups = {g["name"] for r in rendered if r["kind"] == "PrometheusRule" for g in r["spec"]["groups"]}
    assert "kubernetes-system-controller-manager" not in groups and "kubernetes-system-scheduler" not in groups
    assert "kubernetes-system-apiserver" in groups


def test_public_route_and_etcd_metrics(converge, k3s, tmp_path):
    """With a hostname the role applies an HTTPRoute on the Gateway and sets Grafana's public URL; with etcd metrics
    the chart's etcd Endpoints list the servers on K3s's port 2381. The HelmChart goes to another directory here, so
    the stand-in does not install the chart a second time."""
    elsewhere = tmp_path / "manifests"
    elsewhere.mkdir()
    variables = role_vars(k3s, monitoring_manifest_dir=str(elsewhere), monitoring_grafana_hostname="grafana.example.com",
                          monitoring_etcd_metrics=True)
    proc = converge(variables)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["changed"] == 2  # the HelmChart (in that directory), the route
    route = k3s.get("httproutes.gateway.networking.k8s.io", "-n", "monitoring", "grafana")
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "ingress", "sectionName": "websecure"}]
    assert route["spec"]["hostnames"] == ["grafana.example.com"]
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "kube-prometheus-stack-grafana"
    assert route["spec"]["rules"][0]["backendRefs"][0]["port"] == 3000

    docs = render(values_of(elsewhere / MANIFEST), tmp_path)
    endpoints = find(docs, "Endpoints", "kube-prometheus-stack-kube-etcd")
    assert endpoints["subsets"][0]["addresses"] == [{"ip": TAILNET_IP}]
    assert endpoints["subsets"][0]["ports"][0]["port"] == 2381
    monitor = find(docs, "ServiceMonitor", "kube-prometheus-stack-kube-etcd")
    assert monitor["spec"]["endpoints"][0].get("scheme", "http") == "http"  # the CRD's default is http
    config = find(docs, "ConfigMap", "kube-prometheus-stack-grafana")["data"]["grafana.ini"]
    assert "root_url = https://grafana.example.com" in config

    # the hostname unset again: the route goes
    proc = converge(role_vars(k3s, monitoring_manifest_dir=str(elsewhere)))
    assert proc.returncode == 0 and recap(proc)["changed"] == 2  # the HelmChart, the route deleted
    assert k3s.get("httproutes.gateway.networking.k8s.io", "-n", "monitoring", "grafana") is None


def test_cordoned_node_is_refused(converge, k3s):
    """After dr_failover the lost node is cordoned: the role refuses to pin the chart back to it."""
    manifest = k3s.manifests / MANIFEST
    before = manifest.read_text(encoding="utf-8")
    k3s.kubectl("patch", "node", NODE, "--type", "merge", "--patch", '{"spec": {"unschedulable": true}}')
    try:
        proc = converge(role_vars(k3s))
    finally:
        k3s.kubectl("patch", "node", NODE, "--type", "merge", "--patch", '{"spec": {"unschedulable": null}}')
    assert proc.returncode != 0 and "is cordoned" in proc.stdout and "set monitoring_node" in proc.stdout, proc.stdout[-3000:]
    assert recap(proc)["changed"] == 0 and manifest.read_text(encoding="utf-8") == before


@pytest.mark.parametrize("override,message", [
    ({"monitoring_node": "worker-9"}, "monitoring_node must name a host of k3s_cluster"),
    ({"monitoring_grafana_admin_password": ""}, "monitoring_grafana_admin_password (default vault_monitoring_grafana_admin_password) must be set"),
], ids=["unknown-node", "no-password"])
def test_bad_input_fails_before_any_change(converge, tmp_path, override, message):
    fresh = tmp_path / "fresh"
    proc = converge(role_vars(K3sPaths(fresh), **override), verbosity=3)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
    assert not fresh.exists()
    assert_no_password(proc)

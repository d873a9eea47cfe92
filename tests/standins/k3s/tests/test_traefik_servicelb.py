"""K3s's packaged Traefik, ServiceLB and Traefik's Gateway status writer in the stand-in (traefik.py, servicelb.py).

The in-process tests run the stand-in's deploy and Helm controllers on a Store: K3s's traefik.yaml goes through
the real helm and the real traefik(-crd) 39.0.701+up39.0.7 packages of ../shared/upstream/charts, so Traefik's
container arguments, which the status writer reads, are the ones the chart renders from K3s's values and a
HelmChartConfig like the ingress role's.
"""
from __future__ import annotations

import base64
import copy
import json
import stat
from pathlib import Path

import pytest

from standins.k3s import apiserver, helm, manifests, node, servicelb, traefik, yamlish
from support.k3s_process import K3s
from support.poll import wait_for

GW = "gateway.networking.k8s.io"
# What the ingress role's HelmChartConfig sets (research note section 2, recommendation).
HCC = """apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
    providers:
      kubernetesGateway:
        enabled: true
        statusAddress:
          service:
            enabled: true
            name: traefik
            namespace: kube-system
    gateway:
      enabled: false
    gatewayClass:
      enabled: true
      name: traefik
    service:
      spec:
        allocateLoadBalancerNodePorts: false
"""
PEM = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def _node(store, name, internal, external=None, labels=None, taints=None, ready=True):
    body = node.node_object(name, internal, external, labels or {}, taints or [], {})
    if not ready:
        body["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
    store.create(store.find("", "v1", "nodes"), body, None)


def _res(store, group, plural, ver="v1"):
    return store.find(group, ver, plural)


def _sync(parts, times=2):
    for unused in range(times):
        for part in parts:
            part.sync()


@pytest.fixture(name="cluster")
def fixture_cluster(tmp_path):
    """A store with K3s's traefik.yaml and the role's HelmChartConfig installed through the real helm, two nodes."""
    store = apiserver.Store(None)
    manifests.register_crds(store)
    helm.register_crds(store)
    _node(store, "server", "100.64.0.1", "203.0.113.10", labels={servicelb.ENABLE_LABEL: "true"})
    _node(store, "worker", "100.64.0.2", "203.0.113.20", labels={servicelb.ENABLE_LABEL: "false"})
    traefik.stage(tmp_path / "manifests", set())
    (tmp_path / "manifests" / "infra-k3s-traefik-config.yaml").write_text(HCC, encoding="utf-8")
    deploy = manifests.ManifestWatcher(store, tmp_path / "manifests")
    charts = helm.HelmController(store)
    charts.retry_delay = 0.0  # the Job's back-off, not worth waiting for here
    _sync([deploy, charts], times=3)
    lb, status = servicelb.ServiceLB(store), traefik.GatewayStatus(store)
    _sync([lb, status])
    return {"store": store, "parts": [deploy, charts, lb, status], "dir": tmp_path / "manifests", "charts": charts}


def _gateway(store, listeners, name="public", namespace="ingress"):
    try:
        store.create(store.find("", "v1", "namespaces"), {"metadata": {"name": namespace}}, None)
    except apiserver.ApiError:
        pass
    store.create(_res(store, GW, "gateways"), {"apiVersion": f"{GW}/v1", "kind": "Gateway",
                                               "metadata": {"name": name, "namespace": namespace},
                                               "spec": {"gatewayClassName": "traefik", "listeners": listeners}}, namespace)


def _tls_secret(store, namespace, name, data):
    store.create(store.find("", "v1", "secrets"), {"metadata": {"name": name, "namespace": namespace}, "type": "kubernetes.io/tls",
                                                   "data": data}, namespace)


def _status(store, plural, namespace, name):
    return store.get(_res(store, GW, plural), namespace, name).get("status") or {}


def _conditions(conditions):
    return {c["type"]: (c["status"], c["reason"]) for c in conditions}


WEB = {"name": "web", "port": 8000, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}
WEBSECURE = {"name": "websecure", "port": 8443, "protocol": "HTTPS", "allowedRoutes": {"namespaces": {"from": "All"}},
             "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "wildcard-tls"}]}}


def test_k3s_traefik_manifest_is_rendered_by_the_real_charts(cluster):
    """traefik.yaml (0600) holds K3s's two HelmCharts; the real charts bring Traefik and the Gateway API CRDs."""
    store = cluster["store"]
    path = cluster["dir"] / "traefik.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    charts = {c["metadata"]["name"]: c for c in store.list(_res(store, "helm.cattle.io", "helmcharts"), "kube-system")}
    assert sorted(charts) == ["traefik", "traefik-crd"]
    assert charts["traefik"]["spec"]["chart"] == "https://%{KUBERNETES_API}%/static/charts/traefik-39.0.701+up39.0.7.tgz"
    for chart in charts.values():
        failed = [c for c in chart["status"]["conditions"] if c["type"] == "Failed"][0]
        assert failed["status"] == "False", failed
    crds = {c["metadata"]["name"] for c in store.list(_res(store, "apiextensions.k8s.io", "customresourcedefinitions"), None)}
    assert {f"{p}.{GW}" for p in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies")} <= crds
    deploy = store.get(_res(store, "apps", "deployments"), "kube-system", "traefik")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--providers.kubernetesgateway" in args and "--entryPoints.websecure.http.tls=true" in args
    assert store.get(_res(store, "networking.k8s.io", "ingressclasses"), None, "traefik")
    assert store.get(_res(store, GW, "gatewayclasses"), None, "traefik")["spec"]["controllerName"] == traefik.CONTROLLER
    assert store.list(_res(store, GW, "gateways"), None) == []  # gateway.enabled: false


def test_helmchart_waiting_for_crds_is_retried_like_the_job(tmp_path):
    """A chart that needs another chart's CRDs fails, then installs on a later try (the Job's retries)."""
    store = apiserver.Store(None)
    manifests.register_crds(store)
    helm.register_crds(store)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "hcc.yaml").write_text(HCC, encoding="utf-8")
    text = traefik.MANIFEST.split("---\n")
    (tmp_path / "m" / "traefik.yaml").write_text(text[2], encoding="utf-8")  # the traefik HelmChart only
    deploy, charts = manifests.ManifestWatcher(store, tmp_path / "m"), helm.HelmController(store)
    charts.retry_delay = 0.0
    _sync([deploy, charts], times=1)
    chart = store.get(_res(store, "helm.cattle.io", "helmcharts"), "kube-system", "traefik")
    failed = [c for c in chart["status"]["conditions"] if c["type"] == "Failed"][0]
    assert failed["status"] == "True" and 'no matches for kind "GatewayClass"' in failed["message"]
    # helm builds every object before creating any: nothing of the release exists after the failure
    with pytest.raises(apiserver.ApiError):
        store.get(_res(store, "apps", "deployments"), "kube-system", "traefik")
    (tmp_path / "m" / "crd.yaml").write_text(text[1], encoding="utf-8")
    _sync([deploy, charts], times=3)
    chart = store.get(_res(store, "helm.cattle.io", "helmcharts"), "kube-system", "traefik")
    assert [c for c in chart["status"]["conditions"] if c["type"] == "Failed"][0]["status"] == "False"


def test_disabled_traefik_is_not_staged_and_an_old_file_goes_with_its_objects(cluster, tmp_path):
    """--disable=traefik: Stage() skips the file; the deploy controller deletes a staged one and its HelmCharts."""
    traefik.stage(tmp_path / "fresh", {"traefik"})
    assert not (tmp_path / "fresh" / "traefik.yaml").exists()
    store = cluster["store"]
    manifests.ManifestWatcher(store, cluster["dir"], disables={"traefik"}).sync()
    assert not (cluster["dir"] / "traefik.yaml").exists()
    # deleted, but Terminating until helm-controller's remove handler has uninstalled the release (its finalizer)
    assert all(c["metadata"]["deletionTimestamp"] for c in store.list(_res(store, "helm.cattle.io", "helmcharts"), "kube-system"))
    cluster["charts"].sync()
    assert store.list(_res(store, "helm.cattle.io", "helmcharts"), "kube-system") == []
    with pytest.raises(apiserver.ApiError):
        store.get(_res(store, "apps", "deployments"), "kube-system", "traefik")
    assert (cluster["dir"] / "infra-k3s-traefik-config.yaml").exists()


def test_servicelb_publishes_enablelb_nodes_external_ips_with_a_node_selector(cluster):
    """Allow-list mode: the svclb DaemonSet selects enablelb=true nodes; the ingress lists their ExternalIPs."""
    store = cluster["store"]
    svc = store.get(store.find("", "v1", "services"), "kube-system", "traefik")
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["allocateLoadBalancerNodePorts"] is False
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "203.0.113.10", "ipMode": "VIP"}]
    ds = store.get(_res(store, "apps", "daemonsets"), "kube-system", servicelb.daemonset_name(svc))
    assert ds["metadata"]["name"].startswith("svclb-traefik-")
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {servicelb.ENABLE_LABEL: "true"}
    assert ds["metadata"]["labels"][servicelb.NODESELECTOR_LABEL] == "true"
    assert [(c["name"], c["ports"][0]["hostPort"]) for c in pod["containers"]] == [("lb-tcp-80", 80), ("lb-tcp-443", 443)]
    assert ds["status"]["desiredNumberScheduled"] == 1


def test_servicelb_rules(cluster):
    """No label: every ready node; ExternalIPs only if one has any; taints and NotReady nodes; type change drops the DaemonSet."""
    store, lb = cluster["store"], servicelb.ServiceLB(cluster["store"])
    nodes = store.find("", "v1", "nodes")
    services = store.find("", "v1", "services")
    for name in ("server", "worker"):
        current = store.get(nodes, None, name)
        current["metadata"]["labels"].pop(servicelb.ENABLE_LABEL)
        store.update(nodes, None, name, current)
    _node(store, "tainted", "100.64.0.3", "203.0.113.30", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    _node(store, "down", "100.64.0.4", "203.0.113.40", ready=False)
    _node(store, "private", "100.64.0.5")
    lb.sync()
    svc = store.get(services, "kube-system", "traefik")
    assert [i["ip"] for i in svc["status"]["loadBalancer"]["ingress"]] == ["203.0.113.10", "203.0.113.20"]
    ds = store.get(_res(store, "apps", "daemonsets"), "kube-system", servicelb.daemonset_name(svc))
    assert "nodeSelector" not in ds["spec"]["template"]["spec"] and ds["metadata"]["labels"][servicelb.NODESELECTOR_LABEL] == "false"
    rv = svc["metadata"]["resourceVersion"]
    lb.sync()
    assert store.get(services, "kube-system", "traefik")["metadata"]["resourceVersion"] == rv  # only when different
    store.create(services, {"metadata": {"name": "internal", "namespace": "default"},
                            "spec": {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]}}, "default")
    for name in ("server", "worker"):
        store.delete(nodes, None, name)
    lb.sync()
    internal = store.get(services, "default", "internal")
    assert internal["status"]["loadBalancer"]["ingress"] == [{"ip": "100.64.0.5", "ipMode": "VIP"}]  # no ExternalIP left
    internal["spec"]["type"] = "ClusterIP"
    store.update(services, "default", "internal", internal)
    lb.sync()
    assert [d["metadata"]["name"] for d in store.list(_res(store, "apps", "daemonsets"), "kube-system")] == [servicelb.daemonset_name(svc)]


def test_gateway_on_traefik_entrypoint_ports_is_programmed_with_the_lb_addresses(cluster):
    """8000 HTTP and 8443 HTTPS with its Secret: every listener and the Gateway are Programmed; addresses = ExternalIPs."""
    store = cluster["store"]
    _gateway(store, [WEB, WEBSECURE])
    _tls_secret(store, "ingress", "wildcard-tls", {"tls.crt": PEM, "tls.key": PEM})
    _sync(cluster["parts"][2:])
    status = _status(store, "gateways", "ingress", "public")
    assert status["addresses"] == [{"type": "IPAddress", "value": "203.0.113.10"}]
    assert _conditions(status["conditions"]) == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}
    for listener in status["listeners"]:
        assert _conditions(listener["conditions"]) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs"),
                                                       "Programmed": ("True", "Programmed")}
        assert [k["kind"] for k in listener["supportedKinds"]] == ["HTTPRoute", "GRPCRoute"]
    gwc = store.get(_res(store, GW, "gatewayclasses"), None, "traefik")["status"]
    assert _conditions(gwc["conditions"])["Accepted"] == ("True", "Handled")
    # the status follows the Service: another enablelb node, another address
    nodes = store.find("", "v1", "nodes")
    worker = store.get(nodes, None, "worker")
    worker["metadata"]["labels"][servicelb.ENABLE_LABEL] = "true"
    store.update(nodes, None, "worker", worker)
    _sync(cluster["parts"][2:])
    addresses = _status(store, "gateways", "ingress", "public")["addresses"]
    assert addresses == [{"type": "IPAddress", "value": "203.0.113.10"}, {"type": "IPAddress", "value": "203.0.113.20"}]
    rv = store.get(_res(store, GW, "gateways"), "ingress", "public")["metadata"]["resourceVersion"]
    _sync(cluster["parts"][2:])
    assert store.get(_res(store, GW, "gateways"), "ingress", "public")["metadata"]["resourceVersion"] == rv  # only when different


@pytest.mark.parametrize("listener,secret,expected", [
    (dict(WEB, port=80), None, [("Accepted", "False", "PortUnavailable",
                                 'Cannot find entryPoint for Gateway: no matching entryPoint for port 80 and protocol "HTTP"')]),
    (dict(WEBSECURE, port=443), None, [("Accepted", "False", "PortUnavailable",
                                        'Cannot find entryPoint for Gateway: no matching entryPoint for port 443 and protocol "HTTPS"')]),
    # websecure has HTTP TLS (--entryPoints.websecure.http.tls=true): plain HTTP cannot use 8443
    (dict(WEB, port=8443), None, [("Accepted", "False", "PortUnavailable",
                                   'Cannot find entryPoint for Gateway: no matching entryPoint for port 8443 and protocol "HTTP"')]),
    (WEBSECURE, None, [("ResolvedRefs", "False", "InvalidCertificateRef",
                        'Error while retrieving certificate: getting secret: secrets "wildcard-tls" not found'),
                       ("Programmed", "False", "Invalid",
                        'Error while retrieving certificate: getting secret: secrets "wildcard-tls" not found')]),
    (WEBSECURE, {"tls.crt": PEM}, [("ResolvedRefs", "False", "InvalidCertificateRef",
                                    "Error while retrieving certificate: getting certificate blocks: secret ingress/wildcard-tls is missing "
                                    "the following TLS data entries: tls.key"),
                                   ("Programmed", "False", "Invalid",
                                    "Error while retrieving certificate: getting certificate blocks: secret ingress/wildcard-tls is missing "
                                    "the following TLS data entries: tls.key")]),
    (dict(WEBSECURE, tls={"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "wildcard-tls",
                                                                    "namespace": "cert-manager"}]}), None,
     [("ResolvedRefs", "False", "RefNotPermitted", "Cannot load CertificateRef cert-manager/wildcard-tls: missing ReferenceGrant")]),
], ids=["http-80", "https-443", "http-on-tls-entrypoint", "secret-missing", "secret-without-key", "secret-elsewhere"])
def test_listener_rules(cluster, listener, secret, expected):
    """Traefik's listener checks, first failure wins; any failed listener makes the Gateway ListenersNotValid."""
    store = cluster["store"]
    _gateway(store, [listener])
    if secret is not None:
        _tls_secret(store, "ingress", "wildcard-tls", secret)
    _sync(cluster["parts"][2:])
    status = _status(store, "gateways", "ingress", "public")
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["listeners"][0]["conditions"]] == expected
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]] == \
        [("Accepted", "False", "ListenersNotValid", "All Listeners must be valid")]
    assert status["addresses"] == [{"type": "IPAddress", "value": "203.0.113.10"}]


def test_httproute_parents_and_attached_routes(cluster):
    """The redirect route attaches to web; a route from another namespace only to websecure (allowedRoutes)."""
    store = cluster["store"]
    _gateway(store, [WEB, WEBSECURE])
    _tls_secret(store, "ingress", "wildcard-tls", {"tls.crt": PEM, "tls.key": PEM})
    store.create(store.find("", "v1", "namespaces"), {"metadata": {"name": "apps"}}, None)
    routes = _res(store, GW, "httproutes")
    gateway_ref = {"group": GW, "kind": "Gateway", "name": "public"}
    store.create(routes, {"metadata": {"name": "https-redirect", "namespace": "ingress"},
                          "spec": {"parentRefs": [dict(gateway_ref, sectionName="web")],
                                   "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}},
                 "ingress")
    app = {"parentRefs": [dict(gateway_ref, namespace="ingress", sectionName="websecure")], "hostnames": ["app.example.com"],
           "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}
    store.create(routes, {"metadata": {"name": "app", "namespace": "apps"}, "spec": app}, "apps")
    sneaky = copy.deepcopy(app)
    sneaky["parentRefs"][0]["sectionName"] = "web"
    store.create(routes, {"metadata": {"name": "plain", "namespace": "apps"}, "spec": sneaky}, "apps")
    other = {"parentRefs": [{"name": "elsewhere"}], "rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}
    store.create(routes, {"metadata": {"name": "not-ours", "namespace": "apps"}, "spec": other}, "apps")
    _sync(cluster["parts"][2:])

    def parent(namespace, name):
        parents = _status(store, "httproutes", namespace, name)["parents"]
        assert len(parents) == 1 and parents[0]["controllerName"] == traefik.CONTROLLER
        return _conditions(parents[0]["conditions"])
    assert parent("ingress", "https-redirect") == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    assert parent("apps", "app")["Accepted"] == ("True", "Accepted")
    assert parent("apps", "plain")["Accepted"] == ("False", "NotAllowedByListeners")
    assert _status(store, "httproutes", "apps", "not-ours") == {}  # no Traefik Gateway among its parents
    listeners = {entry["name"]: entry["attachedRoutes"] for entry in _status(store, "gateways", "ingress", "public")["listeners"]}
    assert listeners == {"web": 1, "websecure": 1}


def test_no_status_without_traefik_or_its_gateway_provider(cluster):
    """Without Traefik's Deployment, or with the provider off, nobody writes Gateway status."""
    store = cluster["store"]
    deployments = _res(store, "apps", "deployments")
    saved = store.get(deployments, "kube-system", "traefik")
    store.delete(deployments, "kube-system", "traefik")
    _gateway(store, [WEB])
    traefik.GatewayStatus(store).sync()
    assert _status(store, "gateways", "ingress", "public") == {}
    args = [a for a in saved["spec"]["template"]["spec"]["containers"][0]["args"] if not a.lower().startswith("--providers.kubernetesgateway")]
    assert traefik.provider_config(args) is None
    saved["spec"]["template"]["spec"]["containers"][0]["args"] = args
    saved["metadata"].pop("resourceVersion")
    store.create(deployments, saved, "kube-system")
    traefik.GatewayStatus(store).sync()
    assert _status(store, "gateways", "ingress", "public") == {}


def test_status_objects_validate_against_the_crds(cluster):
    """What the writer stores passed the API server's structural validation against the real Gateway API CRDs."""
    store = cluster["store"]
    _gateway(store, [WEB, WEBSECURE])
    _sync(cluster["parts"][2:])
    stored = store.get(_res(store, GW, "gateways"), "ingress", "public")
    assert json.loads(json.dumps(stored))["status"]["listeners"][1]["name"] == "websecure"
    res = _res(store, GW, "gateways")
    bad = dict(stored, status={"listeners": [{"name": "web"}]})  # supportedKinds, attachedRoutes, conditions missing
    with pytest.raises(apiserver.ApiError):
        store.update(res, "ingress", "public", bad, "status")


def test_yaml_reader_reads_the_gateway_crds_like_pyyaml():
    """Multi-line quoted scalars with '' and \\-escapes in the Gateway API CRDs (traefik-crd renders them)."""
    yaml = pytest.importorskip("yaml")
    crds = Path(helm.__file__).resolve().parents[3].parent / "shared" / "upstream" / "crds" / "gateway-api-v1.4.0-standard"
    for path in sorted(crds.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert yamlish.load_all(text) == [d for d in yaml.safe_load_all(text) if d is not None], path.name
    assert yamlish.load("a: 'x ''y''\n  z'\nb: \"p\\\n  q\\ r\"\n") == {"a": "x 'y' z", "b": "pq r"}


def test_server_process_runs_traefik_servicelb_and_the_status_writer(tmp_path):
    """A `k3s server` process: traefik.yaml staged and installed, the Service's address, a Gateway's status."""
    k3s = K3s(tmp_path)
    try:
        assert (k3s.manifests / "traefik.yaml").is_file()
        wait_for(lambda: ((k3s.get("service", "-n", "kube-system", "traefik") or {}).get("status") or {}).get("loadBalancer", {}).get("ingress"),
                 timeout=60, what="traefik's Service with a load balancer address")
        svc = k3s.get("service", "-n", "kube-system", "traefik")
        assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1", "ipMode": "VIP"}]
        (k3s.manifests / "traefik-config.yaml").write_text(HCC, encoding="utf-8")
        wait_for(lambda: k3s.get("gatewayclass", "traefik"), timeout=60, what="GatewayClass traefik from the chart")
        k3s.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress"}},
            {"apiVersion": f"{GW}/v1", "kind": "Gateway", "metadata": {"name": "public", "namespace": "ingress"},
             "spec": {"gatewayClassName": "traefik", "listeners": [WEB]}}]}))
        wait_for(lambda: ((k3s.get("gateway", "-n", "ingress", "public") or {}).get("status") or {}).get("addresses"),
                 timeout=30, what="the Gateway's status")
        status = k3s.get("gateway", "-n", "ingress", "public")["status"]
        assert status["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
        assert _conditions(status["conditions"])["Programmed"] == ("True", "Programmed")
    finally:
        k3s.stop()

"""The lab's K3s stand-in: fake API server with the official client, and the `k3s` zipapp (server/agent/kubectl)."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from standins.k3s import apiserver, yamlish
from support.k3s_process import free_port
from support.paths import CONTRACTS, PROJECT_ROOT
from support.poll import wait_for as _wait_for

VELERO = CONTRACTS / "velero"
BUILD = PROJECT_ROOT / "tests" / "lab" / "k3s" / "build-release.sh"
VERSION = "v1.31.4+k3s1"


def wait_for(predicate, timeout=15.0, what="condition"):
    """This file's waits: 15 s unless told."""
    return _wait_for(predicate, timeout, what)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A library-started API server with Velero's Backup CRD."""
    handle = apiserver.start_server(tmp_path_factory.mktemp("api"), crds=[VELERO / "velero.io_backups.yaml"], heartbeat_grace=2.0)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def api(server):
    """An official-client ApiClient from the written kubeconfig."""
    return config.new_client_from_config(server.kubeconfig_path)


def status_of(exc: ApiException) -> dict:
    """The Status body of an API error."""
    return json.loads(exc.body)


CORE_KINDS = [
    ("namespace", None, {"metadata": {"name": "ns-crud"}}),
    ("node", None, {"metadata": {"name": "node-crud"}}),
    ("pod", "default", {"metadata": {"name": "pod-crud"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    ("service", "default", {"metadata": {"name": "svc-crud"}, "spec": {"ports": [{"port": 80}]}}),
    ("secret", "default", {"metadata": {"name": "secret-crud"}, "stringData": {"a": "b"}}),
    ("config_map", "default", {"metadata": {"name": "cm-crud"}, "data": {"a": "b"}}),
    ("persistent_volume", None, {"metadata": {"name": "pv-crud"},
                                 "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp"}}}),
    ("persistent_volume_claim", "default", {"metadata": {"name": "pvc-crud"},
                                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
]


@pytest.mark.parametrize("kind,namespace,body", CORE_KINDS, ids=[k[0] for k in CORE_KINDS])
def test_core_crud(api, kind, namespace, body):
    """Create/read/list/patch/replace/delete through CoreV1Api for each core kind."""
    core = client.CoreV1Api(api)
    scope = "namespaced_" if namespace else ""
    args = (namespace,) if namespace else ()
    name = body["metadata"]["name"]
    created = getattr(core, f"create_{scope}{kind}")(*args, body)
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    got = getattr(core, f"read_{scope}{kind}")(name, *args)
    assert got.metadata.uid == created.metadata.uid
    listed = getattr(core, f"list_{scope}{kind}")(*args)
    assert name in [i.metadata.name for i in listed.items]
    patched = getattr(core, f"patch_{scope}{kind}")(name, *args, {"metadata": {"labels": {"patched": "yes"}}})
    assert patched.metadata.labels["patched"] == "yes"
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    patched.metadata.labels["replaced"] = "yes"
    replaced = getattr(core, f"replace_{scope}{kind}")(name, *args, patched)
    assert replaced.metadata.labels == {**patched.metadata.labels} or replaced.metadata.labels["replaced"] == "yes"
    getattr(core, f"delete_{scope}{kind}")(name, *args)
    with pytest.raises(ApiException) as err:
        getattr(core, f"read_{scope}{kind}")(name, *args)
    assert err.value.status == 404
    if kind == "secret":
        assert created.data == {"a": "Yg=="}


def test_apps_crud(api):
    """Deployments and DaemonSets through AppsV1Api (status filled like a finished rollout)."""
    apps = client.AppsV1Api(api)
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    dep = apps.create_namespaced_deployment("default", {"metadata": {"name": "dep"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "x"}}, "template": template}})
    assert dep.status.ready_replicas == 2 and dep.metadata.generation == 1
    dep = apps.patch_namespaced_deployment("dep", "default", {"spec": {"replicas": 3}})
    assert dep.metadata.generation == 2 and dep.status.ready_replicas == 3 and dep.status.observed_generation == 2
    apps.create_namespaced_daemon_set("default", {"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})
    assert [d.metadata.name for d in apps.list_daemon_set_for_all_namespaces().items] == ["ds"]
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", {"metadata": {"name": "bad"}, "spec": {"template": template}})
    assert err.value.status == 422 and status_of(err.value)["reason"] == "Invalid"
    apps.delete_namespaced_deployment("dep", "default")
    apps.delete_namespaced_daemon_set("ds", "default")


def test_conflicts_and_errors(api):
    """409 on stale resourceVersion and AlreadyExists; 404 Status shape; missing namespace."""
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "conflict"}, "data": {"v": "1"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "conflict"}})
    body = status_of(err.value)
    assert err.value.status == 409 and body["reason"] == "AlreadyExists" and body["kind"] == "Status"
    assert body["details"] == {"name": "conflict", "group": "", "kind": "configmaps"}
    core.patch_namespaced_config_map("conflict", "default", {"data": {"v": "2"}})
    first.data = {"v": "stale"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("conflict", "default", first)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("conflict", "default", {"metadata": {"resourceVersion": first.metadata.resource_version}})
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("nope", "default")
    body = status_of(err.value)
    assert body["code"] == 404 and body["reason"] == "NotFound" and body["message"] == 'configmaps "nope" not found'
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("missing-ns", {"metadata": {"name": "x"}})
    assert err.value.status == 404 and 'namespaces "missing-ns" not found' in status_of(err.value)["message"]


def test_dry_run_selectors_json_patch(api):
    """dryRun=All is not persisted; label and field selectors; json-patch."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", "default")
    for idx, tier in enumerate(["web", "web", "db"]):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"sel{idx}", "labels": {"tier": tier, "idx": str(idx)}}})

    def names(**kw):
        return sorted(i.metadata.name for i in core.list_namespaced_config_map("default", **kw).items)

    assert names(label_selector="tier=web") == ["sel0", "sel1"]
    assert names(label_selector="tier!=web,idx") == ["sel2"]
    assert names(label_selector="tier in (db, other)") == ["sel2"]
    assert names(field_selector="metadata.name=sel1") == ["sel1"]
    core.patch_namespaced_config_map("sel0", "default", [{"op": "add", "path": "/data", "value": {"k": "v"}}])
    assert core.read_namespaced_config_map("sel0", "default").data == {"k": "v"}
    core.delete_collection_namespaced_config_map("default", label_selector="tier")
    assert names(label_selector="tier") == []


def test_crd_custom_resources(api):
    """Velero's Backup CRD: discovery, valid create, 422 on schema violation, pruning, status subresource."""
    ext = client.ApiextensionsV1Api(api)
    assert "backups.velero.io" in [c.metadata.name for c in ext.list_custom_resource_definition().items]
    custom = client.CustomObjectsApi(api)
    backup = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "nightly", "namespace": "default"},
              "spec": {"ttl": "720h0m0s", "includedNamespaces": ["*"], "unknownField": 1}}
    created = custom.create_namespaced_custom_object("velero.io", "v1", "default", "backups", backup)
    assert "unknownField" not in created["spec"] and created["metadata"]["generation"] == 1
    bad = dict(backup, metadata={"name": "bad", "namespace": "default"}, spec={"ttl": 5})
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("velero.io", "v1", "default", "backups", bad)
    body = status_of(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "spec.ttl"
    bad["spec"] = {"includedNamespaces": "notalist"}
    with pytest.raises(ApiException):
        custom.create_namespaced_custom_object("velero.io", "v1", "default", "backups", bad)
    # Velero's Backup has no status subresource: status is written with the object itself
    patched = custom.patch_namespaced_custom_object("velero.io", "v1", "default", "backups", "nightly",
                                                    {"spec": {"ttl": "1h0m0s"}, "status": {"phase": "Completed"}})
    assert patched["status"]["phase"] == "Completed" and patched["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object("velero.io", "v1", "default", "backups", "nightly", {"status": {"phase": "Bogus"}})
    assert err.value.status == 422 and "supported values" in status_of(err.value)["message"]
    # a CRD with the status subresource: status only changes through /status
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}},
                                                      "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}})
    widget = custom.create_cluster_custom_object("example.com", "v1", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ready": True}})
    assert "status" not in widget
    widget = custom.patch_cluster_custom_object("example.com", "v1", "widgets", "w", {"spec": {"size": 2}, "status": {"ready": True}})
    assert "status" not in widget and widget["metadata"]["generation"] == 2
    widget = custom.patch_cluster_custom_object_status("example.com", "v1", "widgets", "w", {"status": {"ready": True}, "spec": {"size": 9}})
    assert widget["status"] == {"ready": True} and widget["spec"]["size"] == 2 and widget["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:
        custom.create_cluster_custom_object("example.com", "v1", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {}})
    assert err.value.status == 422 and status_of(err.value)["details"]["causes"][0]["field"] == "spec.size"
    dyn = DynamicClient(api)
    resource = dyn.resources.get(api_version="velero.io/v1", kind="Backup")
    assert [i.metadata.name for i in resource.get(namespace="default").items] == ["nightly"]
    # a CRD registered at run time
    crd = apiserver.load_crd_files([VELERO / "velero.io_schedules.yaml"])[0]
    ext.create_custom_resource_definition(crd)
    sched = custom.create_namespaced_custom_object("velero.io", "v1", "default", "schedules", {
        "apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "daily"}, "spec": {"schedule": "0 1 * * *", "template": {}}})
    assert sched["spec"]["schedule"] == "0 1 * * *"
    ext.delete_custom_resource_definition("schedules.velero.io")
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object("velero.io", "v1", "default", "schedules")
    assert err.value.status == 404


def test_nodes_cordon_eviction_heartbeat(api, server):
    """Cordon via patch, taints, eviction deletes the pod, stale heartbeats turn Ready Unknown."""
    core = client.CoreV1Api(api)
    stamp = apiserver.now_iso()
    core.create_node({"metadata": {"name": "w1", "labels": {"role": "worker"}}, "status": {
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}})
    node = core.patch_node("w1", {"spec": {"unschedulable": True, "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}})
    assert node.spec.unschedulable is True and node.spec.taints[0].key == "k"
    core.create_namespaced_pod("default", {"metadata": {"name": "victim"}, "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "x"}]}})
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=w1").items
    assert [p.metadata.name for p in pods] == ["victim"] and pods[0].status.phase == "Running"
    core.create_namespaced_pod_eviction("victim", "default", {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "victim"}})
    assert core.list_pod_for_all_namespaces(field_selector="spec.nodeName=w1").items == []
    deadline = time.time() + 10
    while time.time() < deadline:
        ready = [c for c in core.read_node("w1").status.conditions if c.type == "Ready"][0]
        if ready.status == "Unknown":
            break
        time.sleep(0.3)
    assert ready.status == "Unknown" and ready.reason == "NodeStatusUnknown"
    assert any(t.key == "node.kubernetes.io/unreachable" for t in core.read_node("w1").spec.taints)
    core.delete_node("w1")


def test_discovery_and_watch(api, server):
    """Discovery documents and a bounded watch stream."""
    core = client.CoreV1Api(api)
    assert client.VersionApi(api).get_code().git_version == VERSION
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "apiextensions.k8s.io", "velero.io"} <= groups
    resources = {r.name for r in core.get_api_resources().resources}
    assert {"pods", "pods/eviction", "nodes/status", "configmaps"} <= resources
    core.create_namespaced_config_map("default", {"metadata": {"name": "watched"}})
    from kubernetes import watch  # pylint: disable=import-outside-toplevel
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "default", field_selector="metadata.name=watched", timeout_seconds=1)]
    assert events == [("ADDED", "watched")]


def test_persistence(tmp_path):
    """State survives a restart when persisted; the CA is reused."""
    handle = apiserver.start_server(tmp_path, persist=True, crds=[VELERO / "velero.io_backups.yaml"])
    core = client.CoreV1Api(config.new_client_from_config(handle.kubeconfig_path))
    core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}})
    handle.stop()
    state = tmp_path / "db" / "state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    again = apiserver.start_server(tmp_path, persist=True)
    try:
        core = client.CoreV1Api(config.new_client_from_config(again.kubeconfig_path))
        assert core.read_namespaced_config_map("kept", "default").metadata.name == "kept"
        assert client.CustomObjectsApi(core.api_client).list_namespaced_custom_object("velero.io", "v1", "default", "backups")["items"] == []
    finally:
        again.stop()


def test_unauthenticated_rejected(server):
    """Requests without a valid token get 401 (except /cacerts and /ping)."""
    import ssl  # pylint: disable=import-outside-toplevel
    import urllib.error  # pylint: disable=import-outside-toplevel
    import urllib.request  # pylint: disable=import-outside-toplevel
    context = ssl.create_default_context(cafile=server.ca_path)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/readyz", context=context, timeout=5)  # nosec
    assert err.value.code == 401
    req = urllib.request.Request(server.url + "/readyz", headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(req, context=context, timeout=5) as resp:  # nosec
        assert resp.read() == b"ok"
    with urllib.request.urlopen(server.url + "/cacerts", context=context, timeout=5) as resp:  # nosec
        assert resp.read().decode() == Path(server.ca_path).read_text(encoding="utf-8")


def _lagging_proxy(target_port: int, delay: float = 0.01):
    """A TCP relay adding `delay` per segment and per half-close, like the lab's tailnet between host and node.

    The latency is what exposes a server that closes a connection without saying so: the client reuses the
    connection before the FIN arrives and its next request gets no response. Returns (port, stop)."""
    import threading  # pylint: disable=import-outside-toplevel
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    done = threading.Event()

    def pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                time.sleep(delay)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            for sock in (src, dst):
                sock.close()

    def accept():
        while not done.is_set():
            try:
                near, unused = listener.accept()
            except OSError:
                continue
            far = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pipe, args=(near, far), daemon=True).start()
            threading.Thread(target=pipe, args=(far, near), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def stop():
        done.set()
        listener.close()
    return listener.getsockname()[1], stop


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_concurrent_requests_on_pooled_connections_are_never_dropped(server, connection):
    """Regression: with a pooling keep-alive client (urllib3, as the official client uses) and no retries, many
    concurrent requests across a slow link all get answers -- also when the client asks for `Connection: close`,
    which the server must then announce in its response (it used to close silently, and urllib3 reused the
    connection: RemoteDisconnected('Remote end closed connection without response'))."""
    import threading  # pylint: disable=import-outside-toplevel
    import urllib3  # pylint: disable=import-outside-toplevel
    port, stop = _lagging_proxy(server.api.port)
    pool = urllib3.PoolManager(maxsize=4, ca_certs=server.ca_path, retries=False, assert_hostname="localhost", timeout=10)
    headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json", "Connection": connection}
    failures, answered = [], []

    def work(worker: int):
        for i in range(25):
            try:
                if i % 5 == 4:  # bodies too, and one the server refuses without looking at it (read all the same)
                    resp = pool.request("POST", f"https://127.0.0.1:{port}/api/v1/namespaces/default/configmaps",
                                        body=json.dumps({"metadata": {"name": f"load-{connection}-{worker}-{i}"}}),
                                        headers={**headers, "Content-Type": "application/json",
                                                 **({"Authorization": "Bearer wrong"} if i % 10 == 9 else {})})
                    assert resp.status == (401 if i % 10 == 9 else 201), resp.data
                else:
                    resp = pool.request("GET", f"https://127.0.0.1:{port}/api/v1/namespaces/default/configmaps", headers=headers)
                    assert resp.status == 200, resp.data
                if connection == "close":
                    assert resp.headers.get("Connection") == "close"
                answered.append(1)
            except Exception as exc:  # pylint: disable=broad-except
                failures.append(repr(exc))

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        pool.clear()
        stop()
    assert failures == [] and len(answered) == 200, failures[:5]


def test_keep_alive_answers_in_one_write_without_nagle_stall(server):
    """Sequential requests on one kept-alive connection take milliseconds, not the 40 ms of Nagle + delayed ACK."""
    import ssl  # pylint: disable=import-outside-toplevel
    import http.client  # pylint: disable=import-outside-toplevel
    conn = http.client.HTTPSConnection("127.0.0.1", server.api.port, timeout=10,
                                       context=ssl.create_default_context(cafile=server.ca_path))
    headers = {"Authorization": f"Bearer {server.token}"}
    try:
        conn.request("GET", "/api/v1/namespaces", headers=headers)
        conn.getresponse().read()
        began = time.monotonic()
        for unused in range(50):
            conn.request("GET", "/api/v1/namespaces/default", headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["metadata"]["name"] == "default"
            assert not resp.will_close
        assert (time.monotonic() - began) / 50 < 0.03
    finally:
        conn.close()


def test_ansible_k8s_modules(server, run_ansible):
    """kubernetes.core k8s / k8s_info work with the written kubeconfig."""
    env = {"K8S_AUTH_KUBECONFIG": server.kubeconfig_path}
    created = run_ansible("ansible", "localhost", "-m", "kubernetes.core.k8s", "-a",
                          json.dumps({"state": "present", "definition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "from-ansible"}}}),
                          extra_env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert "CHANGED" in created.stdout
    cm = run_ansible("ansible", "localhost", "-m", "kubernetes.core.k8s", "-a", json.dumps({
        "state": "present", "definition": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "from-ansible"},
                                           "data": {"k": "v"}}}), extra_env=env)
    assert cm.returncode == 0, cm.stdout + cm.stderr
    info = run_ansible("ansible", "localhost", "-m", "kubernetes.core.k8s_info", "-a",
                       "kind=ConfigMap namespace=from-ansible name=cm", extra_env=env)
    assert info.returncode == 0, info.stdout + info.stderr
    assert '"k": "v"' in info.stdout
    again = run_ansible("ansible", "localhost", "-m", "kubernetes.core.k8s", "-a", json.dumps({
        "state": "present", "definition": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "from-ansible"},
                                           "data": {"k": "v"}}}), extra_env=env)
    assert again.returncode == 0 and "CHANGED" not in again.stdout, again.stdout


def test_yaml_subset_matches_pyyaml():
    """The stdlib YAML reader parses the Velero CRDs like PyYAML."""
    yaml = pytest.importorskip("yaml")
    for path in sorted(VELERO.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert yamlish.load_all(text) == [d for d in yaml.safe_load_all(text) if d is not None], path.name


# --- the k3s zipapp ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def k3s_bin(tmp_path_factory) -> Path:
    """The zipapp built by build-release.sh (layout checked too)."""
    out = tmp_path_factory.mktemp("release")
    subprocess.run(["bash", str(BUILD), str(out), VERSION], check=True, capture_output=True, text=True)
    binary = out / VERSION / "k3s"
    sums = (out / VERSION / "sha256sum-amd64.txt").read_text(encoding="utf-8")
    assert sums == f"{hashlib.sha256(binary.read_bytes()).hexdigest()}  k3s\n"
    again = subprocess.run(["bash", str(BUILD), str(out), VERSION], check=True, capture_output=True, text=True)
    assert "up to date" in again.stdout
    return binary


def k3s(binary: Path, *args, timeout=30, env=None) -> subprocess.CompletedProcess:
    """Run the zipapp with the test's python (the lab runs it with /usr/bin/python3)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, str(binary), *args], capture_output=True, text=True, timeout=timeout, check=False, env=full_env)


def spawn(binary: Path, *args, log: Path, env=None) -> subprocess.Popen:
    """Start a long-running k3s process."""
    with open(log, "w", encoding="utf-8") as handle:
        return subprocess.Popen([sys.executable, str(binary), *args], stdout=handle, stderr=subprocess.STDOUT,
                                env=dict(os.environ, K3S_STANDIN_HEARTBEAT="1", **(env or {})))


def test_version(k3s_bin):
    """k3s --version prints the stamped version and a go version."""
    out = k3s(k3s_bin, "--version")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"k3s version {VERSION} (") and lines[1].startswith("go version go1.")
    assert k3s(k3s_bin, "-v").stdout == out.stdout


@pytest.fixture(scope="module")
def cluster(k3s_bin, tmp_path_factory):
    """`k3s server` from a config.yaml in a temporary directory."""
    root = tmp_path_factory.mktemp("k3s")
    port = free_port()
    cfg = root / "config.yaml"
    cfg.write_text(f"""# like the role writes it
bind-address: 127.0.0.1
https-listen-port: {port}
node-name: master-1
node-ip: 10.9.0.1
node-external-ip: 203.0.113.1
node-label:
  - "zone=a"
node-taint:
  - "CriticalAddonsOnly=true:NoExecute"
tls-san: [k3s.lab.example]
write-kubeconfig-mode: "0640"
cluster-init: true
disable: [traefik]
flannel-iface: lo
secrets-encryption: true
token: lab-secret-token
""", encoding="utf-8")
    kubeconfig = root / "k3s.yaml"
    proc = spawn(k3s_bin, "server", "--config", str(cfg), "--data-dir", str(root / "data"), "--write-kubeconfig", str(kubeconfig),
                 log=root / "server.log")
    try:
        wait_for(lambda: kubeconfig.exists() and "registered and Ready" in (root / "server.log").read_text(encoding="utf-8"))
    except AssertionError:
        proc.kill()
        raise AssertionError((root / "server.log").read_text(encoding="utf-8"))
    yield {"root": root, "port": port, "kubeconfig": kubeconfig, "data": root / "data", "proc": proc}
    proc.terminate()
    proc.wait(10)


def test_server_files(cluster):
    """Token files (0600, K10 format with the CA hash), kubeconfig mode, logs without secrets."""
    server_dir = cluster["data"] / "server"
    ca_hash = hashlib.sha256((server_dir / "tls" / "server-ca.crt").read_bytes()).hexdigest()
    token = (server_dir / "token").read_text(encoding="utf-8").strip()
    agent_token = (server_dir / "agent-token").read_text(encoding="utf-8").strip()
    assert token == f"K10{ca_hash}::server:lab-secret-token"
    assert agent_token == f"K10{ca_hash}::node:lab-secret-token"
    assert os.readlink(server_dir / "node-token") == "token"
    for path in (server_dir / "token", server_dir / "agent-token"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cluster["kubeconfig"].stat().st_mode) == 0o640
    kube = yamlish.load(cluster["kubeconfig"].read_text(encoding="utf-8"))
    assert kube["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{cluster['port']}"
    log = (cluster["root"] / "server.log").read_text(encoding="utf-8")
    assert "lab-secret-token" not in log and 'level=info msg="Starting k3s' in log


def test_server_api_and_node(cluster, k3s_bin):
    """The kubeconfig works with the official client; /readyz; the server's own node."""
    api = config.new_client_from_config(str(cluster["kubeconfig"]))
    raw = api.call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True)
    assert raw.data == b"ok"
    node = client.CoreV1Api(api).read_node("master-1")
    labels = node.metadata.labels
    assert labels["node-role.kubernetes.io/control-plane"] == "true" and labels["node-role.kubernetes.io/master"] == "true"
    assert labels["kubernetes.io/hostname"] == "master-1" and labels["zone"] == "a"
    assert {(a.type, a.address) for a in node.status.addresses} >= {("InternalIP", "10.9.0.1"), ("ExternalIP", "203.0.113.1")}
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("CriticalAddonsOnly", "true", "NoExecute")]
    assert node.status.node_info.kubelet_version == VERSION
    beat = [c for c in node.status.conditions if c.type == "Ready"][0].last_heartbeat_time
    wait_for(lambda: [c for c in client.CoreV1Api(api).read_node("master-1").status.conditions if c.type == "Ready"][0].last_heartbeat_time > beat,
             timeout=5)
    deployments = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment("kube-system").items}
    assert "coredns" in deployments and "traefik" not in deployments
    out = k3s(k3s_bin, "kubectl", "--kubeconfig", str(cluster["kubeconfig"]), "get", "--raw", "/readyz")
    assert out.returncode == 0 and out.stdout.strip() == "ok"


def test_agent_join_and_kubectl(cluster, k3s_bin):
    """Agent with the agent token registers; kubectl get/cordon/drain/uncordon/delete; wrong token fails."""
    kc = ["kubectl", "--kubeconfig", str(cluster["kubeconfig"])]
    server_url = f"https://127.0.0.1:{cluster['port']}"
    token = (cluster["data"] / "server" / "agent-token").read_text(encoding="utf-8").strip()
    agent_cfg = cluster["root"] / "agent.yaml"
    agent_cfg.write_text(f"server: {server_url}\ntoken-file: {cluster['data'] / 'server' / 'agent-token'}\nnode-name: worker-1\n"
                         "node-ip: 10.9.0.2\nnode-label: [role=worker]\n", encoding="utf-8")
    # Agents that cannot join keep retrying (k3s-io/k3s pkg/agent/run.go, createProxyAndValidateToken).
    for name, bad_token, url, expected in (
            ("wrong-secret", token.rsplit(":", 1)[0] + ":wrong", server_url, "token is not valid"),
            ("wrong-ca", "K10" + "0" * 64 + "::node:x", server_url, "token CA hash does not match"),
            ("unreachable", token, f"https://127.0.0.1:{free_port()}", "failed to get CA certs")):
        log = cluster["root"] / f"{name}.log"
        proc = spawn(k3s_bin, "agent", "--server", url, "--token", bad_token, "--node-name", "intruder",
                     "--data-dir", str(cluster["root"] / name), log=log)
        try:
            message = f'level=error msg="Failed to validate connection to cluster at {url}: {expected}'
            wait_for(lambda: log.read_text(encoding="utf-8").count(message) >= 2 or proc.poll() is not None,  # pylint: disable=cell-var-from-loop
                     what=f"{name}: two failed attempts")
            assert proc.poll() is None, log.read_text(encoding="utf-8")
        finally:
            proc.terminate()
            proc.wait(10)
    agent = spawn(k3s_bin, "agent", "--config", str(agent_cfg), "--data-dir", str(cluster["root"] / "agent"), log=cluster["root"] / "agent.log")
    try:
        def nodes():
            out = k3s(k3s_bin, *kc, "get", "nodes", "-o", "json")
            assert out.returncode == 0, out.stderr
            return {n["metadata"]["name"]: n for n in json.loads(out.stdout)["items"]}
        found = wait_for(lambda: "worker-1" in nodes() and nodes())
        assert "intruder" not in found
        worker = found["worker-1"]
        assert {"type": "InternalIP", "address": "10.9.0.2"} in worker["status"]["addresses"]
        assert worker["metadata"]["labels"]["role"] == "worker"
        assert "node-role.kubernetes.io/control-plane" not in worker["metadata"]["labels"]
        assert "lab-secret-token" not in json.dumps(worker) and "--node-label=role=worker" in worker["metadata"]["annotations"]["k3s.io/node-args"]
        api = client.CoreV1Api(config.new_client_from_config(str(cluster["kubeconfig"])))
        api.create_namespaced_pod("default", {"metadata": {"name": "app-1", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": True}]},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "x"}], "volumes": [{"name": "tmp", "emptyDir": {}}]}})
        # kubectl drain looks the DaemonSet of a pod up (k8s.io/kubectl pkg/drain/filters.go, daemonSetFilter)
        client.AppsV1Api(api.api_client).create_namespaced_daemon_set("kube-system", {
            "metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"app": "ds"}}, "template": {
                "metadata": {"labels": {"app": "ds"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
        api.create_namespaced_pod("kube-system", {"metadata": {"name": "ds-1", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "2", "controller": True}]},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "x"}]}})
        refused = k3s(k3s_bin, *kc, "drain", "worker-1", "--timeout=5s")
        assert refused.returncode == 1, refused.stderr
        assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/ds-1" in refused.stderr
        assert "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/app-1" in refused.stderr
        drained = k3s(k3s_bin, *kc, "drain", "worker-1", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=10s")
        assert drained.returncode == 0, drained.stderr
        assert "evicting pod default/app-1" in drained.stdout and "node/worker-1 drained" in drained.stdout
        assert [p.metadata.name for p in api.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-1").items] == ["ds-1"]
        table = k3s(k3s_bin, *kc, "get", "nodes")
        assert "Ready,SchedulingDisabled" in table.stdout and "control-plane,etcd,master" in table.stdout
        assert k3s(k3s_bin, *kc, "uncordon", "worker-1").stdout == "node/worker-1 uncordoned\n"
        assert k3s(k3s_bin, *kc, "cordon", "worker-1").stdout == "node/worker-1 cordoned\n"
        assert api.read_node("worker-1").spec.unschedulable is True
        path = k3s(k3s_bin, *kc, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
        assert path.stdout == "master-1 worker-1"
        ready = k3s(k3s_bin, *kc, "wait", "--for=condition=Ready", "node/worker-1", "--timeout=5s")
        assert ready.returncode == 0, ready.stderr
        manifest = cluster["root"] / "cm.yaml"
        manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: default\ndata:\n  key: |\n    multi\n    line\n",
                            encoding="utf-8")
        assert k3s(k3s_bin, *kc, "apply", "-f", str(manifest)).stdout == "configmap/applied created\n"
        assert k3s(k3s_bin, *kc, "apply", "-f", str(manifest)).stdout == "configmap/applied unchanged\n"
        assert api.read_namespaced_config_map("applied", "default").data == {"key": "multi\nline\n"}
        assert k3s(k3s_bin, *kc, "delete", "node", "worker-1").stdout == 'node "worker-1" deleted\n'
        time.sleep(1.5)  # heartbeats continue, but a deleted node is not re-created (kubelet behaviour)
        missing = k3s(k3s_bin, *kc, "get", "node", "worker-1")
        assert missing.returncode == 1 and 'Error from server (NotFound): nodes "worker-1" not found' in missing.stderr
    finally:
        agent.terminate()
        agent.wait(10)


def test_second_server_joins(cluster, k3s_bin, tmp_path):
    """A server with `server:` + token joins: shares the CA, registers its node, forwards API requests."""
    port = free_port()
    token = (cluster["data"] / "server" / "token").read_text(encoding="utf-8").strip()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"server: https://127.0.0.1:{cluster['port']}\ntoken: {token}\nbind-address: 127.0.0.1\nhttps-listen-port: {port}\n"
                   "node-name: master-2\nnode-ip: 10.9.0.3\n", encoding="utf-8")
    kubeconfig = tmp_path / "k3s.yaml"
    proc = spawn(k3s_bin, "server", "--config", str(cfg), "--data-dir", str(tmp_path / "data"), "-o", str(kubeconfig), log=tmp_path / "log")
    try:
        wait_for(lambda: "registered and Ready" in (tmp_path / "log").read_text(encoding="utf-8") or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "log").read_text(encoding="utf-8")
        assert (tmp_path / "data" / "server" / "token").read_text(encoding="utf-8").strip() == token
        names = {n.metadata.name for n in client.CoreV1Api(config.new_client_from_config(str(kubeconfig))).list_node().items}
        assert {"master-1", "master-2"} <= names
        # it stages its own manifests directory, as every K3s server does (roles write their manifests there)
        manifests = tmp_path / "data" / "server" / "manifests"
        assert oct(manifests.stat().st_mode & 0o777) == "0o700" and (manifests / "traefik.yaml").is_file()
    finally:
        proc.terminate()
        proc.wait(10)


def test_links_answer_like_the_multi_call_binary(cluster, k3s_bin, tmp_path):
    """kubectl/crictl/ctr links to k3s, as the install script makes them, dispatch on argv[0]
    (k3s-io/k3s cmd/server/main.go, main(): reexec.Init on the base name); `k3s completion bash`."""
    for name in ("kubectl", "crictl", "ctr"):
        (tmp_path / name).symlink_to(k3s_bin)
    out = subprocess.run([sys.executable, str(tmp_path / "kubectl"), "--kubeconfig", str(cluster["kubeconfig"]), "get", "node",
                          "master-1", "-o", "name"], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout == "node/master-1\n", out.stderr
    for name in ("crictl", "ctr"):
        out = subprocess.run([sys.executable, str(tmp_path / name), "ps"], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 1 and "containerd.sock" in out.stderr and "unsupported command" not in out.stderr
    out = k3s(k3s_bin, "completion", "bash")
    assert out.returncode == 0 and out.stdout.rstrip().endswith("-F _cli_bash_autocomplete k3s")
    assert k3s(k3s_bin, "completion").returncode == 1


def test_short_token_joins_with_upstream_warning_full_token_without(cluster, k3s_bin, tmp_path):
    """A short token trusts whatever CA answers, with K3s's warning; the full K10 token pins the CA
    (k3s-io/k3s pkg/clientaccess/token.go, validateCAHash)."""
    full = (cluster["data"] / "server" / "agent-token").read_text(encoding="utf-8").strip()
    server_url = f"https://127.0.0.1:{cluster['port']}"
    for name, token in (("short-1", full.rsplit(":", 1)[1]), ("full-1", full)):
        log = tmp_path / f"{name}.log"
        proc = spawn(k3s_bin, "agent", "--server", server_url, "--token", token, "--node-name", name, "--node-ip", "10.9.0.9",
                     "--data-dir", str(tmp_path / name), log=log)
        try:
            wait_for(lambda: "k3s agent is up and running" in log.read_text(encoding="utf-8") or proc.poll() is not None,  # pylint: disable=cell-var-from-loop
                     what=f"{name} joined")
            text = log.read_text(encoding="utf-8")
            assert proc.poll() is None, text
            assert ("does not include a CA hash" in text) is (name == "short-1"), text
        finally:
            proc.terminate()
            proc.wait(10)
        k3s(k3s_bin, "kubectl", "--kubeconfig", str(cluster["kubeconfig"]), "delete", "node", name)


def test_server_refuses_a_changed_token_and_starts_with_its_own(k3s_bin, tmp_path):
    """Restarted with another token, a server refuses to start, as real K3s does (its bootstrap data
    is encrypted with the first token: k3s-io/k3s pkg/cluster/storage.go, getBootstrapKeyFromStorage);
    with its own token, in short or full form, it starts again."""
    port = free_port()

    def start(token: str, name: str) -> tuple:
        log = tmp_path / f"{name}.log"
        proc = spawn(k3s_bin, "server", "--token", token, "--bind-address", "127.0.0.1", "--https-listen-port", str(port),
                     "--node-name", "master-1", "--node-ip", "10.9.0.1", "--data-dir", str(tmp_path / "data"),
                     "--write-kubeconfig", str(tmp_path / "k3s.yaml"), log=log, env={"K3S_STANDIN_REGISTER_DELAY": "0"})
        wait_for(lambda: "up and running" in log.read_text(encoding="utf-8") or proc.poll() is not None, what=name)
        return proc, log

    proc, log = start("first-token-0123456789", "first")
    assert proc.poll() is None, log.read_text(encoding="utf-8")
    proc.terminate()
    proc.wait(10)
    stored = (tmp_path / "data" / "server" / "token").read_text(encoding="utf-8")
    proc, log = start("other-token-0123456789", "changed")
    assert proc.wait(10) == 1
    assert 'level=fatal msg="starting kubernetes: preparing server: failed to bootstrap cluster data: bootstrap data already found ' \
           'and encrypted with different token"' in log.read_text(encoding="utf-8")
    assert (tmp_path / "data" / "server" / "token").read_text(encoding="utf-8") == stored
    for name, token in (("same-short", "first-token-0123456789"), ("same-full", stored.strip())):
        proc, log = start(token, name)
        try:
            assert proc.poll() is None, log.read_text(encoding="utf-8")
        finally:
            proc.terminate()
            proc.wait(10)


def test_server_is_ready_before_its_node_registers(k3s_bin, tmp_path):
    """READY=1 ("up and running") comes before the node object exists (k3s-io/k3s pkg/cli/server/server.go,
    run()), so a role must wait for the node, not only for the service."""
    port = free_port()
    log = tmp_path / "server.log"
    proc = spawn(k3s_bin, "server", "--bind-address", "127.0.0.1", "--https-listen-port", str(port), "--node-name", "master-1",
                 "--node-ip", "10.9.0.1", "--data-dir", str(tmp_path / "data"), "--write-kubeconfig", str(tmp_path / "k3s.yaml"),
                 log=log, env={"K3S_STANDIN_REGISTER_DELAY": "10"})
    try:
        wait_for(lambda: "up and running" in log.read_text(encoding="utf-8"), what="server up")
        kc = ["kubectl", "--kubeconfig", str(tmp_path / "k3s.yaml")]
        early = k3s(k3s_bin, *kc, "get", "node", "master-1")
        assert early.returncode == 1 and "NotFound" in early.stderr, early.stdout + early.stderr
        wait_for(lambda: k3s(k3s_bin, *kc, "get", "node", "master-1").returncode == 0, what="node registered")
    finally:
        proc.terminate()
        proc.wait(10)


def test_node_password_rejects_another_host_with_the_name_until_the_node_is_deleted(cluster, k3s_bin, tmp_path):
    """A joining node sends its name and its /etc/rancher/node/password; the server keeps the password's hash in
    kube-system/<name>.node-password.k3s and refuses another password for that name with upstream's "Node password
    rejected" (k3s-io/k3s pkg/nodepassword/nodepassword.go, Ensure; pkg/agent/config/config.go, getNodeNamedCrt),
    retried like any registration failure; deleting the node object removes the secret (pkg/node/controller.go,
    onRemove), after which the other host joins. This is why a reinstalled host needs its node object deleted."""
    kc = ["kubectl", "--kubeconfig", str(cluster["kubeconfig"])]
    token = (cluster["data"] / "server" / "agent-token").read_text(encoding="utf-8").strip()
    server_url = f"https://127.0.0.1:{cluster['port']}"

    def start(host: str):
        log = tmp_path / f"{host}.log"
        proc = spawn(k3s_bin, "agent", "--server", server_url, "--token", token, "--node-name", "twin", "--node-ip", "10.9.0.8",
                     "--data-dir", str(tmp_path / host), log=log)
        return proc, log

    first, first_log = start("first-host")
    try:
        wait_for(lambda: "k3s agent is up and running" in first_log.read_text(encoding="utf-8") or first.poll() is not None,
                 what="the first host joined")
        assert first.poll() is None, first_log.read_text(encoding="utf-8")
    finally:
        first.terminate()
        first.wait(10)
    password = tmp_path / "first-host" / "agent" / "etc" / "rancher" / "node" / "password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600 and len(password.read_text(encoding="utf-8").strip()) == 32
    secret = k3s(k3s_bin, *kc, "get", "secret", "-n", "kube-system", "twin.node-password.k3s", "-o", "json")
    assert secret.returncode == 0, secret.stderr
    assert json.loads(secret.stdout)["immutable"] is True
    assert password.read_text(encoding="utf-8").strip() not in secret.stdout

    second, second_log = start("second-host")
    try:
        rejected = ("Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or "
                    f"contents of '{tmp_path / 'second-host' / 'agent' / 'etc' / 'rancher' / 'node' / 'password'}' may not match")
        wait_for(lambda: rejected in second_log.read_text(encoding="utf-8") or second.poll() is not None, what="the password rejected")
        assert second.poll() is None and "up and running" not in second_log.read_text(encoding="utf-8")
        assert k3s(k3s_bin, *kc, "delete", "node", "twin").returncode == 0
        gone = k3s(k3s_bin, *kc, "get", "secret", "-n", "kube-system", "twin.node-password.k3s")
        assert gone.returncode == 1 and "NotFound" in gone.stderr
        wait_for(lambda: "k3s agent is up and running" in second_log.read_text(encoding="utf-8") or second.poll() is not None,
                 timeout=30, what="the second host joined once the node was deleted")
        assert second.poll() is None, second_log.read_text(encoding="utf-8")
    finally:
        second.terminate()
        second.wait(10)
    k3s(k3s_bin, *kc, "delete", "node", "twin")


def test_kubelet_local_path_directory_and_pod_process(server, tmp_path):
    """The node's part: local-path's directory for a PV pinned to the node (mode 0777, removed with a Delete-policy PV),
    a pod's command run as a process with the volume's mountPath replaced by that directory, stopped with the pod;
    another node's pod is left alone."""
    import ssl  # pylint: disable=import-outside-toplevel
    from standins.k3s import kubelet  # pylint: disable=import-outside-toplevel
    api = config.new_client_from_config(server.kubeconfig_path)
    core = client.CoreV1Api(api)
    node = kubelet.Kubelet(server.url, ssl.create_default_context(cafile=server.ca_path), f"Bearer {server.token}",
                           "node-k", tmp_path)
    path = "/var/lib/rancher/k3s/storage/pvc-k1_default_k-data"
    core.create_persistent_volume({"metadata": {"name": "pvc-k1", "annotations": {
        "pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": "local-path", "local": {"path": path}, "claimRef": {"namespace": "default", "name": "k-data"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-k"]}]}]}}}})
    core.create_namespaced_persistent_volume_claim("default", {"metadata": {"name": "k-data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "volumeName": "pvc-k1", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound"}})
    container = {"name": "app", "image": "busybox", "command": ["sh", "-c", 'echo "$MSG" > /data/out; exec sleep 600'],
                 "env": [{"name": "MSG", "value": "written-by-the-pod"}], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "k-data"}}]
    core.create_namespaced_pod("default", {"metadata": {"name": "k-pod"}, "spec": {
        "nodeName": "node-k", "containers": [container], "volumes": volumes}})
    core.create_namespaced_pod("default", {"metadata": {"name": "k-other"}, "spec": {
        "nodeName": "node-elsewhere", "containers": [dict(container, command=["sh", "-c", "touch /data/other; exec sleep 600"])],
        "volumes": volumes}})
    directory = tmp_path / path.lstrip("/")
    try:
        node.tick()
        assert directory.is_dir() and oct(directory.stat().st_mode & 0o777) == "0o777"
        wait_for(lambda: (directory / "out").is_file() and (directory / "out").read_text() == "written-by-the-pod\n")
        pod = core.read_namespaced_pod("k-pod", "default")
        assert pod.status.phase == "Running" and pod.status.container_statuses[0].state.running
        uid = pod.metadata.uid
        pid = int((tmp_path / f"run/k3s-standin/pods/{uid}/app.pid").read_text())
        os.kill(pid, 0)
        assert not (directory / "other").exists()
        core.delete_namespaced_pod("k-pod", "default")
        node.tick()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        core.delete_persistent_volume("pvc-k1")
        node.tick()
        assert not directory.exists()
    finally:
        node.stop_pods()
        for name in ("k-pod", "k-other"):
            try:
                core.delete_namespaced_pod(name, "default")
            except ApiException:
                pass

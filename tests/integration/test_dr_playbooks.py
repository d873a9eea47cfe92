"""playbooks/backup.yml, dr_failover.yml and dr_restore_workload.yml run by ansible-playbook, everything on loopback
and in-process: the K3s stand-in API server (with Velero's CRDs), the stand-in Velero controller, moto S3 and the
Cloudflare API test server.

The cluster is built the way infra.k3s.node_agent leaves it (Secret velero/cloud-credentials, BackupStorageLocation
default pointing s3Url at moto), with three nodes: master1, worker1 (the one that fails) and worker2 (the target).
Every assertion reads the API, the bucket or the Cloudflare server, never the playbooks' own variables.
"""
from __future__ import annotations

import datetime
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for support.*
from standins.cloudflare import DEFAULT_TOKEN, CloudflareAPIServer  # noqa: E402
from standins.k3s import apiserver  # noqa: E402
from standins.prometheus_operator import controller as prometheus_operator  # noqa: E402
from support.paths import UPSTREAM_CHARTS, VENV_BIN  # noqa: E402
from standins.velero import controller, s3  # noqa: E402

ZONE = "example.com"
SOURCE, TARGET, MASTER = "worker1", "worker2", "master1"
IPS = {MASTER: "192.0.2.11", SOURCE: "192.0.2.21", TARGET: "192.0.2.22"}
APP_NS = "shop"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
# Variables the modules read as fallbacks: the playbooks must not inherit them from the developer's shell.
FALLBACK_VARIABLES = ("K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_VERIFY_SSL",
                      "K8S_AUTH_SSL_CA_CERT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KUBECONFIG",
                      "CLOUDFLARE_API_TOKEN")
BUCKETS = iter(range(1, 1000))


def stamp(seconds_ago=0.0):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3server():
    server = s3.start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def cloudflare():
    with CloudflareAPIServer(zones=(ZONE,)) as server:
        yield server


class Lab(object):
    """One cluster: the API server, Velero's controller, a bucket of its own; test-side API helpers."""

    def __init__(self, tmp_path, s3server, crds=()):
        self.tmp_path = tmp_path
        self.s3 = s3server
        # Heartbeats never expire during a test: only the test sets a node NotReady.
        self.api = apiserver.start_server(tmp_path / "api", crds=controller.crd_paths() + list(crds), heartbeat_grace=3600)
        self.kube = config.new_client_from_config(self.api.kubeconfig_path)
        self.core = client.CoreV1Api(self.kube)
        self.apps = client.AppsV1Api(self.kube)
        self.custom = client.CustomObjectsApi(self.kube)
        self.bucket = s3server.create_bucket("dr-%d" % next(BUCKETS))
        # As infra.k3s.node_agent leaves it.
        self.core.create_namespace({"metadata": {"name": "velero"}})
        self.core.create_namespaced_secret("velero", s3server.credentials_secret(namespace="velero"))
        self.core.create_namespaced_config_map("velero", {"metadata": {"name": controller.KNOBS_CONFIGMAP},
                                                          "data": {"in-progress-seconds": "0.3"}})
        self.custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backupstoragelocations",
                                                    s3server.bsl_manifest(self.bucket))
        for name in (MASTER, SOURCE, TARGET):
            self.add_node(name, master=name == MASTER)
        self.velero = controller.start_controller(kubeconfig_path=self.api.kubeconfig_path, namespace="velero", interval=0.2)
        self.wait_for(lambda: self.bsl_phase() == "Available", "the BackupStorageLocation to be Available")

    def stop(self):
        self.velero.stop()
        self.api.stop()

    # --- cluster objects -------------------------------------------------------------
    def add_node(self, name, master=False):
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        if master:
            labels["node-role.kubernetes.io/control-plane"] = "true"
        self.core.create_node({"metadata": {"name": name, "labels": labels}, "spec": {},
                               "status": {"conditions": [self.ready_condition("True")],
                                          "addresses": [{"type": "InternalIP", "address": IPS[name]}]}})

    @staticmethod
    def ready_condition(status):
        return {"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else "NodeStatusUnknown",
                "lastHeartbeatTime": stamp(), "lastTransitionTime": stamp()}

    def fail_node(self, name):
        """What the node lifecycle controller does when a kubelet stops posting: Ready Unknown + unreachable taint."""
        node = self.core.read_node(name)
        self.core.patch_node_status(name, {"status": {"conditions": [self.ready_condition("Unknown")]}})
        taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
        self.core.patch_node(name, {"spec": {"taints": taints}})
        return node

    def bsl_phase(self):
        obj = self.custom.get_namespaced_custom_object("velero.io", "v1", "velero", "backupstoragelocations", "default")
        return (obj.get("status") or {}).get("phase")

    def local_pv(self, pv_name, namespace, claim, node, size="1Gi"):
        """A PV as K3s's local-path provisioner makes it on `node` for the claim, Bound."""
        self.core.create_persistent_volume({
            "metadata": {"name": pv_name, "labels": {},
                         "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path",
                                         "local.path.provisioner/selected-node": node}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                     "storageClassName": "local-path",
                     # K3s's local-path StorageClass makes `local` PVs (defaultVolumeType: local in k3s-io/k3s
                     # manifests/local-storage.yaml); Velero skips hostPath ones (pkg/podvolume/backupper.go).
                     "local": {"path": "/var/lib/rancher/k3s/storage/%s_%s_%s" % (pv_name, namespace, claim)},
                     "claimRef": {"kind": "PersistentVolumeClaim", "namespace": namespace, "name": claim},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "status": {"phase": "Bound"}})

    def add_app(self, namespace, app, node, label_key="app.kubernetes.io/name", pin=None):
        """A Deployment -> ReplicaSet -> Pod using a local-path PVC bound to a PV on `node`, as K3s would have them;
        with `pin`, the pod template (so the pod) pinned to that node by nodeSelector kubernetes.io/hostname."""
        try:
            self.core.create_namespace({"metadata": {"name": namespace}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        labels = {label_key: app}
        pv_name = "pvc-%s-%s-old" % (namespace, app)
        claim = "%s-data" % app
        self.local_pv(pv_name, namespace, claim, node)
        self.core.create_namespaced_persistent_volume_claim(namespace, {
            "metadata": {"name": claim, "labels": dict(labels),
                         "annotations": {SELECTED_NODE: node, "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path", "volumeName": pv_name,
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}})
        container = {"name": app, "image": "nginx:1.27", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
        pod_spec = {"containers": [container], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
        if pin:
            pod_spec["nodeSelector"] = {"kubernetes.io/hostname": pin, "kubernetes.io/os": "linux"}
        deploy = self.apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": app, "labels": dict(labels)},
            "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)}, "strategy": {"type": "Recreate"},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}})
        rs_name = "%s-5d8f7c" % app
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": deploy.metadata.uid, "controller": True}
        rs = self.apps.create_namespaced_replica_set(namespace, {
            "metadata": {"name": rs_name, "labels": dict(labels), "ownerReferences": [owner]},
            "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}})
        rs_owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs.metadata.uid, "controller": True}
        self.core.create_namespaced_pod(namespace, {
            "metadata": {"name": "%s-x7k2p" % rs_name, "labels": dict(labels), "ownerReferences": [rs_owner]},
            "spec": dict(pod_spec, nodeName=node)})
        return claim

    # --- reads ---------------------------------------------------------------------
    def _read(self, read, *args):
        """The object as a plain dict, None when it does not exist."""
        try:
            return self.kube.sanitize_for_serialization(read(*args))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def pvc(self, namespace, name):
        return self._read(self.core.read_namespaced_persistent_volume_claim, name, namespace)

    def pods(self, namespace, selector=None):
        kwargs = {"label_selector": selector} if selector else {}
        return self.kube.sanitize_for_serialization(self.core.list_namespaced_pod(namespace, **kwargs))["items"]

    def pv(self, name):
        return self._read(self.core.read_persistent_volume, name)

    def configmap(self, namespace, name):
        return self._read(self.core.read_namespaced_config_map, name, namespace)

    def velero_objects(self, plural):
        return self.custom.list_namespaced_custom_object("velero.io", "v1", "velero", plural)["items"]

    def bucket_keys(self, prefix=""):
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in listing.get("Contents", []))

    @staticmethod
    def wait_for(predicate, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s" % what)


def prometheus_crd(directory):
    """The real Prometheus CRD, from the real kube-prometheus-stack chart's crds/ (../shared/upstream/charts)."""
    with tarfile.open(UPSTREAM_CHARTS / "kube-prometheus-stack-88.5.3.tgz") as chart:
        member = chart.extractfile("kube-prometheus-stack/charts/crds/crds/crd-prometheuses.yaml")
        path = Path(directory) / "crd-prometheuses.yaml"
        path.write_bytes(member.read())
    return path


@pytest.fixture
def lab(request, tmp_path, s3server):
    """The lab; parametrized indirectly with "prometheus", its API also serves the real Prometheus CRD."""
    crds = [prometheus_crd(tmp_path)] if getattr(request, "param", None) == "prometheus" else []
    handle = Lab(tmp_path, s3server, crds=crds)
    yield handle
    handle.stop()
    assert handle.velero.errors == [], handle.velero.errors


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n"
        "  children:\n"
        "    k3s_cluster:\n"
        "      children:\n"
        "        k3s_masters:\n"
        "          hosts:\n"
        "            %s: {public_ip: %s}\n"
        "        k3s_workers:\n"
        "          hosts:\n"
        "            %s: {public_ip: %s, dns_ingress: true}\n"
        "            %s: {public_ip: %s, dns_ingress: true}\n" % (MASTER, IPS[MASTER], SOURCE, IPS[SOURCE], TARGET, IPS[TARGET]),
        encoding="utf-8")
    return path


@pytest.fixture
def playbook(ansible_env, tmp_path, inventory, lab):
    """Run one of the collection's playbooks against the lab; returns the completed process."""
    env = {key: value for key, value in ansible_env.items() if key not in FALLBACK_VARIABLES}

    def run(name, extra_vars, *args):
        variables = {"backup_kubeconfig": lab.api.kubeconfig_path, "dr_kubeconfig": lab.api.kubeconfig_path,
                     "backup_wait_sleep": 1, "dr_wait_sleep": 1}
        variables.update(extra_vars)
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "infra.k3s.%s" % name, "-i", str(inventory),
                               "-e", json.dumps(variables)] + list(args),
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
        if os.environ.get("DR_TEST_LOG"):  # debugging aid: keep every run's output
            with open(os.environ["DR_TEST_LOG"], "a", encoding="utf-8") as handle:
                handle.write("=== %s %s\n%s%s\n" % (name, json.dumps(extra_vars), proc.stdout, proc.stderr))
        return proc

    return run


def output(proc):
    return proc.stdout + proc.stderr


def backed_up(playbook, lab, name, namespaces=(APP_NS,)):
    proc = playbook("backup", {"backup_namespaces": list(namespaces), "backup_name": name,
                               "vault_r2_access_key_id": lab.s3.access_key, "vault_r2_secret_access_key": lab.s3.secret_key})
    assert proc.returncode == 0, output(proc)
    return proc


# ---------------------------------------------------------------------------------------
# backup.yml
# ---------------------------------------------------------------------------------------

def test_backup_is_made_waited_for_and_verified_in_the_bucket(playbook, lab):
    lab.add_app(APP_NS, "web", SOURCE)
    proc = backed_up(playbook, lab, "before-upgrade")
    backups = {b["metadata"]["name"]: b for b in lab.velero_objects("backups")}
    assert backups["before-upgrade"]["status"]["phase"] == "Completed"
    assert backups["before-upgrade"]["spec"]["includedNamespaces"] == [APP_NS]
    assert backups["before-upgrade"]["spec"]["defaultVolumesToFsBackup"] is True
    keys = lab.bucket_keys("backups/before-upgrade/")
    assert "backups/before-upgrade/velero-backup.json" in keys and "backups/before-upgrade/before-upgrade.tar.gz" in keys
    text = output(proc)
    assert "Backup before-upgrade: Completed, namespaces shop" in text
    assert re.search(r"Items: (\d+)/\1,", text), text
    assert re.search(r"Age: \d+ s", text) and "Storage: verified in bucket %s" % lab.bucket in text
    # The keys are never shown.
    assert lab.s3.secret_key not in text

    # A backup that cannot be verified (wrong endpoint) fails the play with where it looked.
    proc = playbook("backup", {"backup_namespaces": [APP_NS], "backup_name": "second", "backup_s3_url": "http://127.0.0.1:1",
                               "vault_r2_access_key_id": lab.s3.access_key, "vault_r2_secret_access_key": lab.s3.secret_key})
    assert proc.returncode != 0
    assert lab.s3.secret_key not in output(proc)

    proc = playbook("backup", {"backup_namespaces": "shop"})
    assert proc.returncode != 0 and "infra.k3s.backup needs backup_namespaces, a non-empty list" in output(proc)


# ---------------------------------------------------------------------------------------
# dr_failover.yml
# ---------------------------------------------------------------------------------------

def dns_values(cloudflare, name, rtype="A"):
    return sorted(rec["content"] for rec in cloudflare.get_records(ZONE, name=name, rtype=rtype))


def dns_vars(cloudflare):
    return {"dns_zone": ZONE, "dns_cloudflare_base_url": cloudflare.base_url, "dns_cloudflare_api_token": DEFAULT_TOKEN}


def test_failover_restores_the_volumes_on_the_target_and_moves_dns(playbook, lab, cloudflare):
    claim = lab.add_app(APP_NS, "web", SOURCE)
    lab.add_app("wiki", "wiki", TARGET)  # untouched: its volume is on the healthy node
    for name, ip in ((MASTER, IPS[MASTER]), (SOURCE, IPS[SOURCE]), (TARGET, IPS[TARGET]), ("*.apps", IPS[SOURCE]),
                     ("*.apps", IPS[TARGET]), ("k3s", IPS[MASTER])):
        cloudflare.add_record(ZONE, name, "A", ip, ttl=60)
    backed_up(playbook, lab, "nightly-1")
    old_pod = lab.pods(APP_NS)[0]["metadata"]["name"]

    lab.fail_node(SOURCE)
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET))
    text = output(proc)
    assert proc.returncode == 0, text

    assert lab.core.read_node(SOURCE).spec.unschedulable is True
    pvc = lab.pvc(APP_NS, claim)
    assert pvc["metadata"]["annotations"][SELECTED_NODE] == TARGET
    assert pvc["metadata"]["labels"]["velero.io/backup-name"] == "nightly-1"
    pv = lab.pv(pvc["spec"]["volumeName"])
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [TARGET]
    assert lab.pv("pvc-shop-web-old") is None
    pods = lab.pods(APP_NS)
    assert [pod["spec"].get("nodeName") for pod in pods] == [TARGET], pods
    assert pods[0]["metadata"]["labels"]["velero.io/restore-name"]
    assert lab.apps.read_namespaced_deployment("web", APP_NS).metadata.labels["velero.io/backup-name"] == "nightly-1"
    restores = lab.velero_objects("restores")
    assert len(restores) == 1 and restores[0]["spec"]["backupName"] == "nightly-1"
    assert restores[0]["spec"]["includedNamespaces"] == [APP_NS] and restores[0]["status"]["phase"] == "Completed"
    # The node mapping is a resource modifier naming the failed node's claim (Velero 1.18 reads no change-pvc-node-selector
    # ConfigMap); it served this restore and was removed.
    assert restores[0]["spec"]["resourceModifier"] == {"kind": "ConfigMap", "name": restores[0]["metadata"]["name"] + "-node-mapping"}
    assert lab.configmap("velero", restores[0]["metadata"]["name"] + "-node-mapping") is None
    assert "Applying resource modifier patch on %s/%s" % (APP_NS, claim) in restore_log(lab, restores[0]["metadata"]["name"])
    # The healthy node's app was left alone.
    assert "velero.io/restore-name" not in (lab.pvc("wiki", "wiki-data")["metadata"].get("labels") or {})
    assert [pod["metadata"]["name"] for pod in lab.pods("wiki")] == ["wiki-5d8f7c-x7k2p"]
    assert old_pod not in [pod["metadata"]["name"] for pod in pods] or pods[0]["metadata"].get("labels", {}).get("velero.io/restore-name")

    # DNS: nothing points at the failed node any more.
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[TARGET]]
    assert dns_values(cloudflare, "%s.example.com" % SOURCE) == []
    assert dns_values(cloudflare, "%s.example.com" % TARGET) == [IPS[TARGET]]
    assert dns_values(cloudflare, "k3s.example.com") == [IPS[MASTER]]
    assert all(rec["content"] != IPS[SOURCE] for rec in cloudflare.get_records(ZONE))

    point = re.search(r"Recovery point: backup nightly-1 taken at \S+, data (\d+) s old", text)
    assert point and int(point.group(1)) < 600, text
    assert re.search(r"Recovery time: \d+(\.\d+)? s", text), text
    assert "Failed over worker1 -> worker2: 1 volume(s) (shop/web-data)" in text


def test_failover_moves_the_nodeselector_pin_of_the_workloads_it_restores(playbook, lab):
    """Issue 19: a Deployment pinned by nodeSelector to the failed node (as Grafana is by monitoring_node) comes back
    with its template, its ReplicaSet and its restored pod pinned to the target, through the restore's resource
    modifier (Velero restores the backed-up pod, whose spec cannot change once created). A workload without the pin and
    one pinned to a third node are left as they were."""
    # Nothing schedules a pod later in this lab: a restored pod left Pending gives up on its volume's data after 2 s.
    lab.core.patch_namespaced_config_map(controller.KNOBS_CONFIGMAP, "velero", {"data": {"pod-volume-timeout": "2"}})
    lab.add_app(APP_NS, "grafana", SOURCE, pin=SOURCE)
    lab.add_app(APP_NS, "web", SOURCE)
    lab.add_app(APP_NS, "report", MASTER, pin=MASTER)
    backed_up(playbook, lab, "critical-1")
    lab.fail_node(SOURCE)
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET})
    text = output(proc)
    (restore,) = lab.velero_objects("restores")
    assert proc.returncode == 0, text + restore_log(lab, restore["metadata"]["name"])

    assert restore["status"]["phase"] == "Completed" and restore["status"].get("errors", 0) == 0, restore["status"]
    moved = {"kubernetes.io/hostname": TARGET, "kubernetes.io/os": "linux"}
    deployment = lab.kube.sanitize_for_serialization(lab.apps.read_namespaced_deployment("grafana", APP_NS))
    assert deployment["metadata"]["labels"]["velero.io/restore-name"] == restore["metadata"]["name"]
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == moved
    replicaset = lab.kube.sanitize_for_serialization(lab.apps.read_namespaced_replica_set("grafana-5d8f7c", APP_NS))
    assert replicaset["spec"]["template"]["spec"]["nodeSelector"] == moved
    (pod,) = lab.pods(APP_NS, "app.kubernetes.io/name=grafana")
    assert pod["metadata"]["labels"]["velero.io/restore-name"] == restore["metadata"]["name"]
    assert pod["spec"]["nodeSelector"] == moved and pod["spec"]["nodeName"] == TARGET
    assert lab.pvc(APP_NS, "grafana-data")["metadata"]["annotations"][SELECTED_NODE] == TARGET
    log = restore_log(lab, restore["metadata"]["name"])
    assert "Applying resource modifier patch on %s/grafana-5d8f7c-x7k2p" % APP_NS in log, log
    assert "cannot be scheduled" not in log and "PodVolumeRestores" not in log, log

    # Restored too (its volume was on the failed node), without a pin: none was added.
    (web,) = lab.pods(APP_NS, "app.kubernetes.io/name=web")
    assert web["metadata"]["labels"]["velero.io/restore-name"] and web["spec"]["nodeName"] == TARGET
    assert "nodeSelector" not in web["spec"]
    assert "nodeSelector" not in lab.kube.sanitize_for_serialization(
        lab.apps.read_namespaced_deployment("web", APP_NS))["spec"]["template"]["spec"]
    # Pinned to master1, with its volume there: not restored, still pinned there.
    report = lab.kube.sanitize_for_serialization(lab.apps.read_namespaced_deployment("report", APP_NS))
    assert "velero.io/restore-name" not in report["metadata"].get("labels", {})
    assert report["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"] == MASTER
    (report_pod,) = lab.pods(APP_NS, "app.kubernetes.io/name=report")
    assert report_pod["metadata"]["name"] == "report-5d8f7c-x7k2p" and report_pod["spec"]["nodeSelector"]["kubernetes.io/hostname"] == MASTER
    assert "Workloads to restore: Deployment/shop/grafana, Deployment/shop/web" in text, text
    assert "Pinned by nodeSelector to worker1, restored pinned to worker2: Deployment/shop/grafana" in text, text


PROMETHEUS = "kube-prometheus-stack-prometheus"
PROMETHEUS_STS = "prometheus-%s" % PROMETHEUS
PROMETHEUS_CLAIM = "prometheus-%s-db-%s-0" % (PROMETHEUS, PROMETHEUS_STS)
CRITICAL = {"backup.infra.k3s/tier": "critical"}


def bind_like_k3s(lab, namespace, claim, pod, node):
    """What kube-scheduler and local-path do for a StatefulSet's new pod and claim on `node`: a `local` PV there bound
    to the claim, the pod bound to the node and running (as add_app makes them for a Deployment)."""
    pv_name = "pvc-%s-old" % claim
    lab.local_pv(pv_name, namespace, claim, node)
    lab.core.patch_namespaced_persistent_volume_claim(claim, namespace, {
        "metadata": {"annotations": {SELECTED_NODE: node}}, "spec": {"volumeName": pv_name}})
    lab.core.patch_namespaced_persistent_volume_claim_status(claim, namespace, {"status": {"phase": "Bound"}})
    lab.core.patch_namespaced_pod(pod, namespace, {"spec": {"nodeName": node}})
    lab.core.patch_namespaced_pod_status(pod, namespace, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def monitoring_on(lab, node):
    """The Prometheus object as infra.k3s.monitoring's values make it (pinned by nodeSelector, critical labels, a
    local-path claim template) and a StatefulSet of the user's, db, pinned the same way (Parallel, as the operator
    makes its own); then what K3s makes of them on `node`: their pods and claims (the stand-in operator's StatefulSet
    controller), scheduled and provisioned there."""
    lab.core.create_namespace({"metadata": {"name": "monitoring"}})
    lab.custom.create_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "prometheuses", {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "labels": dict(CRITICAL, release="kube-prometheus-stack")},
        "spec": {"replicas": 1, "nodeSelector": {"kubernetes.io/hostname": node}, "podMetadata": {"labels": dict(CRITICAL)},
                 "storage": {"volumeClaimTemplate": {"metadata": {"labels": dict(CRITICAL)}, "spec": {
                     "storageClassName": "local-path", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "10Gi"}}}}}}})
    db = {"app": "db"}
    lab.apps.create_namespaced_stateful_set("monitoring", {
        "metadata": {"name": "db", "labels": db},
        "spec": {"replicas": 1, "serviceName": "db", "podManagementPolicy": "Parallel", "selector": {"matchLabels": db},
                 "template": {"metadata": {"labels": db}, "spec": {
                     "nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "db", "image": "postgres:17", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": db}, "spec": {
                     "storageClassName": "local-path", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    lab.wait_for(lambda: lab.pvc("monitoring", PROMETHEUS_CLAIM) and lab.pvc("monitoring", "data-db-0")
                 and len(lab.pods("monitoring")) == 2, "the StatefulSets' pods and claims")
    bind_like_k3s(lab, "monitoring", PROMETHEUS_CLAIM, "%s-0" % PROMETHEUS_STS, node)
    bind_like_k3s(lab, "monitoring", "data-db-0", "db-0", node)


@pytest.fixture
def lost_monitoring(playbook, lab):
    """monitoring_on worker1 with the stand-in operator running, backed up, then worker1 lost; yields the operator,
    which must have met no error."""
    operator = prometheus_operator.start_controller(lab.api.kubeconfig_path, interval=0.1)
    try:
        monitoring_on(lab, SOURCE)
        backed_up(playbook, lab, "critical-1", namespaces=("monitoring",))
        lab.fail_node(SOURCE)
        yield operator
    finally:
        operator.stop()
    assert operator.errors == [], operator.errors


@pytest.mark.parametrize("lab", ["prometheus"], indirect=True)
def test_failover_holds_prometheus_operator_off_and_moves_statefulsets_with_their_data(playbook, lab, lost_monitoring):
    """Issue 19: Prometheus's StatefulSet is prometheus-operator's, rebuilt at once from the Prometheus object when
    deleted (with a new, empty claim that the restore would skip). The failover pauses the object and moves its pin,
    restores the claim, the pod (pinned to the target, with its data) and the StatefulSet as backed up, then resumes
    the object; the operator rewrites the StatefulSet from it, and the StatefulSet controller rolls the pod to the target
    only then. A StatefulSet of the user's is pinned by the failover after the restore, for the same reason: a template
    changed during the restore makes the controller delete the restored pod (Parallel) before its data is back. The
    stand-in operator and StatefulSet controller: tests/standins/prometheus_operator (upstream cited there)."""
    # The node agent takes a second to copy the volumes: a restored pod deleted meanwhile gets no data (stand-in Velero).
    lab.core.patch_namespaced_config_map(controller.KNOBS_CONFIGMAP, "velero", {"data": {"pod-volume-restore-seconds": "1"}})
    operator = lost_monitoring
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET})
    text = output(proc)
    (restore,) = lab.velero_objects("restores")
    log = restore_log(lab, restore["metadata"]["name"])
    assert proc.returncode == 0, text + log + "\n".join(operator.log)
    assert "Held off (paused) while they are restored, their operator's objects: Prometheus/monitoring/%s" % PROMETHEUS in text
    assert ("Pinned by nodeSelector to worker1, restored pinned to worker2: StatefulSet/monitoring/db, "
            "StatefulSet/monitoring/%s" % PROMETHEUS_STS) in text, text
    assert restore["status"]["phase"] == "Completed" and restore["status"].get("errors", 0) == 0, restore["status"]
    # The one warning: the Prometheus object exists (paused, pinned elsewhere), so it is not restored over.
    assert restore["status"].get("warnings", 0) == 1, log
    assert 'could not restore, Prometheus "%s" already exists' % PROMETHEUS in log, log

    # The claims restored on the target, the pods restored pinned there with their volumes' data.
    for claim_name, pod_name, volume in ((PROMETHEUS_CLAIM, PROMETHEUS_STS + "-0", PROMETHEUS_STS + "-db"),
                                         ("data-db-0", "db-0", "data")):
        claim = lab.pvc("monitoring", claim_name)
        assert claim["metadata"]["labels"]["velero.io/restore-name"] == restore["metadata"]["name"], claim
        assert claim["metadata"]["annotations"][SELECTED_NODE] == TARGET and claim["status"]["phase"] == "Bound"
        assert "Applying resource modifier patch on monitoring/%s " % pod_name in log, log
        assert "Restored volume %s of pod monitoring/%s" % (volume, pod_name) in log, log

    # Resumed, its pin moved; the operator has rewritten its StatefulSet from it (owner, input hash), on the target.
    obj = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "prometheuses", PROMETHEUS)
    assert obj["spec"]["paused"] is False and obj["spec"]["nodeSelector"] == {"kubernetes.io/hostname": TARGET}
    assert "dr.infra.k3s/paused-by-failover" not in (obj["metadata"].get("annotations") or {})
    target_pin = {"kubernetes.io/hostname": TARGET}

    def rolled(name):
        """The StatefulSet pinned to the target and its pod of that revision (recreated unscheduled: no scheduler)."""
        sts = lab.kube.sanitize_for_serialization(lab.apps.read_namespaced_stateful_set(name, "monitoring"))
        pods = lab.pods("monitoring", "statefulset.kubernetes.io/pod-name=%s-0" % name)
        return (sts["spec"]["template"]["spec"].get("nodeSelector") == target_pin and pods
                and pods[0]["metadata"]["labels"]["controller-revision-hash"] == prometheus_operator.revision_of(sts)
                and (sts, pods[0]))
    try:
        lab.wait_for(lambda: rolled(PROMETHEUS_STS) and rolled("db"), "both StatefulSets to roll to the target")
    except AssertionError as exc:
        states = [(p["metadata"]["name"], p["metadata"]["labels"], p["spec"].get("nodeSelector")) for p in lab.pods("monitoring")]
        raise AssertionError("%s\n%s\n%s" % (exc, "\n".join(operator.log), states)) from exc
    sts, pod = rolled(PROMETHEUS_STS)
    assert [o["kind"] for o in sts["metadata"]["ownerReferences"]] == ["Prometheus"]
    assert sts["metadata"]["annotations"]["prometheus-operator-input-hash"]
    for name, (unused_sts, pod) in ((PROMETHEUS_STS, rolled(PROMETHEUS_STS)), ("db", rolled("db"))):
        assert pod["spec"]["nodeSelector"]["kubernetes.io/hostname"] == TARGET
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if v.get("persistentVolumeClaim")]
        assert claims == [PROMETHEUS_CLAIM if name == PROMETHEUS_STS else "data-db-0"]

    # Paused before the deletion: the operator never recreated its StatefulSet. Each restored pod rolled once, after
    # the restore (a roll during it would have left it without its data: the restore's "Restored volume" lines).
    assert "sync prometheus monitoring/%s: no action taken (the resource is paused)" % PROMETHEUS in operator.log
    created = "sync prometheus monitoring/%s: created statefulset %s" % (PROMETHEUS, PROMETHEUS_STS)
    assert operator.log.count(created) == 1, operator.log
    terminating = [line for line in operator.log if "is terminating for update" in line]
    assert len(terminating) == 2, operator.log


@pytest.mark.parametrize("lab", ["prometheus"], indirect=True)
def test_a_failover_that_stops_after_pausing_says_what_it_left_paused(playbook, lab, lost_monitoring):
    """The restore fails after the Prometheus object was paused: the run fails with the restore's message and names
    the object it leaves paused (so that the operator does not recreate an empty StatefulSet), which stays paused and
    marked as the failover's."""
    lab.core.patch_namespaced_config_map(controller.KNOBS_CONFIGMAP, "velero", {"data": {"restore-outcome": "Failed"}})
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET})
    text = output(proc)
    assert proc.returncode != 0, text
    assert ("The failover stopped with Prometheus/monitoring/%s paused, so that prometheus-operator does not recreate"
            % PROMETHEUS) in text, text
    # The run ends with the restore's own message (the rescue's fail repeats it).
    fatal = [line for line in text.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert "failed: velero-standin: restore-outcome knob is Failed" in fatal[-1], text
    obj = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "prometheuses", PROMETHEUS)
    assert obj["spec"]["paused"] is True and obj["metadata"]["annotations"]["dr.infra.k3s/paused-by-failover"] == SOURCE
    assert lost_monitoring.log.count("sync prometheus monitoring/%s: created statefulset %s" % (PROMETHEUS, PROMETHEUS_STS)) == 1


@pytest.mark.parametrize("lab", ["prometheus"], indirect=True)
@pytest.mark.usefixtures("lost_monitoring")
def test_failover_in_check_mode_changes_nothing(playbook, lab):
    """--check: the plan and the backup are shown, nothing is cordoned, paused, deleted or restored."""
    before = {name: lab.pods("monitoring", "statefulset.kubernetes.io/pod-name=%s" % name)[0]["metadata"]["uid"]
              for name in (PROMETHEUS_STS + "-0", "db-0")}
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET}, "--check")
    text = output(proc)
    assert proc.returncode == 0, text
    assert "Held off (paused) while they are restored, their operator's objects: Prometheus/monitoring/%s" % PROMETHEUS in text
    assert not lab.core.read_node(SOURCE).spec.unschedulable
    obj = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", "monitoring", "prometheuses", PROMETHEUS)
    assert not obj["spec"].get("paused") and obj["spec"]["nodeSelector"] == {"kubernetes.io/hostname": SOURCE}
    assert "dr.infra.k3s/paused-by-failover" not in (obj["metadata"].get("annotations") or {})
    assert lab.velero_objects("restores") == []
    for name, uid in before.items():
        assert lab.pods("monitoring", "statefulset.kubernetes.io/pod-name=%s" % name)[0]["metadata"]["uid"] == uid
    assert lab.pvc("monitoring", PROMETHEUS_CLAIM)["metadata"]["annotations"][SELECTED_NODE] == SOURCE


def test_failover_refuses_a_ready_source_and_bad_input(playbook, lab):
    lab.add_app(APP_NS, "web", SOURCE)
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET})
    assert proc.returncode != 0
    assert "Node worker1 is Ready" in output(proc) and "-e force=true" in output(proc)
    assert not lab.core.read_node(SOURCE).spec.unschedulable
    assert lab.pvc(APP_NS, "web-data")["metadata"]["annotations"][SELECTED_NODE] == SOURCE
    assert len(lab.pods(APP_NS)) == 1 and lab.velero_objects("restores") == []

    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": SOURCE})
    assert proc.returncode != 0 and "two different" in output(proc)
    proc = playbook("dr_failover", {"source_node": "worker9", "target_node": TARGET})
    assert proc.returncode != 0 and "node worker9 does not exist" in output(proc)
    lab.fail_node(SOURCE)
    lab.fail_node(MASTER)
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": MASTER})
    assert proc.returncode != 0 and "target master1 is not Ready" in output(proc)
    assert not lab.core.read_node(SOURCE).spec.unschedulable

    # No backup of the namespace: the node is cordoned, nothing is deleted.
    proc = playbook("dr_failover", {"source_node": SOURCE, "target_node": TARGET})
    assert proc.returncode != 0 and "No Completed backup" in output(proc), output(proc)
    assert lab.core.read_node(SOURCE).spec.unschedulable is True
    assert lab.pvc(APP_NS, "web-data") is not None and len(lab.pods(APP_NS)) == 1


# ---------------------------------------------------------------------------------------
# dr_restore_workload.yml
# ---------------------------------------------------------------------------------------

def delete_app(lab, namespace, app):
    """What an accident (or the operator before a restore) leaves: the app's workload, pods and claim gone."""
    claim = lab.pvc(namespace, "%s-data" % app)
    lab.apps.delete_namespaced_deployment(app, namespace)
    lab.apps.delete_namespaced_replica_set("%s-5d8f7c" % app, namespace)
    lab.core.delete_namespaced_pod("%s-5d8f7c-x7k2p" % app, namespace, grace_period_seconds=0)
    lab.core.delete_namespaced_persistent_volume_claim(claim["metadata"]["name"], namespace)
    lab.core.delete_persistent_volume(claim["spec"]["volumeName"])


def test_restore_workload_latest_onto_a_node_and_named_backup(playbook, lab):
    lab.add_app(APP_NS, "web", SOURCE)
    lab.add_app(APP_NS, "api", SOURCE, label_key="app")
    backed_up(playbook, lab, "first")
    time.sleep(1.1)  # distinct startTimestamps (second precision)
    backed_up(playbook, lab, "second")

    # target_node while the claims exist: refused, nothing created.
    proc = playbook("dr_restore_workload", {"app": "web", "target_node": TARGET})
    assert proc.returncode != 0 and "The claims web-data of web still exist in shop" in output(proc), output(proc)
    assert lab.velero_objects("restores") == []

    delete_app(lab, APP_NS, "web")
    proc = playbook("dr_restore_workload", {"app": "web", "app_namespace": APP_NS, "backup": "latest", "target_node": TARGET})
    assert proc.returncode == 0, output(proc)
    restores = lab.velero_objects("restores")
    assert len(restores) == 1 and restores[0]["spec"]["backupName"] == "second"
    assert restores[0]["spec"]["orLabelSelectors"] == [{"matchLabels": {"app.kubernetes.io/name": "web"}}, {"matchLabels": {"app": "web"}}]
    pvc = lab.pvc(APP_NS, "web-data")
    assert pvc["metadata"]["annotations"][SELECTED_NODE] == TARGET
    assert [p["spec"].get("nodeName") for p in lab.pods(APP_NS, "app.kubernetes.io/name=web")] == [TARGET]
    assert lab.apps.read_namespaced_deployment("web", APP_NS).metadata.labels["velero.io/restore-name"] == restores[0]["metadata"]["name"]
    # The other application was not touched.
    assert "velero.io/restore-name" not in (lab.pvc(APP_NS, "api-data")["metadata"].get("labels") or {})
    assert "Restored web in shop from backup second" in output(proc) and "Recovery time:" in output(proc)
    assert lab.configmap("velero", restores[0]["spec"]["resourceModifier"]["name"]) is None

    # A named backup, the namespace found from... nothing left: it must be given. Without target_node no claim is moved,
    # and a change-pvc-node-selector ConfigMap (Velero 1.17's mapping) does nothing: Velero 1.18 always clears
    # selected-node (pkg/restore/actions/pvc_action.go), so the claim is provisioned where its pod is scheduled.
    delete_app(lab, APP_NS, "api")
    lab.core.create_namespaced_config_map("velero", {"metadata": {"name": "change-pvc-node-selector-config", "labels": {
        "velero.io/plugin-config": "", "velero.io/change-pvc-node-selector": "RestoreItemAction"}}, "data": {SOURCE: TARGET}})
    proc = playbook("dr_restore_workload", {"app": "api", "backup": "first"})
    assert proc.returncode != 0 and "say which namespace" in output(proc)
    proc = playbook("dr_restore_workload", {"app": "api", "backup": "first", "app_namespace": APP_NS})
    assert proc.returncode == 0, output(proc)
    restore = [r for r in lab.velero_objects("restores") if r["spec"]["backupName"] == "first"]
    assert len(restore) == 1 and restore[0]["status"]["phase"] == "Completed"
    api_node = lab.pvc(APP_NS, "api-data")["metadata"]["annotations"][SELECTED_NODE]
    assert [p["spec"].get("nodeName") for p in lab.pods(APP_NS, "app=api")] == [api_node]
    assert "resourceModifier" not in restore[0]["spec"]

    proc = playbook("dr_restore_workload", {"app": "api", "backup": "nope", "app_namespace": APP_NS})
    assert proc.returncode != 0 and "Backup nope does not exist" in output(proc)


def restore_log(lab, name):
    """The restore's log as Velero uploads it (restores/<name>/restore-<name>-logs.gz)."""
    (key,) = [k for k in lab.bucket_keys() if k.endswith("restores/%s/restore-%s-logs.gz" % (name, name))]
    return gzip.decompress(lab.s3.client().get_object(Bucket=lab.bucket, Key=key)["Body"].read()).decode()


def labelled_backup(lab, name, **spec):
    """A Backup made through the API with label scoping backup.yml does not offer, waited for until Completed."""
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "namespace": "velero"},
            "spec": dict({"includedNamespaces": [APP_NS], "defaultVolumesToFsBackup": True, "storageLocation": "default"}, **spec)}
    lab.custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backups", body)
    lab.wait_for(lambda: (lab.custom.get_namespaced_custom_object("velero.io", "v1", "velero", "backups", name)
                          .get("status") or {}).get("phase") == "Completed", "backup %s to complete" % name)


def test_restore_workload_picks_a_backup_that_holds_the_app(playbook, lab):
    """Issue 15 item 3: the newest backup of the namespace whose label selectors leave the app out is passed over."""
    lab.add_app(APP_NS, "web", SOURCE)
    lab.add_app(APP_NS, "api", SOURCE, label_key="app")
    backed_up(playbook, lab, "whole-namespace")
    time.sleep(1.1)  # distinct startTimestamps (second precision)
    labelled_backup(lab, "api-only", orLabelSelectors=[{"matchLabels": {"app": "api"}}])
    time.sleep(1.1)
    labelled_backup(lab, "api-by-name", labelSelector={"matchLabels": {"app.kubernetes.io/name": "api"}})

    delete_app(lab, APP_NS, "web")
    proc = playbook("dr_restore_workload", {"app": "web", "app_namespace": APP_NS})
    assert proc.returncode == 0, output(proc)
    restores = lab.velero_objects("restores")
    assert [r["spec"]["backupName"] for r in restores] == ["whole-namespace"], restores
    assert lab.pvc(APP_NS, "web-data") is not None
    assert lab.apps.read_namespaced_deployment("web", APP_NS).metadata.labels["velero.io/backup-name"] == "whole-namespace"
    assert "Restored web in shop from backup whole-namespace" in output(proc)

    # Named, a backup that leaves the app out is refused before any restore, with the reason.
    delete_app(lab, APP_NS, "web")
    proc = playbook("dr_restore_workload", {"app": "web", "app_namespace": APP_NS, "backup": "api-only"})
    text = output(proc)
    assert proc.returncode != 0
    assert "Backup api-only cannot be restored for web in shop" in text, text
    assert "api-only: its orLabelSelectors" in text and "selects none of an object in shop labelled" in text, text
    assert len(lab.velero_objects("restores")) == 1


def test_restore_workload_refuses_when_no_backup_holds_the_app(playbook, lab):
    lab.add_app(APP_NS, "web", SOURCE)
    lab.add_app(APP_NS, "api", SOURCE, label_key="app")
    labelled_backup(lab, "api-only", orLabelSelectors=[{"matchLabels": {"app": "api"}}])
    time.sleep(1.1)
    labelled_backup(lab, "wiki-only", includedNamespaces=["wiki"])
    # The app still exists: its own labels (as they are now) are what the backups are checked against.
    proc = playbook("dr_restore_workload", {"app": "web"})
    text = output(proc)
    assert proc.returncode != 0
    assert "No Completed backup holds web in namespace shop" in text, text
    assert "wiki-only: does not include namespace shop" in text, text
    assert "api-only: its orLabelSelectors" in text and "selects none of Deployment shop/web" in text, text
    assert lab.velero_objects("restores") == []


def test_restore_workload_fails_when_the_restore_brings_back_nothing_of_the_app(playbook, lab):
    """A backup that covers the namespace but was taken before the app existed: the restore completes, empty."""
    lab.core.create_namespace({"metadata": {"name": APP_NS}})
    backed_up(playbook, lab, "before-the-app")
    lab.add_app(APP_NS, "web", SOURCE)
    delete_app(lab, APP_NS, "web")
    proc = playbook("dr_restore_workload", {"app": "web", "app_namespace": APP_NS})
    text = output(proc)
    assert proc.returncode != 0
    restores = lab.velero_objects("restores")
    assert len(restores) == 1 and restores[0]["status"]["phase"] == "Completed"
    assert "of backup before-the-app completed with no item of web" in text, text
    assert "Restored web" not in text


def test_failover_moves_the_public_entry_only_to_a_node_that_serves_it(playbook, lab, cloudflare, inventory):
    """Issue 15 item 7: the failed node was the only dns_ingress node; master1 and worker2 drop 80/443."""
    def write_inventory(target_ports=None, master_ports=None, target_ssh=None):
        def host(name, **hostvars):
            hostvars = dict({"public_ip": IPS[name]}, **{k: v for k, v in hostvars.items() if v is not None})
            return {name: hostvars}
        workers = dict(host(SOURCE, dns_ingress=True, firewall_public_tcp_ports=[80, 443]),
                       **host(TARGET, firewall_public_tcp_ports=target_ports, **(target_ssh or {})))
        groups = {"k3s_masters": {"hosts": host(MASTER, firewall_public_tcp_ports=master_ports)}, "k3s_workers": {"hosts": workers}}
        inventory.write_text(json.dumps({"all": {"children": {"k3s_cluster": {"children": groups}}}}), encoding="utf-8")

    lab.add_app(APP_NS, "web", SOURCE)
    for name, ip in ((MASTER, IPS[MASTER]), (SOURCE, IPS[SOURCE]), (TARGET, IPS[TARGET]), ("*.apps", IPS[SOURCE]),
                     ("k3s", IPS[MASTER])):
        cloudflare.add_record(ZONE, name, "A", ip, ttl=60)
    backed_up(playbook, lab, "nightly-1")
    lab.fail_node(SOURCE)

    # worker2 drops 80/443 and its firewall may not be opened: the wildcard stays, the run says why.
    write_inventory(target_ports=[8080])
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET, dr_ingress_open_firewall=False))
    text = output(proc)
    assert proc.returncode == 0, text
    assert lab.pvc(APP_NS, "web-data")["metadata"]["annotations"][SELECTED_NODE] == TARGET
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[SOURCE]], text
    assert "Public entry NOT moved: *.apps is left as it is (on worker1, the failed ingress node), because worker2 does not " \
           "open 80 and 443 (firewall_public_tcp_ports: [8080]) and dr_ingress_open_firewall is false" in text, text
    assert dns_values(cloudflare, "%s.example.com" % SOURCE) == []  # the rest of DNS moved
    # A node name that is not in the inventory is refused the same way.
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET, dr_ingress_node="worker9"))
    assert proc.returncode == 0 and "because worker9 is not a host of k3s_cluster in the inventory" in output(proc), output(proc)
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[SOURCE]]

    # The firewall role cannot open 80/443 on worker2 (its SSH port refuses, on loopback): the wildcard stays.
    write_inventory(target_ports=[8080], target_ssh={"ansible_host": "127.0.0.1", "ansible_port": 1})
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET))
    assert "UNREACHABLE" in output(proc), output(proc)
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[SOURCE]], output(proc)
    assert "Public entry NOT moved: *.apps is left as it is, because opening 80/443 on worker2 with infra.k3s.firewall failed" \
        in output(proc), output(proc)

    # worker2 serves 80/443: the wildcard goes there, and only there (not to master1, which drops them).
    write_inventory(target_ports=[80, 443])
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET))
    assert proc.returncode == 0, output(proc)
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[TARGET]], output(proc)
    assert "Public entry: *.apps moved to worker2. Keep it there on later runs" in output(proc), output(proc)

    # A named ingress node instead of the target.
    write_inventory(target_ports=[80, 443], master_ports=[443, 80, 8443])
    proc = playbook("dr_failover", dict(dns_vars(cloudflare), source_node=SOURCE, target_node=TARGET, dr_ingress_node=MASTER))
    assert proc.returncode == 0, output(proc)
    assert dns_values(cloudflare, "*.apps.example.com") == [IPS[MASTER]], output(proc)

"""The Velero stand-in: controller (over the API with a kubeconfig) + moto S3, checked through the API and boto3."""
from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import jsonschema
import pytest
import urllib3
import yaml

HERE = Path(__file__).resolve().parent
from standins.k3s import apiserver  # noqa: E402
from support.paths import UPSTREAM_CHARTS  # noqa: E402
from standins.velero import controller, s3  # noqa: E402
from standins.velero.kube import Kube, KubeError  # noqa: E402

NS = "velero"
V = ("velero.io", "v1")


def wait_for(check, timeout: float = 15.0, step: float = 0.1):
    """Poll until check() returns something truthy; return it."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(step)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """API server with Velero's CRDs, an S3 server, two Ready nodes, a default BSL and the running controller."""
    # The nodes have no kubelet posting heartbeats: a long grace keeps them Ready for the whole module, so that
    # restored pods are scheduled (an unmapped claim is provisioned where its pod goes, as Velero >= 1.17 restores it).
    api = apiserver.start_server(tmp_path_factory.mktemp("api"), "127.0.0.1", 0, crds=controller.crd_paths(),
                                 heartbeat_grace=3600)
    s3srv = s3.start_s3_server(host="127.0.0.1", port=0)
    kube = Kube(api.kubeconfig_path)
    kube.create("", "v1", "namespaces", {"metadata": {"name": NS}})
    for node in ("node-a", "node-b"):
        kube.create("", "v1", "nodes", {"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
                                        "status": {"conditions": [{"type": "Ready", "status": "True",
                                                                   "lastHeartbeatTime": apiserver.now_iso()}]}})
    kube.create("", "v1", "secrets", s3srv.credentials_secret(NS), NS)
    s3srv.create_bucket("velero-main")
    kube.create(*V, "backupstoragelocations", s3srv.bsl_manifest("velero-main", prefix="cluster1"), NS)
    ctl = controller.start_controller(kubeconfig_path=api.kubeconfig_path, namespace=NS, interval=0.2,
                                      bsl_period=1.0, sync_period=1.0)
    wait_for(lambda: phase(kube, "backupstoragelocations", "default") == "Available")
    yield {"api": api, "s3": s3srv, "kube": kube, "ctl": ctl, "bucket": "velero-main", "prefix": "cluster1"}
    ctl.stop()
    s3srv.stop()
    api.stop()


@pytest.fixture(autouse=True)
def clean_knobs(env):
    """Every test starts without knobs and must leave the controller error-free."""
    env["kube"].delete("", "v1", "configmaps", controller.KNOBS_CONFIGMAP, NS)
    yield
    env["kube"].delete("", "v1", "configmaps", controller.KNOBS_CONFIGMAP, NS)
    assert env["ctl"].errors == []


def phase(kube, plural, name):
    obj = kube.get(*V, plural, NS, name, default=None)
    return ((obj or {}).get("status") or {}).get("phase")


def get(kube, plural, name):
    return kube.get(*V, plural, NS, name)


def set_knobs(kube, **data):
    body = {"metadata": {"name": controller.KNOBS_CONFIGMAP}, "data": {k.replace("_", "-"): v for k, v in data.items()}}
    if kube.get("", "v1", "configmaps", NS, controller.KNOBS_CONFIGMAP, default=None) is None:
        kube.create("", "v1", "configmaps", body, NS)
    else:
        kube.patch("", "v1", "configmaps", controller.KNOBS_CONFIGMAP, {"data": body["data"]}, NS)


def wait_phase(kube, plural, name, phases, timeout=15.0):
    """Wait for one of the phases; return the object."""
    wait_for(lambda: phase(kube, plural, name) in phases, timeout)
    return get(kube, plural, name)


def crd_schema(plural: str) -> dict:
    doc = yaml.safe_load((controller.crd_paths()[0].parent / f"velero.io_{plural}.yaml").read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def assert_valid(plural: str, obj: dict) -> None:
    """JSON-schema valid against the CRD, and no status field unknown to it (nothing the API server would prune)."""
    schema = crd_schema(plural)
    body = {k: v for k, v in obj.items() if k != "metadata"}
    jsonschema.validate(body, {k: v for k, v in schema.items() if k != "properties"} | {
        "properties": {k: v for k, v in schema["properties"].items() if k != "metadata"}})

    def known(value, sch, where):
        if isinstance(value, dict) and "properties" in sch:
            for key, item in value.items():
                assert key in sch["properties"], f"{where}.{key} is not in the CRD"
                known(item, sch["properties"][key], f"{where}.{key}")
    known(obj.get("status") or {}, schema["properties"]["status"], "status")


def new_backup(kube, name, **spec):
    return kube.create(*V, "backups", {"apiVersion": "velero.io/v1", "kind": "Backup",
                                       "metadata": {"name": name, "namespace": NS}, "spec": spec}, NS)


def new_restore(kube, name, **spec):
    return kube.create(*V, "restores", {"apiVersion": "velero.io/v1", "kind": "Restore",
                                        "metadata": {"name": name, "namespace": NS}, "spec": spec}, NS)


def s3_keys(env, under: str) -> list:
    listing = env["s3"].client().list_objects_v2(Bucket=env["bucket"], Prefix=f"{env['prefix']}/{under}")
    return sorted(o["Key"] for o in listing.get("Contents") or [])


def s3_get(env, key: str) -> bytes:
    return env["s3"].client().get_object(Bucket=env["bucket"], Key=key)["Body"].read()


def make_app(kube, ns: str, node: str = "node-a", pv_source: str = "local") -> None:
    """A namespace with a deployment, a pod on `node` using a local-path PVC bound to a PV pinned to `node`
    (a `local` PV as K3s's local-path StorageClass makes them, or a hostPath one with pv_source="hostPath")."""
    kube.create("", "v1", "namespaces", {"metadata": {"name": ns, "labels": {"app": "shop"}}})
    labels = {"app": "web"}
    container = {"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    kube.create("apps", "v1", "deployments", {"metadata": {"name": "web", "labels": labels}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}, ns)
    kube.create("", "v1", "configmaps", {"metadata": {"name": "settings"}, "data": {"color": "blue"}}, ns)
    kube.create("", "v1", "services", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": labels}}, ns)
    pv_name = f"pvc-{ns}-data"
    kube.create("", "v1", "persistentvolumes", {"metadata": {"name": pv_name}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": "local-path", pv_source: {"path": f"/var/lib/rancher/k3s/storage/{pv_name}_{ns}_data"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": "data"}}})
    kube.create("", "v1", "persistentvolumeclaims", {"metadata": {"name": "data", "annotations": {
        "volume.kubernetes.io/selected-node": node, "pv.kubernetes.io/bind-completed": "yes"}}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "local-path", "volumeName": pv_name,
        "resources": {"requests": {"storage": "1Gi"}}}}, ns)
    kube.create("", "v1", "pods", {"metadata": {"name": "web-0", "labels": labels}, "spec": {
        "nodeName": node, "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}, ns)


@pytest.fixture(scope="module")
def shop_backup(env):
    """A completed file-system backup of namespace `shop` (watched through InProgress)."""
    kube = env["kube"]
    make_app(kube, "shop")
    new_backup(kube, "shop-1", includedNamespaces=["shop"], defaultVolumesToFsBackup=True)
    wait_phase(kube, "backups", "shop-1", ("InProgress",))
    return wait_phase(kube, "backups", "shop-1", ("Completed", "PartiallyFailed", "Failed"))


def test_backup_completes_with_velero_layout_in_s3(env, shop_backup):
    status = shop_backup["status"]
    assert status["phase"] == "Completed", status
    assert status["version"] == 1 and status["formatVersion"] == "1.1.0"
    assert status["errors"] == 0 and status["warnings"] == 0
    start = datetime.datetime.fromisoformat(status["startTimestamp"].replace("Z", "+00:00"))
    expires = datetime.datetime.fromisoformat(status["expiration"].replace("Z", "+00:00"))
    assert expires - start == datetime.timedelta(hours=720)
    assert status["completionTimestamp"] >= status["startTimestamp"]
    assert shop_backup["spec"]["storageLocation"] == "default"
    assert shop_backup["metadata"]["labels"]["velero.io/storage-location"] == "default"
    assert_valid("backups", shop_backup)

    base = f"{env['prefix']}/backups/shop-1/"
    keys = s3_keys(env, "backups/shop-1/")
    for suffix in (".tar.gz", "-logs.gz", "-resource-list.json.gz", "-podvolumebackups.json.gz", "-results.gz",
                   "-volumesnapshots.json.gz"):
        assert f"{base}shop-1{suffix}" in keys
    assert f"{base}velero-backup.json" in keys
    stored = json.loads(s3_get(env, f"{base}velero-backup.json"))
    assert stored["metadata"]["name"] == "shop-1" and stored["status"]["phase"] == "Completed"

    with tarfile.open(fileobj=io.BytesIO(s3_get(env, f"{base}shop-1.tar.gz"))) as tar:
        names = set(tar.getnames())
        pod = json.loads(tar.extractfile("resources/pods/namespaces/shop/web-0.json").read())
    for member in ("resources/deployments.apps/namespaces/shop/web.json", "resources/configmaps/namespaces/shop/settings.json",
                   "resources/services/namespaces/shop/web.json", "resources/persistentvolumeclaims/namespaces/shop/data.json",
                   "resources/persistentvolumes/cluster/pvc-shop-data.json", "resources/namespaces/cluster/shop.json",
                   "resources/pods/v1-preferredversion/namespaces/shop/web-0.json", "metadata/version"):
        assert member in names
    assert not any("/namespaces/velero/" in n or "pvc-other" in n for n in names)
    assert pod["spec"]["nodeName"] == "node-a"
    resource_list = json.loads(gzip.decompress(s3_get(env, f"{base}shop-1-resource-list.json.gz")))
    assert resource_list["v1/Pod"] == ["shop/web-0"] and resource_list["apps/v1/Deployment"] == ["shop/web"]
    assert status["progress"]["itemsBackedUp"] == status["progress"]["totalItems"] == sum(len(v) for v in resource_list.values())

    pvbs = json.loads(gzip.decompress(s3_get(env, f"{base}shop-1-podvolumebackups.json.gz")))
    assert [(p["spec"]["pod"]["name"], p["spec"]["volume"], p["status"]["phase"]) for p in pvbs] == [("web-0", "data", "Completed")]
    kopia = s3_keys(env, "kopia/shop/")
    assert f"{env['prefix']}/kopia/shop/p{pvbs[0]['status']['snapshotID']}" in kopia
    assert f"{env['prefix']}/kopia/shop/kopia.repository" in kopia
    assert b"level=info" in gzip.decompress(s3_get(env, f"{base}shop-1-logs.gz"))


def modifier_configmap(kube, name, rules, **extra):
    """A resource modifier ConfigMap in Velero's namespace (site/content/docs/v1.18/restore-resource-modifiers.md)."""
    data = {"modifiers.yaml": yaml.safe_dump({"version": "v1", "resourceModifierRules": rules})} | extra
    kube.create("", "v1", "configmaps", {"metadata": {"name": name}, "data": data}, NS)


def selected_node_patch(node):
    return [{"patchData": json.dumps({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": node}}})}]


def test_restore_with_namespace_and_node_mapping(env, shop_backup):
    """Velero 1.18 places a restored claim only through a resource modifier (restore.go applies it after pvc_action.go
    dropped selected-node): conditions on the original namespace, the name regex, a label selector and a
    groupResource glob; a JSON patch and merge patches; a rule for another namespace does not apply."""
    assert shop_backup["status"]["phase"] == "Completed"
    kube = env["kube"]
    modifier_configmap(kube, "shop-dr-modifiers", [
        {"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": ["shop-dr"]},  # the new namespace: no match
         "mergePatches": selected_node_patch("node-c")},
        {"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": ["shop"], "resourceNameRegex": "^(data)$"},
         "mergePatches": selected_node_patch("node-b")},
        {"conditions": {"groupResource": "*.apps", "namespaces": ["shop"], "labelSelector": {"matchLabels": {"app": "web"}}},
         "mergePatches": [{"patchData": '{"metadata": {"annotations": {"example.com/moved": "yes"}}}'}]},
        {"conditions": {"groupResource": "configmaps", "resourceNameRegex": "^settings$"},
         "patches": [{"operation": "add", "path": "/data/size", "value": "large"}]}])
    try:
        new_restore(kube, "shop-dr", backupName="shop-1", namespaceMapping={"shop": "shop-dr"},
                    resourceModifier={"kind": "ConfigMap", "name": "shop-dr-modifiers"})
        restore = wait_phase(kube, "restores", "shop-dr", ("Completed", "PartiallyFailed", "Failed", "FailedValidation"))
    finally:
        kube.delete("", "v1", "configmaps", "shop-dr-modifiers", NS)
    status = restore["status"]
    assert status["phase"] == "Completed", status
    assert status["errors"] == 0 and status["progress"]["itemsRestored"] == status["progress"]["totalItems"] > 5
    assert status["startTimestamp"] <= status["completionTimestamp"]
    assert_valid("restores", restore)

    pvc = kube.get("", "v1", "persistentvolumeclaims", "shop-dr", "data")
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == "node-b"
    assert pvc["metadata"]["labels"] == {"velero.io/backup-name": "shop-1", "velero.io/restore-name": "shop-dr"}
    assert "uid" in pvc["metadata"] and pvc["metadata"]["uid"] != "", pvc
    new_pv = kube.get("", "v1", "persistentvolumes", None, pvc["spec"]["volumeName"])
    assert new_pv["metadata"]["name"] != "pvc-shop-data"  # re-provisioned, not restored (file system backup)
    assert new_pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["node-b"]
    assert new_pv["spec"]["claimRef"]["namespace"] == "shop-dr" and new_pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert pvc["status"]["phase"] == "Bound"

    pod = kube.get("", "v1", "pods", "shop-dr", "web-0")
    assert pod["spec"]["nodeName"] == "node-b"
    assert pod["metadata"]["labels"]["velero.io/restore-name"] == "shop-dr" and pod["metadata"]["labels"]["app"] == "web"
    assert pod["spec"]["initContainers"][0]["name"] == "restore-wait"
    assert kube.get("apps", "v1", "deployments", "shop-dr", "web")["spec"]["replicas"] == 1
    assert kube.get("apps", "v1", "deployments", "shop-dr", "web")["metadata"]["annotations"]["example.com/moved"] == "yes"
    assert kube.get("", "v1", "configmaps", "shop-dr", "settings")["data"] == {"color": "blue", "size": "large"}
    assert "clusterIP" in kube.get("", "v1", "services", "shop-dr", "web")["spec"]  # re-allocated by the API server
    assert kube.get("", "v1", "namespaces", None, "shop-dr")["metadata"]["labels"]["app"] == "shop"
    assert kube.get("", "v1", "pods", "shop", "web-0")["spec"]["nodeName"] == "node-a"  # the source is untouched
    assert s3_keys(env, "restores/shop-dr/")  # restore logs and results are in the bucket

    # existingResourcePolicy: none only warns about a changed object, update puts the backed-up version back.
    kube.patch("", "v1", "configmaps", "settings", {"data": {"color": "red", "size": None}}, "shop-dr")
    new_restore(kube, "shop-dr-none", backupName="shop-1", namespaceMapping={"shop": "shop-dr"})
    again = wait_phase(kube, "restores", "shop-dr-none", ("Completed", "PartiallyFailed", "Failed"))
    assert again["status"]["phase"] == "Completed" and again["status"]["warnings"] >= 1
    assert kube.get("", "v1", "configmaps", "shop-dr", "settings")["data"] == {"color": "red"}
    new_restore(kube, "shop-dr-update", backupName="shop-1", namespaceMapping={"shop": "shop-dr"}, existingResourcePolicy="update")
    wait_phase(kube, "restores", "shop-dr-update", ("Completed",))
    assert kube.get("", "v1", "configmaps", "shop-dr", "settings")["data"] == {"color": "blue"}


def test_restored_pod_pinned_away_from_its_volume_stays_pending_and_its_data_is_not_restored(env, shop_backup):
    """A pod is scheduled as created, after the resource modifiers: pinned by nodeSelector to another node than its
    claim's, it stays Pending (kube-scheduler's NodeAffinity and VolumeBinding filters), no node agent takes its volume,
    and the restorer gives up after the pod volume timeout (pkg/podvolume/restorer.go RestorePodVolumes): the restore is
    PartiallyFailed. A failed "test" inside a rule's patches leaves the object as it is, without an error (json_patch.go);
    a "replace" of a path that does not exist is an error of the restore, and the object is still created unpatched."""
    kube = env["kube"]
    set_knobs(kube, pod_volume_timeout="1")
    pin = {"path": "/spec/template/spec/nodeSelector", "operation": "add", "value": '{"kubernetes.io/hostname": "node-a"}'}
    modifier_configmap(kube, "shop-pin-modifiers", [
        {"conditions": {"groupResource": "persistentvolumeclaims"}, "mergePatches": selected_node_patch("node-b")},
        {"conditions": {"groupResource": "pods"},
         "patches": [{"operation": "add", "path": "/spec/nodeSelector", "value": '{"kubernetes.io/hostname": "node-a"}'}]},
        {"conditions": {"groupResource": "deployments.apps"},
         "patches": [{"operation": "test", "path": "/spec/replicas", "value": "3"}, pin]},
        {"conditions": {"groupResource": "services"},
         "patches": [{"operation": "replace", "path": "/spec/nodeSelector/kubernetes.io~1hostname", "value": "node-b"}]}])
    try:
        new_restore(kube, "shop-pin", backupName="shop-1", namespaceMapping={"shop": "shop-pin"},
                    resourceModifier={"kind": "ConfigMap", "name": "shop-pin-modifiers"})
        restore = wait_phase(kube, "restores", "shop-pin", ("Completed", "PartiallyFailed", "Failed"))
    finally:
        kube.delete("", "v1", "configmaps", "shop-pin-modifiers", NS)
    assert restore["status"]["phase"] == "PartiallyFailed" and restore["status"]["errors"] == 2, restore["status"]
    pod = kube.get("", "v1", "pods", "shop-pin", "web-0")
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "node-a"} and not pod["spec"].get("nodeName"), pod
    assert kube.get("", "v1", "persistentvolumeclaims", "shop-pin", "data")["metadata"]["annotations"][
        "volume.kubernetes.io/selected-node"] == "node-b"
    assert "nodeSelector" not in kube.get("apps", "v1", "deployments", "shop-pin", "web")["spec"]["template"]["spec"]
    assert kube.get("", "v1", "services", "shop-pin", "web")["spec"]["ports"][0]["port"] == 80
    log = gzip.decompress(s3_get(env, f"{env['prefix']}/restores/shop-pin/restore-shop-pin-logs.gz")).decode()
    assert "Pod shop-pin/web-0 cannot be scheduled" in log and "timed out waiting for all PodVolumeRestores" in log, log
    assert "error applying patch" not in log and "error in applying JSON Patch replace" in log, log


def test_restore_ignores_the_change_pvc_node_selector_configmap(env, shop_backup):
    """Velero 1.18.1 (pvc_action.go, commit 7e15e9ba0): selected-node is always removed, even when that node exists
    and a change-pvc-node-selector ConfigMap maps it (no longer read); the claim waits for its first consumer."""
    kube = env["kube"]
    assert kube.get("", "v1", "nodes", None, "node-a")  # the backed-up node is still in the cluster
    kube.create("", "v1", "configmaps", {"metadata": {"name": "change-pvc-node", "labels": {
        "velero.io/plugin-config": "", "velero.io/change-pvc-node-selector": "RestoreItemAction"}},
        "data": {"node-a": "node-b"}}, NS)
    try:
        new_restore(kube, "shop-nomap", backupName="shop-1", namespaceMapping={"shop": "shop-nomap"},
                    includedResources=["persistentvolumeclaims"])
        restore = wait_phase(kube, "restores", "shop-nomap", ("Completed", "PartiallyFailed", "Failed"))
    finally:
        kube.delete("", "v1", "configmaps", "change-pvc-node", NS)
    assert restore["status"]["phase"] == "Completed", restore["status"]
    pvc = kube.get("", "v1", "persistentvolumeclaims", "shop-nomap", "data")
    assert "volume.kubernetes.io/selected-node" not in (pvc["metadata"].get("annotations") or {}), pvc
    assert not pvc["spec"].get("volumeName") and (pvc.get("status") or {}).get("phase") != "Bound", pvc
    log = gzip.decompress(s3_get(env, f"{env['prefix']}/restores/shop-nomap/restore-shop-nomap-logs.gz")).decode()
    assert "Removing PVC selected-node annotation node-a" in log


@pytest.mark.parametrize("case, configmap, message", [
    ("missing", None, "failed to get resource modifiers configmap velero/mod-missing"),
    ("two-keys", {"a.yaml": "version: v1", "b.yaml": "version: v1"},
     "Error in parsing resource modifiers provided in configmap velero/mod-two-keys: illegal resource modifiers "
     "velero/mod-two-keys configmap"),
    ("unknown-field", {"m.yaml": "version: v1\nresourceModifierRules:\n- conditions: {groupResource: pods}\n  mergePatch: []\n"},
     'configmap velero/mod-unknown-field: failed to decode yaml data into resource modifiers, err: error unmarshaling JSON: '
     'while decoding JSON: json: unknown field "mergePatch"'),
    ("version", {"m.yaml": "version: v2\nresourceModifierRules: [{conditions: {groupResource: pods}, mergePatches: [{patchData: '{}'}]}]"},
     "Validation error in resource modifiers provided in configmap velero/mod-version: unsupported resource modifier version v2"),
    ("strategic", {"m.yaml": "version: v1\nresourceModifierRules: [{conditions: {groupResource: pods}, strategicPatches: [{patchData: '{}'}]}]"},
     "strategicPatches are not modelled"),
])
def test_restore_with_a_bad_resource_modifier_fails_validation(env, shop_backup, case, configmap, message):
    """restore_controller.go validateAndComplete: a resource modifier ConfigMap that is missing, has other than one data
    key (resource_modifiers.go GetResourceModifiersFromConfig), does not decode strictly or does not validate
    (resource_modifiers_validator.go) makes the restore FailedValidation, and nothing is restored."""
    kube = env["kube"]
    name = f"mod-{case}"
    if configmap is not None:
        kube.create("", "v1", "configmaps", {"metadata": {"name": name}, "data": configmap}, NS)
    try:
        new_restore(kube, name, backupName="shop-1", namespaceMapping={"shop": name}, resourceModifier={"kind": "configmap", "name": name})
        restore = wait_phase(kube, "restores", name, ("Completed", "PartiallyFailed", "Failed", "FailedValidation"))
    finally:
        if configmap is not None:
            kube.delete("", "v1", "configmaps", name, NS)
    assert restore["status"]["phase"] == "FailedValidation", restore["status"]
    assert any(message in error for error in restore["status"]["validationErrors"]), restore["status"]
    assert kube.get("", "v1", "namespaces", None, name, default=None) is None


def test_hostpath_volume_is_skipped_with_a_warning(env):
    """Velero's backupper (isHostPathVolume): a claim whose PV is hostPath gets no pod volume backup, and a warning."""
    kube = env["kube"]
    make_app(kube, "hostpath", pv_source="hostPath")
    new_backup(kube, "hostpath-1", includedNamespaces=["hostpath"], defaultVolumesToFsBackup=True)
    backup = wait_phase(kube, "backups", "hostpath-1", ("Completed", "PartiallyFailed", "Failed"))
    assert backup["status"]["phase"] == "Completed" and backup["status"]["warnings"] == 1, backup["status"]
    base = f"{env['prefix']}/backups/hostpath-1/hostpath-1"
    assert json.loads(gzip.decompress(s3_get(env, f"{base}-podvolumebackups.json.gz"))) == []
    assert s3_keys(env, "kopia/hostpath/") == []
    results = json.loads(gzip.decompress(s3_get(env, f"{base}-results.gz")))
    assert results["warnings"]["velero"] == [
        "Volume data in pod hostpath/web-0 is a hostPath volume which is not supported for pod volume backup, skipping"]
    tarball = tarfile.open(fileobj=io.BytesIO(s3_get(env, f"{base}.tar.gz")))
    assert "resources/persistentvolumes/cluster/pvc-hostpath-data.json" in tarball.getnames()  # the object is still backed up


def test_restore_reads_the_tarball_from_s3(env, shop_backup):
    """Remove the tarball from the bucket: the restore must fail (nothing comes from the controller's memory)."""
    assert shop_backup["status"]["phase"] == "Completed"
    kube, client = env["kube"], env["s3"].client()
    key = f"{env['prefix']}/backups/shop-1/shop-1.tar.gz"
    data = s3_get(env, key)
    client.delete_object(Bucket=env["bucket"], Key=key)
    try:
        new_restore(kube, "shop-notar", backupName="shop-1", namespaceMapping={"shop": "shop-notar"})
        restore = wait_phase(kube, "restores", "shop-notar", ("Completed", "PartiallyFailed", "Failed"))
    finally:
        client.put_object(Bucket=env["bucket"], Key=key, Body=data)
    assert restore["status"]["phase"] == "Failed" and restore["status"]["failureReason"]
    assert kube.get("", "v1", "namespaces", None, "shop-notar", default=None) is None


def test_schedule_trigger_and_restore_from_newest_completed(env):
    kube = env["kube"]
    kube.create("", "v1", "namespaces", {"metadata": {"name": "sched-src"}})
    kube.create("", "v1", "configmaps", {"metadata": {"name": "cfg"}, "data": {"v": "1"}}, "sched-src")
    kube.create(*V, "schedules", {"metadata": {"name": "nightly", "labels": {"team": "ops"}}, "spec": {
        "schedule": "0 3 * * *", "template": {"includedNamespaces": ["sched-src"], "ttl": "24h0m0s"}}}, NS)
    kube.create(*V, "schedules", {"metadata": {"name": "broken"}, "spec": {"schedule": "every night", "template": {}}}, NS)
    wait_phase(kube, "schedules", "nightly", ("Enabled",))
    broken = wait_phase(kube, "schedules", "broken", ("FailedValidation",))
    assert broken["status"]["validationErrors"][0].startswith("invalid schedule: expected exactly 5 fields")
    assert_valid("schedules", broken)

    set_knobs(kube, trigger_schedule="nightly")
    made = wait_for(lambda: kube.list(*V, "backups", NS, "velero.io/schedule-name=nightly"))
    assert len(made) == 1
    real = made[0]["metadata"]["name"]
    assert real.startswith("nightly-") and len(real) == len("nightly-") + 14 and real[8:].isdigit()
    assert made[0]["metadata"]["labels"]["team"] == "ops" and made[0]["spec"]["ttl"] == "24h0m0s"
    wait_for(lambda: "trigger-schedule" not in (kube.get("", "v1", "configmaps", NS, controller.KNOBS_CONFIGMAP).get("data") or {}))
    schedule = get(kube, "schedules", "nightly")
    assert schedule["status"]["lastBackup"] and schedule["status"]["phase"] == "Enabled"
    assert_valid("schedules", schedule)
    done = wait_phase(kube, "backups", real, ("Completed", "PartiallyFailed", "Failed"))
    assert done["status"]["phase"] == "Completed"

    # History: an older Completed and a newer PartiallyFailed backup of the same schedule (no data in the bucket).
    def history(name, phase_, start):
        kube.create(*V, "backups", {"metadata": {"name": name, "labels": {"velero.io/schedule-name": "nightly"}},
                                    "spec": {"includedNamespaces": ["sched-src"]},
                                    "status": {"phase": phase_, "startTimestamp": start, "completionTimestamp": start,
                                               "version": 1, **({"errors": 2} if phase_ == "PartiallyFailed" else {})}}, NS)
    history("nightly-20200101030000", "Completed", "2020-01-01T03:00:00Z")
    history("nightly-29990101030000", "PartiallyFailed", "2999-01-01T03:00:00Z")
    kube.patch("", "v1", "configmaps", "cfg", {"data": {"v": "2"}}, "sched-src")

    new_restore(kube, "from-nightly", scheduleName="nightly", namespaceMapping={"sched-src": "sched-dst"})
    restore = wait_phase(kube, "restores", "from-nightly", ("Completed", "PartiallyFailed", "Failed", "FailedValidation"))
    assert restore["status"]["phase"] == "Completed", restore["status"]
    assert restore["spec"]["backupName"] == real
    cfg = kube.get("", "v1", "configmaps", "sched-dst", "cfg")
    assert cfg["data"] == {"v": "1"} and cfg["metadata"]["labels"]["velero.io/backup-name"] == real
    # The preset history is left alone by the controller.
    assert phase(kube, "backups", "nightly-29990101030000") == "PartiallyFailed"
    assert get(kube, "backups", "nightly-20200101030000")["status"] == {
        "phase": "Completed", "startTimestamp": "2020-01-01T03:00:00Z", "completionTimestamp": "2020-01-01T03:00:00Z", "version": 1}

    new_restore(kube, "no-such-schedule", scheduleName="weekly")
    bad = wait_phase(kube, "restores", "no-such-schedule", ("FailedValidation",))
    assert bad["status"]["validationErrors"] == ["No backups found for schedule"]
    new_restore(kube, "both-sources", scheduleName="nightly", backupName=real)
    both = wait_phase(kube, "restores", "both-sources", ("FailedValidation",))
    assert "not both" in both["status"]["validationErrors"][0]
    assert_valid("restores", both)


@pytest.mark.parametrize("outcome", ["PartiallyFailed", "Failed", "FailedValidation"])
def test_backup_outcome_knob(env, outcome):
    kube = env["kube"]
    ns = f"knob-{outcome.lower()}"
    kube.create("", "v1", "namespaces", {"metadata": {"name": ns}})
    kube.create("", "v1", "configmaps", {"metadata": {"name": "x"}, "data": {"a": "b"}}, ns)
    set_knobs(kube, backup_outcome=outcome)
    name = f"b-{outcome.lower()}"
    new_backup(kube, name, includedNamespaces=[ns])
    backup = wait_phase(kube, "backups", name, ("Completed", "PartiallyFailed", "Failed", "FailedValidation"))
    status = backup["status"]
    assert status["phase"] == outcome
    assert_valid("backups", backup)
    if outcome == "PartiallyFailed":
        assert status["errors"] >= 1 and "failureReason" not in status
        assert f"{env['prefix']}/backups/{name}/{name}.tar.gz" in s3_keys(env, f"backups/{name}/")
    elif outcome == "Failed":
        assert status["failureReason"] and status["completionTimestamp"]
    else:
        assert status["validationErrors"] and "startTimestamp" not in status
        assert s3_keys(env, f"backups/{name}/") == []


@pytest.mark.parametrize("outcome", ["PartiallyFailed", "Failed", "FailedValidation"])
def test_restore_outcome_knob(env, shop_backup, outcome):
    assert shop_backup["status"]["phase"] == "Completed"
    kube = env["kube"]
    set_knobs(kube, restore_outcome=outcome)
    name = f"r-{outcome.lower()}"
    new_restore(kube, name, backupName="shop-1", namespaceMapping={"shop": name})
    restore = wait_phase(kube, "restores", name, ("Completed", "PartiallyFailed", "Failed", "FailedValidation"))
    status = restore["status"]
    assert status["phase"] == outcome
    assert_valid("restores", restore)
    restored = kube.get("", "v1", "configmaps", name, "settings", default=None)
    if outcome == "PartiallyFailed":
        assert status["errors"] >= 1 and "failureReason" not in status and restored is not None
    elif outcome == "Failed":
        assert status["failureReason"] and restored is None
    else:
        assert status["validationErrors"] and restored is None


class ApiFaults:
    """Inject API failures into the running controller's client (wraps its ApiClient.call_api).

    faults: [(method, path suffix, times, kind)] -- kind "lost" sends the request and loses the answer
    (the server did it, the client sees the connection drop), "unavailable" answers 503 without doing it,
    "broken" answers 500 every time."""

    def __init__(self, ctl, faults):
        self.api, self.faults, self.hits = ctl.kube.api, [list(f) for f in faults], []
        self.real = self.api.call_api

    def __enter__(self):
        def call_api(resource_path, method, *args, **kwargs):
            for fault in self.faults:
                want_method, suffix, times, kind = fault
                if method == want_method and resource_path.endswith(suffix) and times != 0:
                    fault[2] = times - 1
                    self.hits.append((method, resource_path, kind))
                    if kind == "lost":
                        self.real(resource_path, method, *args, **kwargs)
                        raise urllib3.exceptions.ProtocolError(
                            "Connection aborted.", ConnectionResetError("Remote end closed connection without response"))
                    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel
                    code = 503 if kind == "unavailable" else 500
                    raise ApiException(status=code, reason="injected")
            return self.real(resource_path, method, *args, **kwargs)
        self.api.call_api = call_api
        return self

    def __exit__(self, *exc):
        self.api.call_api = self.real


def test_restore_survives_lost_answers_and_resumes_what_it_created(env, shop_backup):
    """API errors midway through a restore: the items are retried in the same restore, and a claim (and pod)
    that exists because THIS restore created it -- its answer was lost -- still gets its volume provisioned and Bound."""
    assert shop_backup["status"]["phase"] == "Completed"
    kube, ctl = env["kube"], env["ctl"]
    ns = "shop-flaky"
    faults = [("POST", f"/namespaces/{ns}/persistentvolumeclaims", 1, "lost"),
              ("POST", f"/namespaces/{ns}/pods", 1, "lost"),
              ("POST", f"/namespaces/{ns}/configmaps", 2, "unavailable"),
              ("PATCH", f"/namespaces/{ns}/persistentvolumeclaims/data/status", 1, "unavailable")]
    with ApiFaults(ctl, faults) as injected:
        new_restore(kube, ns, backupName="shop-1", namespaceMapping={"shop": ns})
        restore = wait_phase(kube, "restores", ns, ("Completed", "PartiallyFailed", "Failed"), timeout=30)
    assert len(injected.hits) == 5, injected.hits
    status = restore["status"]
    assert status["phase"] == "Completed", status
    assert status["errors"] == 0 and status["progress"]["itemsRestored"] == status["progress"]["totalItems"]
    assert_valid("restores", restore)
    pvc = kube.get("", "v1", "persistentvolumeclaims", ns, "data")
    assert pvc["metadata"]["labels"]["velero.io/restore-name"] == ns
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == f"pvc-{pvc['metadata']['uid']}"
    pv = kube.get("", "v1", "persistentvolumes", None, pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert kube.get("", "v1", "pods", ns, "web-0")["spec"]["nodeName"] == pv_node_of(pv)
    assert kube.get("", "v1", "configmaps", ns, "settings")["data"] == {"color": "blue"}
    resources = json.loads(gzip.decompress(s3_get(env, f"{env['prefix']}/restores/{ns}/restore-{ns}-resource-list.json.gz")))
    assert f"{ns}/data" in resources["v1/PersistentVolumeClaim"] and f"{ns}/web-0" in resources["v1/Pod"]


def test_restore_item_that_keeps_failing_is_a_restore_error(env, shop_backup):
    """An item the API keeps refusing: recorded as a restore error (PartiallyFailed, status.errors), never a
    silent Completed; the rest of the restore goes on, the claim included."""
    assert shop_backup["status"]["phase"] == "Completed"
    kube, ctl = env["kube"], env["ctl"]
    ns = "shop-broken"
    with ApiFaults(ctl, [("POST", f"/namespaces/{ns}/configmaps", -1, "broken")]):
        new_restore(kube, ns, backupName="shop-1", namespaceMapping={"shop": ns})
        restore = wait_phase(kube, "restores", ns, ("Completed", "PartiallyFailed", "Failed"), timeout=30)
    status = restore["status"]
    assert status["phase"] == "PartiallyFailed" and status["errors"] >= 1 and "failureReason" not in status, status
    assert status["progress"]["itemsRestored"] < status["progress"]["totalItems"]
    assert_valid("restores", restore)
    results = json.loads(gzip.decompress(s3_get(env, f"{env['prefix']}/restores/{ns}/restore-{ns}-results.gz")))
    assert any("configmaps/shop/settings" in err for err in results["errors"]["velero"]), results
    assert kube.get("", "v1", "configmaps", ns, "settings", default=None) is None
    assert kube.get("", "v1", "persistentvolumeclaims", ns, "data")["status"]["phase"] == "Bound"


def pv_node_of(pv: dict) -> str:
    return pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0]


def test_in_progress_seconds_knob(env):
    kube = env["kube"]
    set_knobs(kube, in_progress_seconds="1.5")
    kube.create("", "v1", "namespaces", {"metadata": {"name": "slow"}})
    new_backup(kube, "slow-1", includedNamespaces=["slow"])
    wait_phase(kube, "backups", "slow-1", ("InProgress",))
    seen = time.time()
    time.sleep(0.8)
    assert phase(kube, "backups", "slow-1") == "InProgress"
    wait_phase(kube, "backups", "slow-1", ("Completed",))
    assert time.time() - seen >= 1.0


def test_bsl_available_knob_and_missing_bucket(env):
    kube = env["kube"]
    set_knobs(kube, bsl_available="false")
    bsl = wait_phase(kube, "backupstoragelocations", "default", ("Unavailable",))
    assert bsl["status"]["message"] and bsl["status"]["lastValidationTime"]
    assert_valid("backupstoragelocations", bsl)
    new_backup(kube, "while-unavailable")
    backup = wait_phase(kube, "backups", "while-unavailable", ("FailedValidation",))
    assert "Unavailable" in backup["status"]["validationErrors"][0]
    kube.delete("", "v1", "configmaps", controller.KNOBS_CONFIGMAP, NS)
    wait_phase(kube, "backupstoragelocations", "default", ("Available",))

    kube.create(*V, "backupstoragelocations", env["s3"].bsl_manifest("no-such-bucket", name="missing", default=False), NS)
    missing = wait_phase(kube, "backupstoragelocations", "missing", ("Unavailable", "Available"))
    assert missing["status"]["phase"] == "Unavailable" and "404" in missing["status"]["message"]
    new_backup(kube, "to-missing", storageLocation="missing")
    assert "Unavailable" in wait_phase(kube, "backups", "to-missing", ("FailedValidation",))["status"]["validationErrors"][0]
    new_backup(kube, "to-nowhere", storageLocation="nowhere")
    assert "not found" in wait_phase(kube, "backups", "to-nowhere", ("FailedValidation",))["status"]["validationErrors"][0]
    new_backup(kube, "overlap", includedNamespaces=["a"], excludedNamespaces=["a"])
    assert "excludes list" in wait_phase(kube, "backups", "overlap", ("FailedValidation",))["status"]["validationErrors"][0]
    env["s3"].create_bucket("no-such-bucket")  # the location recovers on its next validation
    wait_phase(kube, "backupstoragelocations", "missing", ("Available",))


def test_delete_backup_request_removes_data(env):
    kube = env["kube"]
    make_app(kube, "doomed")
    new_backup(kube, "doomed-1", includedNamespaces=["doomed"], defaultVolumesToFsBackup=True)
    wait_phase(kube, "backups", "doomed-1", ("Completed",))
    assert len(s3_keys(env, "backups/doomed-1/")) >= 7
    snapshots = [k for k in s3_keys(env, "kopia/doomed/") if k.rsplit("/", 1)[1].startswith("p")]
    assert len(snapshots) == 1
    kube.create(*V, "deletebackuprequests", {"metadata": {"name": "doomed-1-del"}, "spec": {"backupName": "doomed-1"}}, NS)
    dbr = wait_phase(kube, "deletebackuprequests", "doomed-1-del", ("Processed",))
    assert "errors" not in dbr["status"], dbr["status"]
    assert dbr["metadata"]["labels"]["velero.io/backup-name"] == "doomed-1"
    assert_valid("deletebackuprequests", dbr)
    assert kube.get(*V, "backups", NS, "doomed-1", default=None) is None
    assert s3_keys(env, "backups/doomed-1/") == []
    assert [k for k in s3_keys(env, "kopia/doomed/") if k.rsplit("/", 1)[1].startswith("p")] == []
    time.sleep(1.5)  # longer than the sync period: nothing comes back from the bucket
    assert kube.get(*V, "backups", NS, "doomed-1", default=None) is None

    kube.create(*V, "deletebackuprequests", {"metadata": {"name": "ghost-del"}, "spec": {"backupName": "ghost"}}, NS)
    assert wait_phase(kube, "deletebackuprequests", "ghost-del", ("Processed",))["status"]["errors"] == ["backup not found"]


def test_deleted_backup_object_is_synced_back_from_the_bucket(env):
    kube = env["kube"]
    kube.create("", "v1", "namespaces", {"metadata": {"name": "synced"}})
    new_backup(kube, "sync-1", includedNamespaces=["synced"])
    wait_phase(kube, "backups", "sync-1", ("Completed",))
    kube.delete(*V, "backups", "sync-1", NS)
    back = wait_for(lambda: kube.get(*V, "backups", NS, "sync-1", default=None), timeout=10)
    assert back["status"]["phase"] == "Completed" and back["metadata"]["labels"]["velero.io/storage-location"] == "default"


def test_api_server_rejects_invalid_status(env):
    """The stand-in API server validates CRs against the CRDs, so the statuses above were really checked."""
    kube = env["kube"]
    with pytest.raises(KubeError) as err:
        kube.create(*V, "backups", {"metadata": {"name": "bad-phase"}, "status": {"phase": "Bogus"}}, NS)
    assert err.value.code == 422


def test_cli_runs_until_sigterm(env, tmp_path):
    """`python -m standins.velero` against the same API server, in its own namespace."""
    kube, s3srv = env["kube"], env["s3"]
    kube.create("", "v1", "namespaces", {"metadata": {"name": "velero-cli"}})
    kube.create("", "v1", "secrets", s3srv.credentials_secret("velero-cli"), "velero-cli")
    kube.create(*V, "backupstoragelocations", s3srv.bsl_manifest("velero-main", namespace="velero-cli", prefix="cli"), "velero-cli")
    log = tmp_path / "cli.log"
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "standins.velero", "--kubeconfig", env["api"].kubeconfig_path,
                                 "--namespace", "velero-cli", "--interval", "0.2"], cwd=str(HERE.parents[2]), stderr=handle,
                                stdout=handle, env=dict(os.environ))
    try:
        wait_for(lambda: (kube.get(*V, "backupstoragelocations", "velero-cli", "default").get("status") or {}).get("phase"),
                 timeout=20)
        assert kube.get(*V, "backupstoragelocations", "velero-cli", "default")["status"]["phase"] == "Available"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0, log.read_text()


# --- Data through the node agent: the chart's PodVolumeBackup/Restore CRDs, stand-in kubelets on two nodes ---------

CHART = UPSTREAM_CHARTS / "velero-12.1.0.tgz"
APP_SCRIPT = ("[ -f /data/token ] || cat /proc/sys/kernel/random/uuid > /data/token; mkdir -p /data/sub; "
              "echo started >> /data/sub/starts; exec sleep 600")


@pytest.fixture(scope="module")
def data_env(tmp_path_factory):
    """API server with Velero's CRDs and the chart's PodVolumeBackup/Restore CRDs, moto S3, the controller, and a
    stand-in kubelet (with its node agent) for node-a and node-b, each with its own host root."""
    import ssl  # pylint: disable=import-outside-toplevel
    from standins.k3s import kubelet  # pylint: disable=import-outside-toplevel
    base = tmp_path_factory.mktemp("data")
    with tarfile.open(CHART) as tar:
        for plural in ("podvolumebackups", "podvolumerestores"):
            (base / f"{plural}.yaml").write_bytes(tar.extractfile(f"velero/crds/{plural}.yaml").read())
    api = apiserver.start_server(base / "api", "127.0.0.1", 0, heartbeat_grace=3600,
                                 crds=controller.crd_paths() + [base / "podvolumebackups.yaml", base / "podvolumerestores.yaml"])
    s3srv = s3.start_s3_server(host="127.0.0.1", port=0)
    kube = Kube(api.kubeconfig_path)
    kube.create("", "v1", "namespaces", {"metadata": {"name": NS}})
    kubelets = {}
    for node in ("node-a", "node-b"):
        kube.create("", "v1", "nodes", {"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
                                        "status": {"conditions": [{"type": "Ready", "status": "True",
                                                                   "lastHeartbeatTime": apiserver.now_iso()}]}})
        context = ssl.create_default_context(cafile=api.ca_path)
        kubelets[node] = kubelet.Kubelet(api.url, context, f"Bearer {api.token}", node, base / node, interval=0.3).start()
    kube.create("", "v1", "secrets", s3srv.credentials_secret(NS), NS)
    s3srv.create_bucket("velero-data")
    kube.create(*V, "backupstoragelocations", s3srv.bsl_manifest("velero-data", prefix="k3s"), NS)
    labels = {"app.kubernetes.io/name": "node-agent"}
    kube.create("apps", "v1", "daemonsets", {"metadata": {"name": "node-agent", "labels": labels}, "spec": {
        "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "node-agent", "image": "velero/velero:v1.18.1", "command": ["/velero"],
                            "args": ["node-agent", "server"]}]}}}}, NS)
    ctl = controller.start_controller(kubeconfig_path=api.kubeconfig_path, namespace=NS, interval=0.2, bsl_period=1.0,
                                      sync_period=1.0)
    wait_for(lambda: phase(kube, "backupstoragelocations", "default") == "Available")
    yield {"api": api, "s3": s3srv, "kube": kube, "ctl": ctl, "bucket": "velero-data", "prefix": "k3s", "base": base,
           "kubelets": kubelets}
    ctl.stop()
    for one in kubelets.values():
        one.stop()
        one.stop_pods()
    s3srv.stop()
    api.stop()


def test_volume_bytes_round_trip_through_the_bucket(data_env):
    """local-path's directory on the node, the app's process writing into it, the node agent's upload under
    kopia/<ns>/, the volume's loss (teardown removes the directory), and the restore onto the other node: the
    file written before the backup is back, read on that node, before the app starts again."""
    env, kube, base = data_env, data_env["kube"], data_env["base"]
    ns, pv_name = "notes", "pvc-notes-data-1"
    path = f"/var/lib/rancher/k3s/storage/{pv_name}_{ns}_data"
    labels = {"app.kubernetes.io/name": "notes"}
    kube.create("", "v1", "namespaces", {"metadata": {"name": ns}})
    kube.create("", "v1", "persistentvolumes", {"metadata": {"name": pv_name, "annotations": {
        "pv.kubernetes.io/provisioned-by": "rancher.io/local-path", "local.path.provisioner/selected-node": "node-a"}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                 "storageClassName": "local-path", "local": {"path": path},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}]}]}},
                 "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": "data"}}, "status": {"phase": "Bound"}})
    kube.create("", "v1", "persistentvolumeclaims", {"metadata": {"name": "data", "labels": labels, "annotations": {
        "volume.kubernetes.io/selected-node": "node-a"}}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "local-path", "volumeName": pv_name,
        "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound"}}, ns)
    kube.create("", "v1", "pods", {"metadata": {"name": "notes-0", "labels": labels}, "spec": {"nodeName": "node-a", "containers": [
        {"name": "notes", "image": "busybox", "command": ["sh", "-c", APP_SCRIPT],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}, ns)
    on_a = base / "node-a" / path.lstrip("/")
    token = wait_for(lambda: (on_a / "token").is_file() and (on_a / "token").read_text())  # local-path's dir, the app's process
    assert oct(on_a.stat().st_mode & 0o777) == "0o777" and not (base / "node-b" / path.lstrip("/")).exists()

    new_backup(kube, "notes-1", includedNamespaces=[ns], defaultVolumesToFsBackup=True)
    backup = wait_phase(kube, "backups", "notes-1", ("Completed", "PartiallyFailed", "Failed"), timeout=30)
    assert backup["status"]["phase"] == "Completed" and backup["status"]["errors"] == 0, backup["status"]
    pvbs = kube.list(*V, "podvolumebackups", NS, "velero.io/backup-name=notes-1")
    assert [(p["spec"]["node"], p["spec"]["volume"], p["status"]["phase"]) for p in pvbs] == [("node-a", "data", "Completed")]
    snapshot = pvbs[0]["status"]["snapshotID"]
    assert pvbs[0]["status"]["progress"]["totalBytes"] == len(token) + len("started\n")
    stored = json.loads(gzip.decompress(s3_get(env, f"{env['prefix']}/backups/notes-1/notes-1-podvolumebackups.json.gz")))
    assert [p["status"]["snapshotID"] for p in stored] == [snapshot]
    repo = f"{env['prefix']}/kopia/{ns}/"
    assert s3_get(env, repo + "p" + hashlib.sha256(token.encode()).hexdigest()) == token.encode()  # the bytes, in the bucket
    assert f"{repo}q{snapshot}" in s3_keys(env, f"kopia/{ns}/")

    # The volume is lost: pod, claim and PV deleted; local-path's teardown removes the directory on node-a.
    kube.delete("", "v1", "pods", "notes-0", ns)
    kube.delete("", "v1", "persistentvolumeclaims", "data", ns)
    kube.delete("", "v1", "persistentvolumes", pv_name)
    wait_for(lambda: not on_a.exists())
    modifier_configmap(kube, "notes-back-node-mapping", [
        {"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": [ns], "resourceNameRegex": "^(data)$"},
         "mergePatches": selected_node_patch("node-b")}])
    try:
        new_restore(kube, "notes-back", backupName="notes-1", includedNamespaces=[ns],
                    resourceModifier={"kind": "ConfigMap", "name": "notes-back-node-mapping"})
        restore = wait_phase(kube, "restores", "notes-back", ("Completed", "PartiallyFailed", "Failed"), timeout=30)
    finally:
        kube.delete("", "v1", "configmaps", "notes-back-node-mapping", NS)
    assert restore["status"]["phase"] == "Completed" and restore["status"]["errors"] == 0, restore["status"]
    pvrs = kube.list(*V, "podvolumerestores", NS, "velero.io/restore-name=notes-back")
    assert [(p["status"]["node"], p["spec"]["snapshotID"], p["status"]["phase"]) for p in pvrs] == [("node-b", snapshot, "Completed")]
    pvc = kube.get("", "v1", "persistentvolumeclaims", ns, "data")
    new_path = kube.get("", "v1", "persistentvolumes", None, pvc["spec"]["volumeName"])["spec"]["local"]["path"]
    on_b = base / "node-b" / new_path.lstrip("/")
    assert (on_b / "token").read_text() == token  # restored before the app ran again: it did not write a new one
    wait_for(lambda: (on_b / "sub" / "starts").is_file() and (on_b / "sub" / "starts").read_text() == "started\nstarted\n")
    assert not (on_b / ".velero").exists()  # restore-wait removed the done files
    assert kube.get("", "v1", "pods", ns, "notes-0")["status"]["phase"] == "Running"
    assert env["ctl"].errors == []

"""Unit tests of plugins/module_utils/velero_*.py and kubernetes.py: waiting for a run, Go durations, resolving a
schedule's latest backup, namespace filters, merge patches, and every body builder validated against the
openAPIV3Schema of Velero's CRD (../shared/contracts/velero) with jsonschema."""
from __future__ import annotations

import datetime
import importlib

import jsonschema
import pytest
import yaml

from support.module_utils import namespace_of
from support.paths import CONTRACTS

CRD_FILES = {"Backup": "velero.io_backups.yaml", "Restore": "velero.io_restores.yaml", "Schedule": "velero.io_schedules.yaml",
             "BackupStorageLocation": "velero.io_backupstoragelocations.yaml",
             "DeleteBackupRequest": "velero.io_deletebackuprequests.yaml"}


@pytest.fixture(scope="module")
def utils(collections_path):
    """(the Velero family's module_utils in one namespace, kubernetes) imported as infra.k3s from the working tree."""
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader([str(collections_path)])
    velero = namespace_of(*(importlib.import_module("ansible_collections.infra.k3s.plugins.module_utils.%s" % name)
                            for name in ("velero_bodies", "velero_select", "velero_client", "velero_storage", "velero_runners")))
    kubernetes = importlib.import_module("ansible_collections.infra.k3s.plugins.module_utils.kubernetes")
    return velero, kubernetes


@pytest.fixture(scope="module")
def velero(utils):
    return utils[0]


@pytest.fixture(scope="module")
def k8s(utils):
    return utils[1]


def _nullable_to_jsonschema(schema):
    """Kubernetes' `nullable: true` as JSON Schema (type also admits null); x-kubernetes-* keys are ignored by jsonschema."""
    if isinstance(schema, dict):
        out = {k: _nullable_to_jsonschema(v) for k, v in schema.items()}
        if out.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if isinstance(schema, list):
        return [_nullable_to_jsonschema(v) for v in schema]
    return schema


def _strict(schema):
    """Also reject fields the CRD does not know (Kubernetes would prune them silently)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def schemas():
    result = {}
    for kind, filename in CRD_FILES.items():
        crd = yaml.safe_load((CONTRACTS / "velero" / filename).read_text())
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schema = _strict(_nullable_to_jsonschema(version["schema"]["openAPIV3Schema"]))
        schema["properties"]["metadata"] = {"type": "object"}
        result[kind] = schema
    return result


def validate(schemas, body):
    jsonschema.validate(body, schemas[body["kind"]])
    assert body["apiVersion"] == "velero.io/v1"


# ---------------------------------------------------------------------------------------
# Body builders against the CRDs
# ---------------------------------------------------------------------------------------

BACKUP_PARAMS = dict(name="apps-1", namespace="velero", included_namespaces=["apps", "db"], excluded_namespaces=["kube-system"],
                     label_selector={"tier": "db", "replicas": 3}, ttl="72h", storage_location="default", snapshot_volumes=False,
                     default_volumes_to_fs_backup=True, include_cluster_resources=True)


def test_backup_body(velero, schemas):
    body = velero.backup_body(BACKUP_PARAMS)
    validate(schemas, body)
    assert body["metadata"] == {"name": "apps-1", "namespace": "velero"}
    assert body["spec"] == {"includedNamespaces": ["apps", "db"], "excludedNamespaces": ["kube-system"],
                            "labelSelector": {"matchLabels": {"tier": "db", "replicas": "3"}}, "ttl": "72h0m0s",
                            "storageLocation": "default", "snapshotVolumes": False, "defaultVolumesToFsBackup": True,
                            "includeClusterResources": True}
    minimal = velero.backup_body({"name": "b", "namespace": "velero"})
    validate(schemas, minimal)
    assert minimal["spec"] == {}


def test_bodies_reject_what_the_crd_would_prune(velero, schemas):
    body = velero.backup_body(BACKUP_PARAMS)
    body["spec"]["includeNamespaces"] = ["typo"]
    with pytest.raises(jsonschema.ValidationError):
        validate(schemas, body)


def test_restore_body(velero, schemas):
    body = velero.restore_body("r1", "velero", "nightly-20250101020000",
                               dict(included_namespaces=["apps"], namespace_mapping={"apps": "apps-copy"}, restore_pvs=True,
                                    existing_resource_policy="update"))
    validate(schemas, body)
    assert body["spec"] == {"backupName": "nightly-20250101020000", "includedNamespaces": ["apps"],
                            "namespaceMapping": {"apps": "apps-copy"}, "restorePVs": True, "existingResourcePolicy": "update"}
    validate(schemas, velero.restore_body("r2", "velero", "b", {}))


def test_schedule_body(velero, schemas):
    params = dict(BACKUP_PARAMS, name="nightly", schedule="0 2 * * *", paused=True, use_owner_references_in_backup=False)
    body = velero.schedule_body(params)
    validate(schemas, body)
    assert body["spec"]["schedule"] == "0 2 * * *" and body["spec"]["paused"] is True
    assert body["spec"]["useOwnerReferencesInBackup"] is False
    assert body["spec"]["template"] == velero.backup_spec(BACKUP_PARAMS)
    validate(schemas, velero.schedule_body({"name": "s", "namespace": "velero", "schedule": "@every 6h"}))


def test_storage_location_body_r2(velero, schemas):
    params = dict(name="default", namespace="velero", bucket="k3s", prefix="/prod/", provider="aws", r2_account_id="0123abcd",
                  config={"checksumAlgorithm": "CRC32", "insecureSkipTLSVerify": False, "port": 9000}, s3_url=None,
                  credential={"name": "cloud-credentials", "key": "cloud"}, default=True, access_mode="ReadOnly")
    body = velero.bsl_body(params)
    validate(schemas, body)
    assert body["spec"] == {
        "provider": "aws", "objectStorage": {"bucket": "k3s", "prefix": "prod"}, "default": True, "accessMode": "ReadOnly",
        "credential": {"name": "cloud-credentials", "key": "cloud"},
        "config": {"region": "auto", "s3ForcePathStyle": "true", "s3Url": "https://0123abcd.r2.cloudflarestorage.com",
                   "checksumAlgorithm": "CRC32", "insecureSkipTLSVerify": "false", "port": "9000"}}
    mirror = velero.bsl_body(dict(params, config=None, s3_url="https://0123abcd.eu.r2.cloudflarestorage.com", prefix=None))
    validate(schemas, mirror)
    assert mirror["spec"]["config"]["s3Url"] == "https://0123abcd.eu.r2.cloudflarestorage.com"
    assert mirror["spec"]["config"]["checksumAlgorithm"] == "" and "prefix" not in mirror["spec"]["objectStorage"]
    with pytest.raises(velero.InvalidInput, match="needs provider aws"):
        velero.bsl_body(dict(params, provider="gcp"))


def test_delete_backup_request_body(velero, schemas):
    backup = {"metadata": {"name": "n" * 70, "uid": "1234"}}
    body = velero.delete_request_body(backup, "velero")
    validate(schemas, body)
    assert body["spec"] == {"backupName": "n" * 70}
    assert body["metadata"]["generateName"] == "n" * 70 + "-"
    label = body["metadata"]["labels"]["velero.io/backup-name"]
    assert len(label) == 63 and label.startswith("n" * 57)
    assert body["metadata"]["labels"]["velero.io/backup-uid"] == "1234"


SELECTED_PATCH = '{"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "worker4"}}}'


def test_node_mapping_configmap_is_a_resource_modifier(velero, schemas):
    """Velero 1.18 reads no change-pvc-node-selector ConfigMap (pvc_action.go, 7e15e9ba0): the node mapping is a resource
    modifier ConfigMap of one data key (internal/resourcemodifiers/resource_modifiers.go GetResourceModifiersFromConfig)
    that the Restore names in spec.resourceModifier (restore_types.go, a TypedLocalObjectReference)."""
    rules = velero.node_mapping_rules({"worker1": "worker4", "worker2": "worker4"}, ["apps/data-db-0", "apps/up.loads", "wiki/data"],
                                      ["apps", "wiki"])
    name = velero.node_mapping_configmap_name("r1")
    body = velero.node_mapping_configmap("velero", name, rules)
    assert body["metadata"] == {"name": "r1-node-mapping", "namespace": "velero", "labels": {"app.kubernetes.io/managed-by": "infra.k3s"}}
    assert list(body["data"]) == ["node-mapping.yaml"]
    assert yaml.safe_load(body["data"]["node-mapping.yaml"]) == {"version": "v1", "resourceModifierRules": [
        {"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": ["apps"],
                        "resourceNameRegex": "^(data-db-0|up\\.loads)$"}, "mergePatches": [{"patchData": SELECTED_PATCH}]},
        {"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": ["wiki"], "resourceNameRegex": "^(data)$"},
         "mergePatches": [{"patchData": SELECTED_PATCH}]}]}
    restore = velero.restore_body("r1", "velero", "b1", {}, resource_modifier=name)
    validate(schemas, restore)
    assert restore["spec"]["resourceModifier"] == {"kind": "ConfigMap", "name": "r1-node-mapping"}
    assert "resourceModifier" not in velero.restore_body("r1", "velero", "b1", {})["spec"]


PIN = "/spec/template/spec/nodeSelector/kubernetes.io~1hostname"
POD_PIN = "/spec/nodeSelector/kubernetes.io~1hostname"


def pin_rule(resource, regex, path, selector=None, old='"worker1"', new='"worker4"'):
    conditions = {"groupResource": resource, "namespaces": ["monitoring"], "resourceNameRegex": regex,
                  "matches": [{"path": path, "value": old}]}
    if selector:
        conditions["labelSelector"] = selector
    return {"conditions": conditions, "patches": [{"operation": "replace", "path": path, "value": new}]}


def test_pinned_workload_rules_move_the_nodeselector_pin(velero):
    """Issue 19: the workload, a Deployment's ReplicaSets and the pods, each guarded by conditions.matches on the pin
    (internal/resourcemodifiers/resource_modifiers.go matchConditions) and patched by a JSON patch replace; values in
    double quotes so that json_patch.go addQuotes keeps a node name that looks like a number a string."""
    selector = {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    workloads = [{"kind": "Deployment", "namespace": "monitoring", "name": "kps.grafana", "selector": selector},
                 {"kind": "StatefulSet", "namespace": "monitoring", "name": "alertmanager", "selector": None}]
    rules = velero.pinned_workload_rules({"worker1": "worker4"}, workloads)
    assert rules == [
        pin_rule("deployments.apps", "^kps\\.grafana$", PIN),
        pin_rule("replicasets.apps", "^kps\\.grafana-[a-z0-9]+$", PIN, selector),
        pin_rule("pods", "^kps\\.grafana-[a-z0-9-]+$", POD_PIN, selector),
        # A StatefulSet: its pods only (its template's new revision would make the StatefulSet controller delete the
        # restored pod before its data is back: velero_bodies.PINNED_KINDS).
        pin_rule("pods", "^alertmanager-[0-9]+$", POD_PIN)]
    # One set per old node; a node mapped onto itself needs none; nothing without workloads.
    two = velero.pinned_workload_rules({"worker2": "worker4", "worker1": "worker4", "worker4": "worker4"}, workloads[1:])
    assert [r["conditions"]["matches"][0]["value"] for r in two] == ['"worker1"', '"worker2"']
    assert velero.pinned_workload_rules({"worker1": "worker4"}, None) == [] == velero.pinned_workload_rules({}, workloads)
    with pytest.raises(velero.VeleroError, match="needs kind"):
        velero.pinned_workload_rules({"worker1": "worker4"}, [{"kind": "DaemonSet", "namespace": "a", "name": "b"}])
    # The ConfigMap holds both kinds of rules and is still one data key.
    body = velero.node_mapping_configmap("velero", "r1-node-mapping", velero.node_mapping_rules(
        {"worker1": "worker4"}, ["monitoring/grafana"], None) + rules)
    assert len(yaml.safe_load(body["data"]["node-mapping.yaml"])["resourceModifierRules"]) == 5


def pinned_objects(node_selector):
    """A Deployment, its ReplicaSet and pod as a backup holds them, pinned by node_selector (None: not pinned)."""
    labels = {"app.kubernetes.io/name": "grafana"}
    pod_spec = {"containers": [{"name": "grafana", "image": "grafana"}]}
    if node_selector is not None:
        pod_spec["nodeSelector"] = dict(node_selector)
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    return [("deployments.apps", {"kind": "Deployment", "metadata": {"name": "kps-grafana", "namespace": "monitoring", "labels": labels},
                                  "spec": {"selector": {"matchLabels": labels}, "template": template}}),
            ("replicasets.apps", {"kind": "ReplicaSet", "metadata": {"name": "kps-grafana-7d9bc", "namespace": "monitoring",
                                                                     "labels": dict(labels, **{"pod-template-hash": "7d9bc"})},
                                  "spec": {"selector": {"matchLabels": labels}, "template": template}}),
            ("pods", {"kind": "Pod", "metadata": {"name": "kps-grafana-7d9bc-x2k4q", "namespace": "monitoring", "labels": labels},
                      "spec": pod_spec})]


@pytest.mark.parametrize("pin, expected", [
    ({"kubernetes.io/hostname": "worker1", "kubernetes.io/os": "linux"}, {"kubernetes.io/hostname": "worker4", "kubernetes.io/os": "linux"}),
    ({"kubernetes.io/hostname": "master1"}, {"kubernetes.io/hostname": "master1"}),  # pinned to a third node
    ({"kubernetes.io/os": "linux"}, {"kubernetes.io/os": "linux"}),  # pinned by another label only
    (None, None),  # not pinned: no nodeSelector at all
])
def test_pinned_workload_rules_as_velero_applies_them(velero, pin, expected):
    """The rules through the stand-in Velero's resource modifier engine (tests/standins/velero/modifiers.py, which
    follows resource_modifiers.go and json_patch.go): only an object pinned to the old node changes, and an object pinned
    elsewhere or not at all matches no rule, so no "replace" of a missing path fails the restore."""
    from standins.velero import controller, modifiers  # pylint: disable=import-outside-toplevel
    rules = velero.pinned_workload_rules({"worker1": "worker4"}, [
        {"kind": "Deployment", "namespace": "monitoring", "name": "kps-grafana",
         "selector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}])
    configmap = velero.node_mapping_configmap("velero", "r1-node-mapping", rules)
    read = modifiers.read(configmap, "velero", "r1-node-mapping")  # valid as Velero's validator has it
    for resource, obj in pinned_objects(pin):
        applied, errors = modifiers.apply(read, obj, resource, "monitoring", controller.selector_match, controller.namespace_selected)
        spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
        assert errors == [] and spec.get("nodeSelector") == expected, (resource, obj)
        assert len(applied) == (1 if expected != pin else 0), (resource, applied)
    # A Deployment whose name is long: its ReplicaSet's pods get generateName's base cut to 58 characters
    # (kubernetes/apiserver pkg/storage/names/generate.go), so they do not end in -<hash>-<5>; they are still moved.
    long_name = "kube-prometheus-stack-grafana-dashboards-sidecar-x"  # 50 characters
    long_rules = velero.pinned_workload_rules({"worker1": "worker4"}, [
        {"kind": "Deployment", "namespace": "monitoring", "name": long_name,
         "selector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}])
    long_read = modifiers.read(velero.node_mapping_configmap("velero", "r2-node-mapping", long_rules), "velero", "r2-node-mapping")
    resource, long_pod = pinned_objects({"kubernetes.io/hostname": "worker1"})[2]
    long_pod["metadata"]["name"] = (long_name + "-6b9f7c8d5c-")[:58] + "x2k4q"
    assert not long_pod["metadata"]["name"].startswith(long_name + "-6b9f7c8d5c-")
    applied, errors = modifiers.apply(long_read, long_pod, resource, "monitoring", controller.selector_match, controller.namespace_selected)
    assert errors == [] and len(applied) == 1 and long_pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "worker4"}
    # Another Deployment's pods (other labels), named like this one's, are not touched.
    resource, stranger = pinned_objects({"kubernetes.io/hostname": "worker1"})[2]
    stranger["metadata"]["labels"] = {"app.kubernetes.io/name": "other"}
    assert modifiers.apply(read, stranger, resource, "monitoring", controller.selector_match, controller.namespace_selected) == ([], [])
    assert stranger["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "worker1"}


def test_node_mapping_rules_without_claims_and_refusals(velero):
    everything = velero.node_mapping_rules({"worker1": "worker4"}, None, None)
    assert everything == [{"conditions": {"groupResource": "persistentvolumeclaims"}, "mergePatches": [{"patchData": SELECTED_PATCH}]}]
    scoped = velero.node_mapping_rules({"worker1": "worker4"}, None, ["apps"])
    assert scoped[0]["conditions"] == {"groupResource": "persistentvolumeclaims", "namespaces": ["apps"]}
    assert velero.node_mapping_rules({"worker1": "worker4"}, [], ["apps"]) == []
    with pytest.raises(velero.VeleroError, match="maps to worker4, worker5: .* one node only"):
        velero.node_mapping_rules({"worker1": "worker4", "worker2": "worker5"}, None, None)
    with pytest.raises(velero.VeleroError, match="'data' is not namespace/name"):
        velero.node_mapping_rules({"worker1": "worker4"}, ["data"], None)
    assert velero.node_mapping_configmap_name("r" * 250).endswith("r-node-mapping")
    assert len(velero.node_mapping_configmap_name("r" * 250)) == 253


# ---------------------------------------------------------------------------------------
# Durations, patches
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("720h", "720h0m0s"), ("720h0m0s", "720h0m0s"), ("1.5h", "1h30m0s"), ("90m", "1h30m0s"), ("30s", "30s"), ("0", "0s"),
    ("2m3.5s", "2m3.5s"), ("1500ms", "1.5s"), ("10ms", "10ms"), ("1h1s", "1h0m1s"), ("45m", "45m0s"),
])
def test_go_duration(velero, text, expected):
    assert velero.go_duration(text) == expected


@pytest.mark.parametrize("text", ["a week", "7d", "", "-1h", "1hour"])
def test_go_duration_rejects(velero, text):
    with pytest.raises(velero.InvalidInput):
        velero.go_duration(text)


def test_schedule_patch_keeps_unmanaged_and_equal_ttl(velero):
    current = {"schedule": "0 2 * * *", "template": {"ttl": "168h", "includedNamespaces": ["apps"], "hooks": {"resources": []}}}
    desired = velero.schedule_spec({"schedule": "0 2 * * *", "ttl": "168h0m0s", "included_namespaces": ["apps"]})
    assert velero.schedule_patch(current, desired) == {}  # paused missing == false; 168h == 168h0m0s
    desired = velero.schedule_spec({"schedule": "0 3 * * *", "ttl": "24h", "paused": True})
    patch = velero.schedule_patch(current, desired)
    assert patch == {"schedule": "0 3 * * *", "paused": True, "template": {"ttl": "24h0m0s", "includedNamespaces": None}}
    after = velero.merge_patch(current, patch)
    assert after["template"] == {"ttl": "24h0m0s", "hooks": {"resources": []}}


def test_bsl_patch_is_exact_on_config(velero):
    current = {"provider": "aws", "objectStorage": {"bucket": "b", "prefix": "old"}, "config": {"region": "auto", "profile": "x"},
               "credential": {"name": "c", "key": "k"}}
    desired = velero.bsl_spec({"bucket": "b", "provider": "aws", "config": {"region": "auto"}})
    patch = velero.bsl_patch(current, desired)
    assert patch == {"objectStorage": {"prefix": None}, "config": {"profile": None}, "credential": None}
    assert velero.bsl_patch(velero.merge_patch(current, patch), desired) == {}


# ---------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------

def backup(name, phase, minutes_ago=None, schedule=None, **spec):
    status = {"phase": phase}
    if minutes_ago is not None:
        when = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)
        status["startTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {"velero.io/schedule-name": schedule} if schedule else {}
    return {"metadata": {"name": name, "labels": labels, "creationTimestamp": "2024-01-01T00:00:00Z"}, "spec": spec, "status": status}


def test_latest_backup_like_velero(velero):
    backups = [backup("nightly-1", "Completed", 120, "nightly"), backup("nightly-2", "Completed", 60, "nightly"),
               backup("nightly-3", "PartiallyFailed", 10, "nightly"), backup("nightly-4", "Failed", 5, "nightly"),
               backup("nightly-5", "InProgress", 1, "nightly"), backup("hourly-1", "Completed", 0, "hourly"),
               backup("nightly-x", "Completed", None, "nightly")]
    assert velero.latest_backup(backups, ["Completed"], "nightly")["metadata"]["name"] == "nightly-2"
    assert velero.latest_backup(backups, ["Completed", "PartiallyFailed"], "nightly")["metadata"]["name"] == "nightly-3"
    assert velero.latest_backup(backups, ["Completed"])["metadata"]["name"] == "hourly-1"
    assert velero.latest_backup(backups, ["Completed"], "weekly") is None
    # a fractional timestamp and an offset compare by time, not text
    late = backup("nightly-late", "Completed", schedule="nightly")
    late["status"]["startTimestamp"] = "2025-01-01T13:00:00.5+02:00"  # 11:00:00.5Z: after nightly-2 (11:00Z)
    assert velero.latest_backup(backups + [late], ["Completed"], "nightly")["metadata"]["name"] == "nightly-late"


def test_long_schedule_name_matches_velero_label(velero):
    name = "s" * 80
    label = velero.valid_label_value(name)
    assert len(label) == 63
    assert velero.latest_backup([backup("b", "Completed", 1, label)], ["Completed"], name)["metadata"]["name"] == "b"


@pytest.mark.parametrize("spec,included", [
    ({}, True), ({"includedNamespaces": ["*"]}, True), ({"includedNamespaces": ["apps"]}, True),
    ({"includedNamespaces": ["db"]}, False), ({"includedNamespaces": ["*"], "excludedNamespaces": ["apps"]}, False),
    ({"excludedNamespaces": ["apps"]}, False), ({"excludedNamespaces": ["db"]}, True),
    # Velero's namespace globs (pkg/util/collections/includes_excludes.go, wildcard/expand.go), as label_selector reads them.
    ({"includedNamespaces": ["ap*"]}, True), ({"includedNamespaces": ["*"], "excludedNamespaces": ["a?ps"]}, False),
])
def test_includes_namespace(velero, spec, included):
    assert velero.includes_namespace({"spec": spec}, "apps") is included


def test_check_outcome(velero):
    done = backup("b", "Completed", 1)
    done["metadata"]["namespace"] = "velero"
    velero.check_outcome("Backup", done, False)
    partial = dict(done, status={"phase": "PartiallyFailed", "errors": 2, "warnings": 1})
    velero.check_outcome("Backup", partial, True)
    with pytest.raises(velero.VeleroError, match="PartiallyFailed with 2 error") as info:
        velero.check_outcome("Backup", partial, False)
    assert info.value.result["error_count"] == 2 and info.value.result["phase"] == "PartiallyFailed"
    with pytest.raises(velero.VeleroError, match="failed: disk full"):
        velero.check_outcome("Restore", dict(done, status={"phase": "Failed", "failureReason": "disk full"}), True)
    with pytest.raises(velero.VeleroError, match="failed validation: bad; worse"):
        velero.check_outcome("Backup", dict(done, status={"phase": "FailedValidation", "validationErrors": ["bad", "worse"]}), True)


def test_phase_sets_are_the_crd_enum(velero):
    crd = yaml.safe_load((CONTRACTS / "velero" / "velero.io_backups.yaml").read_text())
    enum = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
    assert set(velero.BACKUP_PHASES) == set(enum)
    assert velero.BACKUP_TERMINAL | (velero.BACKUP_RUNNING - {""}) | {velero.BACKUP_DELETING} == set(enum)
    assert not velero.BACKUP_TERMINAL & velero.BACKUP_RUNNING


# ---------------------------------------------------------------------------------------
# Waiting for a run (velero_runners.py with waiter.py's Waiter; the waiter's own tests are test_waiter.py)
# ---------------------------------------------------------------------------------------

def test_waiter_predicate_can_fail(velero):
    def done(obj):
        raise velero.VeleroError("deletion failed")

    with pytest.raises(velero.VeleroError, match="deletion failed"):
        velero.Waiter(lambda: {}, done, timeout=10).wait("x")


def test_wait_run_timeout_carries_outcome(velero):
    class API(object):
        namespace = "velero"

        @staticmethod
        def get(plural, name):
            return {"metadata": {"name": name}, "status": {"phase": "InProgress", "progress": {"itemsBackedUp": 3, "totalItems": 9}}}

    with pytest.raises(velero.WaitTimeout) as info:
        velero._wait_run(API(), velero.BACKUPS, "b", {"wait_timeout": 0, "wait_sleep": 1}, False, sleeper=lambda s: None)
    assert "phase InProgress (3/9 items)" in info.value.msg
    assert info.value.result["phase"] == "InProgress" and info.value.result["backup"]["metadata"]["name"] == "b"


def test_api_client_from_host_and_token(k8s, tmp_path):
    api = k8s.build_api_client({"host": "https://192.0.2.1:6443/", "api_key": "t0ken", "validate_certs": False, "ca_cert": None})
    cfg = api.configuration
    assert cfg.host == "https://192.0.2.1:6443" and cfg.verify_ssl is False
    assert cfg.api_key == {"authorization": "Bearer t0ken"}
    with pytest.raises(k8s.KubernetesError, match="does not exist"):
        k8s.build_api_client({"kubeconfig": str(tmp_path / "missing")})

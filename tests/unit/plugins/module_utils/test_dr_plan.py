"""Unit tests of plugins/module_utils/dr_plan.py: which volumes, pods and workloads a lost node had, and which
backup holds them."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from support.module_utils import load_module_utils
from support.paths import PROJECT_ROOT


def _load_dr_plan():
    """dr_plan.py with its import of label_selector (by collection name) satisfied, then removed from sys.modules."""
    name = "ansible_collections.infra.k3s.plugins.module_utils.label_selector"
    saved = sys.modules.get(name)
    sys.modules[name] = load_module_utils("label_selector")
    try:
        spec = importlib.util.spec_from_file_location("infra_k3s_module_utils_dr_plan",
                                                      PROJECT_ROOT / "plugins" / "module_utils" / "dr_plan.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved
    return module


dr = _load_dr_plan()
NODE, OTHER = "worker1", "worker2"


def pv(name, node, path=None, claim=None, local=False, terms=None):
    spec = {"nodeAffinity": {"required": {"nodeSelectorTerms": terms or [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
    if path:
        spec["local" if local else "hostPath"] = {"path": path} if local else {"path": path, "type": "DirectoryOrCreate"}
    if claim:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1]}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Bound"}}


def pvc(namespace, name, volume="", selected=None):
    meta = {"namespace": namespace, "name": name}
    if selected:
        meta["annotations"] = {"volume.kubernetes.io/selected-node": selected}
    return {"metadata": meta, "spec": {"volumeName": volume}}


def pod(namespace, name, node, claims=(), owner=None, labels=None):
    meta = {"namespace": namespace, "name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": owner[2] if len(owner) > 2 else True}]
    return {"metadata": meta, "spec": {"nodeName": node, "volumes": [
        {"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims] + [{"name": "tmp", "emptyDir": {}}]}}


def rs(namespace, name, deployment):
    return {"metadata": {"namespace": namespace, "name": name,
                         "ownerReferences": [{"kind": "Deployment", "name": deployment, "controller": True}]}}


def workload(namespace, name, labels):
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}}


def backup(name, start, phase="Completed", **spec):
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase, "startTimestamp": start}}


# --- node_volumes -------------------------------------------------------------------

def test_node_volumes_pinned_by_hostname_with_a_path():
    pvs = {"resources": [
        pv("a", NODE, "/var/lib/rancher/k3s/storage/a_shop_data", ("shop", "data")),
        pv("b", OTHER, "/var/lib/rancher/k3s/storage/b", ("shop", "other")),
        pv("c", NODE, "/mnt/c", local=True),
        pv("d", NODE),  # no path on the node (e.g. a CSI volume pinned by topology)
        pv("e", NODE, "/x", terms=[{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [NODE]}]}]),
        pv("f", NODE, "/y", terms=[{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": [NODE]}]},
                                   {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["x", NODE]}]}]),
        {"metadata": {"name": "g"}, "spec": {"hostPath": {"path": "/z"}}},  # no affinity: not pinned
    ]}
    got = dr.node_volumes(pvs, NODE)
    assert got == [
        {"pv": "a", "path": "/var/lib/rancher/k3s/storage/a_shop_data", "type": "DirectoryOrCreate", "phase": "Bound", "claim": "shop/data"},
        {"pv": "c", "path": "/mnt/c", "type": "", "phase": "Bound", "claim": "PV c (unclaimed)"},
        {"pv": "f", "path": "/y", "type": "DirectoryOrCreate", "phase": "Bound", "claim": "PV f (unclaimed)"},
    ]
    # kubectl's List (items) and a plain list read the same.
    assert dr.node_volumes({"items": pvs["resources"]}, NODE) == got == dr.node_volumes(pvs["resources"], NODE)
    assert dr.node_volumes(None, NODE) == []


# --- failover_plan -------------------------------------------------------------------

def cluster():
    return dict(
        pvs=[pv("pv-web", NODE, "/s/web", ("shop", "web-data")), pv("pv-wiki", OTHER, "/s/wiki", ("wiki", "wiki-data"))],
        pvcs=[pvc("shop", "web-data", "pv-web", NODE), pvc("wiki", "wiki-data", "pv-wiki", OTHER),
              pvc("db", "pending", "", NODE)],  # selected for the node, never bound
        pods=[pod("shop", "web-rs1-a", NODE, ["web-data"], ("ReplicaSet", "web-rs1"), {"app": "web"}),
              pod("db", "pg-0", NODE, ["pending"], ("StatefulSet", "pg"), {"app": "pg"}),
              pod("wiki", "wiki-rs-a", OTHER, ["wiki-data"], ("ReplicaSet", "wiki-rs"), {"app": "wiki"}),
              pod("kube-system", "stuck", NODE, [], ("ReplicaSet", "coredns-rs"), {"k8s-app": "dns"}),
              pod("kube-system", "agent", NODE, [], ("DaemonSet", "svclb"), {})],
        replicasets=[rs("shop", "web-rs1", "web"), rs("shop", "web-rs0", "web"), rs("wiki", "wiki-rs", "wiki"),
                     rs("kube-system", "coredns-rs", "coredns")],
        deployments={"resources": [workload("shop", "web", {"app": "web", "tier": "front"}), workload("wiki", "wiki", {"app": "wiki"})]},
        statefulsets=[workload("db", "pg", {"app": "pg"})],
    )


def test_failover_plan_finds_claims_pods_workloads_and_what_to_cover():
    plan = dr.failover_plan(NODE, **cluster())
    assert plan["volumes"] == ["pv-web"]
    assert plan["claims"] == [{"namespace": "shop", "name": "web-data", "volume": "pv-web"},
                              {"namespace": "db", "name": "pending", "volume": ""}]
    assert plan["claim_keys"] == ["shop/web-data", "db/pending"]
    assert plan["namespaces"] == ["db", "shop"]
    assert [(p["namespace"], p["name"], p["uses_volume"]) for p in plan["pods"]] == [
        ("shop", "web-rs1-a", True), ("db", "pg-0", True), ("kube-system", "stuck", False)]
    assert plan["workloads"] == [{"kind": "Deployment", "namespace": "shop", "name": "web"},
                                 {"kind": "StatefulSet", "namespace": "db", "name": "pg"}]
    # Every replica set of the Deployment goes (an old one would bring the pods back), none of others.
    assert plan["replicasets"] == [{"namespace": "shop", "name": "web-rs1"}, {"namespace": "shop", "name": "web-rs0"}]
    kinds = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in plan["delete_objects"]]
    assert kinds == [("Deployment", "shop", "web"), ("StatefulSet", "db", "pg"), ("ReplicaSet", "shop", "web-rs1"),
                     ("ReplicaSet", "shop", "web-rs0"), ("Pod", "shop", "web-rs1-a"), ("Pod", "db", "pg-0"),
                     ("Pod", "kube-system", "stuck")]
    assert [(o["kind"], o["metadata"]) for o in plan["volume_objects"]] == [
        ("PersistentVolumeClaim", {"namespace": "shop", "name": "web-data"}),
        ("PersistentVolumeClaim", {"namespace": "db", "name": "pending"}),
        ("PersistentVolume", {"name": "pv-web"})]
    assert plan["cover"] == [
        {"kind": "Pod", "namespace": "shop", "name": "web-rs1-a", "labels": {"app": "web"}},
        {"kind": "Pod", "namespace": "db", "name": "pg-0", "labels": {"app": "pg"}},
        {"kind": "Deployment", "namespace": "shop", "name": "web", "labels": {"app": "web", "tier": "front"}},
        {"kind": "StatefulSet", "namespace": "db", "name": "pg", "labels": {"app": "pg"}}]


def test_failover_plan_ignores_non_controller_owners_and_an_empty_node():
    data = cluster()
    data["pods"][0]["metadata"]["ownerReferences"][0]["controller"] = False
    plan = dr.failover_plan(NODE, **data)
    assert {"kind": "Deployment", "namespace": "shop", "name": "web"} not in plan["workloads"]
    empty = dr.failover_plan("worker9", **cluster())
    assert empty["claims"] == [] and empty["namespaces"] == [] and empty["cover"] == [] and empty["delete_objects"] == []


# --- pick_backup ---------------------------------------------------------------------

WEB = [{"kind": "Pod", "namespace": "shop", "name": "web-a", "labels": {"app": "web"}},
       {"kind": "Deployment", "namespace": "shop", "name": "web", "labels": {"app": "web", "tier": "front"}}]


def test_pick_backup_newest_completed_that_takes_every_object():
    backups = [
        backup("old", "2026-01-01T00:00:00Z", includedNamespaces=["shop"]),
        backup("failed", "2026-01-05T00:00:00Z", phase="PartiallyFailed", includedNamespaces=["shop"]),
        backup("other-ns", "2026-01-04T00:00:00Z", includedNamespaces=["wiki"]),
        backup("excluded", "2026-01-04T00:00:01Z", includedNamespaces=["*"], excludedNamespaces=["sh*"]),
        backup("pods-only", "2026-01-03T00:00:00Z", labelSelector={"matchExpressions": [
            {"key": "tier", "operator": "DoesNotExist"}]}),  # takes the pod, not the Deployment
        backup("ors", "2026-01-02T00:00:00Z", orLabelSelectors=[{"matchLabels": {"app": "web"}}, {"matchLabels": {"x": "y"}}],
               labelSelector={"matchLabels": {"never": "x"}}),
        backup("running", "2026-01-06T00:00:00Z", phase="InProgress"),
        backup("unstarted", "", phase="Completed"),
    ]
    got = dr.pick_backup({"resources": backups}, WEB)
    assert got["name"] == "ors" and got["start_timestamp"] == "2026-01-02T00:00:00Z" and got["phase"] == "Completed"
    assert [(c["name"], c["reason"]) for c in got["checked"]] == [
        ("running", "phase InProgress"),
        ("failed", "phase PartiallyFailed"),
        ("excluded", "does not include namespace shop"),
        ("other-ns", "does not include namespace shop"),
        ("pods-only", "its labelSelector {'matchExpressions': [{'key': 'tier', 'operator': 'DoesNotExist'}]} selects none of "
                      "Deployment shop/web"),
        ("ors", ""),
    ]
    # PartiallyFailed allowed, by name.
    assert dr.pick_backup(backups, WEB, name="failed", phases=("Completed", "PartiallyFailed"))["name"] == "failed"
    assert dr.pick_backup(backups, WEB, name="other-ns")["name"] == ""
    assert dr.pick_backup(backups, WEB, name="nope") == {"name": "", "start_timestamp": "", "phase": "", "checked": []}


def test_pick_backup_any_mode_and_same_second():
    labelled = [{"namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}}, {"namespace": "shop", "labels": {"app": "web"}}]
    backups = [backup("a", "2026-01-01T00:00:00Z", orLabelSelectors=[{"matchLabels": {"app": "web"}}]),
               backup("b", "2026-01-01T00:00:00Z", labelSelector={"matchLabels": {"app": "api"}})]
    assert dr.pick_backup(backups, labelled, mode="all")["name"] == ""
    got = dr.pick_backup(backups, labelled, mode="any")
    assert got["name"] == "a"  # b (same start, later name) was checked first and passed over
    assert got["checked"][0]["name"] == "b" and "selects none of" in got["checked"][0]["reason"]
    with pytest.raises(ValueError):
        dr.pick_backup(backups, labelled, mode="some")

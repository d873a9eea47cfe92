"""Unit tests of plugins/module_utils/dr_plan.py: which volumes, pods and workloads a lost node had, and which
backup holds them."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from support.module_utils import load_module_utils
from support.paths import PROJECT_ROOT


def _load_dr_plan():
    """dr_plan.py with its imports of label_selector and dns_plan (by collection name) satisfied, then removed from
    sys.modules."""
    names = {"ansible_collections.infra.k3s.plugins.module_utils." + short: short for short in ("label_selector", "dns_plan")}
    saved = {name: sys.modules.get(name) for name in names}
    for name, short in names.items():
        sys.modules[name] = load_module_utils(short)
    try:
        spec = importlib.util.spec_from_file_location("infra_k3s_module_utils_dr_plan",
                                                      PROJECT_ROOT / "plugins" / "module_utils" / "dr_plan.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, module_before in saved.items():
            if module_before is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module_before
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


def pinned(obj, node, selector=None):
    """obj with a pod template pinned by nodeSelector kubernetes.io/hostname to node (and a spec.selector)."""
    obj["spec"] = {"selector": selector or {"matchLabels": dict(obj["metadata"]["labels"])},
                   "template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}}}}
    return obj


def test_failover_plan_lists_the_workloads_pinned_to_the_node():
    """Issue 19: Grafana's Deployment (and any workload) pinned by nodeSelector to the lost node is listed with its
    selector, so that the restore moves the pin; one pinned to another node, or not pinned, is not."""
    data = cluster()
    data["pods"].append(pod("shop", "api-rs-a", NODE, ["web-data"], ("ReplicaSet", "api-rs"), {"app": "api"}))
    data["pods"].append(pod("shop", "cron-rs-a", NODE, ["web-data"], ("ReplicaSet", "cron-rs"), {"app": "cron"}))
    data["replicasets"] += [rs("shop", "api-rs", "api"), rs("shop", "cron-rs", "cron")]
    expressions = {"matchLabels": {"app": "pg"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}
    data["deployments"]["resources"] = [pinned(workload("shop", "web", {"app": "web"}), NODE),
                                        pinned(workload("shop", "api", {"app": "api"}), "master1"),  # a third node
                                        workload("shop", "cron", {"app": "cron"}),  # not pinned
                                        pinned(workload("wiki", "wiki", {"app": "wiki"}), NODE)]  # uses no lost volume
    data["statefulsets"] = [pinned(workload("db", "pg", {"app": "pg"}), NODE, expressions)]
    plan = dr.failover_plan(NODE, **data)
    assert [w["name"] for w in plan["workloads"]] == ["web", "pg", "api", "cron"]
    assert plan["pinned"] == [
        {"kind": "Deployment", "namespace": "shop", "name": "web", "selector": {"matchLabels": {"app": "web"}}},
        {"kind": "StatefulSet", "namespace": "db", "name": "pg", "selector": expressions}]
    assert dr.pinned_to(data["deployments"]["resources"][1]) == "master1"
    assert dr.pinned_to(data["deployments"]["resources"][2]) == "" == dr.pinned_to(None)
    # Without the live objects (not read), nothing is known to be pinned.
    assert dr.failover_plan(NODE, **dict(data, deployments=None, statefulsets=None))["pinned"] == []
    assert dr.failover_plan(NODE, **cluster())["pinned"] == []


def test_failover_plan_holds_the_prometheus_operator_objects_owning_restored_statefulsets():
    """Issue 19: a StatefulSet controlled by a prometheus-operator object (Prometheus, Alertmanager, ThanosRuler) among
    the workloads to restore names its owner in holds, with whether it is paused already and pinned to the node; an
    owner not read, with another uid, of another kind, or not the controller, is left out."""
    data = cluster()
    data["pods"] += [pod("monitoring", "prometheus-k-0", NODE, ["prom-db"], ("StatefulSet", "prometheus-k")),
                     pod("monitoring", "alertmanager-k-0", NODE, ["am-db"], ("StatefulSet", "alertmanager-k")),
                     pod("monitoring", "other-0", NODE, ["other-db"], ("StatefulSet", "other")),
                     pod("monitoring", "gone-0", NODE, ["gone-db"], ("StatefulSet", "gone"))]
    data["pvcs"] += [pvc("monitoring", c, selected=NODE) for c in ("prom-db", "am-db", "other-db", "gone-db")]

    def owned(name, kind, owner, uid="u1", controller=True):
        sts = workload("monitoring", name, {})
        sts["metadata"]["ownerReferences"] = [{"apiVersion": "monitoring.coreos.com/v1", "kind": kind, "name": owner,
                                               "uid": uid, "controller": controller}]
        return sts

    def operated(kind, name, uid="u1", paused=None, node=None):
        spec = {} if paused is None else {"paused": paused}
        if node:
            spec["nodeSelector"] = {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux"}
        return {"kind": kind, "metadata": {"namespace": "monitoring", "name": name, "uid": uid}, "spec": spec}

    data["statefulsets"] = [owned("prometheus-k", "Prometheus", "k"), owned("alertmanager-k", "Alertmanager", "k", uid="u2"),
                            owned("other", "Prometheus", "k", controller=False), owned("gone", "Prometheus", "old", uid="u9")]
    lists = [{"resources": [operated("Prometheus", "k", node=NODE), operated("Prometheus", "old", uid="u8")]},
             {"resources": [operated("Alertmanager", "k", uid="u2", paused=True, node=OTHER)]},
             {"resources": [], "api_found": False}]
    plan = dr.failover_plan(NODE, **data, operated=lists)
    assert plan["holds"] == [
        {"api_version": "monitoring.coreos.com/v1", "kind": "Prometheus", "namespace": "monitoring", "name": "k",
         "statefulset": "prometheus-k", "paused": False, "pinned": True},
        {"api_version": "monitoring.coreos.com/v1", "kind": "Alertmanager", "namespace": "monitoring", "name": "k",
         "statefulset": "alertmanager-k", "paused": True, "pinned": False}]
    # Paused by an earlier failover that stopped in between (its annotation): still the failover's to resume.
    lists[0]["resources"][0]["spec"]["paused"] = True
    lists[0]["resources"][0]["metadata"]["annotations"] = {dr.PAUSED_BY: NODE}
    assert dr.failover_plan(NODE, **data, operated=lists)["holds"][0]["paused"] is False
    # Nothing read (no monitoring.coreos.com API): nothing to hold.
    assert dr.failover_plan(NODE, **data)["holds"] == []


def test_failover_plan_pins_after_the_restore_the_statefulsets_no_operator_rewrites():
    """pin_after: the pinned StatefulSets that are not an operator's held one, by namespace and name (a StatefulSet of
    the same name in another namespace is still pinned by the failover)."""
    data = cluster()
    data["pods"] += [pod("monitoring", "web-0", NODE, ["a"], ("StatefulSet", "web")),
                     pod("shop", "web-0", NODE, ["b"], ("StatefulSet", "web"))]
    data["pvcs"] += [pvc("monitoring", "a", selected=NODE), pvc("shop", "b", selected=NODE)]
    owned = pinned(workload("monitoring", "web", {"app": "web"}), NODE)
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", "name": "k",
                                             "uid": "u1", "controller": True}]
    data["statefulsets"] = [owned, pinned(workload("shop", "web", {"app": "web"}), NODE)]
    prometheus = {"kind": "Prometheus", "metadata": {"namespace": "monitoring", "name": "k", "uid": "u1"}, "spec": {}}
    plan = dr.failover_plan(NODE, **data, operated=[[prometheus]])
    assert [(p["kind"], p["namespace"], p["name"]) for p in plan["pinned"]] == [
        ("StatefulSet", "monitoring", "web"), ("StatefulSet", "shop", "web")]
    assert [h["statefulset"] for h in plan["holds"]] == ["web"]
    assert plan["pin_after"] == [{"namespace": "shop", "name": "web"}]
    assert dr.failover_plan(NODE, **data)["pin_after"] == [{"namespace": "monitoring", "name": "web"}, {"namespace": "shop", "name": "web"}]


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


def test_pick_backup_passes_over_backups_whose_resource_filter_leaves_the_data_out():
    backups = [
        backup("no-claims", "2026-01-04T00:00:00Z", includedResources=["pods", "deployments"]),
        backup("no-deployments", "2026-01-03T00:00:00Z", includedNamespaceScopedResources=["pods", "persistentvolumeclaims"]),
        backup("scoped-no-claims", "2026-01-02T00:00:00Z", excludedNamespaceScopedResources=["persistentvolumeclaims"]),
        backup("all", "2026-01-01T00:00:00Z", includedResources=["*"]),
    ]
    got = dr.pick_backup(backups, WEB)
    assert got["name"] == "all"
    assert [(c["name"], c["reason"]) for c in got["checked"]] == [
        ("no-claims", "does not include resource persistentvolumeclaims (the claims the volumes' data comes back in)"),
        ("no-deployments", "does not include resource deployments.apps"),
        ("scoped-no-claims", "does not include resource persistentvolumeclaims (the claims the volumes' data comes back in)"),
        ("all", ""),
    ]
    # Any one object is enough in mode any, but never without the claims.
    assert dr.pick_backup(backups, WEB, mode="any")["name"] == "no-deployments"


def node(name, ready="True", cordoned=False, conditions=True):
    status = {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]} if conditions else {}
    return {"metadata": {"name": name}, "spec": {"unschedulable": True} if cordoned else {}, "status": status}


def test_failover_check_refuses_missing_unready_or_cordoned_nodes_naming_each():
    nodes = {"resources": [node("master1", ready="Unknown"), node(NODE, ready="Unknown"), node(OTHER)]}
    assert dr.failover_check(nodes, NODE, OTHER) == {"ok": True, "error": "", "source_ready": "Unknown"}
    check = dr.failover_check(nodes, "worker9", "master1")
    assert not check["ok"]
    assert check["error"] == ("Cannot fail over worker9 -> master1: node worker9 does not exist; target master1 is not Ready"
                              " (Unknown); nodes: master1, worker1, worker2. Nothing was changed.")
    cordoned = {"resources": [node(NODE, ready="False"), node(OTHER, cordoned=True)]}
    assert "target worker2 is cordoned" in dr.failover_check(cordoned, NODE, OTHER)["error"]
    assert "node worker3 does not exist" in dr.failover_check(nodes, NODE, "worker3")["error"]
    # A node that posts no Ready condition is not Ready.
    assert "not Ready (Unknown)" in dr.failover_check([node(NODE), node(OTHER, conditions=False)], NODE, OTHER)["error"]


def test_failover_check_refuses_a_ready_source_unless_forced():
    nodes = [node(NODE), node(OTHER)]
    check = dr.failover_check(nodes, NODE, OTHER)
    assert not check["ok"] and check["source_ready"] == "True"
    assert check["error"].startswith("Node worker1 is Ready") and "-e force=true" in check["error"]
    assert dr.failover_check(nodes, NODE, OTHER, force=True)["ok"]


def test_restore_check_and_node_mapping():
    nodes = {"resources": [node("master1"), node(NODE, ready="False"), node(OTHER)]}
    assert dr.restore_node_mapping(nodes, OTHER) == {"master1": OTHER, NODE: OTHER}
    assert dr.restore_node_mapping(nodes, "") == {}  # clears a mapping an earlier restore left
    assert dr.restore_target_check(nodes, OTHER, [], "web", "shop") == ""
    claims = [{"metadata": {"name": "web-data"}}, {"metadata": {"name": "web-data"}}, {"metadata": {"name": "web-logs"}}]
    assert dr.restore_target_check(nodes, OTHER, claims, "web", "shop") == (
        "The claims web-data, web-logs of web still exist in shop: Velero skips existing claims, so their volumes cannot be"
        " moved to worker2. Delete them (and the pods using them) first. Nothing was changed.")
    assert dr.restore_target_check(nodes, NODE, [], "web", "shop") == \
        "Node worker1 does not exist or is not Ready. Nothing was changed."
    assert dr.restore_target_check(nodes, "worker9", [], "web", "shop").startswith("Node worker9 does not exist")


def test_app_cover_reads_the_k8s_info_loop_or_falls_back_to_the_label_sets():
    selectors = [{"app.kubernetes.io/name": "web"}, {"app": "web"}]
    found = {"results": [
        {"item": [{"api_version": "apps/v1", "kind": "Deployment"}, "app.kubernetes.io/name=web"],
         "resources": [{"metadata": {"namespace": "shop", "name": "web", "labels": {"app.kubernetes.io/name": "web"}}}]},
        {"item": [{"api_version": "apps/v1", "kind": "Deployment"}, "app=web"], "resources": []},
        {"item": [{"api_version": "v1", "kind": "PersistentVolumeClaim"}, "app=web"],
         "resources": [{"metadata": {"namespace": "shop", "name": "web-data", "labels": None}}]},
    ]}
    assert dr.app_cover(found, "shop", selectors) == [
        {"kind": "Deployment", "namespace": "shop", "name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        {"kind": "PersistentVolumeClaim", "namespace": "shop", "name": "web-data", "labels": {}}]
    nothing_left = {"results": [dict(result, resources=[]) for result in found["results"]]}
    assert dr.app_cover(nothing_left, "shop", selectors) == [
        {"kind": "object", "namespace": "shop", "name": "", "labels": {"app.kubernetes.io/name": "web"}},
        {"kind": "object", "namespace": "shop", "name": "", "labels": {"app": "web"}}]
    # What it returns is what pick_backup reads in mode any: a backup of either label set holds the application.
    backup = {"metadata": {"name": "b"}, "spec": {"includedNamespaces": ["shop"], "labelSelector": {"matchLabels": {"app": "web"}}},
              "status": {"phase": "Completed", "startTimestamp": "2026-01-01T00:00:00Z"}}
    assert dr.pick_backup([backup], dr.app_cover(nothing_left, "shop", selectors), mode="any")["name"] == "b"


INGRESS_CLUSTER = ["master1", "worker1.example.net", "worker2"]


def ingress_facts(overrides=None):
    """dns_ingress and firewall_public_tcp_ports of each host, with overrides ({host: {var: value}}) applied."""
    facts = {"master1": {"firewall_public_tcp_ports": [443, 80, 8443]},
             "worker1.example.net": {"dns_ingress": "yes", "firewall_public_tcp_ports": [80, 443]},
             "worker2": {"firewall_public_tcp_ports": ["8080"]}}
    for host, values in (overrides or {}).items():
        facts[host] = dict(facts[host], **values)
    return facts


def test_ingress_stays_while_another_ingress_node_is_left_or_none_has_it():
    facts = ingress_facts({"worker2": {"dns_ingress": True}})
    plan = dr.ingress_plan(facts, INGRESS_CLUSTER, ["worker1.example.net"], "worker2")
    assert plan["move"] is False and plan["left"] == ["worker2"] and plan["flagged"] == ["worker1.example.net", "worker2"]
    assert plan["message"] == "Public entry: *.apps on worker2 (dns_ingress)"
    none_flagged = dr.ingress_plan(ingress_facts({"worker1.example.net": {"dns_ingress": "no"}}), INGRESS_CLUSTER, ["worker2"], "worker2")
    assert none_flagged["move"] is False and none_flagged["message"] == "Public entry: *.apps on every node left (no node has dns_ingress)"
    unmanaged = dr.ingress_plan(facts, INGRESS_CLUSTER, ["worker1.example.net"], "worker2", managed=False)
    assert unmanaged["managed"] is False and unmanaged["message"] == ""


def test_ingress_moves_to_a_node_that_serves_or_may_be_opened():
    facts = ingress_facts()
    # The failed node is the last with dns_ingress (read as dns_plan reads it: "yes" is true).
    plan = dr.ingress_plan(facts, INGRESS_CLUSTER, ["worker1.example.net"], "worker2")
    assert plan["move"] is True and plan["host"] == "worker2" and plan["serves"] is False
    assert plan["refusal"] == "" and plan["message"] == "" and plan["ports"] == [8080, 80, 443]
    served = dr.ingress_plan(facts, INGRESS_CLUSTER, ["worker1.example.net"], "master1", open_firewall=False)
    assert served["serves"] is True and served["refusal"] == "" and served["ports"] == [443, 80, 8443]
    # A node name finds its inventory host <name>.<domain>.
    assert dr.ingress_plan(facts, INGRESS_CLUSTER, ["master1"], "worker1")["host"] == "worker1.example.net"


@pytest.mark.parametrize("excluded, name, open_firewall, refusal", [
    (["worker1.example.net"], "worker9", True, "worker9 is not a host of k3s_cluster in the inventory"),
    (["worker1.example.net", "worker2"], "worker2", True, "worker2 is taken off DNS too (dr_dns_exclude_hosts)"),
    (["worker1.example.net"], "worker2", False,
     "worker2 does not open 80 and 443 (firewall_public_tcp_ports: [8080]) and dr_ingress_open_firewall is false"),
])
def test_ingress_is_not_moved_where_it_would_be_dropped(excluded, name, open_firewall, refusal):
    plan = dr.ingress_plan(ingress_facts(), INGRESS_CLUSTER, excluded, name, open_firewall=open_firewall)
    assert plan["move"] is True and plan["refusal"] == refusal
    assert plan["message"].startswith("Public entry NOT moved: *.apps is left as it is (on worker1.example.net, the failed"
                                      " ingress node), because " + refusal + ". Name a node")

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster-recovery decisions, from objects as the Kubernetes API returns them (plain dicts).

- ``node_volumes``: the volumes pinned to a node. rancher/local-path-provisioner ``provisioner.go``
  Provision() pins each volume it makes with nodeAffinity ``kubernetes.io/hostname In [<node>]`` and a
  hostPath (volumeType local: a local) path on that node.
- ``failover_plan``: what a failed node had - the claims of its volumes (their PV pinned to it, or the
  scheduler's ``volume.kubernetes.io/selected-node`` annotation naming it), the pods using them and every
  other non-DaemonSet pod bound to it, the Deployments (through the pods' controlling ReplicaSet) and
  StatefulSets owning the pods that use the volumes, and the objects a backup must hold to bring them back; and
  which of those workloads pin their pods to the node by ``nodeSelector`` (``pinned``: the restore moves that pin
  to the target too, velero_restore ``node_mapping_workloads``); and which of those StatefulSets
  prometheus-operator builds from one of its objects (``holds``: the failover pauses that object while it
  restores, and moves its own ``nodeSelector`` pin).
- ``pick_backup``: the newest backup in the given phases that takes every (or any) one of a set of
  objects, by its namespaces and label selectors (module_utils/label_selector.py), with the reason each
  newer one was passed over. A pod brings its claims into a backup and a claim its volume, whatever their
  labels (vmware-tanzu/velero ``pkg/backup/actions/pod_action.go`` and ``backup_pv_action.go``), so the
  objects to cover are the pods and their workloads.
- ``failover_check``: whether the failover may start (both nodes exist, the target Ready and schedulable, the
  source not Ready unless forced); ``restore_target_check`` and ``restore_node_mapping``: the same for a restore
  onto a node, and Velero's node mapping for it (every other node to the target).
- ``app_cover``: what a backup must take to hold an application (dr_restore_workload).
- ``ingress_plan``: where the public entry goes when the failed node was the last with ``dns_ingress`` (the
  flagged hosts as module_utils/dns_plan.py reads them).
"""

from __future__ import annotations

from ansible_collections.infra.k3s.plugins.module_utils.dns_plan import ingress_flagged
from ansible_collections.infra.k3s.plugins.module_utils.label_selector import RESOURCES, backup_selectors, backup_takes, resource_included

HOSTNAME_LABEL = "kubernetes.io/hostname"
# prometheus-operator's objects that own the StatefulSets it builds, all honouring spec.paused: a paused object gets no
# action, so a deleted StatefulSet stays deleted (prometheus-operator/prometheus-operator v0.93.0
# pkg/prometheus/server/operator.go, pkg/alertmanager/operator.go, pkg/thanos/operator.go: Operator.sync). Unpaused, it
# recreates a deleted StatefulSet at once (with a new, empty claim), and rewrites it from the object whenever the
# object's generation moves (createSSetInputHash), pausing and resuming included.
OPERATOR_API_VERSION = "monitoring.coreos.com/v1"
OPERATOR_KINDS = ("Prometheus", "Alertmanager", "ThanosRuler")
# Set by the failover with spec.paused (roles/dr/tasks/failover.yml), removed when it resumes: an object paused with it
# is the failover's to resume, also in a later run after one that stopped in between.
PAUSED_BY = "dr.infra.k3s/paused-by-failover"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _items(listing):
    """A k8s_info result ({resources: [...]}), a List object ({items: [...]}) or a list, as a list."""
    if listing is None:
        return []
    if isinstance(listing, dict):
        if "resources" in listing:
            return list(listing.get("resources") or [])
        return list(listing.get("items") or [])
    return list(listing)


def pv_nodes(pv):
    """The nodes a PV's required node affinity pins it to by hostname (kubernetes.io/hostname In [...])."""
    spec = (pv or {}).get("spec") or {}
    required = (spec.get("nodeAffinity") or {}).get("required") or {}
    nodes = []
    for term in required.get("nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                nodes.extend(str(value) for value in expr.get("values") or [])
    return nodes


def node_volumes(pvs, node):
    """The PVs pinned to the node that have a path on it: [{pv, path, type, phase, claim}]."""
    out = []
    for pv in _items(pvs):
        if node not in pv_nodes(pv):
            continue
        spec = pv.get("spec") or {}
        source = spec.get("hostPath") or spec.get("local") or {}
        if "path" not in source:
            continue
        claim = spec.get("claimRef") or {}
        name = _meta(pv).get("name")
        out.append({"pv": name, "path": source["path"], "type": source.get("type") or "",
                    "phase": (pv.get("status") or {}).get("phase") or "",
                    "claim": ("%s/%s" % (claim.get("namespace"), claim["name"])) if claim.get("name")
                    else "PV %s (unclaimed)" % name})
    return out


def pinned_to(workload):
    """The node a Deployment's or StatefulSet's pod template pins its pods to by nodeSelector kubernetes.io/hostname
    ('' when it does not)."""
    template = ((workload or {}).get("spec") or {}).get("template") or {}
    return str(((template.get("spec") or {}).get("nodeSelector") or {}).get(HOSTNAME_LABEL) or "")


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _ref(obj, kind):
    meta = _meta(obj)
    return {"kind": kind, "namespace": meta.get("namespace"), "name": meta.get("name"), "labels": dict(meta.get("labels") or {})}


def _operator_holds(node, workloads, live, operated):
    """The prometheus-operator objects owning (as controller) the StatefulSets among the workloads: [{api_version,
    kind, namespace, name, statefulset, paused (already, by someone else than an earlier failover: PAUSED_BY), pinned
    (its own spec.nodeSelector names the node)}]. Owners not found among `operated` are left out: nothing would recreate their StatefulSet."""
    by_key = {}
    for listing in operated or []:
        for obj in _items(listing):
            by_key[(obj.get("kind"), _meta(obj).get("namespace"), _meta(obj).get("name"))] = obj
    holds = []
    for workload in workloads:
        if workload["kind"] != "StatefulSet":
            continue
        found = live.get(("StatefulSet", workload["namespace"], workload["name"])) or {}
        for owner in _meta(found).get("ownerReferences") or []:
            if not (owner.get("controller") and owner.get("apiVersion") == OPERATOR_API_VERSION
                    and owner.get("kind") in OPERATOR_KINDS):
                continue
            obj = by_key.get((owner["kind"], workload["namespace"], owner.get("name")))
            if obj is None or (owner.get("uid") and _meta(obj).get("uid") and owner["uid"] != _meta(obj)["uid"]):
                continue
            spec = obj.get("spec") or {}
            ours = PAUSED_BY in (_meta(obj).get("annotations") or {})
            holds.append({"api_version": OPERATOR_API_VERSION, "kind": owner["kind"], "namespace": workload["namespace"],
                          "name": owner["name"], "statefulset": workload["name"], "paused": bool(spec.get("paused")) and not ours,
                          "pinned": str((spec.get("nodeSelector") or {}).get(HOSTNAME_LABEL) or "") == node})
    return _unique(holds)


def failover_plan(node, pvs=None, pvcs=None, pods=None, replicasets=None, deployments=None, statefulsets=None,
                  operated=None):
    """What fails over with a node: claims, pods, workloads, what to delete and what a backup must cover.

    `operated`: lists of prometheus-operator's objects (k8s_info results), for ``holds``."""
    source_pvs = [_meta(pv).get("name") for pv in _items(pvs) if node in pv_nodes(pv)]
    claims = []
    for pvc in _items(pvcs):
        meta = _meta(pvc)
        volume = ((pvc.get("spec") or {}).get("volumeName")) or ""
        if (meta.get("annotations") or {}).get(SELECTED_NODE) == node or (volume and volume in source_pvs):
            claims.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "volume": volume})
    claim_keys = ["%s/%s" % (c["namespace"], c["name"]) for c in claims]

    affected_pods = []
    for pod in _items(pods):
        meta = _meta(pod)
        spec = pod.get("spec") or {}
        used = ["%s/%s" % (meta.get("namespace"), (vol.get("persistentVolumeClaim") or {}).get("claimName"))
                for vol in spec.get("volumes") or [] if vol.get("persistentVolumeClaim")]
        owners = list(meta.get("ownerReferences") or [])
        uses = any(key in claim_keys for key in used)
        # Pods stuck on the node, except a DaemonSet's (its DaemonSet puts them back on the node anyway).
        if uses or (spec.get("nodeName") == node and "DaemonSet" not in [o.get("kind") for o in owners]):
            affected_pods.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "uses_volume": uses,
                                  "labels": dict(meta.get("labels") or {}), "owners": owners})

    rs_by_key = {(_meta(rs).get("namespace"), _meta(rs).get("name")): rs for rs in _items(replicasets)}
    workloads = []
    for pod in affected_pods:
        if not pod["uses_volume"]:
            continue
        for owner in pod["owners"]:
            if not owner.get("controller"):
                continue
            if owner.get("kind") == "StatefulSet":
                workloads.append({"kind": "StatefulSet", "namespace": pod["namespace"], "name": owner.get("name")})
            elif owner.get("kind") == "ReplicaSet":
                rs = rs_by_key.get((pod["namespace"], owner.get("name"))) or {}
                for rs_owner in _meta(rs).get("ownerReferences") or []:
                    if rs_owner.get("kind") == "Deployment":
                        workloads.append({"kind": "Deployment", "namespace": pod["namespace"], "name": rs_owner.get("name")})
    workloads = _unique(workloads)

    owned_rs = []
    for rs in _items(replicasets):
        meta = _meta(rs)
        for owner in meta.get("ownerReferences") or []:
            deployment = {"kind": "Deployment", "namespace": meta.get("namespace"), "name": owner.get("name")}
            if owner.get("kind") == "Deployment" and deployment in workloads:
                owned_rs.append({"namespace": meta.get("namespace"), "name": meta.get("name")})

    def obj(api_version, kind, namespace, name):
        metadata = {"name": name} if namespace is None else {"namespace": namespace, "name": name}
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata}

    # Workloads first (no controller recreates the pods), then their replica sets, then the pods.
    delete_objects = ([obj("apps/v1", w["kind"], w["namespace"], w["name"]) for w in workloads]
                      + [obj("apps/v1", "ReplicaSet", r["namespace"], r["name"]) for r in owned_rs]
                      + [obj("v1", "Pod", p["namespace"], p["name"]) for p in affected_pods])
    volume_objects = ([obj("v1", "PersistentVolumeClaim", c["namespace"], c["name"]) for c in claims]
                      + [obj("v1", "PersistentVolume", None, v) for v in _unique([c["volume"] for c in claims if c["volume"]])])

    # What the backup must hold: the pods using the volumes and their workloads (as they are labelled now).
    live = {}
    for kind, listing in (("Deployment", deployments), ("StatefulSet", statefulsets)):
        for item in _items(listing):
            live[(kind, _meta(item).get("namespace"), _meta(item).get("name"))] = item
    cover = [{"kind": "Pod", "namespace": p["namespace"], "name": p["name"], "labels": p["labels"]}
             for p in affected_pods if p["uses_volume"]]
    pinned = []
    for workload in workloads:
        found = live.get((workload["kind"], workload["namespace"], workload["name"]))
        if found is not None:
            cover.append(_ref(found, workload["kind"]))
            if pinned_to(found) == node:
                pinned.append(dict(workload, selector=dict((found.get("spec") or {}).get("selector") or {})))

    holds = _operator_holds(node, workloads, live, operated)
    held = set((h["namespace"], h["statefulset"]) for h in holds)
    return {
        "volumes": source_pvs,
        "claims": claims,
        "claim_keys": claim_keys,
        "namespaces": sorted(set(c["namespace"] for c in claims)),
        "pods": [dict((k, v) for k, v in p.items() if k != "owners") for p in affected_pods],
        "workloads": workloads,
        "replicasets": owned_rs,
        "delete_objects": delete_objects,
        "volume_objects": volume_objects,
        "cover": cover,
        "pinned": pinned,
        "holds": holds,
        # The pinned StatefulSets the failover pins itself once the restore has completed (the operator's are rewritten
        # by the operator when resumed): velero_bodies.py PINNED_KINDS says why not during the restore.
        "pin_after": [{"namespace": w["namespace"], "name": w["name"]} for w in pinned
                      if w["kind"] == "StatefulSet" and (w["namespace"], w["name"]) not in held],
    }


def _start(backup):
    return ((backup or {}).get("status") or {}).get("startTimestamp") or ""


def _describe(obj):
    if obj.get("name"):
        return "%s %s/%s" % (obj.get("kind") or "object", obj.get("namespace"), obj["name"])
    labels = ",".join("%s=%s" % item for item in sorted((obj.get("labels") or {}).items()))
    return "an object in %s labelled %s" % (obj.get("namespace"), labels or "nothing")


def why_not(backup, objects, mode="all"):
    """Why a backup does not take the objects (every one in mode all, at least one in mode any), or ''."""
    spec = (backup or {}).get("spec") or {}
    # A pod's claims come back only when the backup takes claims at all (item_backupper.go itemInclusionChecks applies
    # the resource filter to the pod action's additional items); without them the volumes' data has nowhere to go.
    if any(o.get("kind") in ("Pod", "PersistentVolumeClaim") for o in objects) and \
            not resource_included(spec, "PersistentVolumeClaim"):
        return "does not include resource persistentvolumeclaims (the claims the volumes' data comes back in)"
    missing = [o for o in objects if not backup_takes(spec, o.get("namespace"), o.get("labels"), o.get("kind"))]
    if not objects or (mode == "all" and not missing) or (mode == "any" and len(missing) < len(objects)):
        return ""
    resources = sorted(set(RESOURCES[o["kind"]][0] for o in missing if not resource_included(spec, o.get("kind"))))
    if resources:
        return "does not include resource %s" % ", ".join(resources)
    namespaces = sorted(set(o.get("namespace") for o in missing
                            if not backup_takes({"includedNamespaces": spec.get("includedNamespaces"),
                                                 "excludedNamespaces": spec.get("excludedNamespaces")},
                                                o.get("namespace"), None)))
    if namespaces:
        return "does not include namespace %s" % ", ".join(namespaces)
    selectors = backup_selectors(spec)
    field = "orLabelSelectors" if spec.get("orLabelSelectors") else "labelSelector"
    shown, verb = (selectors, "select") if len(selectors) > 1 else (selectors[0], "selects")
    return "its %s %s %s none of %s" % (field, shown, verb, ", ".join(_describe(o) for o in missing))


def pick_backup(backups, objects, name=None, phases=("Completed",), mode="all"):
    """The newest backup (status.startTimestamp, then name) in phases that takes the objects.

    Returns {name, start_timestamp, phase, checked: [{name, phase, reason}]}: name '' when none does;
    checked lists every backup considered, newest first, with why it was passed over ('' for the pick).
    """
    if mode not in ("all", "any"):
        raise ValueError("mode is all or any, got %r" % (mode,))
    candidates = [b for b in _items(backups) if name in (None, "") or _meta(b).get("name") == name]
    candidates.sort(key=lambda b: (_start(b), _meta(b).get("name") or ""), reverse=True)
    checked = []
    chosen = None
    for backup in candidates:
        phase = (backup.get("status") or {}).get("phase") or "New"
        if phase not in phases:
            reason = "phase %s" % phase
        elif not _start(backup):
            reason = "no start time"
        else:
            reason = why_not(backup, list(objects or []), mode)
        checked.append({"name": _meta(backup).get("name"), "phase": phase, "reason": reason})
        if not reason:
            chosen = backup
            break
    return {"name": _meta(chosen).get("name") if chosen else "",
            "start_timestamp": _start(chosen) if chosen else "",
            "phase": ((chosen or {}).get("status") or {}).get("phase") or "",
            "checked": checked}


def node_ready(node):
    """The status of a Node's Ready condition: 'True', 'False' or 'Unknown' (also when the node posts none)."""
    for condition in ((node or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status") or "Unknown")
    return "Unknown"


def _node(nodes, name):
    return next((n for n in _items(nodes) if _meta(n).get("name") == name), None)


def failover_check(nodes, source, target, force=False):
    """Whether the failover of source onto target may start: {ok, error, source_ready}.

    Refused, before any change: a node that does not exist, a target that is not Ready or is cordoned, and a source
    that is Ready (its kubelet still posts status: it still runs the pods) unless forced."""
    src, tgt = _node(nodes, source), _node(nodes, target)
    problems = []
    if src is None:
        problems.append("node %s does not exist" % source)
    if tgt is None:
        problems.append("node %s does not exist" % target)
    else:
        if node_ready(tgt) != "True":
            problems.append("target %s is not Ready (%s)" % (target, node_ready(tgt)))
        if (tgt.get("spec") or {}).get("unschedulable"):
            problems.append("target %s is cordoned" % target)
    source_ready = node_ready(src) if src is not None else "Unknown"
    if problems:
        error = "Cannot fail over %s -> %s: %s; nodes: %s. Nothing was changed." % (
            source, target, "; ".join(problems), ", ".join(_meta(n).get("name") or "" for n in _items(nodes)))
    elif source_ready == "True" and not force:
        error = ("Node %s is Ready (its kubelet is posting status): failing over would delete its pods and volumes' claims"
                 " while it still runs them. Nothing was changed. If the node is really lost (e.g. it is Ready but"
                 " unreachable from the outside) run again with -e force=true." % source)
    else:
        error = ""
    return {"ok": not error, "error": error, "source_ready": source_ready}


def restore_target_check(nodes, target, claims, app, namespace):
    """Whether an application may be restored with its volumes on target: the node exists and is Ready, and none of
    the application's claims is left (Velero skips an existing claim, so its volume would not move). '' when it may."""
    names = _unique(_meta(c).get("name") for c in _items(claims))
    tgt = _node(nodes, target)
    out = []
    if tgt is None or node_ready(tgt) != "True":
        out.append("Node %s does not exist or is not Ready." % target)
    if names:
        out.append("The claims %s of %s still exist in %s: Velero skips existing claims, so their volumes cannot be moved"
                   " to %s. Delete them (and the pods using them) first." % (", ".join(names), app, namespace, target))
    return " ".join(out + ["Nothing was changed."]) if out else ""


def restore_node_mapping(nodes, target):
    """velero_restore's node mapping for a restore onto target: every other node to it; {} without a target (no claim
    is moved)."""
    if not target:
        return {}
    return {name: target for name in (_meta(n).get("name") for n in _items(nodes)) if name and name != target}


def app_cover(found, namespace, selectors):
    """What a backup must take (any one of) to hold an application: its objects as they are labelled now, from the
    results of a k8s_info loop whose item is [{kind, ...}, selector]; when none is left, an object in the namespace
    carrying only one of the application's label sets (selectors)."""
    results = found.get("results") if isinstance(found, dict) else found
    out = []
    for result in results or []:
        if result.get("skipped"):
            continue
        item = result.get("item")
        kind = (item[0] if isinstance(item, (list, tuple)) else item or {}).get("kind") or "object"
        for obj in result.get("resources") or []:
            meta = _meta(obj)
            out.append({"kind": kind, "namespace": meta.get("namespace"), "name": meta.get("name"),
                        "labels": dict(meta.get("labels") or {})})
    if not out:
        out = [{"kind": "object", "namespace": namespace, "name": "", "labels": dict(labels)} for labels in selectors or []]
    return out


def _host_of(cluster, name):
    """The inventory host a node name is: the host of that name, else the first named <name>.<domain>."""
    return next((h for h in cluster if h == name), None) or next((h for h in cluster if h.startswith(name + ".")), "")


def ingress_plan(facts, cluster, excluded, ingress_node, open_firewall=True, wildcard="*.apps", managed=True):
    """Where the public entry goes after a failover.

    ``facts`` maps each host of ``cluster`` to its ``dns_ingress`` and ``firewall_public_tcp_ports``. The wildcard
    moves (``move``) only when some host has dns_ingress and all of those are ``excluded``; then only to
    ``ingress_node`` (a node or inventory name) when it is a host left in DNS that serves 80 and 443 (``serves``) or
    whose firewall may be opened (``open_firewall``; ``ports`` is what it then opens). ``refusal`` says why not, and
    ``message`` what the run reports when the wildcard is left where it is ('' when it moves)."""
    cluster = list(cluster or [])
    excluded = list(excluded or [])
    flagged = ingress_flagged(facts, cluster)
    left = [h for h in flagged if h not in excluded]
    move = bool(flagged) and not left
    host = _host_of(cluster, ingress_node)
    ports = [int(p) for p in ((facts.get(host) or {}).get("firewall_public_tcp_ports") or [])] if host else []
    serves = 80 in ports and 443 in ports
    if not host:
        refusal = "%s is not a host of k3s_cluster in the inventory" % ingress_node
    elif host in excluded:
        refusal = "%s is taken off DNS too (dr_dns_exclude_hosts)" % host
    elif not serves and not open_firewall:
        refusal = ("%s does not open 80 and 443 (firewall_public_tcp_ports: %s) and dr_ingress_open_firewall is false"
                   % (host, "[%s]" % ", ".join(str(p) for p in ports)))
    else:
        refusal = ""
    managed = bool(managed) and bool(wildcard)
    if not managed:
        message = ""
    elif not move:
        message = ("Public entry: %s on %s (dns_ingress)" % (wildcard, ", ".join(left)) if flagged
                   else "Public entry: %s on every node left (no node has dns_ingress)" % wildcard)
    elif refusal:
        message = ("Public entry NOT moved: %s is left as it is (on %s, the failed ingress node), because %s. Name a node"
                   " that serves 80/443 with -e dr_ingress_node=NODE (its firewall is opened unless"
                   " dr_ingress_open_firewall=false), then run this again." % (wildcard, ", ".join(flagged), refusal))
    else:
        message = ""
    return {"managed": managed, "move": move, "left": left, "flagged": flagged, "host": host, "serves": serves,
            "ports": _unique(ports + [80, 443]), "refusal": refusal, "message": message}

"""K3s's ServiceLB (klipper-lb controller), stand-in: LoadBalancer Services get their DaemonSet and addresses.

Follows k3s-io/k3s pkg/cloudprovider/servicelb.go (read at commit 0821db5); no pod runs here, so a node
"runs a ready svclb pod" when the DaemonSet's pod would be placed there and the node is Ready:

* newDaemonSet(): one DaemonSet `svclb-<service name, at most 48 characters, no trailing '-'>-<uid[:8]>`
  (generateName()) in kube-system, labelled with the Service's name and namespace, one container
  `lb-<protocol>-<port>` per Service port with hostPort = port (env SRC_PORT, SRC_RANGES, DEST_PROTO,
  DEST_PORT, DEST_IPS = the ClusterIPs, or the NodePort and host IPs with externalTrafficPolicy Local),
  the tolerations of the control-plane/master NoSchedule taints and CriticalAddonsOnly;
* nodeHasDaemonSetLabel(): as soon as one node carries the `svccontroller.k3s.cattle.io/enablelb` label,
  the DaemonSet's nodeSelector is `enablelb: "true"` (plus `lbpool: <pool>` when the Service has an lbpool
  label), and its `nodeselector` label says so; updateDaemonSets() re-syncs it when node labels change;
* podIPs(): the ExternalIPs of the nodes running ready svclb pods, or, when none of them has one, their
  InternalIPs; filterByIPFamily() keeps the Service's ipFamilies, each family sorted; getStatus() writes
  them as status.loadBalancer.ingress[].ip (with ipMode VIP, as the K3s docs describe the result:
  k3s-io/docs docs/networking/networking-services.md, "ServiceLB") through the status subresource only
  when it differs (patchStatus(), LoadBalancerStatusEqual);
* deleteDaemonSet(): a Service that is gone or no longer of type LoadBalancer loses its DaemonSet
  (upstream: owner reference garbage collection and the type-change path).

`--disable=servicelb` turns the controller off, as in K3s (the Services then keep an empty status).
"""
from __future__ import annotations

import ipaddress
import threading

from .poller import Poller
from . import apiserver

NAMESPACE = "kube-system"  # DefaultLBNS
PREFIX = "svccontroller.k3s.cattle.io/"
ENABLE_LABEL = PREFIX + "enablelb"
POOL_LABEL = PREFIX + "lbpool"
NODESELECTOR_LABEL = PREFIX + "nodeselector"
SVCNAME_LABEL = PREFIX + "svcname"
SVCNAMESPACE_LABEL = PREFIX + "svcnamespace"
PRIORITY_ANNOTATION = PREFIX + "priorityclassname"
IMAGE = "rancher/klipper-lb:v0.4.9"  # DefaultLBImage
TOLERATIONS = [{"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
               {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
               {"key": "CriticalAddonsOnly", "operator": "Exists"}]


def daemonset_name(svc: dict) -> str:
    """generateName(): svclb-<name trimmed to 48 without a trailing '-'>-<uid[:8]>."""
    name = svc["metadata"]["name"]
    if len(name) > 48:
        trim = 48
        while name[trim - 1] == "-":
            trim -= 1
        name = name[:trim]
    return f"svclb-{name}-{svc['metadata']['uid'][:8]}"


def _local_traffic(svc: dict) -> bool:
    """servicehelper.RequestsOnlyLocalTraffic: a LoadBalancer/NodePort Service with externalTrafficPolicy Local."""
    spec = svc.get("spec") or {}
    return spec.get("type") in ("LoadBalancer", "NodePort") and spec.get("externalTrafficPolicy") == "Local"


def node_selector(svc: dict, nodes: list) -> dict:
    """The DaemonSet's nodeSelector: allow-list mode once any node has the enablelb label."""
    if not any(ENABLE_LABEL in (n["metadata"].get("labels") or {}) for n in nodes):
        return {}
    selector = {ENABLE_LABEL: "true"}
    pool = (svc["metadata"].get("labels") or {}).get(POOL_LABEL)
    if pool:
        selector[POOL_LABEL] = pool
    return selector


def new_daemonset(svc: dict, nodes: list) -> dict:
    """newDaemonSet() for a Service."""
    name = daemonset_name(svc)
    meta, spec = svc["metadata"], svc.get("spec") or {}
    ranges = ",".join(spec.get("loadBalancerSourceRanges") or []) or "0.0.0.0/0"
    sysctls = []
    for family in spec.get("ipFamilies") or []:
        if family == "IPv4":
            sysctls.append({"name": "net.ipv4.ip_forward", "value": "1"})
        elif family == "IPv6":
            sysctls.append({"name": "net.ipv6.conf.all.forwarding", "value": "1"})
            if ranges == "0.0.0.0/0":
                ranges += ",::/0"
    containers = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        port_name = f"lb-{protocol.lower()}-{port['port']}"
        env = [{"name": "SRC_PORT", "value": str(port["port"])}, {"name": "SRC_RANGES", "value": ranges},
               {"name": "DEST_PROTO", "value": protocol}]
        if _local_traffic(svc):
            env += [{"name": "DEST_PORT", "value": str(port.get("nodePort") or 0)},
                    {"name": "DEST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}]
        else:
            env += [{"name": "DEST_PORT", "value": str(port["port"])},
                    {"name": "DEST_IPS", "value": ",".join(spec.get("clusterIPs") or [])}]
        containers.append({"name": port_name, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                           "ports": [{"name": port_name, "containerPort": port["port"], "hostPort": port["port"], "protocol": protocol}],
                           "env": env, "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}})
    selector = node_selector(svc, nodes)
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {NODESELECTOR_LABEL: "true" if selector else "false",
                                SVCNAME_LABEL: meta["name"], SVCNAMESPACE_LABEL: meta["namespace"]}},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name, SVCNAME_LABEL: meta["name"], SVCNAMESPACE_LABEL: meta["namespace"]}},
                              "spec": {"priorityClassName": (meta.get("annotations") or {}).get(PRIORITY_ANNOTATION, "system-node-critical"),
                                       "serviceAccountName": "svclb", "automountServiceAccountToken": False,
                                       "securityContext": {"sysctls": sysctls} if sysctls else {},
                                       "tolerations": TOLERATIONS, "containers": containers,
                                       **({"nodeSelector": selector} if selector else {})}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
    }


def _tolerated(taint: dict) -> bool:
    """Whether the svclb pod tolerates a taint (the TOLERATIONS above; PreferNoSchedule never blocks)."""
    if taint.get("effect") == "PreferNoSchedule":
        return True
    return any(t["key"] == taint.get("key") and t.get("effect") in (None, taint.get("effect")) for t in TOLERATIONS)


def runs_ready_pod(node: dict, selector: dict) -> bool:
    """Whether the DaemonSet's pod would run on the node and be ready: nodeSelector, taints, Ready=True."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    if not all(_tolerated(t) for t in (node.get("spec") or {}).get("taints") or []):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (node.get("status") or {}).get("conditions") or [])


def ingress_ips(svc: dict, nodes: list, selector: dict) -> list:
    """podIPs() and filterByIPFamily(): ExternalIPs of the nodes with ready pods, else their InternalIPs."""
    external, internal = set(), set()
    for node in nodes:
        if not runs_ready_pod(node, selector):
            continue
        for addr in (node.get("status") or {}).get("addresses") or []:
            if addr.get("type") == "ExternalIP":
                external.add(addr["address"])
            elif addr.get("type") == "InternalIP":
                internal.add(addr["address"])
    ips = external or internal
    v4 = sorted(ip for ip in ips if ipaddress.ip_address(ip).version == 4)
    v6 = sorted(ip for ip in ips if ipaddress.ip_address(ip).version == 6)
    out = []
    for family in (svc.get("spec") or {}).get("ipFamilies") or []:
        out += v4 if family == "IPv4" else (v6 if family == "IPv6" else [])
    return out


class ServiceLB(Poller):
    """Polls Services and Nodes and keeps svclb DaemonSets and LoadBalancer statuses as servicelb.go does."""

    thread_name = "servicelb"
    log_name = "servicelb"

    def __init__(self, store: apiserver.Store, interval: float = 1.0, log=None):
        self.store = store
        self.interval = interval
        self.log = log or (lambda *a, **k: None)
        self._stop = threading.Event()
        self._account = False

    def sync(self) -> None:
        """One pass over every Service and svclb DaemonSet."""
        store = self.store
        services = store.find("", "v1", "services")
        daemonsets = store.find("apps", "v1", "daemonsets")
        nodes = store.list(store.find("", "v1", "nodes"), None)
        if not self._account:  # ensureServiceLBServiceAccount()
            try:
                store.create(store.find("", "v1", "serviceaccounts"), {"metadata": {"name": "svclb", "namespace": NAMESPACE}}, NAMESPACE)
            except apiserver.ApiError:
                pass
            self._account = True
        wanted = set()
        for svc in store.list(services, None):
            if (svc.get("spec") or {}).get("type") != "LoadBalancer" or svc["metadata"].get("deletionTimestamp"):
                continue
            body = new_daemonset(svc, nodes)
            wanted.add(body["metadata"]["name"])
            self._apply_daemonset(daemonsets, body)
            selector = body["spec"]["template"]["spec"].get("nodeSelector") or {}
            ingress = [{"ip": ip, "ipMode": "VIP"} for ip in ingress_ips(svc, nodes, selector)]
            if (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []) != ingress:
                svc["status"] = dict(svc.get("status") or {}, loadBalancer={"ingress": ingress} if ingress else {})
                try:
                    store.update(services, svc["metadata"]["namespace"], svc["metadata"]["name"], svc, "status")
                    self.log("info", f"servicelb: {svc['metadata']['namespace']}/{svc['metadata']['name']} "
                                     f"load balancer ingress {[i['ip'] for i in ingress]}")
                except apiserver.ApiError:
                    pass  # changed meanwhile: the next pass retries
        for ds in store.list(daemonsets, NAMESPACE, label_selector=SVCNAME_LABEL):
            if ds["metadata"]["name"] not in wanted:
                try:
                    store.delete(daemonsets, NAMESPACE, ds["metadata"]["name"])
                except apiserver.ApiError:
                    pass

    def _apply_daemonset(self, res: apiserver.Resource, body: dict) -> None:
        name = body["metadata"]["name"]
        try:
            current = self.store.get(res, NAMESPACE, name)
        except apiserver.ApiError:
            self.store.create(res, body, NAMESPACE)
            return
        if current.get("spec") == body["spec"] and all(current["metadata"].get("labels", {}).get(k) == v
                                                       for k, v in body["metadata"]["labels"].items()):
            return
        current["metadata"]["labels"] = dict(current["metadata"].get("labels") or {}, **body["metadata"]["labels"])
        current["spec"] = body["spec"]
        self.store.update(res, NAMESPACE, name, current)

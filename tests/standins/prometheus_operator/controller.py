"""prometheus-operator's Prometheus reconciliation, and kube-controller-manager's StatefulSet controller under it:
only what a node failover meets (infra.k3s.dr failover), as a polling loop over the Kubernetes API (kubeconfig).

Followed upstream (read, not copied):
- prometheus-operator/prometheus-operator v0.93.0+ (mirror HEAD 6adcebc) ``pkg/prometheus/server/operator.go``
  ``Operator.sync``: a Prometheus being deleted or with ``spec.paused`` gets no action ("no action taken (the
  resource is paused)"); otherwise the StatefulSet of each shard is created when missing
  (``k8s.CreateStatefulSetOrPatchLabels``), left alone when its ``prometheus-operator-input-hash`` annotation equals
  the new hash, else replaced (``k8s.ForceUpdateStatefulSet``). ``createSSetInputHash`` hashes the object's labels,
  annotations and ``metadata.generation`` with the existing StatefulSet's spec, so any change of the object's spec
  (pausing and resuming included: the generation moves) rewrites the StatefulSet from the object.
- the same repository ``pkg/prometheus/server/statefulset.go`` ``makeStatefulSet``/``makeStatefulSetSpec``: the
  StatefulSet ``prometheus-<name>`` (``pkg/prometheus/common.go`` ``PrefixedName``; one shard here) carries the
  object's labels and annotations, ``operator.prometheus.io/mode: server`` and the object as its managing
  (controller) owner; its pods the ``podMetadata`` labels plus the selector labels (``makeSelectorLabels``), the
  object's ``nodeSelector``, and its claim template ``spec.storage.volumeClaimTemplate`` named
  ``prometheus-<name>-db`` unless the template names itself (``VolumeName``).
  ``makeStatefulSetSpec`` also sets ``podManagementPolicy: Parallel`` (the default, ``cpf.PodManagementPolicy``).
  Replacing an existing StatefulSet keeps its labels and annotations but those with the operator's prefix
  ``operator.prometheus.io/`` (``pkg/k8s/k8s.go`` ``ForceUpdateStatefulSet`` -> ``updateStatefulSet`` ->
  ``mergeMetadata``).
- kubernetes/kubernetes ``pkg/controller/statefulset/stateful_set_utils.go`` ``getPodName`` (``<set>-<ordinal>``)
  and ``getPersistentVolumeClaimName`` (``<template>-<set>-<ordinal>``), ``stateful_pod_control.go``
  ``createMissingPersistentVolumeClaims`` (a missing claim is created, an existing one of that name is used as it
  is), and the controller-ref manager: a pod without a controller whose labels match the set's selector is adopted.
  Revisions (``stateful_set_control.go``): a pod is labelled ``controller-revision-hash`` with the revision of the
  template it was made from (``<set>-<hash of the template>``, ``getStatefulSetRevisions``); ``updateStatefulSet``'s
  rolling update deletes a pod of another revision (``Pod of StatefulSet is terminating for update``) and recreates
  it from the current template. With ``Parallel`` it does so at once, whatever the pod's state; with
  ``OrderedReady`` (monotonic) ``processReplica`` first waits for every pod to be Running and Ready.

Not modelled: scheduling (pods are created unscheduled; kube-scheduler's binding is the test's), garbage collection,
partitions, ControllerRevision objects and collision counts, the real hash function (a SHA-256 of the template
here), shards and replicas above 1 for anything but naming, and every other part of the Prometheus spec (containers
are a placeholder image).
"""
from __future__ import annotations

import hashlib
import json
import threading

from standins.velero.kube import Kube, KubeError

GROUP, VERSION = "monitoring.coreos.com", "v1"
HASH_ANNOTATION = "prometheus-operator-input-hash"
MODE_LABEL = "operator.prometheus.io/mode"
NAME_LABEL = "operator.prometheus.io/name"
SHARD_LABEL = "operator.prometheus.io/shard"
OPERATOR_PREFIX = "operator.prometheus.io/"
REVISION_LABEL = "controller-revision-hash"


def revision_of(sts: dict) -> str:
    """The name of the revision of a StatefulSet's current template: <set>-<hash of the template>."""
    template = json.dumps((sts.get("spec") or {}).get("template") or {}, sort_keys=True)
    return "%s-%s" % (sts["metadata"]["name"], hashlib.sha256(template.encode()).hexdigest()[:10])


def _running_and_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def selector_labels(name: str) -> dict:
    """pkg/prometheus/server/operator.go makeSelectorLabels, with the shard label makeStatefulSetSpec adds."""
    return {"app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/name": "prometheus",
            "app.kubernetes.io/instance": name, NAME_LABEL: name, "prometheus": name, SHARD_LABEL: "0"}


def input_hash(prometheus: dict, existing_spec: dict) -> str:
    """createSSetInputHash: the object's labels, annotations and generation, and the existing StatefulSet's spec
    without revisionHistoryLimit."""
    meta = prometheus.get("metadata") or {}
    spec = {k: v for k, v in (existing_spec or {}).items() if k != "revisionHistoryLimit"}
    text = json.dumps([meta.get("labels") or {}, meta.get("annotations") or {}, meta.get("generation"), spec], sort_keys=True)
    return str(int(hashlib.sha256(text.encode()).hexdigest()[:15], 16))


def make_statefulset(prometheus: dict, digest: str) -> dict:
    """makeStatefulSet for shard 0, the fields a failover meets."""
    meta, spec = prometheus["metadata"], prometheus.get("spec") or {}
    name = "prometheus-%s" % meta["name"]
    selector = selector_labels(meta["name"])
    pod_labels = dict(((spec.get("podMetadata") or {}).get("labels")) or {})
    pod_labels.update(selector)
    volume = "prometheus-%s-db" % meta["name"]
    template_spec = {"containers": [{"name": "prometheus", "image": "quay.io/prometheus/prometheus:standin",
                                     "volumeMounts": [{"name": volume, "mountPath": "/prometheus"}]}]}
    if spec.get("nodeSelector"):
        template_spec["nodeSelector"] = dict(spec["nodeSelector"])
    sts_spec = {"replicas": int(spec.get("replicas", 1)), "serviceName": "prometheus-operated",
                "podManagementPolicy": spec.get("podManagementPolicy") or "Parallel",
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": pod_labels}, "spec": template_spec}}
    claim_template = (spec.get("storage") or {}).get("volumeClaimTemplate")
    if claim_template:
        claim_meta = dict(claim_template.get("metadata") or {})
        claim_meta.setdefault("name", volume)
        template_spec["containers"][0]["volumeMounts"][0]["name"] = claim_meta["name"]
        claim_spec = dict(claim_template.get("spec") or {})
        claim_spec.setdefault("accessModes", ["ReadWriteOnce"])
        sts_spec["volumeClaimTemplates"] = [{"metadata": claim_meta, "spec": claim_spec}]
    else:
        template_spec["volumes"] = [{"name": volume, "emptyDir": {}}]
    labels = dict(meta.get("labels") or {})
    labels[MODE_LABEL] = "server"
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    annotations[HASH_ANNOTATION] = digest
    owner = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "Prometheus", "name": meta["name"], "uid": meta["uid"],
             "controller": True, "blockOwnerDeletion": True}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels, "annotations": annotations,
                         "ownerReferences": [owner]},
            "spec": sts_spec}


def _controller_of(obj: dict) -> dict | None:
    return next((o for o in (obj.get("metadata") or {}).get("ownerReferences") or [] if o.get("controller")), None)


class Controller(object):
    """The polling loop: .start() in a thread, .stop(), .tick() for one pass; .log and .errors for the test."""

    def __init__(self, kubeconfig_path: str, interval: float = 0.2):
        self.kube = Kube(kubeconfig_path)
        self.interval = interval
        self.log: list = []
        self.errors: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Controller":
        self._thread = threading.Thread(target=self.run, args=(self._stop,), daemon=True, name="prometheus-operator-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self, stop: threading.Event) -> None:
        """The loop, until `stop` is set; errors other than transient ones are kept in .errors."""
        while not stop.is_set():
            try:
                self.tick()
            except KubeError as exc:
                if not Kube.transient(exc) and exc.code != 404:
                    self.errors.append(str(exc))
            except Exception as exc:  # pylint: disable=broad-except
                self.errors.append("%s: %s" % (type(exc).__name__, exc))
            stop.wait(self.interval)

    def tick(self) -> None:
        for prometheus in self.kube.list(GROUP, VERSION, "prometheuses"):
            self._sync(prometheus)
        for sts in self.kube.list("apps", "v1", "statefulsets"):
            self._statefulset(sts)

    # --- prometheus-operator -------------------------------------------------------------------------------------
    def _sync(self, prometheus: dict) -> None:
        meta = prometheus["metadata"]
        key = "%s/%s" % (meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            return
        if (prometheus.get("spec") or {}).get("paused"):
            self._note("sync prometheus %s: no action taken (the resource is paused)" % key)
            return
        name = "prometheus-%s" % meta["name"]
        existing = self.kube.get("apps", "v1", "statefulsets", meta["namespace"], name, default=None)
        digest = input_hash(prometheus, (existing or {}).get("spec") or {})
        wanted = make_statefulset(prometheus, digest)
        if existing is None:
            self.kube.create("apps", "v1", "statefulsets", wanted, meta["namespace"])
            self._note("sync prometheus %s: created statefulset %s" % (key, name))
        elif (existing["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) != digest:
            # mergeMetadata: the existing labels and annotations stay, but the operator's own.
            for field in ("labels", "annotations"):
                kept = {k: v for k, v in (existing["metadata"].get(field) or {}).items() if not k.startswith(OPERATOR_PREFIX)}
                kept.update(wanted["metadata"][field])
                wanted["metadata"][field] = kept
            wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            self.kube.replace("apps", "v1", "statefulsets", wanted, meta["namespace"])
            self._note("sync prometheus %s: updated statefulset %s (input hash changed)" % (key, name))

    # --- the StatefulSet controller ------------------------------------------------------------------------------
    def _statefulset(self, sts: dict) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        namespace = meta["namespace"]
        if meta.get("deletionTimestamp"):
            return
        template = spec.get("template") or {}
        selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
        revision = revision_of(sts)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        for ordinal in range(int(spec.get("replicas", 1))):
            pod_name = "%s-%d" % (meta["name"], ordinal)
            volumes = list((template.get("spec") or {}).get("volumes") or [])
            for claim_template in spec.get("volumeClaimTemplates") or []:
                claim_name = "%s-%s-%d" % (claim_template["metadata"]["name"], meta["name"], ordinal)
                if self.kube.get("", "v1", "persistentvolumeclaims", namespace, claim_name, default=None) is None:
                    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": {"name": claim_name, "namespace": namespace,
                                          "labels": dict((claim_template["metadata"].get("labels")) or {})},
                             "spec": dict(claim_template.get("spec") or {})}
                    self.kube.create("", "v1", "persistentvolumeclaims", claim, namespace)
                    self._note("statefulset %s/%s: created claim %s" % (namespace, meta["name"], claim_name))
                volumes.append({"name": claim_template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
            owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": meta["name"], "uid": meta["uid"],
                     "controller": True, "blockOwnerDeletion": True}
            pod = self.kube.get("", "v1", "pods", namespace, pod_name, default=None)
            if pod is None:
                pod_spec = dict(template.get("spec") or {}, volumes=volumes, hostname=pod_name)
                labels = dict((template.get("metadata") or {}).get("labels") or {})
                labels["statefulset.kubernetes.io/pod-name"] = pod_name
                labels[REVISION_LABEL] = revision
                self.kube.create("", "v1", "pods", {"apiVersion": "v1", "kind": "Pod",
                                                    "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                                                                 "ownerReferences": [owner]},
                                                    "spec": pod_spec}, namespace)
                self._note("statefulset %s/%s: created pod %s" % (namespace, meta["name"], pod_name))
            elif _controller_of(pod) is None and all((pod["metadata"].get("labels") or {}).get(k) == v
                                                     for k, v in selector.items()):
                self.kube.patch("", "v1", "pods", pod_name, {"metadata": {"ownerReferences": [owner]}}, namespace)
                self._note("statefulset %s/%s: adopted pod %s" % (namespace, meta["name"], pod_name))
            elif _controller_of(pod) and _controller_of(pod).get("uid") == meta["uid"] and not pod["metadata"].get("deletionTimestamp"):
                old = (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)
                if old != revision and (not monotonic or _running_and_ready(pod)):
                    self.kube.delete("", "v1", "pods", pod_name, namespace)
                    self._note("statefulset %s/%s: pod %s of revision %s is terminating for update to %s"
                               % (namespace, meta["name"], pod_name, old, revision))

    def _note(self, line: str) -> None:
        if not self.log or self.log[-1] != line:
            self.log.append(line)


def start_controller(kubeconfig_path: str, interval: float = 0.2) -> Controller:
    """Start the loop in a daemon thread; returns it (.stop(), .tick(), .log, .errors)."""
    return Controller(kubeconfig_path, interval).start()

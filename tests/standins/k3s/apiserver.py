"""An in-memory Kubernetes API server over HTTPS for tests and the lab's `k3s` stand-in (stdlib only).

Serves discovery, CRUD/PATCH/DELETE with resourceVersion conflicts, Status errors shaped like
Kubernetes', dryRun, label/field selectors, a basic watch, CRDs with structural-schema
validation and the status subresource, pod eviction and node heartbeats. State is optionally
persisted (atomically) to a JSON file. No controllers run, except trivial status fillers for
workloads so "wait for rollout" style checks pass.
"""
from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import pki, schema as structural, version, yamlish

STATE_FILE = "state.json"


def node_password_secret(node_name: str) -> str:
    """The node-password secret's name (k3s-io/k3s pkg/nodepassword/nodepassword.go, getSecretName)."""
    return f"{node_name}.node-password.k3s".lower()


def now_iso() -> str:
    """Current UTC time as Kubernetes formats it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """Epoch seconds from an RFC 3339 timestamp (0 when unparsable)."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


class ApiError(Exception):
    """An error answered as a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        """The Status body."""
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass
class Resource:
    """One API resource (a plural under a group/version)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: list = field(default_factory=list)
    subresources: tuple = ()
    schema: dict | None = None
    singular: str = ""
    categories: list = field(default_factory=list)
    crd: str | None = None

    @property
    def api_version(self) -> str:
        """apiVersion of the objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """plural.group as used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list:
        """APIResource entries for this resource and its subresources."""
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        out = [{"name": self.plural, "singularName": self.singular or self.kind.lower(), "namespaced": self.namespaced,
                "kind": self.kind, "verbs": verbs, **({"shortNames": self.short_names} if self.short_names else {}),
                **({"categories": self.categories} if self.categories else {})}]
        for sub in self.subresources:
            if sub == "eviction":
                out.append({"name": f"{self.plural}/eviction", "singularName": "", "namespaced": self.namespaced,
                            "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]})
            else:
                out.append({"name": f"{self.plural}/{sub}", "singularName": "", "namespaced": self.namespaced,
                            "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


BUILTIN = [
    Resource("", "v1", "namespaces", "Namespace", False, ["ns"], ("status", "finalize")),
    Resource("", "v1", "nodes", "Node", False, ["no"], ("status",)),
    Resource("", "v1", "pods", "Pod", True, ["po"], ("status", "eviction"), categories=["all"]),
    Resource("", "v1", "services", "Service", True, ["svc"], ("status",), categories=["all"]),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"], ("status",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], ("status",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    Resource("", "v1", "events", "Event", True, ["ev"]),
    Resource("", "v1", "endpoints", "Endpoints", True, ["ep"]),
    Resource("apps", "v1", "deployments", "Deployment", True, ["deploy"], ("status",), categories=["all"]),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ("status",), categories=["all"]),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], ("status",), categories=["all"]),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ("status",), categories=["all"]),
    Resource("batch", "v1", "jobs", "Job", True, [], ("status",), categories=["all"]),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
             ["crd", "crds"], ("status",)),
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"]),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], ("status",)),
    # Kinds the charts of issue 18 render (traefik's IngressClass, cert-manager's webhook configurations);
    # stored only: no admission webhook is ever called.
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
    Resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False),
    # Issue 19's argo-cd chart renders a NetworkPolicy per component (argo-cd 10.1.1 templates/*/networkpolicy.yaml);
    # stored only: K3s's embedded network policy controller (kube-router) is not played here.
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"]),
]
WORKLOADS = {"deployments", "statefulsets", "replicasets", "daemonsets"}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# --- patches and selectors ---------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # strategic-merge directives are ignored
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(doc, pointer: str):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    return parent, (parts[-1] if parts else None)


def json_patch(doc, operations: list):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)
    for oper in operations:
        kind, path = oper.get("op"), oper.get("path", "")
        try:
            if kind in ("move", "copy"):
                src_parent, src_key = _pointer(doc, oper["from"])
                value = src_parent[int(src_key)] if isinstance(src_parent, list) else src_parent[src_key]
                value = copy.deepcopy(value)
                if kind == "move":
                    del src_parent[int(src_key) if isinstance(src_parent, list) else src_key]
                oper = {"op": "add", "path": path, "value": value}
                kind = "add"
            parent, key = _pointer(doc, path)
            if key is None:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(oper["value"])
                continue
            if kind == "test":
                current = parent[int(key)] if isinstance(parent, list) else parent[key]
                if current != oper.get("value"):
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: test failed at {path}")
            elif kind == "remove":
                del parent[int(key) if isinstance(parent, list) else key]
            elif kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(oper["value"]))
                else:
                    parent[key] = copy.deepcopy(oper["value"])
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(key)] = copy.deepcopy(oper["value"])
                else:
                    if key not in parent:
                        raise KeyError(key)
                    parent[key] = copy.deepcopy(oper["value"])
            else:
                raise ApiError(400, "BadRequest", f"unknown json patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {kind} {path}: {exc}") from exc
    return doc


def _split_selector(text: str) -> list:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def label_match(labels: dict, selector: str) -> bool:
    """Evaluate a label selector (=, ==, !=, in, notin, exists, !exists)."""
    labels = labels or {}
    for req in _split_selector(selector or ""):
        match = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", req)
        if match:
            key, oper, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if oper == "in" and labels.get(key) not in values:
                return False
            if oper == "notin" and key in labels and labels[key] in values:
                return False
            continue
        if "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in req:
            key, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True


def field_value(obj: dict, path: str):
    """Dotted path lookup used for field selectors."""
    current = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def field_match(obj: dict, selector: str) -> bool:
    """Evaluate a field selector (=, ==, != on dotted paths such as spec.nodeName)."""
    for req in _split_selector(selector or ""):
        negate = "!=" in req
        key, value = (s.strip() for s in (req.split("!=", 1) if negate else req.replace("==", "=").split("=", 1)))
        actual = field_value(obj, key)
        actual = "" if actual is None else str(actual).lower() if isinstance(actual, bool) else str(actual)
        if (actual == value) == negate:
            return False
    return True


# --- the store -----------------------------------------------------------------------

class Store:
    """Objects, the resource registry, resourceVersions and the watch event log."""

    def __init__(self, persist: Path | None = None):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.persist = persist
        self.rv = 0
        self.objects: dict = {}  # (group, plural) -> {(namespace, name): obj}
        self.registry: dict = {}  # (group, version, plural) -> Resource
        self.events: list = []  # (rv, type, group, plural, obj)
        self._deferred = threading.local()  # this thread's depth of deferred_save()
        for res in BUILTIN:
            self.register(res)
        if persist and persist.exists():
            self._load()
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if (None, name) not in self.objects[("", "namespaces")]:
                self.create(self.find("", "v1", "namespaces"), {"metadata": {"name": name}}, None)

    # registry
    def register(self, res: Resource) -> None:
        """Add a resource to the registry."""
        self.registry[(res.group, res.version, res.plural)] = res
        self.objects.setdefault((res.group, res.plural), {})

    def find(self, group: str, ver: str, plural: str) -> Resource:
        """Look up a resource or raise 404."""
        res = self.registry.get((group, ver, plural))
        if res is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return res

    def groups(self) -> dict:
        """{group: [versions]} of registered resources."""
        out: dict = {}
        for (group, ver, unused) in self.registry:
            out.setdefault(group, [])
            if ver not in out[group]:
                out[group].append(ver)
        return out

    # persistence
    def _load(self) -> None:
        data = json.loads(self.persist.read_text(encoding="utf-8"))
        self.rv = data.get("resourceVersion", 0)
        crds = [o for o in data["objects"] if o["apiVersion"] == "apiextensions.k8s.io/v1"]
        for crd in crds:
            self._register_crd(crd)
        for obj in data["objects"]:
            group = obj["apiVersion"].rpartition("/")[0]
            plural = obj.pop("__plural")
            self.objects.setdefault((group, plural), {})[(obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj

    def save(self) -> None:
        """Write the state atomically (temp file + rename)."""
        if not self.persist:
            return
        objs = []
        for (unused, plural), items in self.objects.items():
            for obj in items.values():
                objs.append(dict(obj, __plural=plural))
        self.persist.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=str(self.persist.parent), prefix=".state.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"resourceVersion": self.rv, "objects": objs}, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.persist)

    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _record(self, kind: str, res: Resource, obj: dict) -> None:
        self.events.append((self.rv, kind, res.group, res.plural, copy.deepcopy(obj)))
        del self.events[:-2000]
        self.changed.notify_all()
        if not getattr(self._deferred, "depth", 0):
            self.save()

    @contextlib.contextmanager
    def deferred_save(self):
        """This thread's writes reach the state file once, at the end (one helm install of a chart with a hundred
        objects and megabytes of CRDs writes it once, not once per object). Deviation: K3s's datastore (kine) commits
        every write; here a crash inside the block loses this thread's writes since its start. Other threads' writes
        are saved as before, with whatever this thread has written so far."""
        self._deferred.depth = getattr(self._deferred, "depth", 0) + 1
        try:
            yield
        finally:
            self._deferred.depth -= 1
            if not self._deferred.depth:
                with self.lock:
                    self.save()

    # CRUD
    def get(self, res: Resource, namespace: str | None, name: str) -> dict:
        """Return a copy of an object or raise NotFound."""
        with self.lock:
            obj = self.objects[(res.group, res.plural)].get((namespace if res.namespaced else None, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                               {"name": name, "group": res.group, "kind": res.plural})
            return self._view(res, obj)

    @staticmethod
    def _view(res: Resource, obj: dict) -> dict:
        view = copy.deepcopy(obj)
        view["apiVersion"], view["kind"] = res.api_version, res.kind
        return view

    def list(self, res: Resource, namespace: str | None, label_selector: str = "", field_selector: str = "") -> list:
        """Objects matching the selectors (all namespaces when namespace is None)."""
        with self.lock:
            out = []
            for (nsname, unused), obj in sorted(self.objects[(res.group, res.plural)].items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
                if res.namespaced and namespace and nsname != namespace:
                    continue
                if label_selector and not label_match(obj["metadata"].get("labels"), label_selector):
                    continue
                if field_selector and not field_match(obj, field_selector):
                    continue
                out.append(self._view(res, obj))
            return out

    def _check_namespace(self, res: Resource, namespace: str | None) -> None:
        if res.namespaced and (None, namespace) not in self.objects[("", "namespaces")]:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})

    def create(self, res: Resource, body: dict, namespace: str | None, dry_run: bool = False) -> dict:
        """Create an object (AlreadyExists on duplicates)."""
        with self.lock:
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError(400, "BadRequest", "metadata must be an object")
            if res.namespaced:
                body_ns = meta.get("namespace")
                if body_ns and namespace and body_ns != namespace:
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
                namespace = namespace or body_ns or "default"
                meta["namespace"] = namespace
                self._check_namespace(res, namespace)
            else:
                meta.pop("namespace", None)
                namespace = None
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta.get("name")
            self._validate_meta(res, obj)
            key = (namespace, name)
            if key in self.objects[(res.group, res.plural)]:
                raise ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                               {"name": name, "group": res.group, "kind": res.plural})
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            for drop in ("resourceVersion", "uid", "deletionTimestamp", "selfLink"):
                meta.pop(drop, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            meta["generation"] = 1
            if res.crd and "status" in res.subresources:
                obj.pop("status", None)  # set through /status only
            self._defaults(res, obj, None)
            self._validate(res, obj)
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                return obj
            if res.plural == "customresourcedefinitions":
                self._register_crd(obj)
            meta["resourceVersion"] = self._bump()
            self.objects[(res.group, res.plural)][key] = obj
            self._after_write(res, obj)
            self._record("ADDED", res, obj)
            return self._view(res, obj)

    def update(self, res: Resource, namespace: str | None, name: str, body: dict, subresource: str | None = None,
               dry_run: bool = False) -> dict:
        """Replace an object (PUT); 409 Conflict when metadata.resourceVersion is stale."""
        with self.lock:
            store = self.objects[(res.group, res.plural)]
            key = (namespace if res.namespaced else None, name)
            current = store.get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                               {"name": name, "group": res.group, "kind": res.plural})
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and str(wanted_rv) != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
                               "modified; please apply your changes to the latest version and try again",
                               {"name": name, "group": res.group, "kind": res.plural})
            status_sub = "status" in res.subresources
            if subresource == "status":
                new = copy.deepcopy(current)
                new["status"] = obj.get("status", {})
                obj = new
            else:
                if status_sub and "status" in current:
                    obj["status"] = copy.deepcopy(current["status"])
                elif status_sub:
                    obj.pop("status", None)
                meta = obj["metadata"]
                for keep in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "generation"):
                    if keep in current["metadata"]:
                        meta[keep] = current["metadata"][keep]
                    else:
                        meta.pop(keep, None)
                meta["name"] = name
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            self._validate_meta(res, obj)
            self._defaults(res, obj, current)
            self._validate(res, obj)

            def spec_of(item):
                skip = ("metadata", "apiVersion", "kind") + (("status",) if status_sub else ())
                return {k: v for k, v in item.items() if k not in skip}

            if spec_of(obj) != spec_of(current):
                obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            if dry_run:
                return obj
            if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
                del store[key]
                self._bump()
                self._record("DELETED", res, obj)
                return self._view(res, obj)
            unchanged = {k: v for k, v in obj.items() if k != "metadata"} == {k: v for k, v in current.items() if k != "metadata"} \
                and {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"} == \
                {k: v for k, v in current["metadata"].items() if k != "resourceVersion"}
            if unchanged:
                return self._view(res, current)
            if res.plural == "customresourcedefinitions":
                self._register_crd(obj)
            obj["metadata"]["resourceVersion"] = self._bump()
            store[key] = obj
            self._after_write(res, obj)
            self._record("MODIFIED", res, obj)
            return self._view(res, obj)

    def patch(self, res: Resource, namespace: str | None, name: str, patch, content_type: str, subresource: str | None = None,
              dry_run: bool = False) -> dict:
        """PATCH (json-patch for lists, merge patch otherwise; apply-patch creates)."""
        with self.lock:
            try:
                current = self.get(res, namespace, name)
            except ApiError:
                if "apply-patch" in content_type and isinstance(patch, dict):
                    return self.create(res, patch, namespace, dry_run)
                raise
            if isinstance(patch, list) or "json-patch" in content_type:
                new = json_patch(current, patch if isinstance(patch, list) else [])
            else:
                new = merge_patch(current, patch)
                wanted = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
                new["metadata"]["resourceVersion"] = wanted or current["metadata"]["resourceVersion"]
            return self.update(res, namespace, name, new, subresource, dry_run)

    def delete(self, res: Resource, namespace: str | None, name: str, dry_run: bool = False, preconditions: dict | None = None) -> dict:
        """Delete (or mark for deletion when finalizers remain); returns a Success Status."""
        with self.lock:
            current = self.get(res, namespace, name)
            want_rv = (preconditions or {}).get("resourceVersion")
            if want_rv and want_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the ResourceVersion '
                               f"in the precondition ({want_rv}) does not match the ResourceVersion in record "
                               f"({current['metadata']['resourceVersion']}). The object might have been modified",
                               {"name": name, "group": res.group, "kind": res.plural})
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": name, "group": res.group, "kind": res.plural, "uid": current["metadata"]["uid"]}}
            if dry_run:
                return status
            key = (namespace if res.namespaced else None, name)
            store = self.objects[(res.group, res.plural)]
            if current["metadata"].get("finalizers") and res.plural != "namespaces":
                obj = store[key]
                if not obj["metadata"].get("deletionTimestamp"):
                    obj["metadata"]["deletionTimestamp"] = now_iso()
                    obj["metadata"]["resourceVersion"] = self._bump()
                    self._record("MODIFIED", res, obj)
                return self._view(res, obj)
            obj = store.pop(key)
            self._bump()
            if res.plural == "nodes":
                # k3s-io/k3s pkg/node/controller.go, onRemove -> removeNodePassword: a deleted node's
                # password secret goes with it, so that a reinstalled host of that name can join again.
                self.objects[("", "secrets")].pop(("kube-system", node_password_secret(name)), None)
            if res.plural == "namespaces":
                for (group, plural), items in self.objects.items():
                    for item_key in [k for k in items if k[0] == name]:
                        gone = items.pop(item_key)
                        self.events.append((self.rv, "DELETED", group, plural, gone))
            if res.plural == "customresourcedefinitions":
                self._unregister_crd(obj)
            self._record("DELETED", res, obj)
            return status

    def ensure_node_password(self, node_name: str, password: str) -> None:
        """The node-password check of a joining node (agent or server), raising 403 on a mismatch.

        As k3s-io/k3s pkg/nodepassword/nodepassword.go, Ensure(): the secret
        kube-system/<node>.node-password.k3s (immutable, data.hash) is created on the node's first
        request; later requests must send the same password (the node's /etc/rancher/node/password),
        else the supervisor answers 403 Forbidden (pkg/server/router.go, passwordBootstrap) and the
        agent keeps retrying. The secret goes when the node object is deleted (see delete()).
        The stand-in stores a salted SHA-256 instead of upstream's scrypt hash.
        """
        if not node_name or not password:
            raise ApiError(400, "BadRequest", "missing node name or node password")
        res = self.find("", "v1", "secrets")
        name = node_password_secret(node_name)
        with self.lock:
            try:
                current = self.get(res, "kube-system", name)
            except ApiError:
                salt = secrets.token_hex(8)
                digest = hashlib.sha256((salt + password).encode()).hexdigest()
                self.create(res, {"metadata": {"name": name, "namespace": "kube-system"}, "immutable": True, "type": "Opaque",
                                  "data": {"hash": base64.b64encode(f"$sha256${salt}${digest}".encode()).decode()}}, "kube-system")
                return
            stored = base64.b64decode((current.get("data") or {}).get("hash", "")).decode(errors="replace")
            unused, unused2, salt, digest = (stored.split("$") + ["", "", "", ""])[:4]
            if not hmac.compare_digest(hashlib.sha256((salt + password).encode()).hexdigest(), digest):
                raise ApiError(403, "Forbidden", f"unable to verify hash for node '{node_name}'")

    # semantics
    def _validate_meta(self, res: Resource, obj: dict) -> None:
        name = obj["metadata"].get("name")
        kind = res.kind if not res.group else f"{res.kind}.{res.group}"
        if not name:
            raise ApiError(422, "Invalid", f"{kind} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                           {"kind": res.kind, "group": res.group,
                            "causes": [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                                        "field": "metadata.name"}]})
        if res.group == "rbac.authorization.k8s.io":
            # Roles and bindings take any path segment name, e.g. cert-manager's "cert-manager-controller-approve:cert-manager-io"
            # (kubernetes pkg/apis/rbac/validation/validation.go ValidateRBACName = path.IsValidPathSegmentName:
            # not "." or "..", no "/" or "%").
            problems = [f"may not be '{name}'"] if name in (".", "..") else [f"may not contain '{c}'" for c in "/%" if c in str(name)]
            if problems:
                msg = f'Invalid value: "{name}": ' + ", ".join(problems)
                raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: metadata.name: {msg}',
                               {"name": name, "kind": res.kind, "group": res.group,
                                "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": "metadata.name"}]})
            return
        pattern = _LABEL_NAME if res.plural in ("namespaces", "services") else _NAME
        if not pattern.match(str(name)) or len(str(name)) > 253:
            msg = f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, ' \
                  "'-' or '.', and must start and end with an alphanumeric character"
            raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: metadata.name: {msg}',
                           {"name": name, "kind": res.kind, "group": res.group,
                            "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": "metadata.name"}]})

    def _validate(self, res: Resource, obj: dict) -> None:
        errors = []
        if res.schema is not None:
            errors = structural.validate(obj, res.schema)
        elif res.plural == "customresourcedefinitions":
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            if not spec.get("group") or not names.get("plural") or not names.get("kind") or not spec.get("versions"):
                errors.append(("spec", "FieldValueRequired", "Required value: group, names.plural, names.kind and versions are required"))
            elif obj["metadata"]["name"] != f"{names['plural']}.{spec['group']}":
                errors.append(("metadata.name", "FieldValueInvalid",
                               f"Invalid value: \"{obj['metadata']['name']}\": must be spec.names.plural+\".\"+spec.group"))
        elif res.plural in ("pods",) and not (obj.get("spec") or {}).get("containers"):
            errors.append(("spec.containers", "FieldValueRequired", "Required value"))
        elif res.plural in ("deployments", "daemonsets", "statefulsets", "replicasets"):
            spec = obj.get("spec") or {}
            if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get("matchExpressions"):
                errors.append(("spec.selector", "FieldValueRequired", "Required value"))
            if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
                errors.append(("spec.template.spec.containers", "FieldValueRequired", "Required value"))
        if errors:
            name = obj["metadata"]["name"]
            kind = res.kind if not res.group else f"{res.kind}.{res.group}"
            summary = ", ".join(f"{fld}: {msg}" for fld, unused, msg in errors)
            raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: [{summary}]' if len(errors) > 1 else f'{kind} "{name}" is invalid: {summary}',
                           {"name": name, "group": res.group, "kind": res.kind,
                            "causes": [{"reason": reason, "message": msg, "field": fld} for fld, reason, msg in errors]})

    def _defaults(self, res: Resource, obj: dict, current: dict | None) -> None:
        meta = obj["metadata"]
        if meta.get("labels") is None:
            meta.pop("labels", None)
        plural = res.plural
        if plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif plural == "secrets":
            obj.setdefault("type", "Opaque")
            for key, value in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
        elif plural == "services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if not spec.get("clusterIP"):
                spec["clusterIP"] = (current or {}).get("spec", {}).get("clusterIP") or f"10.43.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            # The API server's defaulting on a single-stack IPv4 cluster (K3s's default): one family, IPv4
            # (kubernetes pkg/registry/core/service/storage/alloc.go, initIPFamilyFields).
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
            obj.setdefault("status", {"loadBalancer": {}})
        elif plural == "pods":
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            if "status" not in obj or not obj["status"]:
                running = bool(spec.get("nodeName"))
                obj["status"] = {"phase": "Running" if running else "Pending",
                                 "conditions": [{"type": "Ready", "status": "True" if running else "False"}]}
        elif plural == "nodes":
            obj.setdefault("spec", {})
            status = obj.setdefault("status", {})
            status.setdefault("conditions", [])
        elif plural == "customresourcedefinitions":
            spec = obj["spec"]
            obj["status"] = {"acceptedNames": dict(spec.get("names", {})), "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
                             "conditions": [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now_iso()},
                                            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": now_iso()}]}

    def _after_write(self, res: Resource, obj: dict) -> None:
        """Fake controllers: workloads report themselves fully rolled out."""
        if res.plural not in WORKLOADS:
            return
        gen = obj["metadata"].get("generation", 1)
        if res.plural == "daemonsets":  # one pod on each node its nodeSelector matches (taints are not checked)
            selector = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
            count = sum(1 for node in self.objects[("", "nodes")].values()
                        if all((node["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items()))
            obj["status"] = {"currentNumberScheduled": count, "desiredNumberScheduled": count, "numberAvailable": count,
                             "numberMisscheduled": 0, "numberReady": count, "updatedNumberScheduled": count, "observedGeneration": gen}
        else:
            replicas = (obj.get("spec") or {}).get("replicas", 1)
            obj["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                             "updatedReplicas": replicas, "currentReplicas": replicas, "observedGeneration": gen}
            if res.plural == "deployments":
                obj["status"]["conditions"] = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]

    def _register_crd(self, crd: dict) -> None:
        spec = crd["spec"]
        names = spec["names"]
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            subs = tuple(s for s in ("status", "scale") if s in (ver.get("subresources") or {}))
            self.register(Resource(spec["group"], ver["name"], names["plural"], names["kind"], spec.get("scope", "Namespaced") == "Namespaced",
                                   list(names.get("shortNames") or []), subs, (ver.get("schema") or {}).get("openAPIV3Schema") or {},
                                   names.get("singular", ""), list(names.get("categories") or []), crd["metadata"]["name"]))

    def _unregister_crd(self, crd: dict) -> None:
        spec = crd["spec"]
        for key in [k for k, r in self.registry.items() if r.crd == crd["metadata"]["name"]]:
            del self.registry[key]
        self.objects.pop((spec["group"], spec["names"]["plural"]), None)

    def heartbeat_monitor(self, grace: float) -> None:
        """Mark nodes whose Ready heartbeat is older than grace seconds as Unknown (node lifecycle controller)."""
        res = self.find("", "v1", "nodes")
        with self.lock:
            for node in list(self.objects[("", "nodes")].values()):
                for cond in (node.get("status") or {}).get("conditions", []):
                    if cond.get("type") == "Ready" and cond.get("status") == "True" and \
                            time.time() - parse_iso(cond.get("lastHeartbeatTime", "")) > grace:
                        cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                                    lastTransitionTime=now_iso())
                        taints = node.setdefault("spec", {}).setdefault("taints", [])
                        if not any(t.get("key") == "node.kubernetes.io/unreachable" for t in taints):
                            taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": now_iso()})
                        node["metadata"]["resourceVersion"] = self._bump()
                        self._record("MODIFIED", res, node)


# --- HTTP ------------------------------------------------------------------------------

class Auth:
    """Bearer tokens and K3s-style basic auth (user 'node' or 'server' with the token secret)."""

    def __init__(self, admin_token: str, server_secret: str = "", agent_secret: str = ""):
        self.admin_token, self.server_secret, self.agent_secret = admin_token, server_secret, agent_secret

    def user(self, header: str | None) -> str | None:
        """The authenticated user name, or None."""
        if not header:
            return None
        scheme, unused, cred = header.partition(" ")
        cred = cred.strip()
        if scheme.lower() == "bearer":
            if self.admin_token and hmac.compare_digest(cred, self.admin_token):
                return "system:admin"
            return self._secret_user(cred.rpartition(":")[2] if "::" in cred else cred, cred.split("::")[1].split(":")[0] if "::" in cred else "node")
        if scheme.lower() == "basic":
            try:
                user, unused, password = base64.b64decode(cred).decode().partition(":")
            except ValueError:
                return None
            return self._secret_user(password, user)
        return None

    def _secret_user(self, secret: str, user: str) -> str | None:
        if self.server_secret and hmac.compare_digest(secret, self.server_secret):
            return "server" if user == "server" else "node"
        if user == "node" and self.agent_secret and hmac.compare_digest(secret, self.agent_secret):
            return "node"
        return None


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with persistent connections, like kube-apiserver.

    A connection is closed only when the client asks for it (Connection: close, HTTP/1.0), after a watch,
    after an error that leaves the stream unusable, or after `timeout` seconds idle; every response on a
    connection about to be closed says `Connection: close`, so that no client reuses it (a pooling client
    such as urllib3 otherwise puts the connection back and sends its next request on a socket the server
    has closed: RemoteDisconnected, "Remote end closed connection without response"). Responses are
    written in one piece (buffered writer, flushed per request) with Nagle off, so keep-alive costs no
    delayed-ACK stall.
    """

    protocol_version = "HTTP/1.1"
    server_version = "k3s-standin"
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered: headers and body leave in one write at the flush after each request
    timeout = 300  # idle keep-alive connections (and stalled TLS handshakes) are dropped after this
    api: "ApiServer"

    _raw = b""
    _streaming = False

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet; the stand-in logs its own events."""

    def _send(self, code: int, body, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _read_raw(self) -> bytes:
        """The request body, always read in full first: bytes left unread would be parsed as the next request."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True  # the stream cannot be resynchronised
            raise ApiError(400, "BadRequest", "a request body needs a valid Content-Length")
        return self.rfile.read(length) if length else b""

    def _body(self):
        raw = self._raw
        if not raw:
            return None
        try:
            if "yaml" in (self.headers.get("Content-Type") or ""):
                return yamlish.load(raw.decode())
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc

    def do_GET(self):  # pylint: disable=invalid-name
        """GET."""
        self._dispatch("GET")

    def do_POST(self):  # pylint: disable=invalid-name
        """POST."""
        self._dispatch("POST")

    def do_PUT(self):  # pylint: disable=invalid-name
        """PUT."""
        self._dispatch("PUT")

    def do_PATCH(self):  # pylint: disable=invalid-name
        """PATCH."""
        self._dispatch("PATCH")

    def do_DELETE(self):  # pylint: disable=invalid-name
        """DELETE."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        self._raw = b""
        try:
            self._raw = self._read_raw()
            if path == "/ping":
                return self._send(200, "pong", "text/plain")
            if path == "/cacerts":
                return self._send(200, self.api.ca_pem, "text/plain")
            user = self.api.auth.user(self.headers.get("Authorization"))
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if path == "/v1-k3s/server-bootstrap":
                if user not in ("server", "system:admin"):
                    raise ApiError(403, "Forbidden", "forbidden: server-bootstrap needs the server token")
                return self._send(200, self.api.bootstrap_data())
            if path == "/v1-k3s/readyz":
                return self._send(200, "ok", "text/plain")
            if path == "/v1-k3s/client-kubelet.crt":
                if self.api.upstream:
                    return self._proxy(method)
                self.api.store.ensure_node_password(self.headers.get("K3s-Node-Name") or "", self.headers.get("K3s-Node-Password") or "")
                return self._send(200, "stand-in kubelet client certificate\n", "text/plain")
            if self.api.upstream:
                return self._proxy(method)
            if path in ("/readyz", "/livez", "/healthz"):
                return self._send(200, "ok", "text/plain")
            if path == "/version":
                return self._send(200, version.server_version_info())
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            code, result = self.api.handle(method, path, query, body, self.headers.get("Content-Type") or "", self)
            if result is not None and method == "GET" and "as=Table" in (self.headers.get("Accept") or "") \
                    and isinstance(result, dict) and result.get("kind") not in ("Status", None):
                result = as_table(self.api.store, path, result)
            if result is not None:
                self._send(code, result)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except ApiError as err:
            self._error_response(err)
        except Exception as exc:  # pylint: disable=broad-except
            self._error_response(ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    def _error_response(self, err: "ApiError") -> None:
        if self._streaming:
            self.close_connection = True  # a watch already sent its headers: only closing can end it
            return
        try:
            self._send(err.code, err.status())
        except OSError:
            self.close_connection = True

    def _proxy(self, method: str) -> None:
        """Forward to the first server (joined servers share its datastore this way)."""
        data = self._raw or None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "accept", "k3s-node-name", "k3s-node-password")}
        req = urllib.request.Request(self.api.upstream.rstrip("/") + self.path, data=data, method=method, headers=headers)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        watch = "/watch/" in self.path or (query.get("watch") or [""])[0].lower() in ("true", "1")
        try:
            with urllib.request.urlopen(req, context=self.api.upstream_ssl, timeout=310 if watch else 60) as resp:  # nosec - fixed upstream
                if watch:  # a watch is a stream of events: pass each on as it comes (kubectl wait, informers)
                    self.stream_watch(json.loads(line) for line in resp if line.strip())
                    return
                self._send(resp.status, resp.read(), resp.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as err:
            self._send(err.code, err.read(), err.headers.get("Content-Type", "application/json"))
        except OSError as exc:
            raise ApiError(503, "ServiceUnavailable", f"upstream server unavailable: {exc}") from exc

    def send_raw(self, code: int, data: bytes, content_type: str) -> None:
        """A non-JSON answer (the protobuf OpenAPI document)."""
        self._send(code, data, content_type)

    def stream_watch(self, events) -> None:
        """Send watch events with chunked encoding until the iterator ends."""
        self._streaming = True
        self.close_connection = True  # said up front: the stream ends with the connection
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        for event in events:
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, context: ssl.SSLContext):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request, client_address):
        # In the connection's own thread (never the accept loop), bounded by the handler's timeout.
        request.settimeout(self.RequestHandlerClass.timeout)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        """Connection errors from clients are not interesting."""


class ApiServer:
    """The API server: a Store behind an HTTPS listener."""

    def __init__(self, store: Store, auth: Auth, ca_pem: str, cert_file: str, key_file: str, host: str = "127.0.0.1",
                 port: int = 0, upstream: str | None = None, bootstrap: dict | None = None, heartbeat_grace: float = 40.0,
                 log=None):
        self.store, self.auth, self.ca_pem = store, auth, ca_pem
        self.upstream = upstream
        self.upstream_ssl = None
        if upstream:
            self.upstream_ssl = ssl.create_default_context(cadata=ca_pem)
        self._bootstrap = bootstrap or {}
        self.heartbeat_grace = heartbeat_grace
        self.log = log or (lambda *a, **k: None)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = _Server((host, port), handler, context)
        self.port = self.httpd.server_address[1]
        self._stop = threading.Event()
        self._threads = []

    def bootstrap_data(self) -> dict:
        """Secrets a joining server needs (CA and tokens), like K3s's /v1-k3s/server-bootstrap."""
        return dict(self._bootstrap)

    def start(self) -> None:
        """Serve in background threads (plus the node heartbeat monitor)."""
        thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="apiserver")
        thread.start()
        self._threads.append(thread)
        if not self.upstream:
            monitor = threading.Thread(target=self._monitor, daemon=True, name="node-monitor")
            monitor.start()
            self._threads.append(monitor)

    def _monitor(self) -> None:
        while not self._stop.wait(min(5.0, self.heartbeat_grace / 4)):
            try:
                self.store.heartbeat_monitor(self.heartbeat_grace)
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", f"node monitor: {exc}")

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # request routing
    def _discovery(self, path: str):
        store = self.store
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]}
        groups = store.groups()
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g, vs) for g, vs in sorted(groups.items()) if g]}
        if path == "/api/v1":
            return self._resource_list("", "v1")
        parts = path.split("/")[2:]
        if len(parts) == 1 and parts[0] in groups:
            return dict(self._group(parts[0], groups[parts[0]]), kind="APIGroup", apiVersion="v1")
        if len(parts) == 2 and parts[1] in groups.get(parts[0], []):
            return self._resource_list(parts[0], parts[1])
        return None

    @staticmethod
    def _group(group: str, versions: list) -> dict:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _resource_list(self, group: str, ver: str) -> dict:
        resources = []
        for (grp, version_, unused), res in sorted(self.store.registry.items()):
            if grp == group and version_ == ver:
                resources.extend(res.discovery())
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{ver}" if group else ver, "resources": resources}

    def _route(self, path: str):
        """Parse a resource path into (resource, namespace, name, subresource)."""
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, ver, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, ver, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        watch = False
        if rest and rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        res = self.store.find(group, ver, rest[0])
        if namespace and not res.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and sub not in res.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return res, namespace, name, sub, watch

    def handle(self, method: str, path: str, query: dict, body, content_type: str, handler=None):
        """Serve one API request; returns (code, body) or (code, None) when already streamed."""
        if method == "GET":
            found = self._discovery(path)
            if found is not None:
                return 200, found
            if path == "/openapi/v2" and handler is not None:
                accept = handler.headers.get("Accept") or ""
                if "protobuf" in accept:
                    # kubernetes/kube-openapi pkg/handler/handler.go: the answer's type is the subtype without "@"
                    handler.send_raw(200, openapi_v2_protobuf(), "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
                    return 200, None
                return 200, {"swagger": "2.0", "info": {"title": "Kubernetes", "version": version.VERSION.split("+", maxsplit=1)[0]},
                             "paths": {}, "definitions": {}}
            if path.startswith("/openapi"):
                raise ApiError(404, "NotFound", "the server could not find the requested resource (openapi v3 is not served)", {})
        res, namespace, name, sub, watch = self._route(path)
        store = self.store
        dry_run = query.get("dryRun") == "All" or (isinstance(body, dict) and "All" in (body.get("dryRun") or []) and body.get("kind") == "DeleteOptions")
        if method == "GET" and (watch or str(query.get("watch")).lower() in ("true", "1")):
            handler.stream_watch(self._watch(res, namespace, name, query))
            return 200, None
        if method == "GET" and name:
            return 200, store.get(res, namespace, name)
        if method == "GET":
            items = store.list(res, namespace, query.get("labelSelector", ""), query.get("fieldSelector", ""))
            return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                         "metadata": {"resourceVersion": str(store.rv)}, "items": items}
        if method == "POST" and sub == "eviction":
            store.get(res, namespace, name)
            if not dry_run:
                store.delete(res, namespace, name)
            return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        if not isinstance(body, (dict, list)) and method != "DELETE":
            raise ApiError(400, "BadRequest", "the request body is missing or not an object")
        if method == "POST":
            if name:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            if isinstance(body, dict) and body.get("apiVersion") and body.get("apiVersion") != res.api_version:
                raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) does not match "
                               f"the expected API version ({res.api_version})")
            return 201, store.create(res, body, namespace, dry_run)
        if method == "PUT" and name:
            return 200, store.update(res, namespace, name, body, sub, dry_run)
        if method == "PATCH" and name:
            return 200, store.patch(res, namespace, name, body, content_type, sub, dry_run)
        if method == "DELETE" and name:
            return 200, store.delete(res, namespace, name, dry_run, (body or {}).get("preconditions") if isinstance(body, dict) else None)
        if method == "DELETE":
            items = store.list(res, namespace, query.get("labelSelector", ""), query.get("fieldSelector", ""))
            for item in items:
                store.delete(res, item["metadata"].get("namespace"), item["metadata"]["name"], dry_run)
            return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": {}, "items": items}
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _watch(self, res: Resource, namespace: str | None, name: str | None, query: dict):
        """Initial ADDED events (or replay after resourceVersion), then live events until timeoutSeconds (max 300)."""
        store = self.store
        label_sel, field_sel = query.get("labelSelector", ""), query.get("fieldSelector", "")
        if name:
            field_sel = ",".join(x for x in (field_sel, f"metadata.name={name}") if x)
        # Monotonic, like the API server's Go timers (golang/go src/time/time.go, "Monotonic Clocks").
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds") or 300), 300)

        def wanted(obj):
            meta = obj["metadata"]
            return ((not namespace or meta.get("namespace") == namespace) and label_match(meta.get("labels"), label_sel)
                    and field_match(obj, field_sel))

        with store.lock:
            since = int(query.get("resourceVersion") or 0)
            if since:
                pending = [{"type": t, "object": store._view(res, o)} for rv, t, g, p, o in store.events  # pylint: disable=protected-access
                           if rv > since and (g, p) == (res.group, res.plural) and wanted(o)]
            else:
                pending = [{"type": "ADDED", "object": o} for o in store.list(res, namespace, label_sel, field_sel)]
            cursor = store.rv
            if str(query.get("sendInitialEvents")).lower() == "true":
                # A streaming list (kubernetes/enhancements keps/sig-api-machinery/3157-watch-list, which client-go's
                # WatchListClient uses by default since kubectl 1.35 for `kubectl wait`): every current object as
                # ADDED, then a BOOKMARK annotated k8s.io/initial-events-end, then the changes.
                pending = [{"type": "ADDED", "object": o} for o in store.list(res, namespace, label_sel, field_sel)]
                pending.append({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(cursor), "annotations": {"k8s.io/initial-events-end": "true"}}}})
        yield from pending
        while time.monotonic() < deadline and not self._stop.is_set():
            with store.lock:
                store.changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                fresh = [(rv, t, o) for rv, t, g, p, o in store.events if rv > cursor and (g, p) == (res.group, res.plural)]
                cursor = store.rv
            for unused, kind, obj in fresh:
                if wanted(obj):
                    yield {"type": kind, "object": store._view(res, obj)}  # pylint: disable=protected-access


# --- server-side printing (kubectl get asks for application/json;as=Table;v=v1;g=meta.k8s.io) ---------------

def human_duration(seconds: int) -> str:
    """kubernetes/apimachinery pkg/util/duration/duration.go, HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // 24 // 365)
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: dict) -> str:
    return human_duration(int(time.time() - parse_iso(obj["metadata"].get("creationTimestamp", ""))))


def _node_cells(obj: dict) -> list:
    meta, status = obj["metadata"], obj.get("status") or {}
    # kubernetes pkg/printers/internalversion/printers.go, printNode: Ready, NotReady, or Unknown without the condition
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if (obj.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in meta.get("labels") or {} if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}

    def address(kind):
        return next((a["address"] for a in status.get("addresses") or [] if a.get("type") == kind), "<none>")
    return [meta["name"], text, ",".join(roles) or "<none>", _age(obj), info.get("kubeletVersion", ""), address("InternalIP"),
            address("ExternalIP"), info.get("osImage", ""), info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _pod_cells(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    count = len(spec.get("containers") or [])
    ready = count if status.get("phase") == "Running" else 0
    return [obj["metadata"]["name"], f"{ready}/{count}", status.get("phase", ""), 0, _age(obj), status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>"]


# Columns as kubernetes pkg/printers/internalversion/printers.go (AddHandlers) names them; priority 1 = -o wide.
_COLUMNS = {
    "Node": ([("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0), ("Internal-IP", 1), ("External-IP", 1),
              ("OS-Image", 1), ("Kernel-Version", 1), ("Container-Runtime", 1)], _node_cells),
    "Pod": ([("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1)], _pod_cells),
    "Namespace": ([("Name", 0), ("Status", 0), ("Age", 0)],
                  lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), _age(o)]),
    "Deployment": ([("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0)],
                   lambda o: [o["metadata"]["name"], f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
                              (o.get("status") or {}).get("updatedReplicas", 0), (o.get("status") or {}).get("availableReplicas", 0), _age(o)]),
}


def as_table(store: "Store", path: str, result: dict) -> dict:
    """A meta.k8s.io/v1 Table of an object or a list: the built-in printers above, else Name and Age."""
    items = result.get("items") if "items" in result else [result]
    kind = result.get("kind", "")[:-4] if "items" in result else result.get("kind", "")
    columns, cells = _COLUMNS.get(kind, ([("Name", 0), ("Age", 0)], lambda o: [o["metadata"]["name"], _age(o)]))
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str((result.get("metadata") or {}).get("resourceVersion") or store.rv)},
            "columnDefinitions": [{"name": name, "type": "string", "format": "name" if name == "Name" else "",
                                   "description": "", "priority": prio} for name, prio in columns],
            "rows": [{"cells": cells(item), "object": item} for item in items]}


def _pb_field(number: int, data: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2); lengths here stay below 128."""
    return bytes([number << 3 | 2, len(data)]) + data


def openapi_v2_protobuf() -> bytes:
    """/openapi/v2 as kubectl asks for it (protobuf, gnostic's openapi_v2.Document): swagger 2.0, info, no definitions.

    kubectl reads this document before it validates what `apply` sends (k8s.io/kubectl pkg/cmd/util
    factory_client_access.go, Validator -> OpenAPISchema) and fails on a 404. The stand-in has no schemas of
    the built-in kinds, so the document has none and kubectl's client-side validation finds nothing to check;
    custom resources are still validated by the stand-in API server against their CRDs.
    """
    info = _pb_field(1, b"Kubernetes") + _pb_field(2, version.VERSION.split("+", maxsplit=1)[0].encode())
    return _pb_field(1, b"2.0") + _pb_field(2, info)


# --- library entry point ---------------------------------------------------------------

@dataclass
class Handle:
    """A running API server started by start_server()."""

    url: str
    kubeconfig_path: str
    token: str
    ca_path: str
    api: ApiServer
    store: Store

    def stop(self) -> None:
        """Stop the server."""
        self.api.stop()


def kubeconfig_text(server_url: str, ca_pem: str, token: str, name: str = "default") -> str:
    """A kubeconfig (YAML text) using a bearer token."""
    return yamlish.dump({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(), "server": server_url}, "name": name}],
        "contexts": [{"context": {"cluster": name, "user": name}, "name": name}],
        "current-context": name,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": name, "user": {"token": token}}],
    })


def make_certs(directory: Path, hostnames=(), ips=()) -> tuple:
    """Create (or reuse) a CA and issue a fresh serving certificate; returns (ca_pem, ca_key, cert_path, key_path, ca_path)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key_path = directory / "server-ca.crt", directory / "server-ca.key"
    if ca_crt.exists() and ca_key_path.exists():
        ca_pem, ca_key = ca_crt.read_text(encoding="utf-8"), pki.Key.from_pem(ca_key_path.read_text(encoding="utf-8"))
    else:
        ca_key = pki.Key()
        ca_pem = pki.issue(ca_key, f"k3s-server-ca@{int(time.time())}", ca=True)
        write_secret(ca_key_path, ca_key.pem())
        ca_crt.write_text(ca_pem, encoding="utf-8")
    return (ca_pem, ca_key) + issue_serving(directory, ca_pem, ca_key, hostnames, ips) + (str(ca_crt),)


def issue_serving(directory: Path, ca_pem: str, ca_key: "pki.Key", hostnames=(), ips=()) -> tuple:
    """Issue serving-kube-apiserver.{crt,key} signed by the CA; returns (cert_path, key_path)."""
    ca_cn = _ca_common_name(ca_pem)
    key = pki.Key()
    dns = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local") + tuple(hostnames)
    cert = pki.issue(key, "kube-apiserver", issuer_key=ca_key, issuer_name=ca_cn, server=True,
                     dns=tuple(h for h in dns if h and not _is_ip(h)),
                     ips=("127.0.0.1", "::1", "10.43.0.1") + tuple(i for i in tuple(ips) + tuple(hostnames) if i and _is_ip(i)))
    cert_path, key_path = directory / "serving-kube-apiserver.crt", directory / "serving-kube-apiserver.key"
    cert_path.write_text(cert, encoding="utf-8")
    write_secret(key_path, key.pem())
    return str(cert_path), str(key_path)


def _ca_common_name(ca_pem: str) -> str:
    # The CN is the only RDN of our CAs: find the UTF8String after the commonName OID 2.5.4.3.
    der = base64.b64decode("".join(l for l in ca_pem.strip().splitlines() if not l.startswith("-----")))
    idx = der.index(b"\x06\x03\x55\x04\x03") + 5
    length = der[idx + 1]
    return der[idx + 2:idx + 2 + length].decode()


def _is_ip(text: str) -> bool:
    try:
        import ipaddress  # pylint: disable=import-outside-toplevel
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def write_secret(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file atomically with the given mode from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_crd_files(paths) -> list:
    """CRD documents from YAML/JSON files (PyYAML when available, else the built-in subset reader)."""
    docs = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        try:
            import yaml  # pylint: disable=import-outside-toplevel
            loaded = [d for d in yaml.safe_load_all(text) if d]
        except ImportError:
            loaded = yamlish.load_all(text)
        docs.extend(d for d in loaded if d.get("kind") == "CustomResourceDefinition")
    return docs


def start_server(tmp_dir, host: str = "127.0.0.1", port: int = 0, crds=(), persist: bool = False,
                 heartbeat_grace: float = 40.0) -> Handle:
    """Start an API server for tests: returns a Handle with .url, .kubeconfig_path, .token, .stop()."""
    directory = Path(tmp_dir)
    ca_pem, unused_key, cert, key, ca_path = make_certs(directory / "tls", ips=(host,) if host not in ("0.0.0.0", "::") else ())
    token = secrets.token_hex(16)
    store = Store(directory / "db" / STATE_FILE if persist else None)
    for crd in load_crd_files(crds):
        store.create(store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), crd, None)
    api = ApiServer(store, Auth(token, secrets.token_hex(16)), ca_pem, cert, key, host, port, heartbeat_grace=heartbeat_grace)
    api.start()
    url_host = f"[{host}]" if ":" in host else host
    url_host = "127.0.0.1" if host == "0.0.0.0" else url_host
    url = f"https://{url_host}:{api.port}"
    kubeconfig = directory / "kubeconfig.yaml"
    write_secret(kubeconfig, kubeconfig_text(url, ca_pem, token))
    return Handle(url, str(kubeconfig), token, ca_path, api, store)

"""K3s's deploy controller, stand-in: auto-apply `<data-dir>/server/manifests/*.yaml` (lab and tests only).

Like K3s: every `.yaml`, `.yml` and `.json` file in the directory (not in subdirectories) is applied
when it appears or its content changes (polled); a file with a `<name>.skip` beside it is ignored.
Each file is tracked by an `Addon` (k3s.cattle.io/v1) in kube-system named after the file, whose
spec.checksum is the file's sha256. Objects without a namespace go to kube-system. Applied objects
carry the `objectset.rio.cattle.io/*` annotations and hash label of K3s's apply. When an object
disappears from a file that is still there, it is deleted (the apply's object set).

A removed file deletes nothing, as in K3s: pkg/deploy/controller.go listFilesIn() walks only the files
present (walkFiles) and deploys each; no code path looks at a file that went away, so its objects and its
Addon stay. Only a disabled component's file is deleted with its objects (delete_disabled). A file put back
unchanged is not applied again either: deploy() skips it when its checksum equals the Addon's (the stand-in
keeps the last checksum per file name) until K3s restarts (start() lists with force).
"""
from __future__ import annotations

import copy
import hashlib
import threading
from pathlib import Path

from . import apiserver, yamlish

ADDON_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "addons.k3s.cattle.io"},
    "spec": {"group": "k3s.cattle.io", "scope": "Namespaced",
             "names": {"plural": "addons", "singular": "addon", "kind": "Addon", "listKind": "AddonList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"source": {"type": "string"}, "checksum": {"type": "string"}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}
DEFAULT_NAMESPACE = "kube-system"
SUFFIXES = (".yaml", ".yml", ".json")


def register_crds(store: apiserver.Store) -> None:
    """The Addon CRD, as K3s registers it."""
    crds = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    try:
        store.get(crds, None, ADDON_CRD["metadata"]["name"])
    except apiserver.ApiError:
        store.create(crds, copy.deepcopy(ADDON_CRD), None)


def _resource(store: apiserver.Store, api_version: str, kind: str) -> apiserver.Resource:
    group, unused, version = api_version.rpartition("/")
    for res in list(store.registry.values()):
        if res.group == group and res.version == version and res.kind == kind:
            return res
    raise apiserver.ApiError(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')


def documents(text: str) -> list:
    """The objects of a manifest file (List kinds unpacked)."""
    out = []
    for doc in yamlish.load_all(text):
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            out.extend(d for d in doc["items"] if isinstance(d, dict))
        elif isinstance(doc, dict) and doc:
            out.append(doc)
    return out


class ManifestWatcher:
    """Polls a manifests directory and applies what changed."""

    def __init__(self, store: apiserver.Store, directory: Path, interval: float = 1.0, log=None, disables=()):
        self.store = store
        self.directory = Path(directory)
        self.disables = set(disables)  # K3s's --disable names (traefik, metrics-server, ...)
        self.interval = interval
        self.log = log or (lambda *a, **k: None)
        self.applied: dict = {}  # file name -> (checksum, [(group, version, plural, namespace, name)])
        self._stop = threading.Event()

    def start(self) -> "ManifestWatcher":
        """Make the directory (K3s does at start) and poll it in a daemon thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self.loop, daemon=True, name="deploy-controller").start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()

    def loop(self) -> None:
        """Sync now, then every interval until stopped."""
        while True:
            try:
                self.sync()
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", f"deploy controller: {exc!r}")
            if self._stop.wait(self.interval):
                return

    def sync(self) -> None:
        """Apply new or changed files (removed files: nothing, see the module doc)."""
        present = {}
        if self.directory.is_dir():
            for path in sorted(self.directory.iterdir()):
                if path.is_file() and path.name.endswith(SUFFIXES) and path.name.rsplit(".", 1)[0] in self.disables:
                    self.delete_disabled(path)
                    continue
                if path.is_file() and path.name.endswith(SUFFIXES) and not path.name.startswith(".") \
                        and not (self.directory / (path.name + ".skip")).exists():
                    present[path.name] = path
        for name, path in present.items():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            checksum = hashlib.sha256(data).hexdigest()
            if self.applied.get(name, (None,))[0] == checksum:
                continue
            self.apply_file(name, path, data.decode("utf-8", "replace"), checksum)

    def delete_disabled(self, path: Path) -> None:
        """A disabled component's file: its objects and Addon are deleted, then the file itself.

        k3s-io/k3s pkg/deploy/controller.go, listFilesIn(): "Disabled files are not just skipped, but actively
        deleted from the filesystem"; shouldDisableFile() matches the file name without its extension against
        the --disable list; delete() removes every object the file names, then the file.
        """
        try:
            docs = documents(path.read_text(encoding="utf-8"))
        except (OSError, yamlish.YAMLError, ValueError) as exc:
            self.log("error", f"Failed to process config: failed to delete {path}: {exc}")
            return
        for doc in docs:
            try:
                res = _resource(self.store, str(doc["apiVersion"]), str(doc["kind"]))
                namespace = ((doc.get("metadata") or {}).get("namespace") or DEFAULT_NAMESPACE) if res.namespaced else None
                self.store.delete(res, namespace, doc["metadata"]["name"])
            except (apiserver.ApiError, KeyError, TypeError):
                pass
        self.applied.pop(path.name, None)
        self._addon(path.name, None, None)
        path.unlink(missing_ok=True)
        self.log("info", f"Deleted disabled manifest {path} and its objects")

    def apply_file(self, name: str, path: Path, text: str, checksum: str) -> None:
        """Apply every object of one file (errors are logged, as K3s logs them, and retried on change)."""
        addon = name.rsplit(".", 1)[0]
        try:
            docs = documents(text)
        except (yamlish.YAMLError, ValueError) as exc:
            self.applied[name] = (checksum, self.applied.get(name, (None, []))[1])
            self.log("error", f"Failed to process config: failed to process {path}: {exc}")
            return
        written, failed = [], False
        for doc in docs:
            try:
                written.append(self._apply(doc, addon, checksum))
            except (apiserver.ApiError, KeyError, TypeError) as exc:
                failed = True
                self.log("error", f"Failed to apply {doc.get('kind')} {((doc.get('metadata') or {}).get('name'))} from {path}: "
                                  f"{getattr(exc, 'message', exc)}")
        for ref in self.applied.get(name, (None, []))[1]:
            if ref not in written and not failed:
                self._delete(ref)
        self.applied[name] = (checksum, written)
        self._addon(name, str(path), checksum)
        self.log("info", f"Applied manifest {path} ({len(written)} objects)")

    def _apply(self, doc: dict, addon: str, checksum: str) -> tuple:
        store = self.store
        res = _resource(store, str(doc["apiVersion"]), str(doc["kind"]))
        obj = copy.deepcopy(doc)
        meta = obj.setdefault("metadata", {})
        namespace = (meta.get("namespace") or DEFAULT_NAMESPACE) if res.namespaced else None
        if namespace:
            meta["namespace"] = namespace
        meta.setdefault("labels", {})["objectset.rio.cattle.io/hash"] = hashlib.sha1(
            f"{DEFAULT_NAMESPACE}/{addon}".encode()).hexdigest()
        meta.setdefault("annotations", {}).update({
            "objectset.rio.cattle.io/id": "", "objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon",
            "objectset.rio.cattle.io/owner-name": addon, "objectset.rio.cattle.io/owner-namespace": DEFAULT_NAMESPACE,
            "objectset.rio.cattle.io/applied": checksum[:16]})
        try:
            current = store.get(res, namespace, meta["name"])
        except apiserver.ApiError as err:
            if err.code != 404:
                raise
            store.create(res, obj, namespace)
        else:
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if "status" in current:
                obj["status"] = current["status"]
            store.update(res, namespace, meta["name"], obj)
        return (res.group, res.version, res.plural, namespace, meta["name"])

    def _delete(self, ref: tuple) -> None:
        group, version, plural, namespace, name = ref
        try:
            self.store.delete(self.store.find(group, version, plural), namespace, name)
        except apiserver.ApiError:
            pass

    def _addon(self, name: str, source: str | None, checksum: str | None) -> None:
        addon = name.rsplit(".", 1)[0]
        try:
            res = self.store.find("k3s.cattle.io", "v1", "addons")
        except apiserver.ApiError:
            return
        try:
            current = self.store.get(res, DEFAULT_NAMESPACE, addon)
        except apiserver.ApiError:
            current = None
        try:
            if source is None:
                if current is not None:
                    self.store.delete(res, DEFAULT_NAMESPACE, addon)
                return
            body = {"metadata": {"name": addon, "namespace": DEFAULT_NAMESPACE}, "spec": {"source": source, "checksum": checksum}}
            if current is None:
                self.store.create(res, body, DEFAULT_NAMESPACE)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.store.update(res, DEFAULT_NAMESPACE, addon, body)
        except apiserver.ApiError as err:
            self.log("error", f"Addon {addon}: {err.message}")

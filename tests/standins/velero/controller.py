"""A polling stand-in for the Velero server: BackupStorageLocations, Backups, Restores, Schedules and
DeleteBackupRequests (velero.io/v1), with data in S3 in Velero's layout.

It talks to the API only over HTTPS with the kubeconfig (official `kubernetes` client), so it behaves the
same in-process and against a remote stand-in K3s. Test code only; see README.md.
"""
from __future__ import annotations

import base64
import copy
import datetime
import fnmatch
import gzip
import hashlib
import json
import logging
import threading
import time
from pathlib import Path

from standins.k3s import schema as structural
from support.paths import CONTRACTS
from . import cron, modifiers, store
from .kube import Kube, KubeError

LOG = logging.getLogger("velero_standin")
GROUP, VERSION, API_VERSION = "velero.io", "v1", "velero.io/v1"
KNOBS_CONFIGMAP = "velero-standin"
OUTCOMES = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")
CRD_FILES = ("velero.io_backups.yaml", "velero.io_backupstoragelocations.yaml", "velero.io_deletebackuprequests.yaml",
             "velero.io_restores.yaml", "velero.io_schedules.yaml")
LABEL_BACKUP, LABEL_RESTORE = "velero.io/backup-name", "velero.io/restore-name"
LABEL_SCHEDULE, LABEL_LOCATION, LABEL_BACKUP_UID = "velero.io/schedule-name", "velero.io/storage-location", "velero.io/backup-uid"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
LOCAL_PATH_BASE = "/var/lib/rancher/k3s/storage"  # K3s's DEFAULT_LOCAL_STORAGE_PATH for local-path's nodePathMap
# Volume types the opt-out approach never selects, silently (vmware-tanzu/velero pkg/util/podvolume/pod_volume.go,
# GetVolumesByPod); a claim whose PV is hostPath is selected and then skipped with a warning (see _fs_backups).
FS_SKIP_VOLUME_TYPES = ("hostPath", "secret", "configMap", "projected", "downwardAPI")
# Velero's default restore order; everything else follows alphabetically.
RESTORE_PRIORITIES = ["customresourcedefinitions.apiextensions.k8s.io", "namespaces", "storageclasses.storage.k8s.io",
                      "persistentvolumes", "persistentvolumeclaims", "serviceaccounts", "secrets", "configmaps",
                      "limitranges", "pods", "replicasets.apps", "endpoints", "services"]
RESTORE_PASSES = 3  # passes of a restore cut short by transient API errors before it is Failed
ITEM_ATTEMPTS = 4  # attempts at one item of a restore (transient API errors) before it is a restore error
SKIP_BACKUP = {"events", "events.events.k8s.io", "nodes", "bindings", "componentstatuses", "tokenreviews.authentication.k8s.io"}
# vmware-tanzu/velero v1.18.1 pkg/restore/restore.go resetMetadata: also generateName and ownerReferences (a restored
# pod or ReplicaSet is an orphan, adopted by a controller whose selector matches it).
META_DROP = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink", "managedFields", "deletionTimestamp",
             "deletionGracePeriodSeconds", "generateName", "ownerReferences")


def crd_paths() -> list:
    """The five Velero CRD files (contract data under ../shared/contracts/velero)."""
    return [Path(CONTRACTS) / "velero" / name for name in CRD_FILES]


def now_iso(epoch: float | None = None) -> str:
    """RFC 3339 UTC timestamp as Kubernetes writes it."""
    when = datetime.datetime.fromtimestamp(time.time() if epoch is None else epoch, datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text) -> float:
    """Epoch seconds from an RFC 3339 timestamp (0 when absent or invalid)."""
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def selector_match(labels: dict, selector: dict | None) -> bool:
    """metav1.LabelSelector semantics (matchLabels, matchExpressions)."""
    if not selector:
        return True
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, oper, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if oper == "In" and (key not in labels or labels[key] not in values):
            return False
        if oper == "NotIn" and key in labels and labels[key] in values:
            return False
        if oper == "Exists" and key not in labels:
            return False
        if oper == "DoesNotExist" and key in labels:
            return False
    return True


def spec_selects(spec: dict, labels: dict) -> bool:
    """labelSelector / orLabelSelectors of a Backup or Restore spec."""
    ors = spec.get("orLabelSelectors") or []
    if ors:
        return any(selector_match(labels, sel) for sel in ors)
    return selector_match(labels, spec.get("labelSelector"))


def namespace_selected(name: str, included, excluded) -> bool:
    """Velero's namespace include/exclude lists (globs; empty include means all)."""
    included = included or ["*"]
    if any(fnmatch.fnmatchcase(name, pat) for pat in excluded or []):
        return False
    return any(fnmatch.fnmatchcase(name, pat) for pat in included)


def overlap(included, excluded) -> list:
    """Items both included and excluded (Velero rejects those lists)."""
    return sorted(set(included or []) & set(excluded or []))


def group_resource(plural: str, group: str) -> str:
    """Velero's group-resource string: pods, deployments.apps."""
    return f"{plural}.{group}" if group else plural


def resource_names(entry: dict, group: str) -> set:
    """Names a user may give a resource in includedResources."""
    names = {entry["name"], group_resource(entry["name"], group), entry.get("kind", "").lower(), entry.get("singularName", "")}
    names.update(entry.get("shortNames") or [])
    return {n for n in names if n}


def resource_selected(names: set, included, excluded) -> bool:
    """includedResources / excludedResources."""
    if excluded and (names & set(excluded)):
        return False
    included = included or ["*"]
    return "*" in included or bool(names & set(included))


def strip_meta(obj: dict) -> dict:
    """Drop server-set metadata and status like Velero's resetMetadataAndStatus."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    for key in META_DROP:
        meta.pop(key, None)
    obj.pop("status", None)
    return obj


def pod_claims(pod: dict) -> dict:
    """{volume name: claim name} of a pod's PVC volumes."""
    return {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
            if (v.get("persistentVolumeClaim") or {}).get("claimName")}


def pv_node(pv: dict) -> str | None:
    """The node a local PV is pinned to (nodeAffinity kubernetes.io/hostname)."""
    terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") in ("kubernetes.io/hostname",) and expr.get("operator") == "In" and expr.get("values"):
                return expr["values"][0]
    return None


class OpLog:
    """Log lines of one backup or restore, in logrus text format like Velero's log files."""

    def __init__(self, kind: str, ident: str):
        self.kind, self.ident, self.lines = kind, ident, []

    def __call__(self, msg: str, level: str = "info") -> None:
        self.lines.append(f'time="{now_iso()}" level={level} msg="{msg}" {self.kind}={self.ident} logSource="velero-standin"')
        LOG.debug("%s %s: %s", self.kind, self.ident, msg)

    def gz(self) -> bytes:
        """The gzip'd log file."""
        return gzip.compress(("\n".join(self.lines) + "\n").encode())


class Controller:  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    """The polling loop; start() runs it in a thread, run(stop_event) in the foreground."""

    def __init__(self, kubeconfig_path: str, namespace: str = "velero", interval: float = 0.5, bsl_period: float = 3.0,
                 sync_period: float = 5.0, cron_enabled: bool = True, default_location: str = "default",
                 default_ttl: str = "720h0m0s"):
        self.kube = Kube(kubeconfig_path)
        self.namespace, self.interval = namespace, interval
        self.bsl_period, self.sync_period, self.cron_enabled = bsl_period, sync_period, cron_enabled
        self.default_location, self.default_ttl = default_location, default_ttl
        self.tick_seconds: list = []  # durations of the last ticks (diagnostics)
        self.errors: list = []  # internal errors and schema violations (tests assert it stays empty)
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status_sub: set | None = None
        self._schemas: dict = {}
        self._locations: dict = {}
        self._bsl_checked: dict = {}
        # (plural, name) -> {"due": time.monotonic() deadline, "outcome": str}: deadlines and intervals use the
        # monotonic clock, as upstream's do (vmware-tanzu/velero's controllers requeue through controller-runtime's
        # RequeueAfter, Go timers on the monotonic clock: golang/go src/time/time.go), so a step of the wall clock
        # neither stalls nor rushes them; timestamps written into objects stay wall-clock.
        self._running: dict = {}
        self._schedule_gen: dict = {}
        self._last_sync = 0.0

    # lifecycle
    def start(self) -> "Controller":
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run, args=(self._stop,), daemon=True, name="velero-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (waits for the current tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Poll until stop_event is set."""
        stop_event = stop_event or self._stop
        LOG.info("velero stand-in controller watching namespace %s every %ss", self.namespace, self.interval)
        while not stop_event.is_set():
            began = time.time()
            self.tick()
            self.tick_seconds.append(round(time.time() - began, 3))
            del self.tick_seconds[:-50]
            stop_event.wait(self.interval)

    def _error(self, msg: str) -> None:
        LOG.error("%s", msg)
        self.errors.append(msg)
        del self.errors[:-200]

    def tick(self) -> None:
        """One reconciliation pass over every Velero kind."""
        try:
            if not self._ready():
                return
            knobs = self._knobs()
        except (KubeError, OSError) as exc:
            LOG.warning("API not reachable: %s", exc)
            return
        for step in (self._reconcile_locations, self._reconcile_schedules, self._reconcile_backups,
                     self._reconcile_restores, self._reconcile_deletions, self._sync_backups):
            try:
                step(knobs)
            except Exception as exc:  # pylint: disable=broad-except
                self._error(f"{step.__name__}: {type(exc).__name__}: {exc}")

    def _ready(self) -> bool:
        if self._status_sub is None:
            resources = self.kube.resources(GROUP, VERSION)
            if not resources:
                LOG.info("velero.io/v1 is not served yet (CRDs missing)")
                return False
            self._status_sub = {r["name"].split("/")[0] for r in resources if r["name"].endswith("/status")}
        return True

    def _knobs(self) -> dict:
        cm = self.kube.get("", "v1", "configmaps", self.namespace, KNOBS_CONFIGMAP, default=None)
        return dict((cm or {}).get("data") or {})

    # API helpers
    def _list(self, plural: str, label_selector: str = "") -> list:
        return self.kube.list(GROUP, VERSION, plural, self.namespace, label_selector)

    def _get(self, plural: str, name: str):
        return self.kube.get(GROUP, VERSION, plural, self.namespace, name, default=None)

    def _schema(self, plural: str) -> dict:
        if plural not in self._schemas:
            crd = self.kube.get("apiextensions.k8s.io", "v1", "customresourcedefinitions", None, f"{plural}.{GROUP}")
            version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
            self._schemas[plural] = version["schema"]["openAPIV3Schema"]
        return self._schemas[plural]

    def _check(self, plural: str, obj: dict) -> None:
        """Self-check: the object must validate against the CRD without anything being pruned."""
        candidate = copy.deepcopy(obj)
        errors = structural.validate(candidate, self._schema(plural))
        if errors:
            self._error(f"{plural}/{obj['metadata']['name']}: schema errors {errors}")
        elif candidate != obj:
            self._error(f"{plural}/{obj['metadata']['name']}: fields unknown to the CRD would be pruned")

    def _update(self, plural: str, obj: dict, status: dict | None = None, spec: dict | None = None,
                labels: dict | None = None) -> dict:
        """Merge-patch spec/labels on the object and status (via /status when the CRD has that subresource)."""
        name = obj["metadata"]["name"]
        merged = copy.deepcopy(obj)
        if spec:
            merged["spec"] = {**(merged.get("spec") or {}), **spec}
        if labels:
            merged["metadata"]["labels"] = {**(merged["metadata"].get("labels") or {}), **labels}
        if status is not None:
            new_status = dict(merged.get("status") or {})
            for key, value in status.items():
                if value is None:
                    new_status.pop(key, None)
                else:
                    new_status[key] = value
            merged["status"] = new_status
        self._check(plural, merged)
        main: dict = {}
        if spec:
            main["spec"] = spec
        if labels:
            main["metadata"] = {"labels": labels}
        status_sub = plural in (self._status_sub or set())
        if status is not None and not status_sub:
            main["status"] = status
        result = obj
        if main:
            result = self.kube.patch(GROUP, VERSION, plural, name, main, self.namespace)
        if status is not None and status_sub:
            result = self.kube.patch(GROUP, VERSION, plural, name, {"status": status}, self.namespace, sub="status")
        return result

    # storage locations
    def _location(self, bsl: dict) -> store.Location:
        spec = bsl.get("spec") or {}
        cfg = spec.get("config") or {}
        if (spec.get("provider") or "aws").split("/")[-1] != "aws":
            raise ValueError(f"unsupported provider {spec.get('provider')!r} (the stand-in speaks S3 only)")
        cred = spec.get("credential") or {}
        secret_name, secret_key = (cred.get("name"), cred.get("key")) if cred.get("name") else ("cloud-credentials", "cloud")
        secret = self.kube.get("", "v1", "secrets", self.namespace, secret_name, default=None)
        if secret is None:
            raise ValueError(f'unable to get credentials: secrets "{secret_name}" not found')
        if secret_key not in (secret.get("data") or {}):
            raise ValueError(f'unable to get credentials: key "{secret_key}" not found in secret "{secret_name}"')
        access, secret_value = store.parse_credentials(base64.b64decode(secret["data"][secret_key]).decode(),
                                                       cfg.get("profile") or "default")
        if not cfg.get("s3Url"):
            raise ValueError("config.s3Url is required by the stand-in (no real AWS endpoints)")
        obj_storage = spec.get("objectStorage") or {}
        loc = store.Location(bsl["metadata"]["name"], obj_storage.get("bucket", ""), obj_storage.get("prefix") or "",
                             cfg["s3Url"], cfg.get("region") or "us-east-1", access, secret_value,
                             str(cfg.get("s3ForcePathStyle", "false")).lower() == "true",
                             False if str(cfg.get("insecureSkipTLSVerify", "")).lower() == "true" else None)
        return self._locations.setdefault(loc.key, loc)

    def _locations_by_name(self) -> dict:
        return {b["metadata"]["name"]: b for b in self._list("backupstoragelocations")}

    def _default_location(self, bsls: dict) -> str:
        marked = sorted(n for n, b in bsls.items() if (b.get("spec") or {}).get("default"))
        return marked[0] if marked else self.default_location

    def _reconcile_locations(self, knobs: dict) -> None:
        now = time.time()
        forced = str(knobs.get("bsl-available", "")).lower() == "false"
        for bsl in self._list("backupstoragelocations"):
            name = bsl["metadata"]["name"]
            key = (bsl["metadata"].get("generation"), forced)
            last = self._bsl_checked.get(name)
            phase = (bsl.get("status") or {}).get("phase")
            if phase and last and last[1] == key and now - last[0] < self.bsl_period:
                continue
            message = None
            if forced:
                message = "BackupStorageLocation is unavailable (forced by the velero-standin bsl-available knob)"
            else:
                try:
                    self._location(bsl).validate()
                except (ValueError, KubeError, *store.STORAGE_ERRORS) as exc:
                    message = f"BackupStorageLocation \"{name}\" is unavailable: {exc}"
            new_phase = "Unavailable" if message else "Available"
            if new_phase != phase:
                LOG.info("backup storage location %s: %s", name, new_phase)
            self._update("backupstoragelocations", bsl, status={"phase": new_phase, "lastValidationTime": now_iso(now),
                                                                "message": message})
            self._bsl_checked[name] = (now, key)

    # schedules
    def _reconcile_schedules(self, knobs: dict) -> None:
        schedules = {s["metadata"]["name"]: s for s in self._list("schedules")}
        for name, sched in schedules.items():
            gen = sched["metadata"].get("generation")
            status = sched.get("status") or {}
            if status.get("phase") in (None, "", "New") or self._schedule_gen.get(name) != gen:
                errors = self._validate_schedule(sched)
                phase = "FailedValidation" if errors else "Enabled"
                if phase != status.get("phase") or (status.get("validationErrors") or None) != (errors or None):
                    sched = self._update("schedules", sched, status={"phase": phase, "validationErrors": errors or None})
                    schedules[name] = sched
                self._schedule_gen[name] = gen
        triggers = [t.strip() for t in str(knobs.get("trigger-schedule") or "").split(",") if t.strip()]
        if triggers:
            self.kube.patch("", "v1", "configmaps", KNOBS_CONFIGMAP, {"data": {"trigger-schedule": None}}, self.namespace)
            for name in triggers:
                if name in schedules and (schedules[name].get("status") or {}).get("phase") == "Enabled":
                    self._backup_from_schedule(schedules[name])
                else:
                    LOG.warning("trigger-schedule: no enabled schedule %s", name)
        if not self.cron_enabled or str(knobs.get("cron", "")).lower() == "false":
            return
        now = time.time()
        for name, sched in schedules.items():
            status, spec = sched.get("status") or {}, sched.get("spec") or {}
            if status.get("phase") != "Enabled" or spec.get("paused") or name in triggers:
                continue
            anchor = max(parse_iso(status.get("lastBackup")), parse_iso(sched["metadata"].get("creationTimestamp")), self.started)
            if cron.Cron(spec["schedule"]).due(anchor, now):
                self._backup_from_schedule(sched)

    @staticmethod
    def _validate_schedule(sched: dict) -> list:
        spec = sched.get("spec") or {}
        errors = []
        try:
            cron.Cron(spec.get("schedule", ""))
        except cron.CronError as exc:
            errors.append(f"invalid schedule: {exc}")
        template = spec.get("template") or {}
        both = overlap(template.get("includedNamespaces"), template.get("excludedNamespaces"))
        if both:
            errors.append(f"Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: {', '.join(both)}")
        return errors

    def _backup_from_schedule(self, sched: dict) -> dict | None:
        meta, spec = sched["metadata"], sched.get("spec") or {}
        name = f"{meta['name']}-{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d%H%M%S')}"
        template = copy.deepcopy(spec.get("template") or {})
        labels = dict(meta.get("labels") or {})
        labels.update((template.get("metadata") or {}).get("labels") or {})
        labels[LABEL_SCHEDULE] = meta["name"]
        body = {"apiVersion": API_VERSION, "kind": "Backup",
                "metadata": {"name": name, "namespace": self.namespace, "labels": labels}, "spec": template}
        if meta.get("annotations"):
            body["metadata"]["annotations"] = dict(meta["annotations"])
        if spec.get("useOwnerReferencesInBackup"):
            body["metadata"]["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": "Schedule", "name": meta["name"],
                                                    "uid": meta["uid"], "controller": True}]
        try:
            created = self.kube.create(GROUP, VERSION, "backups", body, self.namespace)
        except KubeError as exc:
            LOG.warning("schedule %s: backup %s not created: %s", meta["name"], name, exc)
            return None
        self._update("schedules", sched, status={"lastBackup": now_iso()})
        LOG.info("schedule %s: created backup %s", meta["name"], name)
        return created

    # backups
    def _delay(self, knobs: dict) -> float:
        try:
            return max(0.0, float(knobs["in-progress-seconds"]))
        except (KeyError, ValueError):
            return 2 * self.interval

    @staticmethod
    def _outcome(knobs: dict, key: str) -> str:
        value = str(knobs.get(key) or "Completed")
        if value not in OUTCOMES:
            LOG.warning("knob %s=%r is not one of %s; using Completed", key, value, OUTCOMES)
            return "Completed"
        return value

    def _reconcile_backups(self, knobs: dict) -> None:
        bsls = None
        for backup in self._list("backups"):
            name, phase = backup["metadata"]["name"], (backup.get("status") or {}).get("phase") or ""
            if phase in ("", "New"):
                if bsls is None:  # knobs set before the object was created must apply: read them after the list
                    bsls, knobs = self._locations_by_name(), self._knobs()
                self._start_backup(backup, knobs, bsls)
            elif phase == "InProgress":
                state = self._running.get(("backups", name))
                if state is None:
                    self._update("backups", backup, status={
                        "phase": "Failed", "completionTimestamp": now_iso(),
                        "failureReason": 'found a backup with status "InProgress" during the server starting, mark it as "Failed"'})
                elif time.monotonic() >= state["due"]:
                    self._finish_backup(backup, state)
                    self._running.pop(("backups", name), None)

    def _start_backup(self, backup: dict, knobs: dict, bsls: dict) -> None:
        spec = backup.get("spec") or {}
        outcome = self._outcome(knobs, "backup-outcome")
        errors = []
        if outcome == "FailedValidation":
            errors.append("velero-standin: backup-outcome knob is FailedValidation")
        both = overlap(spec.get("includedNamespaces"), spec.get("excludedNamespaces"))
        if both:
            errors.append(f"Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: {', '.join(both)}")
        both = overlap(spec.get("includedResources"), spec.get("excludedResources"))
        if both:
            errors.append(f"Invalid included/excluded resource lists: excludes list cannot contain an item in the includes list: {', '.join(both)}")
        ttl_text = spec.get("ttl") or self.default_ttl
        try:
            ttl = cron.parse_duration(ttl_text)
        except ValueError as exc:
            errors.append(f"Invalid TTL: {exc}")
            ttl = 0
        location = spec.get("storageLocation") or self._default_location(bsls)
        bsl = bsls.get(location)
        if bsl is None:
            errors.append(f"an existing backup storage location was not specified at backup creation time and the default "
                          f"'{location}' was not found. Please address this issue (see `velero backup-location -h` for options) "
                          f"and create a new backup. Error: backupstoragelocations.velero.io \"{location}\" not found"
                          if not spec.get("storageLocation") else
                          f"an existing backup storage location wasn't specified at backup creation time and the server default "
                          f"'{location}' doesn't exist. Error: backupstoragelocations.velero.io \"{location}\" not found")
        elif (bsl.get("spec") or {}).get("accessMode") == "ReadOnly":
            errors.append(f"backup can't be created because backup storage location {location} is currently in read-only mode")
        elif (bsl.get("status") or {}).get("phase") != "Available":
            errors.append(f"backup can't be created because BackupStorageLocation {location} is in Unavailable status.")
        name = backup["metadata"]["name"]
        if errors:
            LOG.info("backup %s: FailedValidation %s", name, errors)
            self._update("backups", backup, status={"phase": "FailedValidation", "validationErrors": errors,
                                                    "version": 1, "formatVersion": "1.1.0"})
            return
        start = time.time()
        spec_patch = {"storageLocation": location}
        if not spec.get("ttl"):
            spec_patch["ttl"] = self.default_ttl
        self._update("backups", backup, spec=spec_patch, labels={LABEL_LOCATION: location}, status={
            "phase": "InProgress", "startTimestamp": now_iso(start), "expiration": now_iso(start + ttl),
            "version": 1, "formatVersion": "1.1.0", "validationErrors": None})
        self._running[("backups", name)] = {"due": time.monotonic() + self._delay(knobs), "outcome": outcome}
        LOG.info("backup %s: InProgress (location %s)", name, location)

    def _finish_backup(self, backup: dict, state: dict) -> None:
        backup = self._get("backups", backup["metadata"]["name"])
        if backup is None:
            return
        name, spec = backup["metadata"]["name"], backup.get("spec") or {}
        oplog = OpLog("backup", f"{self.namespace}/{name}")
        status: dict = {}
        try:
            bsl = self._get("backupstoragelocations", spec["storageLocation"])
            if bsl is None:
                raise ValueError(f'backupstoragelocations.velero.io "{spec["storageLocation"]}" not found')
            loc = self._location(bsl)
            if state["outcome"] == "Failed":
                oplog("velero-standin: backup-outcome knob is Failed", "error")
                status = {"phase": "Failed", "failureReason": "velero-standin: backup-outcome knob is Failed",
                          "completionTimestamp": now_iso(), "errors": 1, "warnings": 0}
                final = dict(backup, status={**(backup.get("status") or {}), **status})
                loc.put(loc.backup_key(name, "-logs.gz"), oplog.gz())
                loc.put(loc.backup_key(name, "velero-backup.json"), json.dumps(final, indent=2).encode())
            else:
                status = self._run_backup(backup, loc, oplog, state["outcome"])
        except (ValueError, KeyError, KubeError, *store.STORAGE_ERRORS) as exc:
            LOG.warning("backup %s failed: %s", name, exc)
            status = {"phase": "Failed", "failureReason": str(exc), "completionTimestamp": now_iso()}
        self._update("backups", backup, status=status)
        LOG.info("backup %s: %s", name, status.get("phase"))

    def _discover(self) -> list:
        """[(group, version, APIResource)] of listable top-level resources, Velero's own group excluded."""
        found = []
        for group, ver in [("", "v1")] + self.kube.groups():
            if group == GROUP:
                continue
            for entry in self.kube.resources(group, ver):
                if "/" in entry["name"] or "list" not in (entry.get("verbs") or []):
                    continue
                if group_resource(entry["name"], group) in SKIP_BACKUP:
                    continue
                found.append((group, ver, entry))
        return found

    def _collect(self, backup: dict, oplog: OpLog) -> tuple:
        """(items [(group resource, version, obj)], warnings) selected by the backup spec."""
        spec = backup.get("spec") or {}
        inc_ns, exc_ns = spec.get("includedNamespaces"), spec.get("excludedNamespaces")
        include_cluster = spec.get("includeClusterResources")
        all_namespaces = (not inc_ns or "*" in inc_ns) and not exc_ns
        namespaces = [n for n in self.kube.list("", "v1", "namespaces") if namespace_selected(n["metadata"]["name"], inc_ns, exc_ns)]
        selected_ns = {n["metadata"]["name"] for n in namespaces}
        items, seen, warnings = [], set(), []
        pvs_wanted, pvcs_wanted = set(), set()

        def add(gres: str, ver: str, obj: dict) -> None:
            key = (gres, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            if key not in seen:
                seen.add(key)
                items.append((gres, ver, obj))

        resources = self._discover()
        for ns in namespaces:
            add("namespaces", "v1", ns)
        cluster_resources = []
        for group, ver, entry in resources:
            gres = group_resource(entry["name"], group)
            names = resource_names(entry, group)
            if gres == "namespaces" or not resource_selected(names, spec.get("includedResources"), spec.get("excludedResources")):
                continue
            if not entry.get("namespaced"):
                cluster_resources.append((group, ver, entry, gres))
                continue
            for obj in self.kube.list(group, ver, entry["name"]):
                meta = obj["metadata"]
                if meta.get("namespace") not in selected_ns or not spec_selects(spec, meta.get("labels") or {}):
                    continue
                obj.setdefault("apiVersion", f"{group}/{ver}" if group else ver)
                obj.setdefault("kind", entry.get("kind"))
                add(gres, ver, obj)
                if gres == "pods":
                    pvcs_wanted.update((meta["namespace"], c) for c in pod_claims(obj).values())
        # Velero's pod action backs up the pod's PVCs, the PVC action the bound PV.
        for ns, claim in sorted(pvcs_wanted):
            pvc = self.kube.get("", "v1", "persistentvolumeclaims", ns, claim, default=None)
            if pvc is None:
                warnings.append(f"pod references missing persistentvolumeclaim {ns}/{claim}")
                continue
            pvc.setdefault("apiVersion", "v1")
            pvc.setdefault("kind", "PersistentVolumeClaim")
            add("persistentvolumeclaims", "v1", pvc)
        for gres, ns, name in list(seen):
            if gres == "persistentvolumeclaims":
                obj = next(o for g, _v, o in items if g == gres and o["metadata"].get("namespace") == ns and o["metadata"]["name"] == name)
                if (obj.get("spec") or {}).get("volumeName"):
                    pvs_wanted.add(obj["spec"]["volumeName"])
        for group, ver, entry, gres in cluster_resources:
            if include_cluster is False:
                continue
            for obj in self.kube.list(group, ver, entry["name"]):
                related = gres == "persistentvolumes" and obj["metadata"]["name"] in pvs_wanted
                wanted = related or (
                    (include_cluster is True or (include_cluster is None and all_namespaces))
                    and spec_selects(spec, obj["metadata"].get("labels") or {}))
                if wanted:
                    obj.setdefault("apiVersion", f"{group}/{ver}" if group else ver)
                    obj.setdefault("kind", entry.get("kind"))
                    add(gres, ver, obj)
        for msg in warnings:
            oplog(msg, "warning")
        oplog(f"Collected {len(items)} items matching the backup spec")
        return items, warnings

    def _node_agent_ready(self) -> bool:
        daemonset = self.kube.get("apps", "v1", "daemonsets", self.namespace, "node-agent", default=None)
        return bool(daemonset and ((daemonset.get("status") or {}).get("numberReady") or 0) > 0)

    def _fs_backups(self, backup: dict, items: list, loc: store.Location, oplog: OpLog, require_agent: bool) -> tuple:
        """Fake Kopia snapshots of file-system-backed pod volumes: ([PodVolumeBackup], errors, warnings)."""
        spec, meta = backup.get("spec") or {}, backup["metadata"]
        default_fs = bool(spec.get("defaultVolumesToFsBackup") or spec.get("defaultVolumesToRestic"))
        pvbs, errors, warnings, waiting = [], [], [], []
        agent_ok = self._node_agent_ready() if require_agent else True
        served = self._served("podvolumebackups")
        for gres, _ver, pod in items:
            if gres != "pods":
                continue
            pmeta, pspec = pod["metadata"], pod.get("spec") or {}
            annotations = pmeta.get("annotations") or {}
            volumes = pspec.get("volumes") or []
            if default_fs:
                excluded = {v.strip() for v in annotations.get("backup.velero.io/backup-volumes-excludes", "").split(",") if v.strip()}
                chosen = [v for v in volumes if v["name"] not in excluded and not any(t in v for t in FS_SKIP_VOLUME_TYPES)
                          and not v["name"].startswith("kube-api-access-")]
            else:
                wanted = [v.strip() for v in annotations.get("backup.velero.io/backup-volumes", "").split(",") if v.strip()]
                chosen = [v for v in volumes if v["name"] in wanted]
            ident = f"{pmeta['namespace']}/{pmeta['name']}"
            # vmware-tanzu/velero pkg/podvolume/backupper.go, BackupPodVolumes() and isHostPathVolume(): a volume
            # that is hostPath itself, or a claim whose PV is hostPath, is skipped with a warning in the backup
            # log (hostPath volumes are not under /var/lib/kubelet/pods, where the node agent reads volumes).
            # The backup log's warnings are counted into status.warnings (pkg/util/logging/log_counter_hook.go).
            kept = []
            for vol in chosen:
                if self._host_path_volume(vol, pmeta["namespace"]):
                    msg = (f"Volume {vol['name']} in pod {ident} is a hostPath volume which is not supported for pod "
                           "volume backup, skipping")
                    warnings.append(msg)
                    oplog(msg, "warning")
                else:
                    kept.append(vol)
            chosen = kept
            if not chosen:
                continue
            if (pod.get("status") or {}).get("phase") != "Running" or not pspec.get("nodeName"):
                msg = f"Skip pod volume backup of pod {ident} because the pod is not in running state"
                warnings.append(msg)
                oplog(msg, "warning")
                continue
            node = pspec["nodeName"]
            loc.ensure_kopia_repo(pmeta["namespace"])
            for vol in chosen:
                snapshot_id = hashlib.sha256(f"{meta['uid']}/{pmeta.get('uid')}/{vol['name']}".encode()).hexdigest()[:32]
                started = now_iso()
                pvb = {"apiVersion": API_VERSION, "kind": "PodVolumeBackup",
                       "metadata": {"name": f"{meta['name']}-{snapshot_id[:5]}", "namespace": self.namespace,
                                    "labels": {LABEL_BACKUP: meta["name"], LABEL_BACKUP_UID: meta["uid"]}},
                       "spec": {"node": node, "volume": vol["name"], "backupStorageLocation": loc.name,
                                "repoIdentifier": loc.repo_identifier(pmeta["namespace"]), "uploaderType": "kopia",
                                "pod": {"kind": "Pod", "namespace": pmeta["namespace"], "name": pmeta["name"], "uid": pmeta.get("uid")},
                                "tags": {"backup": meta["name"], "backup-uid": meta["uid"], "ns": pmeta["namespace"],
                                         "pod": pmeta["name"], "pod-uid": pmeta.get("uid", ""), "volume": vol["name"]}},
                       "status": {"phase": "Completed", "snapshotID": snapshot_id, "startTimestamp": started,
                                  "completionTimestamp": now_iso(), "uploaderType": "kopia",
                                  "path": f"/host_pods/{pmeta.get('uid')}/volumes/{vol['name']}"}}
                claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
                if claim:
                    pvb["spec"]["tags"]["pvc"] = claim
                if agent_ok and served:
                    # pkg/podvolume/backupper.go newPodVolumeBackup(): owned by the Backup, labelled with its name
                    # and uid, created without status; the node agent of spec.node takes it from there.
                    del pvb["status"]
                    pvb["metadata"]["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": "Backup", "name": meta["name"],
                                                           "uid": meta["uid"], "controller": True}]
                    if claim:
                        pvb["metadata"]["annotations"] = {"velero.io/pvc-name": claim}
                    self.kube.create(GROUP, VERSION, "podvolumebackups", pvb, self.namespace)
                    waiting.append(pvb["metadata"]["name"])
                    continue
                if not agent_ok:
                    msg = f"daemonset pod not found in running state in node {node}"
                    pvb["status"] = {"phase": "Failed", "message": msg}
                    errors.append(f"pod volume backup failed: {msg}")
                    oplog(msg, "error")
                else:
                    payload = json.dumps({"snapshotID": snapshot_id, "backup": meta["name"], "namespace": pmeta["namespace"],
                                          "pod": pmeta["name"], "volume": vol["name"], "pvc": claim, "node": node,
                                          "standin": "fake kopia snapshot"}).encode()
                    loc.put(loc.kopia_dir(pmeta["namespace"]) + "p" + snapshot_id, payload)
                    pvb["status"]["progress"] = {"totalBytes": len(payload), "bytesDone": len(payload)}
                    oplog(f"Backed up volume {vol['name']} of pod {ident} with kopia (snapshot {snapshot_id})")
                pvbs.append(pvb)
        if waiting:
            pvbs += self._wait_pod_volumes("podvolumebackups", waiting, errors, oplog, "backup")
        return pvbs, errors, warnings

    def _served(self, plural: str) -> bool:
        """Is this velero.io/v1 kind served (its CRD installed, as the chart does)?"""
        return any(r["name"] == plural for r in self.kube.resources(GROUP, VERSION))

    def _pod_volume_timeout(self) -> float:
        try:
            return max(1.0, float(self._knobs()["pod-volume-timeout"]))
        except (KeyError, ValueError):
            return 120.0

    def _wait_pod_volumes(self, plural: str, names: list, errors: list, oplog, what: str) -> list:
        """Wait for PodVolumeBackups/Restores to end, like the backupper's/restorer's WaitAllPodVolumesProcessed
        (pkg/podvolume/backupper.go, restorer.go); a failed or timed-out one is an error of the backup/restore.
        Returns the objects as they ended."""
        deadline = time.monotonic() + self._pod_volume_timeout()
        done: dict = {}
        while True:
            for name in names:
                if name not in done:
                    obj = self.kube.get(GROUP, VERSION, plural, self.namespace, name, default=None)
                    if obj is None or ((obj.get("status") or {}).get("phase") in ("Completed", "Failed", "Canceled")):
                        done[name] = obj
            if len(done) == len(names) or time.monotonic() > deadline:
                break
            time.sleep(min(0.5, self.interval))
        out = []
        for name in names:
            obj = done.get(name)
            phase = ((obj or {}).get("status") or {}).get("phase")
            if phase == "Completed":
                oplog(f"pod volume {what} {name} completed (node {(obj.get('spec') or {}).get('node') or (obj.get('status') or {}).get('node')})")
            else:
                message = ((obj or {}).get("status") or {}).get("message") or (
                    f"timed out waiting for all {plural} to complete" if obj is not None else f"{plural} {name} is gone")
                errors.append(f"pod volume {what} failed: {message}")
                oplog(errors[-1], "error")
            if obj is not None:
                out.append(obj)
        return out

    def _host_path_volume(self, vol: dict, namespace: str) -> bool:
        """backupper.go isHostPathVolume(): the pod volume is hostPath, or its claim's bound PV is."""
        if "hostPath" in vol:
            return True
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            return False
        pvc = self.kube.get("", "v1", "persistentvolumeclaims", namespace, claim, default=None)
        volume_name = ((pvc or {}).get("spec") or {}).get("volumeName")
        if not volume_name:
            return False
        pv = self.kube.get("", "v1", "persistentvolumes", None, volume_name, default=None)
        return bool(((pv or {}).get("spec") or {}).get("hostPath"))

    def _run_backup(self, backup: dict, loc: store.Location, oplog: OpLog, outcome: str) -> dict:
        meta = backup["metadata"]
        oplog(f"Setting up backup temp file (storage location {loc.name})")
        items, warnings = self._collect(backup, oplog)
        pvbs, errors, fs_warnings = self._fs_backups(backup, items, loc, oplog,
                                                     str(self._knobs().get("require-node-agent", "")).lower() == "true")
        warnings += fs_warnings
        if outcome == "PartiallyFailed" and not errors:
            errors.append("velero-standin: backup-outcome knob is PartiallyFailed")
            oplog(errors[-1], "error")
        resource_list: dict = {}
        for _gres, _ver, obj in items:
            key = f"{obj['apiVersion']}/{obj['kind']}"
            ident = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}" if obj["metadata"].get("namespace") else obj["metadata"]["name"]
            resource_list.setdefault(key, []).append(ident)
        phase = "PartiallyFailed" if errors else "Completed"
        status = {"phase": phase, "completionTimestamp": now_iso(), "progress": {"itemsBackedUp": len(items), "totalItems": len(items)},
                  "errors": len(errors), "warnings": len(warnings), "failureReason": None, "validationErrors": None}
        oplog(f"Backed up a total of {len(items)} items; {len(pvbs)} pod volume backups")
        final = copy.deepcopy(backup)
        final["status"] = {**(backup.get("status") or {}), **{k: v for k, v in status.items() if v is not None}}
        results = {"errors": {"velero": errors} if errors else {}, "warnings": {"velero": warnings} if warnings else {}}
        loc.put(loc.backup_key(meta["name"], ".tar.gz"), store.tarball(items))
        loc.put(loc.backup_key(meta["name"], "-logs.gz"), oplog.gz())
        loc.put(loc.backup_key(meta["name"], "-resource-list.json.gz"), store.gz_json(resource_list))
        loc.put(loc.backup_key(meta["name"], "-podvolumebackups.json.gz"), store.gz_json(pvbs))
        loc.put(loc.backup_key(meta["name"], "-results.gz"), store.gz_json(results))
        loc.put(loc.backup_key(meta["name"], "-volumesnapshots.json.gz"), store.gz_json([]))
        loc.put(loc.backup_key(meta["name"], "-itemoperations.json.gz"), store.gz_json([]))
        loc.put(loc.backup_key(meta["name"], "velero-backup.json"), json.dumps(final, indent=2).encode())
        return status

    # restores
    def _reconcile_restores(self, knobs: dict) -> None:
        fresh = False
        for restore in self._list("restores"):
            name, phase = restore["metadata"]["name"], (restore.get("status") or {}).get("phase") or ""
            if phase in ("", "New"):
                if not fresh:
                    knobs, fresh = self._knobs(), True
                self._start_restore(restore, knobs)
            elif phase == "InProgress":
                state = self._running.get(("restores", name))
                if state is None:
                    self._update("restores", restore, status={
                        "phase": "Failed", "completionTimestamp": now_iso(),
                        "failureReason": 'found a restore with status "InProgress" during the server starting, mark it as "Failed"'})
                elif time.monotonic() >= state["due"]:
                    if self._finish_restore(restore, state):
                        self._running.pop(("restores", name), None)

    def _start_restore(self, restore: dict, knobs: dict) -> None:
        spec = restore.get("spec") or {}
        outcome = self._outcome(knobs, "restore-outcome")
        errors, spec_patch = [], {}
        if outcome == "FailedValidation":
            errors.append("velero-standin: restore-outcome knob is FailedValidation")
        both = overlap(spec.get("includedNamespaces"), spec.get("excludedNamespaces"))
        if both:
            errors.append(f"Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: {', '.join(both)}")
        policy = spec.get("existingResourcePolicy") or ""
        if policy not in ("", "none", "update"):
            errors.append(f"Invalid existing resource policy: {policy}")
        backup_name, schedule = spec.get("backupName") or "", spec.get("scheduleName") or ""
        if bool(backup_name) == bool(schedule):
            errors.append("Either a backup or schedule must be specified as a source for the restore, but not both")
        elif schedule:
            candidates = [b for b in self._list("backups", f"{LABEL_SCHEDULE}={schedule}")
                          if (b.get("status") or {}).get("phase") == "Completed"]
            if not candidates:
                errors.append("No backups found for schedule")
            else:
                newest = max(candidates, key=lambda b: parse_iso((b.get("status") or {}).get("startTimestamp")))
                backup_name = newest["metadata"]["name"]
                spec_patch["backupName"] = backup_name
        if backup_name and not errors:
            backup = self._get("backups", backup_name)
            if backup is None:
                errors.append(f'Error retrieving backup: backups.velero.io "{backup_name}" not found')
            elif (backup.get("status") or {}).get("phase") not in ("Completed", "PartiallyFailed"):
                errors.append("Backup is not in a valid phase to restore from: "
                              f"{(backup.get('status') or {}).get('phase') or 'New'} (need Completed or PartiallyFailed)")
        rules = self._resource_modifiers(spec, errors) if not errors else None
        name = restore["metadata"]["name"]
        if errors:
            LOG.info("restore %s: FailedValidation %s", name, errors)
            self._update("restores", restore, status={"phase": "FailedValidation", "validationErrors": errors})
            return
        start = time.time()
        self._update("restores", restore, spec=spec_patch or None,
                     status={"phase": "InProgress", "startTimestamp": now_iso(start), "validationErrors": None})
        self._running[("restores", name)] = {"due": time.monotonic() + self._delay(knobs), "outcome": outcome, "modifiers": rules}
        LOG.info("restore %s: InProgress from backup %s", name, backup_name)

    def _resource_modifiers(self, spec: dict, errors: list) -> list | None:
        """The rules of spec.resourceModifier, read once when the restore is validated, as vmware-tanzu/velero v1.18.1
        pkg/controller/restore_controller.go validateAndComplete() does: only a reference of kind "configmap" (any case) is
        read, from Velero's namespace; a missing or invalid ConfigMap is a validation error (modifiers.read)."""
        ref = spec.get("resourceModifier") or {}
        if not ref or str(ref.get("kind") or "").lower() != "configmap":
            return None
        configmap = self.kube.get("", "v1", "configmaps", self.namespace, ref.get("name") or "", default=None)
        try:
            return modifiers.read(configmap, self.namespace, ref.get("name") or "")
        except modifiers.ModifierError as exc:
            errors.append(str(exc))
            return None

    def _finish_restore(self, restore: dict, state: dict) -> bool:
        """Run the restore and record its outcome; False when it is to be tried again on the next pass.

        The run is resumable: a pass cut short by a transient API error (no answer, 5xx, 429) is run again,
        up to RESTORE_PASSES times, and finds what it already created by its velero.io/restore-name label.
        A terminal status that could not be written is kept and written on the next pass.
        """
        if "status" in state:  # computed on an earlier pass, only the write failed
            return self._write_restore_status(restore["metadata"]["name"], state["status"])
        restore = self._get("restores", restore["metadata"]["name"])
        if restore is None:
            return True
        name, spec = restore["metadata"]["name"], restore.get("spec") or {}
        oplog = OpLog("restore", f"{self.namespace}/{name}")
        loc = None
        state["passes"] = state.get("passes", 0) + 1
        try:
            backup = self._get("backups", spec.get("backupName", ""))
            if backup is None:
                raise ValueError(f'backups.velero.io "{spec.get("backupName")}" not found')
            bsl_name = (backup.get("spec") or {}).get("storageLocation") or self._default_location(self._locations_by_name())
            bsl = self._get("backupstoragelocations", bsl_name)
            if bsl is None:
                raise ValueError(f'backupstoragelocations.velero.io "{bsl_name}" not found')
            loc = self._location(bsl)
            if state["outcome"] == "Failed":
                oplog("velero-standin: restore-outcome knob is Failed", "error")
                status = {"phase": "Failed", "failureReason": "velero-standin: restore-outcome knob is Failed",
                          "completionTimestamp": now_iso(), "errors": 1, "warnings": 0}
            else:
                status = self._run_restore(restore, backup, loc, oplog, state["outcome"], state.get("modifiers"))
        except (KubeError, ValueError, KeyError, *store.STORAGE_ERRORS) as exc:
            if isinstance(exc, KubeError) and Kube.transient(exc) and state["passes"] < RESTORE_PASSES:
                LOG.warning("restore %s: pass %d cut short, trying again: %s", name, state["passes"], exc)
                return False
            LOG.warning("restore %s failed: %s", name, exc)
            oplog(f"restore failed: {exc}", "error")
            status = {"phase": "Failed", "failureReason": str(exc), "completionTimestamp": now_iso()}
        if loc is not None:
            try:
                loc.put(loc.restore_key(name, "-logs.gz"), oplog.gz())
            except store.STORAGE_ERRORS as exc:
                LOG.warning("restore %s: log upload failed: %s", name, exc)
        state["status"] = status
        return self._write_restore_status(name, status)

    def _write_restore_status(self, name: str, status: dict) -> bool:
        try:
            restore = self._get("restores", name)
            if restore is not None:
                self._update("restores", restore, status=status)
        except KubeError as exc:
            if not Kube.transient(exc):
                raise
            LOG.warning("restore %s: status not written yet, trying again: %s", name, exc)
            return False
        LOG.info("restore %s: %s", name, status.get("phase"))
        return True

    def _run_restore(self, restore: dict, backup: dict, loc: store.Location, oplog: OpLog, outcome: str,
                     rules: list | None = None) -> dict:
        """Recreate the backup's objects (read back from S3); returns the terminal status."""
        run = _RestoreRun(self, restore, backup, loc, oplog, rules)
        run.execute()
        if outcome == "PartiallyFailed" and not run.errors:
            run.errors.append("velero-standin: restore-outcome knob is PartiallyFailed")
            oplog(run.errors[-1], "error")
        results = {"errors": {"velero": run.errors} if run.errors else {},
                   "warnings": {"velero": run.warnings} if run.warnings else {}}
        name = restore["metadata"]["name"]
        loc.put(loc.restore_key(name, "-results.gz"), store.gz_json(results))
        loc.put(loc.restore_key(name, "-resource-list.json.gz"), store.gz_json(run.resource_list))
        return {"phase": "PartiallyFailed" if run.errors else "Completed", "completionTimestamp": now_iso(),
                "progress": {"itemsRestored": run.restored, "totalItems": run.total},
                "errors": len(run.errors), "warnings": len(run.warnings), "failureReason": None}

    # deletions
    def _reconcile_deletions(self, knobs: dict) -> None:  # pylint: disable=unused-argument
        for dbr in self._list("deletebackuprequests"):
            name, phase = dbr["metadata"]["name"], (dbr.get("status") or {}).get("phase") or ""
            if phase in ("", "New"):
                backup_name = (dbr.get("spec") or {}).get("backupName", "")
                labels = {LABEL_BACKUP: backup_name[:63]}
                backup = self._get("backups", backup_name)
                if backup is not None:
                    labels[LABEL_BACKUP_UID] = backup["metadata"]["uid"]
                self._update("deletebackuprequests", dbr, labels=labels, status={"phase": "InProgress"})
                self._running[("deletebackuprequests", name)] = {"due": time.monotonic()}
            elif phase == "InProgress":
                self._running.pop(("deletebackuprequests", name), None)
                errors = self._delete_backup((dbr.get("spec") or {}).get("backupName", ""))
                self._update("deletebackuprequests", dbr, status={"phase": "Processed", "errors": errors or None})
                LOG.info("delete request %s: Processed %s", name, errors or "")

    def _delete_backup(self, name: str) -> list:
        backup = self._get("backups", name)
        if backup is None:
            return ["backup not found"]
        phase = (backup.get("status") or {}).get("phase") or "New"
        if phase in ("New", "InProgress", "Queued", "ReadyToStart"):
            return ["backup is still in progress"]
        bsl_name = (backup.get("spec") or {}).get("storageLocation") or self._default_location(self._locations_by_name())
        bsl = self._get("backupstoragelocations", bsl_name)
        if bsl is None:
            return [f'backup storage location "{bsl_name}" not found']
        if (bsl.get("spec") or {}).get("accessMode") == "ReadOnly":
            return [f"cannot delete backup because backup storage location {bsl_name} is currently in read-only mode"]
        errors = []
        self._update("backups", backup, status={"phase": "Deleting"})
        try:
            loc = self._location(bsl)
            pvb_key = loc.backup_key(name, "-podvolumebackups.json.gz")
            if loc.exists(pvb_key):
                for pvb in json.loads(gzip.decompress(loc.get(pvb_key))) or []:
                    snap = (pvb.get("status") or {}).get("snapshotID")
                    if snap:
                        # The snapshot goes; content objects shared with other snapshots stay until Kopia's
                        # maintenance (not emulated) would collect them. p<snapshot id>: the API-less record.
                        loc.delete_prefix(loc.kopia_dir(pvb["spec"]["pod"]["namespace"]) + "p" + snap)
                        loc.delete_prefix(loc.kopia_dir(pvb["spec"]["pod"]["namespace"]) + "q" + snap)
            for restore in self._list("restores"):
                if (restore.get("spec") or {}).get("backupName") == name:
                    loc.delete_prefix(loc.restore_key(restore["metadata"]["name"], "").rsplit("/", 1)[0] + "/")
                    self.kube.delete(GROUP, VERSION, "restores", restore["metadata"]["name"], self.namespace)
            loc.delete_prefix(loc.backup_dir(name))
        except (ValueError, KubeError, *store.STORAGE_ERRORS) as exc:
            errors.append(f"error deleting backup data: {exc}")
        if not errors:
            self.kube.delete(GROUP, VERSION, "backups", name, self.namespace)
        return errors

    # backup sync
    def _sync_backups(self, knobs: dict) -> None:
        if str(knobs.get("backup-sync", "")).lower() == "false" or time.monotonic() - self._last_sync < self.sync_period:
            return
        self._last_sync = time.monotonic()
        existing = {b["metadata"]["name"] for b in self._list("backups")}
        for bsl in self._list("backupstoragelocations"):
            if (bsl.get("status") or {}).get("phase") != "Available":
                continue
            try:
                loc = self._location(bsl)
                names = [n for n in loc.backup_names() if n not in existing]
                for name in names:
                    obj = json.loads(loc.get(loc.backup_key(name, "velero-backup.json")))
                    self._create_synced(obj, bsl["metadata"]["name"])
                    existing.add(name)
            except (ValueError, KubeError, *store.STORAGE_ERRORS) as exc:
                LOG.warning("backup sync from %s: %s", bsl["metadata"]["name"], exc)

    def _create_synced(self, obj: dict, location: str) -> None:
        meta = obj.get("metadata") or {}
        body = {"apiVersion": API_VERSION, "kind": "Backup",
                "metadata": {"name": meta["name"], "namespace": self.namespace,
                             "labels": {**(meta.get("labels") or {}), LABEL_LOCATION: location}},
                "spec": {**(obj.get("spec") or {}), "storageLocation": location}}
        if meta.get("annotations"):
            body["metadata"]["annotations"] = meta["annotations"]
        status = obj.get("status") or {}
        if "backups" not in (self._status_sub or set()):
            body["status"] = status
        self._check("backups", body)
        created = self.kube.create(GROUP, VERSION, "backups", body, self.namespace)
        if "backups" in (self._status_sub or set()):
            self._update("backups", created, status=status)
        LOG.info("backup sync: created backup %s from location %s", meta["name"], location)


class _RestoreRun:  # pylint: disable=too-many-instance-attributes
    """One restore: the tarball read back from S3, filtered, transformed and created in order."""

    def __init__(self, ctl: Controller, restore: dict, backup: dict, loc: store.Location, oplog: OpLog,  # pylint: disable=too-many-arguments
                 rules: list | None = None):
        self.ctl, self.kube, self.loc, self.log = ctl, ctl.kube, loc, oplog
        self.restore, self.backup = restore, backup
        self.spec = restore.get("spec") or {}
        self.mapping = self.spec.get("namespaceMapping") or {}
        self.rules = rules  # spec.resourceModifier's rules, read when the restore was validated
        self.errors, self.warnings = [], []
        self.total = self.restored = 0
        self.resource_list: dict = {}
        self.created_ns: set = set()
        self._recorded: dict | None = None  # the item _restore_item restored, for the resource list
        self.pvcs: dict = {}  # (target ns, name) -> created PVC
        self.restored_pvs: dict = {}  # name -> created PV
        self.pvrs: list = []  # PodVolumeRestores created, waited for at the end
        self.copies: list = []  # without a node agent: (namespace, pod, uid, volume, snapshot) copied at the end
        self.pvr_served = ctl._served("podvolumerestores")  # pylint: disable=protected-access
        nodes = self.kube.list("", "v1", "nodes")
        self.nodes = {n["metadata"]["name"] for n in nodes}
        self.node_labels = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
        self.ready_nodes = sorted(n["metadata"]["name"] for n in nodes if not (n.get("spec") or {}).get("unschedulable") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in (n.get("status") or {}).get("conditions") or []))

    def execute(self) -> None:
        """Run the restore."""
        bname = self.backup["metadata"]["name"]
        self.log(f"Starting restore of backup {self.ctl.namespace}/{bname}")
        items = store.read_tarball(self.loc.get(self.loc.backup_key(bname, ".tar.gz")))
        pvb_key = self.loc.backup_key(bname, "-podvolumebackups.json.gz")
        pvbs = json.loads(gzip.decompress(self.loc.get(pvb_key))) if self.loc.exists(pvb_key) else []
        pods = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for g, o in items if g == "pods"}
        self.pvbs_by_pod: dict = {}
        self.fs_claims = set()
        for pvb in pvbs or []:
            pod_ref = pvb["spec"]["pod"]
            key = (pod_ref["namespace"], pod_ref["name"])
            self.pvbs_by_pod.setdefault(key, []).append(pvb)
            claim = pod_claims(pods.get(key) or {}).get(pvb["spec"]["volume"])
            if claim:
                self.fs_claims.add((pod_ref["namespace"], claim))
        self.pvs = {o["metadata"]["name"]: o for g, o in items if g == "persistentvolumes"}
        selected = [(g, o) for g, o in items if self._wanted(g, o)]
        order = {gres: idx for idx, gres in enumerate(RESTORE_PRIORITIES)}
        selected.sort(key=lambda item: (order.get(item[0], len(order)), item[0] if item[0] not in order else "",
                                        item[1]["metadata"].get("namespace") or "", item[1]["metadata"]["name"]))
        self.total = len(selected)
        for gres, obj in selected:
            if self._attempt(f"error restoring {gres}/{self._ident(obj)}", self._restore_item, gres, obj):
                self.restored += 1
                self._record_item()
        for (tns, pvc_name), pvc in list(self.pvcs.items()):
            node = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if node and not (pvc.get("status") or {}).get("phase") == "Bound":
                self._attempt(f"error provisioning a volume for pvc {tns}/{pvc_name}", self._provision, tns, pvc_name, node)
        if self.pvrs:
            self.ctl._wait_pod_volumes("podvolumerestores", sorted(set(self.pvrs)), self.errors, self.log, "restore")  # pylint: disable=protected-access
        self._copy_pod_volumes()
        self.log(f"Restore completed: {self.restored}/{self.total} items, {len(self.warnings)} warnings, {len(self.errors)} errors")

    def _attempt(self, what: str, func, *args) -> bool:
        """Run one step of the restore, retrying transient API errors; any other failure is a restore error."""
        for attempt in range(1, ITEM_ATTEMPTS + 1):
            try:
                func(*args)
                return True
            except KubeError as exc:
                if Kube.transient(exc) and attempt < ITEM_ATTEMPTS:
                    self.log(f"{what} (attempt {attempt}, retrying): {exc}", "warning")
                    time.sleep(0.25 * 2 ** (attempt - 1))
                    continue
                self._fail(f"{what}: {exc}")
            except Exception as exc:  # pylint: disable=broad-except
                self._fail(f"{what}: {type(exc).__name__}: {exc}")
            return False
        return False

    def _ours(self, obj: dict | None) -> bool:
        """Created by this restore (on an earlier attempt or pass whose answer was lost)."""
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        return labels.get(LABEL_RESTORE) == self.restore["metadata"]["name"][:63]

    @staticmethod
    def _ident(obj: dict) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]

    def _fail(self, msg: str) -> None:
        self.errors.append(msg)
        self.log(msg, "error")

    def _warn(self, msg: str) -> None:
        self.warnings.append(msg)
        self.log(msg, "warning")

    def _wanted(self, gres: str, obj: dict) -> bool:
        spec = self.spec
        if gres in store.NON_RESTORABLE:
            return False
        plural = gres.split(".", 1)[0]
        names = {gres, plural, obj.get("kind", "").lower()}
        if not resource_selected(names, spec.get("includedResources"), spec.get("excludedResources")):
            return False
        meta = obj["metadata"]
        inc, exc = spec.get("includedNamespaces"), spec.get("excludedNamespaces")
        if gres == "namespaces":
            # A Namespace item is label-selected like any other (vmware-tanzu/velero pkg/restore/restore.go
            # getSelectedRestoreableItems: only resourceMustHave skips the selectors); the namespace of a selected
            # item is still made when missing (_ensure_namespace, restore.go EnsureNamespaceExistsAndIsReady).
            return namespace_selected(meta["name"], inc, exc) and spec_selects(spec, meta.get("labels") or {})
        if meta.get("namespace"):
            return namespace_selected(meta["namespace"], inc, exc) and spec_selects(spec, meta.get("labels") or {})
        include_cluster = spec.get("includeClusterResources")
        if gres == "persistentvolumes":
            return include_cluster is not False
        all_ns = (not inc or "*" in inc) and not exc
        return (include_cluster is True or (include_cluster is None and all_ns)) and spec_selects(spec, meta.get("labels") or {})

    def _prepare(self, obj: dict) -> dict:
        gres_status = self.spec.get("restoreStatus") or {}
        new = strip_meta(obj)
        if gres_status and obj.get("status") and resource_selected(
                {obj.get("kind", "").lower()}, gres_status.get("includedResources"), gres_status.get("excludedResources")):
            new["status"] = obj["status"]
        labels = new["metadata"].setdefault("labels", {})
        labels[LABEL_BACKUP] = self.backup["metadata"]["name"][:63]
        labels[LABEL_RESTORE] = self.restore["metadata"]["name"][:63]
        return new

    def _ensure_namespace(self, target: str, source: str) -> None:
        if target in self.created_ns:
            return
        if self.kube.get("", "v1", "namespaces", None, target, default=None) is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target, "labels": {
                LABEL_BACKUP: self.backup["metadata"]["name"][:63], LABEL_RESTORE: self.restore["metadata"]["name"][:63]}}}
            self.kube.create("", "v1", "namespaces", body)
            self.log(f"Created namespace {target} (from {source})")
        self.created_ns.add(target)

    def _record(self, obj: dict) -> None:
        key = f"{obj.get('apiVersion')}/{obj.get('kind')}"
        self.resource_list.setdefault(key, []).append(self._ident(obj))

    def _record_item(self) -> None:
        """Add the item just restored (set by _restore_item; None for a skipped one) to the resource list."""
        if self._recorded is not None:
            self._record(self._recorded)
        self._recorded = None

    def _restore_item(self, gres: str, obj: dict) -> None:  # pylint: disable=too-many-branches
        plural, _dot, group = gres.partition(".")
        version = obj["apiVersion"].split("/")[-1]
        self._recorded = None
        new = self._prepare(obj)
        meta = new["metadata"]
        source_ns = meta.get("namespace")
        if gres == "namespaces":
            meta["name"] = self.mapping.get(meta["name"], meta["name"])
            new.pop("spec", None)
            if self.kube.get("", "v1", "namespaces", None, meta["name"], default=None) is None:
                try:
                    self.kube.create("", "v1", "namespaces", new)
                except KubeError as exc:
                    if exc.code != 409:
                        raise
            self.created_ns.add(meta["name"])
            self._recorded = new
            return
        if source_ns:
            meta["namespace"] = self.mapping.get(source_ns, source_ns)
            self._ensure_namespace(meta["namespace"], source_ns)
        self._recorded = new
        if gres == "persistentvolumes":
            if not self._restore_pv(obj, new):
                self._recorded = None
                return
        elif gres == "persistentvolumeclaims":
            self._transform_pvc(source_ns, new)
        elif gres == "pods":
            self._transform_pod(source_ns, obj, new)
        elif gres == "services":
            spec = new.setdefault("spec", {})
            if spec.get("clusterIP") != "None":
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            if not self.spec.get("preserveNodePorts"):
                for port in spec.get("ports") or []:
                    port.pop("nodePort", None)
            spec.pop("healthCheckNodePort", None)
        if self.rules:
            self._modify(gres, source_ns, new)
            meta = new["metadata"]
        if gres == "pods":
            self._schedule(new)
        try:
            created = self.kube.create(group, version, plural, new, meta.get("namespace"))
        except KubeError as exc:
            if exc.code != 409:
                raise
            current = self.kube.get(group, version, plural, meta.get("namespace"), meta["name"])
            if self._ours(current):
                # Created by this restore already (an attempt whose answer was lost, or an earlier pass):
                # carry on with it, so that a claim still gets its volume and a pod its claims bound.
                self.log(f"Resuming {gres} {self._ident(new)}: created earlier by this restore")
                created = current
            else:
                self._existing(group, version, plural, new, current)
                created = None
        if created is not None:
            if gres == "persistentvolumeclaims":
                self.pvcs[(meta["namespace"], meta["name"])] = created
            elif gres == "persistentvolumes":
                self.restored_pvs[meta["name"]] = created
            elif gres == "pods":
                self._after_pod(source_ns, obj, created)

    def _modify(self, gres: str, source_ns: str | None, new: dict) -> None:
        """The restore's resource modifiers, as vmware-tanzu/velero v1.18.1 pkg/restore/restore.go restoreItem() applies
        them: after the restore item actions (here the transforms above), to the object in its original namespace,
        just before it is created; a rule's error is a restore error of the item's namespace, the item is still created."""
        target_ns = new["metadata"].get("namespace")
        if source_ns:
            new["metadata"]["namespace"] = source_ns
        applied, errors = modifiers.apply(self.rules, new, gres, source_ns, selector_match, namespace_selected)
        if target_ns:
            new["metadata"]["namespace"] = target_ns
        for index in applied:
            self.log(f"Applying resource modifier patch on {source_ns or ''}/{new['metadata']['name']} (rule {index})")
        for error in errors:
            self._fail(f"{gres}/{self._ident(new)}: {error}")

    def _existing(self, group: str, version: str, plural: str, new: dict, current: dict) -> None:
        meta = new["metadata"]
        ident = f"{new.get('kind')} \"{meta['name']}\""

        def comparable(item: dict) -> dict:
            item = strip_meta(item)
            labels = {k: v for k, v in (item["metadata"].get("labels") or {}).items() if k not in (LABEL_BACKUP, LABEL_RESTORE)}
            return {k: v for k, v in item.items() if k not in ("metadata", "apiVersion", "kind")} | {"labels": labels}

        if comparable(current) == comparable(new):
            return
        if (self.spec.get("existingResourcePolicy") or "none") == "update":
            patch = {k: v for k, v in new.items() if k not in ("apiVersion", "kind", "metadata", "status")}
            patch["metadata"] = {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}}
            try:
                self.kube.patch(group, version, plural, meta["name"], patch, meta.get("namespace"))
                self.log(f"Updated existing {ident} in namespace {meta.get('namespace')}")
            except KubeError as exc:
                self._warn(f"could not update existing {ident}: {exc}")
            return
        self._warn(f"could not restore, {ident} already exists. Warning: the in-cluster version is different than the backed-up version")

    def _restore_pv(self, original: dict, new: dict) -> bool:
        """Restore a PV as-is only when Velero would (no FS backup of its claim, Retain policy, restorePVs)."""
        spec = original.get("spec") or {}
        claim = spec.get("claimRef") or {}
        name = original["metadata"]["name"]
        if (claim.get("namespace"), claim.get("name")) in self.fs_claims:
            self.log(f"Skipping persistentvolume {name}: its data is restored by pod volume restore (re-provisioned)")
            return False
        if self.spec.get("restorePVs") is False:
            self.log(f"Skipping persistentvolume {name}: restorePVs is false")
            return False
        if spec.get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
            self.log(f"Skipping persistentvolume {name} because it doesn't have a snapshot and its reclaim policy is Delete")
            return False
        if self.kube.get("", "v1", "persistentvolumes", None, name, default=None) is not None:
            self.log(f"Skipping persistentvolume {name}: it already exists")
            return False
        new_claim = new.get("spec", {}).get("claimRef")
        if new_claim:
            for key in ("uid", "resourceVersion"):
                new_claim.pop(key, None)
            new_claim["namespace"] = self.mapping.get(new_claim.get("namespace"), new_claim.get("namespace"))
        annotations = new["metadata"].get("annotations") or {}
        for key in ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"):
            annotations.pop(key, None)
        return True

    def _transform_pvc(self, source_ns: str, new: dict) -> None:
        annotations = new["metadata"].setdefault("annotations", {})
        for key in ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"):
            annotations.pop(key, None)
        # vmware-tanzu/velero v1.18.1 pkg/restore/actions/pvc_action.go, PVCAction.Execute(): the selected-node annotation
        # is always removed (commit 7e15e9ba0 "deprecate pvc node selection" dropped the change-pvc-node-selector
        # ConfigMap, which is no longer read), so that the claim is provisioned where its pod is scheduled - unless the
        # restore's resource modifier puts it back (_modify, after this action as in restore.go).
        node = annotations.pop(SELECTED_NODE, None)
        if node:
            self.log(f"Removing PVC selected-node annotation {node} (pvc {source_ns}/{new['metadata']['name']})")
        for key in ("volume.kubernetes.io/storage-provisioner", "volume.beta.kubernetes.io/storage-provisioner"):
            annotations.pop(key, None)
        spec = new.setdefault("spec", {})
        volume = spec.get("volumeName")
        pv = self.pvs.get(volume or "")
        if volume and not (pv and self._pv_restored(pv)):
            spec.pop("volumeName", None)
        if not annotations:
            new["metadata"].pop("annotations")

    def _pv_restored(self, pv: dict) -> bool:
        return pv["metadata"]["name"] in self.restored_pvs

    def _transform_pod(self, source_ns: str, original: dict, new: dict) -> None:
        spec = new.setdefault("spec", {})
        spec.pop("nodeName", None)
        if spec.get("priorityClassName"):
            spec.pop("priority", None)
        token_vols = {v["name"] for v in spec.get("volumes") or [] if v["name"].startswith("kube-api-access-")}
        if token_vols:
            spec["volumes"] = [v for v in spec["volumes"] if v["name"] not in token_vols]
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                if container.get("volumeMounts"):
                    container["volumeMounts"] = [m for m in container["volumeMounts"] if m.get("name") not in token_vols]
        pvbs = self.pvbs_by_pod.get((source_ns, original["metadata"]["name"])) or []
        if pvbs:
            spec["initContainers"] = [{
                "name": "restore-wait", "image": "velero/velero-restore-helper:standin", "command": ["/velero-restore-helper"],
                "args": [self.restore["metadata"].get("uid", "")],
                "volumeMounts": [{"name": p["spec"]["volume"], "mountPath": f"/restores/{p['spec']['volume']}"} for p in pvbs],
            }] + (spec.get("initContainers") or [])

    def _schedule(self, new: dict) -> None:
        """The scheduler, for the pod as it is created (after the item actions and the resource modifiers, as
        kube-scheduler sees the pod Velero created).

        A pod using a PVC goes where the PVC's volume is (or is to be) provisioned, other pods to the first Ready,
        schedulable node; in both cases only to a node that has every label of the pod's nodeSelector with the same value
        (kubernetes/kubernetes pkg/scheduler/framework/plugins/nodeaffinity/node_affinity.go Filter, through
        k8s.io/component-helpers scheduling/corev1/nodeaffinity GetRequiredNodeAffinity().Match). Otherwise the pod stays
        unscheduled (Pending), as kube-scheduler leaves a pod whose nodeSelector names another node than its volume's
        (VolumeBinding and NodeAffinity must both pass)."""
        spec = new.setdefault("spec", {})
        node = None
        for claim in pod_claims(new).values():
            pvc = self.pvcs.get((new["metadata"]["namespace"], claim))
            if pvc is None:
                pvc = self.kube.get("", "v1", "persistentvolumeclaims", new["metadata"]["namespace"], claim, default=None)
            if pvc is None:
                continue
            node = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if not node and (pvc.get("spec") or {}).get("volumeName"):
                bound = self.kube.get("", "v1", "persistentvolumes", None, pvc["spec"]["volumeName"], default=None)
                node = pv_node(bound) if bound else None
            if node:
                break
        selector = spec.get("nodeSelector") or {}

        def fits(name: str) -> bool:
            labels = self.node_labels.get(name) or {}
            return all(labels.get(key) == value for key, value in selector.items())

        candidates = [node] if node else self.ready_nodes
        node = next((name for name in candidates if fits(name)), None)
        if node:
            spec["nodeName"] = node
        elif candidates:
            self.log(f"Pod {new['metadata']['namespace']}/{new['metadata']['name']} cannot be scheduled: its nodeSelector "
                     f"{json.dumps(selector, sort_keys=True)} matches none of {', '.join(candidates)}", "warning")

    def _after_pod(self, source_ns: str, original: dict, created: dict) -> None:
        node = (created.get("spec") or {}).get("nodeName")
        tns = created["metadata"]["namespace"]
        for claim in pod_claims(created).values():
            pvc = self.pvcs.get((tns, claim))
            if pvc is not None and node and (pvc.get("status") or {}).get("phase") != "Bound":
                self._provision(tns, claim, node)
        for pvb in self.pvbs_by_pod.get((source_ns, original["metadata"]["name"])) or []:
            snap = (pvb.get("status") or {}).get("snapshotID")
            key = self.loc.kopia_dir(pvb["spec"]["pod"]["namespace"]) + "p" + str(snap)
            if (pvb.get("status") or {}).get("phase") != "Completed" or not snap:
                self._warn(f"pod volume {pvb['spec']['volume']} of pod {tns}/{created['metadata']['name']} has no completed backup")
            elif self.pvr_served:
                self._create_pvr(pvb, created)
            elif not node and not self._scheduled(tns, created["metadata"]["name"]):
                # pkg/podvolume/restorer.go RestorePodVolumes(): the PodVolumeRestore is made, but no node agent takes it
                # until the pod is scheduled; the restorer waits for its result until the restore's pod volume operation
                # timeout, then gives up with this error (the restore ends PartiallyFailed; the volume stays empty).
                self._fail("timed out waiting for all PodVolumeRestores to complete")
                return
            elif not self.loc.exists(key):
                self._fail(f"pod volume restore failed: snapshot {snap} not found in repository {self.loc.repo_identifier(pvb['spec']['pod']['namespace'])}")
            else:
                self.copies.append((tns, created["metadata"]["name"], created["metadata"]["uid"], pvb["spec"]["volume"], snap))

    def _copy_pod_volumes(self) -> None:
        """Without a node agent (no PodVolumeRestore CRD): the restored pods' volumes are copied once every item is
        created, where Velero's restorer waits for its PodVolumeRestores (pkg/restore/restore.go, pkg/podvolume/
        restorer.go), taking the knob `pod-volume-restore-seconds` (default 0). A restored pod deleted meanwhile (by
        its controller, say) is not copied into: the node agent processes a PodVolumeRestore only for its pod running
        Velero's restore-wait init container (pkg/controller/pod_volume_restore_controller.go shouldProcess: "Pod not
        found on this node, skip", "Pod is not running restore-wait init container, skip"), which a replacement made
        by the controller has not, so the restorer times out (the wait itself is not modelled)."""
        if not self.copies:
            return
        try:
            delay = max(0.0, float(self.ctl._knobs().get("pod-volume-restore-seconds", 0)))  # pylint: disable=protected-access
        except ValueError:
            delay = 0.0
        time.sleep(delay)
        for namespace, name, uid, volume, snap in self.copies:
            pod = self.kube.get("", "v1", "pods", namespace, name, default=None)
            if pod is None or pod["metadata"].get("uid") != uid:
                self.log(f"Restored pod {namespace}/{name} was deleted before its volume {volume} was restored: its "
                         "PodVolumeRestore is never processed", "error")
                self._fail("timed out waiting for all PodVolumeRestores to complete")
            else:
                self.log(f"Restored volume {volume} of pod {namespace}/{name} from kopia snapshot {snap}")

    def _scheduled(self, namespace: str, name: str) -> bool:
        """Whether the pod gets a node before the pod volume timeout (restorer.go polls kube.IsPodScheduled); nothing in
        the stand-in schedules a pod later, so this only waits out the knob `pod-volume-timeout`."""
        deadline = time.monotonic() + self.ctl._pod_volume_timeout()  # pylint: disable=protected-access
        while True:
            pod = self.kube.get("", "v1", "pods", namespace, name, default=None)
            if ((pod or {}).get("spec") or {}).get("nodeName"):
                return True
            if pod is None or time.monotonic() > deadline:
                self.log(f"Restoring pod {namespace}/{name} is not scheduled until timeout or cancel, disengage", "error")
                return False
            time.sleep(min(0.5, self.ctl.interval))

    def _create_pvr(self, pvb: dict, pod: dict) -> None:
        """pkg/podvolume/restorer.go newPodVolumeRestore(): owned by the Restore, for the restored pod; the node
        agent of the node the pod runs on restores the snapshot and writes the done file restore-wait waits for."""
        rmeta, pmeta = self.restore["metadata"], pod["metadata"]
        digest = hashlib.sha256(f"{rmeta.get('uid')}/{pmeta['uid']}/{pvb['spec']['volume']}".encode()).hexdigest()
        pvr = {"apiVersion": API_VERSION, "kind": "PodVolumeRestore",
               "metadata": {"name": f"{rmeta['name'][:57]}-{digest[:5]}", "namespace": self.ctl.namespace,
                            "labels": {LABEL_RESTORE: rmeta["name"][:63], "velero.io/restore-uid": rmeta.get("uid", ""),
                                       "velero.io/pod-uid": pmeta["uid"]},
                            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Restore", "name": rmeta["name"],
                                                 "uid": rmeta.get("uid", ""), "controller": True}]},
               "spec": {"pod": {"kind": "Pod", "namespace": pmeta["namespace"], "name": pmeta["name"], "uid": pmeta["uid"]},
                        "volume": pvb["spec"]["volume"], "snapshotID": pvb["status"]["snapshotID"],
                        "snapshotSize": ((pvb.get("status") or {}).get("progress") or {}).get("totalBytes", 0),
                        "backupStorageLocation": pvb["spec"]["backupStorageLocation"],
                        "repoIdentifier": pvb["spec"].get("repoIdentifier", ""), "uploaderType": "kopia",
                        "sourceNamespace": pvb["spec"]["pod"]["namespace"]}}
        try:
            self.kube.create(GROUP, VERSION, "podvolumerestores", pvr, self.ctl.namespace)
        except KubeError as exc:
            if exc.code != 409:
                raise
        self.pvrs.append(pvr["metadata"]["name"])
        self.log(f"Created pod volume restore {pvr['metadata']['name']} for volume {pvb['spec']['volume']} of pod "
                 f"{pmeta['namespace']}/{pmeta['name']} (snapshot {pvb['status']['snapshotID']})")

    def _provision(self, namespace: str, claim: str, node: str) -> None:
        """local-path's provisioner: a `local` PV pinned to the node, bound to the claim (the stand-in kubelet
        of that node makes its directory when a pod uses it: standins/k3s/kubelet.py)."""
        pvc = self.kube.get("", "v1", "persistentvolumeclaims", namespace, claim)
        spec = pvc.get("spec") or {}
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        if spec.get("volumeName") and (spec["volumeName"] != pv_name or (pvc.get("status") or {}).get("phase") == "Bound"):
            self.pvcs[(namespace, claim)] = pvc
            return  # bound already, or to a restored volume: nothing to provision
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        storage_class = spec.get("storageClassName") or "local-path"
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path",
                                                            "local.path.provisioner/selected-node": node}},
              "spec": {"capacity": {"storage": size}, "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                       "persistentVolumeReclaimPolicy": "Delete", "storageClassName": storage_class, "volumeMode": "Filesystem",
                       # K3s's local-path StorageClass has the annotation defaultVolumeType: "local" (k3s-io/k3s
                       # manifests/local-storage.yaml), so its PVs are `local` volumes, not hostPath
                       # (rancher/local-path-provisioner provisioner.go, createPersistentVolumeSource); the folder is
                       # <base>/<pv name>_<namespace>_<claim> (provisionFor), base /var/lib/rancher/k3s/storage on K3s.
                       "local": {"path": f"{LOCAL_PATH_BASE}/{pv_name}_{namespace}_{claim}"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": claim, "namespace": namespace,
                                    "uid": pvc["metadata"]["uid"]}},
              "status": {"phase": "Bound"}}
        try:
            self.kube.create("", "v1", "persistentvolumes", pv)
        except KubeError as exc:  # made by an earlier attempt whose answer was lost?
            existing = self.kube.get("", "v1", "persistentvolumes", None, pv_name) if exc.code == 409 else None
            if (((existing or {}).get("spec") or {}).get("claimRef") or {}).get("uid") != pvc["metadata"]["uid"]:
                raise
        annotations = {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                       "volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                       "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path", SELECTED_NODE: node}
        self.kube.patch("", "v1", "persistentvolumeclaims", claim,
                        {"metadata": {"annotations": annotations}, "spec": {"volumeName": pv_name}}, namespace)
        updated = self.kube.patch("", "v1", "persistentvolumeclaims", claim, {"status": {
            "phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": {"storage": size}}}, namespace, sub="status")
        self.pvcs[(namespace, claim)] = updated
        self.log(f"Provisioned {pv_name} on node {node} for pvc {namespace}/{claim}")


def start_controller(kubeconfig_path: str, namespace: str = "velero", interval: float = 0.5, **kwargs) -> Controller:
    """Start the controller in a background thread; returns it (.stop(), .errors, .tick())."""
    return Controller(kubeconfig_path, namespace, interval, **kwargs).start()

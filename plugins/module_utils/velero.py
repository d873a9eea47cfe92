# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the infra.k3s Velero modules (velero.io/v1 through the official kubernetes client).

What lives here, so that the modules stay thin:
- Velero's phases (terminal and still-running sets, from Velero 1.18's API types),
- the bodies the modules send (Backup, Restore, Schedule, BackupStorageLocation,
  DeleteBackupRequest, the change-pvc-node-selector ConfigMap), validated by the unit tests
  against the CRDs' openAPIV3Schema,
- VeleroAPI, a small wrapper of CustomObjectsApi/CoreV1Api that turns every client error into
  KubernetesError (module_utils/kubernetes.py) and sends dryRun=All in check mode,
- resolving a Schedule's latest backup the way Velero's server does,
- checking a backup's files in object storage with boto3,
- the run_*() of each module; execute() turns KubernetesError into fail_json at one place.
"""

from __future__ import annotations

import base64
import configparser
import copy
import datetime
import hashlib
import re
import traceback
from decimal import Decimal, InvalidOperation

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import (
    KubernetesError,
    WaitTimeout,
    Waiter,
    api_error,
    build_api_client,
    connection_errors,
    k8s_argument_spec,
    require_kubernetes,
)

try:
    import kubernetes
    from kubernetes.client.rest import ApiException
except ImportError:  # pragma: no cover - reported by require_kubernetes()
    kubernetes = None
    ApiException = None


def _import_boto3():
    """boto3 and botocore.config, imported only when verify_storage needs them (they take a while to import)."""
    try:
        import boto3  # pylint: disable=import-outside-toplevel
        import botocore.config  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise VeleroError(missing_required_lib("boto3"), exception=str(exc))
    return boto3, botocore.config


GROUP = "velero.io"
VERSION = "v1"
API_VERSION = "velero.io/v1"
DEFAULT_NAMESPACE = "velero"

BACKUPS = "backups"
RESTORES = "restores"
SCHEDULES = "schedules"
LOCATIONS = "backupstoragelocations"
DELETE_REQUESTS = "deletebackuprequests"
KINDS = {BACKUPS: "Backup", RESTORES: "Restore", SCHEDULES: "Schedule", LOCATIONS: "BackupStorageLocation",
         DELETE_REQUESTS: "DeleteBackupRequest"}

# Phases (Velero 1.18, pkg/apis/velero/v1/backup_types.go and restore_types.go).
COMPLETED = "Completed"
PARTIALLY_FAILED = "PartiallyFailed"
FAILED = "Failed"
FAILED_VALIDATION = "FailedValidation"
BACKUP_TERMINAL = frozenset([COMPLETED, PARTIALLY_FAILED, FAILED, FAILED_VALIDATION])
BACKUP_RUNNING = frozenset(["", "New", "Queued", "ReadyToStart", "InProgress", "WaitingForPluginOperations",
                            "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed"])
BACKUP_DELETING = "Deleting"
BACKUP_PHASES = ["New", "Queued", "ReadyToStart", "FailedValidation", "InProgress", "WaitingForPluginOperations",
                 "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed", "Completed",
                 "PartiallyFailed", "Failed", "Deleting"]
RESTORE_TERMINAL = frozenset([COMPLETED, PARTIALLY_FAILED, FAILED, FAILED_VALIDATION])
RESTORE_RUNNING = frozenset(["", "New", "InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed",
                             "Finalizing", "FinalizingPartiallyFailed"])
BSL_AVAILABLE = "Available"
BSL_UNAVAILABLE = "Unavailable"
DBR_PROCESSED = "Processed"

# Labels Velero sets and reads.
LABEL_SCHEDULE = "velero.io/schedule-name"
LABEL_STORAGE_LOCATION = "velero.io/storage-location"
LABEL_BACKUP_NAME = "velero.io/backup-name"
LABEL_BACKUP_UID = "velero.io/backup-uid"
LABEL_PLUGIN_CONFIG = "velero.io/plugin-config"
LABEL_CHANGE_PVC_NODE = "velero.io/change-pvc-node-selector"
NODE_MAPPING_CONFIGMAP = "change-pvc-node-selector-config"

R2_URL = "https://%s.r2.cloudflarestorage.com"
EXISTING_RESOURCE_POLICIES = ["none", "update"]
ACCESS_MODES = ["ReadWrite", "ReadOnly"]
# Template keys velero_schedule manages (other keys of an existing template are left alone).
TEMPLATE_KEYS = ("includedNamespaces", "excludedNamespaces", "labelSelector", "ttl", "storageLocation", "snapshotVolumes",
                 "defaultVolumesToFsBackup", "includeClusterResources")
# What the API (Velero's Go types) means by a field left out.
SPEC_DEFAULTS = {"paused": False, "default": False, "accessMode": "ReadWrite"}
# Attempts of a read-compare-patch cycle that meets 409 Conflict (someone else changed the object).
CONFLICT_ATTEMPTS = 3


class VeleroError(KubernetesError):
    """A Velero failure (the object's outcome, a refusal); ``result`` goes into fail_json."""


class InvalidInput(VeleroError):
    """Invalid module input, rejected before any request."""


# --------------------------------------------------------------------------------------
# Argument specs (the modules add theirs to the shared connection and wait options)
# --------------------------------------------------------------------------------------

def backup_options():
    """The options that describe a backup (velero_backup, and velero_schedule's template)."""
    return dict(
        included_namespaces=dict(type="list", elements="str"),
        excluded_namespaces=dict(type="list", elements="str"),
        label_selector=dict(type="dict"),
        ttl=dict(type="str"),
        storage_location=dict(type="str"),
        snapshot_volumes=dict(type="bool"),
        default_volumes_to_fs_backup=dict(type="bool"),
        include_cluster_resources=dict(type="bool"),
    )


def velero_argument_spec(wait=True, **extra):
    """Connection (+ wait) options, ``namespace`` (Velero's), and the module's own."""
    spec = dict(namespace=dict(type="str", default=DEFAULT_NAMESPACE))
    spec.update(extra)
    return k8s_argument_spec(wait=wait, **spec)


def s3_options():
    return dict(
        aws_access_key_id=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
        aws_secret_access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
        s3_url=dict(type="str"),
    )


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10 ** 3, "\u00b5s": 10 ** 3, "\u03bcs": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9,
            "h": 3600 * 10 ** 9}


def _decimal_text(value, unit):
    whole, rest = divmod(value, unit)
    if not rest:
        return "%d" % whole
    digits = len(str(unit)) - 1
    return ("%d.%0*d" % (whole, digits, rest)).rstrip("0")


def go_duration(text):
    """A Go duration ("720h", "1.5h", "90m") written the way Go's Duration.String() writes it ("720h0m0s")."""
    raw = str(text).strip()
    body = raw[1:] if raw[:1] in "+-" else raw
    if body == "0":
        return "0s"
    pos, total = 0, Decimal(0)
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match:
            raise InvalidInput("%r is not a duration (write it like 720h, 24h0m0s or 90m)" % (text,))
        try:
            total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        except InvalidOperation as exc:
            raise InvalidInput("%r is not a duration" % (text,)) from exc
        pos = match.end()
    if not body:
        raise InvalidInput("empty duration")
    nanos = int(total)
    if raw.startswith("-"):
        raise InvalidInput("duration %r is negative" % (text,))
    if nanos == 0:
        return "0s"
    if nanos < 1000:
        return "%dns" % nanos
    if nanos < 10 ** 6:
        return _decimal_text(nanos, 10 ** 3) + "\u00b5s"
    if nanos < 10 ** 9:
        return _decimal_text(nanos, 10 ** 6) + "ms"
    hours, rest = divmod(nanos, 3600 * 10 ** 9)
    minutes, rest = divmod(rest, 60 * 10 ** 9)
    seconds = _decimal_text(rest, 10 ** 9) + "s"
    if hours:
        return "%dh%dm%s" % (hours, minutes, seconds)
    if minutes:
        return "%dm%s" % (minutes, seconds)
    return seconds


def same_duration(left, right):
    if left == right:
        return True
    try:
        return go_duration(left) == go_duration(right)
    except InvalidInput:
        return False


def valid_label_value(name):
    """The label value Velero writes for a name (label.GetValidName: 63 characters at most)."""
    if len(name) <= 63:
        return name
    return name[:57] + hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]


def parse_time(text):
    """An RFC 3339 timestamp as an aware datetime (None when empty or unparseable)."""
    if not text:
        return None
    value = str(text).strip().replace("Z", "+00:00").replace("z", "+00:00")
    match = re.match(r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", value)
    if not match:
        return None
    fraction = (match.group(2) or "")[:7].ljust(7, "0") if match.group(2) else ""
    try:
        parsed = datetime.datetime.fromisoformat(match.group(1).replace("t", "T").replace(" ", "T") + fraction + match.group(3))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def utc_stamp(now=None):
    """YYYYMMDDHHMMSS in UTC, the suffix Velero gives scheduled backups (and the CLI restores)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%d%H%M%S")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch of target (a copy is returned)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def exact_patch(current, desired):
    """The merge patch that turns the dict current into desired (keys missing from desired are removed)."""
    patch = {}
    current = current or {}
    for key in current:
        if key not in desired:
            patch[key] = None
    for key, value in desired.items():
        if current.get(key) != value:
            patch[key] = value
    return patch


def _stringify(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def status_of(obj):
    return (obj or {}).get("status") or {}


def phase_of(obj):
    return status_of(obj).get("phase") or ""


def outcome_fields(obj):
    """phase, error_count, warning_count, failure_reason, validation_errors, progress of a Backup or Restore.

    Not ``errors``/``warnings``: Ansible reserves ``warnings`` in module results.
    """
    status = status_of(obj)
    return dict(
        phase=status.get("phase") or "",
        error_count=status.get("errors") or 0,
        warning_count=status.get("warnings") or 0,
        failure_reason=status.get("failureReason") or "",
        validation_errors=list(status.get("validationErrors") or []),
        progress=dict(status.get("progress") or {}),
    )


def _meta(name, namespace, labels=None):
    meta = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


# --------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------

def backup_spec(params):
    """The spec of a Backup (or a Schedule's template) from the backup options; unset options are left out."""
    spec = {}
    if params.get("included_namespaces") is not None:
        spec["includedNamespaces"] = list(params["included_namespaces"])
    if params.get("excluded_namespaces") is not None:
        spec["excludedNamespaces"] = list(params["excluded_namespaces"])
    if params.get("label_selector") is not None:
        spec["labelSelector"] = {"matchLabels": dict((str(k), _stringify(v)) for k, v in params["label_selector"].items())}
    if params.get("ttl") is not None:
        spec["ttl"] = go_duration(params["ttl"])
    if params.get("storage_location"):
        spec["storageLocation"] = params["storage_location"]
    for option, field in (("snapshot_volumes", "snapshotVolumes"), ("default_volumes_to_fs_backup", "defaultVolumesToFsBackup"),
                          ("include_cluster_resources", "includeClusterResources")):
        if params.get(option) is not None:
            spec[field] = bool(params[option])
    return spec


def backup_body(params):
    return {"apiVersion": API_VERSION, "kind": "Backup", "metadata": _meta(params["name"], params["namespace"]),
            "spec": backup_spec(params)}


def _match_labels(labels):
    return {"matchLabels": dict((str(k), _stringify(v)) for k, v in labels.items())}


def restore_body(name, namespace, backup_name, params):
    spec = {"backupName": backup_name}
    for option, field in (("included_namespaces", "includedNamespaces"), ("included_resources", "includedResources"),
                          ("excluded_resources", "excludedResources")):
        if params.get(option) is not None:
            spec[field] = list(params[option])
    if params.get("label_selector") is not None:
        spec["labelSelector"] = _match_labels(params["label_selector"])
    if params.get("or_label_selectors") is not None:
        spec["orLabelSelectors"] = [_match_labels(labels) for labels in params["or_label_selectors"]]
    if params.get("namespace_mapping"):
        spec["namespaceMapping"] = dict((str(k), str(v)) for k, v in params["namespace_mapping"].items())
    if params.get("restore_pvs") is not None:
        spec["restorePVs"] = bool(params["restore_pvs"])
    if params.get("existing_resource_policy"):
        spec["existingResourcePolicy"] = params["existing_resource_policy"]
    return {"apiVersion": API_VERSION, "kind": "Restore", "metadata": _meta(name, namespace), "spec": spec}


def schedule_spec(params):
    spec = {"schedule": params["schedule"], "template": backup_spec(params), "paused": bool(params.get("paused"))}
    if params.get("use_owner_references_in_backup") is not None:
        spec["useOwnerReferencesInBackup"] = bool(params["use_owner_references_in_backup"])
    return spec


def schedule_body(params):
    return {"apiVersion": API_VERSION, "kind": "Schedule", "metadata": _meta(params["name"], params["namespace"]),
            "spec": schedule_spec(params)}


def schedule_patch(current_spec, desired_spec):
    """The merge patch of spec that makes an existing Schedule as desired (template keys not managed are kept)."""
    current_spec = current_spec or {}
    patch = {}
    for key in ("schedule", "paused", "useOwnerReferencesInBackup"):
        if key in desired_spec and current_spec.get(key, SPEC_DEFAULTS.get(key)) != desired_spec[key]:
            patch[key] = desired_spec[key]
    template = current_spec.get("template") or {}
    wanted = desired_spec.get("template") or {}
    template_patch = {}
    for key in TEMPLATE_KEYS:
        if key not in wanted:
            if key in template:
                template_patch[key] = None
        elif key == "ttl" and key in template and same_duration(template[key], wanted[key]):
            continue
        elif template.get(key) != wanted[key]:
            template_patch[key] = wanted[key]
    if template_patch:
        patch["template"] = template_patch
    return patch


def bsl_config(params):
    """spec.config of a BackupStorageLocation: R2 settings, then config, then s3_url; values as strings."""
    config = {}
    if params.get("r2_account_id"):
        config.update(region="auto", s3ForcePathStyle="true", s3Url=R2_URL % params["r2_account_id"], checksumAlgorithm="")
    for key, value in (params.get("config") or {}).items():
        config[str(key)] = _stringify(value)
    if params.get("s3_url"):
        config["s3Url"] = params["s3_url"]
    return config


def bsl_spec(params):
    if params.get("r2_account_id") and params.get("provider") not in (None, "aws", "velero.io/aws"):
        raise InvalidInput("r2_account_id needs provider aws (Cloudflare R2 speaks S3), not %s" % params.get("provider"))
    storage = {"bucket": params["bucket"]}
    if params.get("prefix"):
        storage["prefix"] = params["prefix"].strip("/")
    spec = {"provider": params.get("provider") or "aws", "objectStorage": storage, "config": bsl_config(params),
            "default": bool(params.get("default")), "accessMode": params.get("access_mode") or "ReadWrite"}
    if params.get("credential"):
        spec["credential"] = {"name": params["credential"]["name"], "key": params["credential"]["key"]}
    return spec


def bsl_body(params):
    return {"apiVersion": API_VERSION, "kind": "BackupStorageLocation", "metadata": _meta(params["name"], params["namespace"]),
            "spec": bsl_spec(params)}


def bsl_patch(current_spec, desired_spec):
    """Merge patch of spec: the managed fields exactly as desired (config and objectStorage exact, credential removed when unset)."""
    current_spec = current_spec or {}
    patch = {}
    for key in ("provider", "default", "accessMode"):
        if current_spec.get(key, SPEC_DEFAULTS.get(key)) != desired_spec[key]:
            patch[key] = desired_spec[key]
    for key in ("objectStorage", "config"):
        sub = exact_patch(current_spec.get(key) or {}, desired_spec[key])
        if sub:
            patch[key] = sub
    if "credential" in desired_spec:
        if current_spec.get("credential") != desired_spec["credential"]:
            patch["credential"] = exact_patch(current_spec.get("credential") or {}, desired_spec["credential"])
    elif current_spec.get("credential"):
        patch["credential"] = None
    return patch


def delete_request_body(backup, namespace):
    """A DeleteBackupRequest for the backup, labelled as the velero CLI labels it."""
    name = backup["metadata"]["name"]
    labels = {LABEL_BACKUP_NAME: valid_label_value(name)}
    uid = backup["metadata"].get("uid")
    if uid:
        labels[LABEL_BACKUP_UID] = uid
    return {"apiVersion": API_VERSION, "kind": "DeleteBackupRequest",
            "metadata": {"generateName": name[:200] + "-", "namespace": namespace, "labels": labels},
            "spec": {"backupName": name}}


def node_mapping_configmap(namespace, mapping):
    """The ConfigMap Velero's change-pvc-node-selector RestoreItemAction reads (old node -> new node)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NODE_MAPPING_CONFIGMAP, "namespace": namespace,
                         "labels": {LABEL_PLUGIN_CONFIG: "", LABEL_CHANGE_PVC_NODE: "RestoreItemAction"}},
            "data": dict((str(k), str(v)) for k, v in mapping.items())}


# --------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------

def start_time(backup):
    """The backup's status.startTimestamp (creationTimestamp when it has none) as a datetime."""
    meta = backup.get("metadata") or {}
    return parse_time(status_of(backup).get("startTimestamp")) or parse_time(meta.get("creationTimestamp")) \
        or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def newest_first(backups):
    return sorted(backups, key=lambda b: (start_time(b), b["metadata"]["name"]), reverse=True)


def latest_backup(backups, phases=(COMPLETED,), schedule=None):
    """The backup with the latest status.startTimestamp among those in phases (of the schedule, if given), or None.

    Velero's restore controller does this for spec.scheduleName with phases=(Completed,).
    """
    wanted = set(phases)
    candidates = []
    for backup in backups:
        labels = (backup.get("metadata") or {}).get("labels") or {}
        if schedule is not None and labels.get(LABEL_SCHEDULE) != valid_label_value(schedule):
            continue
        if phase_of(backup) not in wanted or not status_of(backup).get("startTimestamp"):
            continue
        candidates.append(backup)
    ordered = newest_first(candidates)
    return ordered[0] if ordered else None


def includes_namespace(backup, namespace):
    """Whether the backup includes the namespace (included: empty or '*' or naming it; not excluded)."""
    spec = backup.get("spec") or {}
    included = spec.get("includedNamespaces") or []
    excluded = spec.get("excludedNamespaces") or []
    if namespace in excluded:
        return False
    return not included or "*" in included or namespace in included


def storage_location_of(backup):
    spec = backup.get("spec") or {}
    labels = (backup.get("metadata") or {}).get("labels") or {}
    return spec.get("storageLocation") or labels.get(LABEL_STORAGE_LOCATION) or None


def backup_view(backup):
    """What velero_backup_info returns for one backup."""
    meta = backup.get("metadata") or {}
    spec = backup.get("spec") or {}
    status = status_of(backup)
    view = dict(
        name=meta.get("name"),
        namespace=meta.get("namespace"),
        uid=meta.get("uid"),
        labels=dict(meta.get("labels") or {}),
        schedule=(meta.get("labels") or {}).get(LABEL_SCHEDULE),
        storage_location=storage_location_of(backup),
        included_namespaces=list(spec.get("includedNamespaces") or []),
        excluded_namespaces=list(spec.get("excludedNamespaces") or []),
        ttl=spec.get("ttl"),
        start_timestamp=status.get("startTimestamp"),
        completion_timestamp=status.get("completionTimestamp"),
        expiration=status.get("expiration"),
    )
    view.update(outcome_fields(backup))
    return view


# --------------------------------------------------------------------------------------
# Outcomes and waiting
# --------------------------------------------------------------------------------------

def describe_run(obj):
    if obj is None:
        return "it does not exist"
    status = status_of(obj)
    text = "phase %s" % (status.get("phase") or "New (not picked up by Velero yet)")
    progress = status.get("progress") or {}
    if progress.get("totalItems"):
        text += " (%s/%s items)" % (progress.get("itemsBackedUp", progress.get("itemsRestored", 0)), progress["totalItems"])
    return text


def check_outcome(kind, obj, allow_partially_failed, result=None):
    """Raise VeleroError when a finished Backup/Restore did not succeed (PartiallyFailed only unless allowed)."""
    fields = outcome_fields(obj)
    phase = fields["phase"]
    name = "%s %s/%s" % (kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
    extra = dict(result or {})
    extra.update(fields)
    if phase == COMPLETED or (phase == PARTIALLY_FAILED and allow_partially_failed):
        return
    if phase == PARTIALLY_FAILED:
        raise VeleroError("%s finished PartiallyFailed with %d error(s) and %d warning(s) (set allow_partially_failed to accept "
                          "that; `velero %s describe %s --details` and `velero %s logs %s` tell which items failed)"
                          % (name, fields["error_count"], fields["warning_count"], kind.lower(), obj["metadata"]["name"],
                             kind.lower(), obj["metadata"]["name"]), **extra)
    if phase == FAILED_VALIDATION:
        raise VeleroError("%s failed validation: %s" % (name, "; ".join(fields["validation_errors"]) or "no details"), **extra)
    if phase == FAILED:
        raise VeleroError("%s failed: %s" % (name, fields["failure_reason"] or "no failure reason given (see velero %s logs %s)"
                                             % (kind.lower(), obj["metadata"]["name"])), **extra)
    if phase == BACKUP_DELETING:
        raise VeleroError("%s is being deleted" % name, **extra)
    raise VeleroError("%s is in phase %s" % (name, phase or "New"), **extra)


def _wait_run(api, plural, name, params, check_mode, sleeper=None):
    """Wait until a Backup/Restore reaches a terminal phase; the object as then read."""
    kind = KINDS[plural]

    def fetch():
        obj = api.get(plural, name)
        if obj is None:
            raise VeleroError("%s %s/%s disappeared while waiting for it to finish" % (kind, api.namespace, name))
        return obj

    def done(obj):
        phase = phase_of(obj)
        return phase in BACKUP_TERMINAL or phase == BACKUP_DELETING

    kwargs = {} if sleeper is None else {"sleeper": sleeper}
    waiter = Waiter(fetch, done, params["wait_timeout"], params["wait_sleep"], describe=describe_run, **kwargs)
    return _with_last(waiter, "%s %s/%s to finish" % (kind, api.namespace, name), check_mode, kind.lower())


def _with_last(waiter, what, check_mode, key):
    try:
        return waiter.wait(what, check_mode=check_mode)
    except WaitTimeout as exc:
        extra = {key: exc.last}
        if exc.last is not None and key in ("backup", "restore"):
            extra.update(outcome_fields(exc.last))
        raise WaitTimeout(exc.msg, last=exc.last, elapsed=exc.elapsed, **extra)


# --------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------

class VeleroAPI(object):
    """velero.io/v1 objects of one namespace (and the few core objects the modules touch)."""

    def __init__(self, api_client, namespace):
        self.api_client = api_client
        self.namespace = namespace
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    @classmethod
    def from_params(cls, params):
        return cls(build_api_client(params), params["namespace"])

    def _call(self, what, func, *args, **kwargs):
        kwargs.setdefault("_request_timeout", (10, 60))
        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, what)
        except connection_errors() as exc:
            raise api_error(exc, what)

    def _what(self, verb, plural, name=None):
        return "%s %s %s/%s" % (verb, KINDS.get(plural, plural), self.namespace, name or "")

    def get(self, plural, name):
        """The object, or None when it does not exist."""
        try:
            return self._call(self._what("reading", plural, name), self.custom.get_namespaced_custom_object,
                              GROUP, VERSION, self.namespace, plural, name)
        except KubernetesError as exc:
            if exc.status == 404 and exc.reason == "NotFound" and "could not find the requested resource" not in exc.msg:
                return None
            raise

    def list(self, plural, label_selector=None):
        kwargs = {"label_selector": label_selector} if label_selector else {}
        body = self._call("listing %ss in namespace %s" % (KINDS[plural], self.namespace), self.custom.list_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, **kwargs)
        return list((body or {}).get("items") or [])

    def create(self, plural, body, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        name = body["metadata"].get("name") or body["metadata"].get("generateName", "") + "*"
        return self._call(self._what("creating", plural, name), self.custom.create_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, body, **kwargs)

    def patch(self, plural, name, patch, dry_run=False):
        """Merge patch; a metadata.resourceVersion in it makes the API refuse (409 Conflict) when the object changed meanwhile."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._call(self._what("patching", plural, name), self.custom.patch_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, name, patch,
                          _content_type="application/merge-patch+json", **kwargs)

    def delete(self, plural, name, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            self._call(self._what("deleting", plural, name), self.custom.delete_namespaced_custom_object,
                       GROUP, VERSION, self.namespace, plural, name, **kwargs)
        except KubernetesError as exc:
            if exc.status == 404 and exc.reason == "NotFound":
                return False
            raise
        return True

    # core objects
    def _plain(self, obj):
        return self.api_client.sanitize_for_serialization(obj) if obj is not None else None

    def get_configmap(self, name):
        try:
            return self._plain(self._call("reading ConfigMap %s/%s" % (self.namespace, name), self.core.read_namespaced_config_map,
                                          name, self.namespace))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def create_configmap(self, body, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._plain(self._call("creating ConfigMap %s/%s" % (self.namespace, body["metadata"]["name"]),
                                      self.core.create_namespaced_config_map, self.namespace, body, **kwargs))

    def patch_configmap(self, name, patch, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._plain(self._call("patching ConfigMap %s/%s" % (self.namespace, name), self.core.patch_namespaced_config_map,
                                      name, self.namespace, patch, _content_type="application/merge-patch+json", **kwargs))

    def delete_configmap(self, name, dry_run=False):
        """Delete a ConfigMap; False when it did not exist."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            self._call("deleting ConfigMap %s/%s" % (self.namespace, name), self.core.delete_namespaced_config_map,
                       name, self.namespace, **kwargs)
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def secret_value(self, name, key):
        """A Secret's value (decoded), None when the Secret or key does not exist."""
        try:
            secret = self._call("reading Secret %s/%s" % (self.namespace, name), self.core.read_namespaced_secret, name, self.namespace)
        except KubernetesError as exc:
            if exc.status in (403, 404):
                return None
            raise
        data = (secret.data or {}) if secret is not None else {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode("utf-8", "replace")


def _conflict(exc):
    return exc.status == 409 and exc.reason == "Conflict"


def _already_exists(exc):
    return exc.status == 409 and exc.reason == "AlreadyExists"


def _diff(before, after, name):
    return {"before": before, "after": after, "before_header": "%s (before)" % name, "after_header": "%s (after)" % name}


# --------------------------------------------------------------------------------------
# velero_backup
# --------------------------------------------------------------------------------------

def run_backup(module, api):
    params = module.params
    name = params["name"]
    if params["state"] == "absent":
        return _delete_backup(module, api, name)
    body = backup_body(params)
    result = dict(changed=False)
    backup = api.get(BACKUPS, name)
    if backup is None:
        try:
            backup = api.create(BACKUPS, body, dry_run=module.check_mode)
            result["changed"] = True
        except KubernetesError as exc:
            if not _already_exists(exc):
                raise
            backup = api.get(BACKUPS, name)  # created meanwhile (by another run): a Backup is one-shot, take it as is
            if backup is None:
                raise
        if module._diff:
            result["diff"] = _diff({}, {"spec": body["spec"]}, "Backup %s/%s" % (api.namespace, name))
    if params["wait"] and not module.check_mode:
        backup = _wait_run(api, BACKUPS, name, params, module.check_mode)
        result["backup"] = backup
        result.update(outcome_fields(backup))
        check_outcome("Backup", backup, params["allow_partially_failed"], dict(result))
    result["backup"] = backup
    result.update(outcome_fields(backup))
    return result


def _pending_delete_request(api, backup):
    name = backup["metadata"]["name"]
    for request in api.list(DELETE_REQUESTS, "%s=%s" % (LABEL_BACKUP_NAME, valid_label_value(name))):
        if (request.get("spec") or {}).get("backupName") == name and phase_of(request) != DBR_PROCESSED:
            return request
    return None


def _delete_backup(module, api, name):
    params = module.params
    result = dict(changed=False, backup=None, delete_request=None)
    backup = api.get(BACKUPS, name)
    if backup is None:
        return result
    result["backup"] = backup
    request = _pending_delete_request(api, backup)
    if request is None and phase_of(backup) != BACKUP_DELETING:
        request = api.create(DELETE_REQUESTS, delete_request_body(backup, api.namespace), dry_run=module.check_mode)
        result["changed"] = True
        if module._diff:
            result["diff"] = _diff({"spec": backup.get("spec") or {}}, {}, "Backup %s/%s" % (api.namespace, name))
    result["delete_request"] = request
    if params["wait"] and not module.check_mode:
        seen = {}

        def fetch():
            current = api.get(BACKUPS, name)
            seen["backup"] = current
            if current is not None and request is not None and request["metadata"].get("name"):
                seen["request"] = api.get(DELETE_REQUESTS, request["metadata"]["name"])
            return current

        def done(current):
            if current is None:
                return True
            latest = seen.get("request")
            if latest is not None and phase_of(latest) == DBR_PROCESSED:
                errors = status_of(latest).get("errors") or []
                raise VeleroError("Velero could not delete backup %s/%s: %s" % (api.namespace, name, "; ".join(errors) or
                                                                                "the request was processed but the backup remains"),
                                  delete_request=latest, backup=current)
            return False

        waiter = Waiter(fetch, done, params["wait_timeout"], params["wait_sleep"],
                        describe=lambda obj: "the backup still exists (%s)" % describe_run(obj))
        _with_last(waiter, "backup %s/%s to be deleted" % (api.namespace, name), module.check_mode, "backup")
        if seen.get("request") is not None:
            result["delete_request"] = seen["request"]
    return result


# --------------------------------------------------------------------------------------
# velero_restore
# --------------------------------------------------------------------------------------

def resolve_backup(api, params):
    """The backup a restore uses: the named one, or the latest of the schedule (Velero's rule)."""
    if params.get("backup_name"):
        backup = api.get(BACKUPS, params["backup_name"])
        if backup is None:
            raise VeleroError("Backup %s/%s does not exist: nothing to restore from" % (api.namespace, params["backup_name"]))
        return backup
    schedule = params["schedule_name"]
    phases = [COMPLETED, PARTIALLY_FAILED] if params.get("allow_partially_failed") else [COMPLETED]
    backups = api.list(BACKUPS, "%s=%s" % (LABEL_SCHEDULE, valid_label_value(schedule)))
    backup = latest_backup(backups, phases, schedule)
    if backup is None:
        seen = ", ".join("%s (%s)" % (b["metadata"]["name"], phase_of(b) or "New") for b in newest_first(backups)[:5])
        raise VeleroError("Schedule %s/%s has no %s backup to restore from%s" % (
            api.namespace, schedule, " or ".join(phases), "; its backups: " + seen if seen else " (it has no backups)"))
    return backup


def default_location(api):
    for location in api.list(LOCATIONS):
        if (location.get("spec") or {}).get("default"):
            return location
    return api.get(LOCATIONS, "default")


def require_available_location(api, backup):
    """The backup's BackupStorageLocation, refusing when it is missing or not Available."""
    name = storage_location_of(backup)
    location = api.get(LOCATIONS, name) if name else default_location(api)
    if location is None:
        raise VeleroError("BackupStorageLocation %s/%s of backup %s does not exist: Velero cannot read the backup, so no restore was "
                          "started" % (api.namespace, name or "(default)", backup["metadata"]["name"]))
    status = status_of(location)
    if status.get("phase") != BSL_AVAILABLE:
        raise VeleroError("BackupStorageLocation %s/%s is %s%s: Velero cannot read backup %s from it, so no restore was started. "
                          "Fix the location (bucket, credentials, s3Url) and wait for it to be Available"
                          % (api.namespace, location["metadata"]["name"], status.get("phase") or "not validated yet",
                             " (%s)" % status["message"] if status.get("message") else "", backup["metadata"]["name"]),
                          storage_location=location)
    return location


def ensure_node_mapping(api, mapping, check_mode):
    """Make the change-pvc-node-selector ConfigMap hold exactly mapping; (changed, configmap, before)."""
    desired = node_mapping_configmap(api.namespace, mapping)
    current = api.get_configmap(NODE_MAPPING_CONFIGMAP)
    if current is None:
        return True, api.create_configmap(desired, dry_run=check_mode), None
    labels = (current.get("metadata") or {}).get("labels") or {}
    patch = {}
    label_patch = dict((k, v) for k, v in desired["metadata"]["labels"].items() if labels.get(k) != v)
    if label_patch:
        patch["metadata"] = {"labels": label_patch, "resourceVersion": current["metadata"].get("resourceVersion")}
    data_patch = exact_patch(current.get("data") or {}, desired["data"])
    if data_patch:
        patch["data"] = data_patch
        patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"].get("resourceVersion")
    if not patch:
        return False, current, current
    return True, api.patch_configmap(NODE_MAPPING_CONFIGMAP, patch, dry_run=check_mode), current


def run_restore(module, api):
    params = module.params
    result = dict(changed=False)
    name = params.get("name")
    if name:
        existing = api.get(RESTORES, name)
        if existing is not None:
            backup_name = (existing.get("spec") or {}).get("backupName")
            result.update(restore=existing, backup_name=backup_name, backup=api.get(BACKUPS, backup_name) if backup_name else None)
            return _finish_restore(module, api, result, existing)
        if not (params.get("backup_name") or params.get("schedule_name")):
            raise VeleroError("Restore %s/%s does not exist: give backup_name or schedule_name to create it" % (api.namespace, name))
    backup = resolve_backup(api, params)
    backup_name = backup["metadata"]["name"]
    result.update(backup_name=backup_name, backup=backup)
    phase = phase_of(backup)
    if phase not in (COMPLETED, PARTIALLY_FAILED):
        raise VeleroError("Backup %s/%s is %s: only a Completed (or PartiallyFailed) backup can be restored"
                          % (api.namespace, backup_name, phase or "New (not run yet)"), **result)
    if phase == PARTIALLY_FAILED:
        module.warn("Backup %s finished PartiallyFailed: what failed to be backed up will not be restored" % backup_name)
    result["storage_location"] = require_available_location(api, backup)
    mapping = params.get("node_mapping")
    if mapping is not None:
        if mapping:
            changed, configmap, before = ensure_node_mapping(api, mapping, module.check_mode)
            result["node_mapping_configmap"] = configmap
        else:
            before = api.get_configmap(NODE_MAPPING_CONFIGMAP)
            changed = before is not None and api.delete_configmap(NODE_MAPPING_CONFIGMAP, dry_run=module.check_mode)
            configmap = None
        result["changed"] = result["changed"] or changed
        if changed and module._diff:
            result.setdefault("diffs", []).append(_diff({"data": before.get("data") or {}} if before else {},
                                                        {"data": configmap.get("data") or {}} if configmap else {},
                                                        "ConfigMap %s/%s" % (api.namespace, NODE_MAPPING_CONFIGMAP)))
    restore_name = name or "%s-%s" % (backup_name[:238], utc_stamp())
    body = restore_body(restore_name, api.namespace, backup_name, params)
    try:
        restore = api.create(RESTORES, body, dry_run=module.check_mode)
        result["changed"] = True
    except KubernetesError as exc:
        if not (_already_exists(exc) and name):
            raise
        restore = api.get(RESTORES, restore_name)
        if restore is None:
            raise
    if module._diff:
        result.setdefault("diffs", []).append(_diff({}, {"spec": body["spec"]}, "Restore %s/%s" % (api.namespace, restore_name)))
    result["restore"] = restore
    return _finish_restore(module, api, result, restore)


def _finish_restore(module, api, result, restore):
    params = module.params
    diffs = result.pop("diffs", None)
    if diffs and module._diff:
        result["diff"] = diffs if len(diffs) > 1 else diffs[0]
    if params["wait"] and not module.check_mode:
        restore = _wait_run(api, RESTORES, restore["metadata"]["name"], params, module.check_mode)
        result["restore"] = restore
        result.update(outcome_fields(restore))
        # The restore is over (whatever its outcome): a mapping left behind would move the volumes of every later restore.
        if params.get("node_mapping") and not params["keep_node_mapping"]:
            result["node_mapping_removed"] = api.delete_configmap(NODE_MAPPING_CONFIGMAP)
            result["changed"] = result["changed"] or result["node_mapping_removed"]
        check_outcome("Restore", restore, params["allow_partially_failed"], dict(result))
    result["restore"] = restore
    result.update(outcome_fields(restore))
    return result


# --------------------------------------------------------------------------------------
# Declarative objects: velero_schedule, velero_storage_location
# --------------------------------------------------------------------------------------

def _apply(module, api, plural, body, make_patch):
    """Create or merge-patch body's object until it is as desired; (changed, object, before_spec)."""
    name = body["metadata"]["name"]
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        current = api.get(plural, name)
        if current is None:
            try:
                return True, api.create(plural, body, dry_run=module.check_mode), None
            except KubernetesError as exc:
                if _already_exists(exc) and attempt < CONFLICT_ATTEMPTS:
                    continue  # created meanwhile: compare with that one
                raise
        patch = make_patch(current.get("spec") or {}, body["spec"])
        if not patch:
            return False, current, current.get("spec") or {}
        try:
            updated = api.patch(plural, name, {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "spec": patch},
                                dry_run=module.check_mode)
            return True, updated, current.get("spec") or {}
        except KubernetesError as exc:
            if _conflict(exc) and attempt < CONFLICT_ATTEMPTS:
                continue  # changed meanwhile: read again and compare again
            if _conflict(exc):
                raise KubernetesError("%s %s/%s kept changing while it was being updated (409 Conflict %d times); try again"
                                      % (KINDS[plural], api.namespace, name, attempt), status=exc.status, reason=exc.reason)
            raise
    raise KubernetesError("unreachable")  # pragma: no cover


def _remove(module, api, plural, name):
    current = api.get(plural, name)
    result = dict(changed=False)
    if current is not None:
        result["changed"] = api.delete(plural, name, dry_run=module.check_mode)
        if module._diff and result["changed"]:
            result["diff"] = _diff({"spec": current.get("spec") or {}}, {}, "%s %s/%s" % (KINDS[plural], api.namespace, name))
    return result, current


def run_schedule(module, api):
    params = module.params
    name = params["name"]
    if params["state"] == "absent":
        result, unused = _remove(module, api, SCHEDULES, name)
        result["schedule"] = None
        return result
    body = schedule_body(params)
    changed, schedule, before = _apply(module, api, SCHEDULES, body, schedule_patch)
    result = dict(changed=changed, schedule=schedule)
    if changed and module._diff:
        after = merge_patch(before or {}, schedule_patch(before or {}, body["spec"])) if before is not None else body["spec"]
        result["diff"] = _diff({"spec": before} if before is not None else {}, {"spec": after}, "Schedule %s/%s" % (api.namespace, name))
    return result


def run_storage_location(module, api):
    params = module.params
    name = params["name"]
    if params["state"] == "absent":
        result, unused = _remove(module, api, LOCATIONS, name)
        result["storage_location"] = None
        return result
    body = bsl_body(params)
    changed, location, before = _apply(module, api, LOCATIONS, body, bsl_patch)
    result = dict(changed=changed, storage_location=location)
    if changed and module._diff:
        after = merge_patch(before or {}, bsl_patch(before or {}, body["spec"])) if before is not None else body["spec"]
        result["diff"] = _diff({"spec": before} if before is not None else {}, {"spec": after},
                               "BackupStorageLocation %s/%s" % (api.namespace, name))
    if params["wait"] and not module.check_mode:
        def describe(obj):
            status = status_of(obj)
            return "it is %s%s" % (status.get("phase") or "not validated yet", " (%s)" % status["message"] if status.get("message") else "")

        waiter = Waiter(lambda: api.get(LOCATIONS, name), lambda obj: obj is not None and phase_of(obj) == BSL_AVAILABLE,
                        params["wait_timeout"], params["wait_sleep"], describe=describe)
        try:
            location = waiter.wait("BackupStorageLocation %s/%s to be Available" % (api.namespace, name))
        except WaitTimeout as exc:
            status = status_of(exc.last)
            raise WaitTimeout("BackupStorageLocation %s/%s is not Available after %ds: %s%s. Check the bucket, prefix, s3Url and the "
                              "credentials secret" % (api.namespace, name, params["wait_timeout"], status.get("phase") or "not validated",
                                                      " (%s)" % status["message"] if status.get("message") else ""),
                              last=exc.last, storage_location=exc.last, changed=changed,
                              phase=status.get("phase") or "", message=status.get("message") or "")
        result["storage_location"] = location
    status = status_of(result["storage_location"])
    result.update(phase=status.get("phase") or "", message=status.get("message") or "")
    return result


# --------------------------------------------------------------------------------------
# velero_backup_info
# --------------------------------------------------------------------------------------

def _ini_credentials(text, profile):
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    section = profile if parser.has_section(profile) else (parser.sections()[0] if parser.sections() else None)
    if section is None:
        return None
    key = parser.get(section, "aws_access_key_id", fallback=None)
    secret = parser.get(section, "aws_secret_access_key", fallback=None)
    return (key, secret) if key and secret else None


class StorageChecker(object):
    """Checks that a backup's files are in its BackupStorageLocation's bucket (one S3 client per location)."""

    def __init__(self, api, params, client_factory=None):
        self.api = api
        self.params = params
        self.client_factory = client_factory or self._boto3_client
        self.locations = {}
        self.clients = {}

    @staticmethod
    def _boto3_client(**kwargs):
        boto3, botocore_config = _import_boto3()
        if "addressing_style" in kwargs:
            kwargs["config"] = botocore_config.Config(s3={"addressing_style": kwargs.pop("addressing_style")},
                                                      retries={"max_attempts": 2}, connect_timeout=10, read_timeout=30)
        return boto3.client("s3", **kwargs)

    def _location(self, name):
        if name not in self.locations:
            self.locations[name] = self.api.get(LOCATIONS, name) if name else default_location(self.api)
        return self.locations[name]

    def _credentials(self, location):
        if self.params.get("aws_access_key_id") and self.params.get("aws_secret_access_key"):
            return self.params["aws_access_key_id"], self.params["aws_secret_access_key"]
        spec = location.get("spec") or {}
        credential = spec.get("credential") or {"name": "cloud-credentials", "key": "cloud"}
        text = self.api.secret_value(credential.get("name") or "cloud-credentials", credential.get("key") or "cloud")
        if text:
            return _ini_credentials(text, (spec.get("config") or {}).get("profile") or "default")
        return None

    def _client(self, location):
        name = location["metadata"]["name"]
        if name not in self.clients:
            config = (location.get("spec") or {}).get("config") or {}
            kwargs = dict(region_name=config.get("region") or "us-east-1")
            url = self.params.get("s3_url") or config.get("s3Url")
            if url:
                kwargs["endpoint_url"] = url
            kwargs["addressing_style"] = "path" if str(config.get("s3ForcePathStyle", "")).lower() == "true" or url else "auto"
            creds = self._credentials(location)
            if creds:
                kwargs.update(aws_access_key_id=creds[0], aws_secret_access_key=creds[1])
            self.clients[name] = (self.client_factory(**kwargs), url)
        return self.clients[name]

    def keys(self, location, backup_name):
        prefix = ((location.get("spec") or {}).get("objectStorage") or {}).get("prefix") or ""
        base = "%s/backups/%s/" % (prefix.strip("/"), backup_name) if prefix.strip("/") else "backups/%s/" % backup_name
        return [base + "velero-backup.json", base + "%s.tar.gz" % backup_name]

    def verify(self, backup):
        """(verified, missing_keys, where) for one backup."""
        name = backup["metadata"]["name"]
        location_name = storage_location_of(backup)
        location = self._location(location_name)
        if location is None:
            raise VeleroError("BackupStorageLocation %s/%s of backup %s does not exist: cannot check its files"
                              % (self.api.namespace, location_name or "(default)", name))
        bucket = ((location.get("spec") or {}).get("objectStorage") or {}).get("bucket")
        client, url = self._client(location)
        missing = []
        for key in self.keys(location, name):
            if not self._exists(client, url, bucket, key):
                missing.append(key)
        return not missing, missing, {"bucket": bucket, "endpoint": url, "storage_location": location["metadata"]["name"]}

    @staticmethod
    def _exists(client, url, bucket, key):
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except Exception as exc:  # botocore's errors, without importing it when boto3 is missing
            response = getattr(exc, "response", None) or {}
            code = str((response.get("Error") or {}).get("Code") or "")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if code in ("404", "NoSuchKey", "NotFound") or status == 404:
                return False
            if response:
                where = " at %s" % url if url else ""
                raise VeleroError("Object storage answered %s %s for s3://%s/%s%s: check the credentials (aws_access_key_id, or the "
                                  "location's credentials secret) and s3_url" % (status or "", code, bucket, key, where))
            raise VeleroError("Could not reach object storage for s3://%s/%s%s: %s" % (bucket, key, " at %s" % url if url else "", exc))


def run_backup_info(module, api, client_factory=None):
    params = module.params
    selector = "%s=%s" % (LABEL_SCHEDULE, valid_label_value(params["schedule"])) if params.get("schedule") else None
    if params.get("name"):
        one = api.get(BACKUPS, params["name"])
        backups = [one] if one is not None else []
        if selector and backups and ((one["metadata"].get("labels") or {}).get(LABEL_SCHEDULE) != valid_label_value(params["schedule"])):
            backups = []
    else:
        backups = api.list(BACKUPS, selector)
    phases = params.get("phase")
    if phases:
        backups = [b for b in backups if phase_of(b) in phases]
    if params.get("included_namespace"):
        backups = [b for b in backups if includes_namespace(b, params["included_namespace"])]
    backups = newest_first(backups)
    if params.get("latest"):
        latest = latest_backup(backups, phases or [COMPLETED])
        backups = [latest] if latest is not None else []
    views = []
    checker = StorageChecker(api, params, client_factory) if params.get("verify_storage") else None
    for backup in backups:
        view = backup_view(backup)
        if checker is not None:
            verified, missing, where = checker.verify(backup)
            view.update(storage_verified=verified, missing_keys=missing, storage=where)
        views.append(view)
    result = dict(changed=False, backups=views)
    if checker is not None:
        result["all_verified"] = all(view["storage_verified"] for view in views)
    return result


# --------------------------------------------------------------------------------------
# Entry point of every module
# --------------------------------------------------------------------------------------

def execute(module, runner, api_factory=None):
    """Run one module's runner(module, api) and exit; every KubernetesError becomes fail_json here."""
    try:
        require_kubernetes()
        api = (api_factory or VeleroAPI.from_params)(module.params)
        result = runner(module, api)
    except KubernetesError as exc:
        fields = exc.fail_fields()
        fields.setdefault("exception", traceback.format_exc())
        module.fail_json(msg=exc.msg, **fields)
    module.exit_json(**result)

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the infra.k3s Velero modules send: Velero's names and phases (from Velero 1.18's API types),
the modules' shared argument specs, VeleroError (the family's one exception, with kubernetes.py's
KubernetesError it derives from), small helpers (Go durations, label values, merge patches), and the
bodies (Backup, Restore, Schedule, BackupStorageLocation, DeleteBackupRequest, the
resource-modifier ConfigMap of a node mapping), validated by the unit tests against the CRDs' openAPIV3Schema.

Pure functions, no requests.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from ansible.module_utils.basic import env_fallback

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import (
    k8s_argument_spec,
    KubernetesError,
)

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
SELECTED_NODE = "volume.kubernetes.io/selected-node"
# A restore's node mapping is a resource modifier (vmware-tanzu/velero v1.18.1 internal/resourcemodifiers/
# resource_modifiers.go): a ConfigMap with exactly one data key (GetResourceModifiersFromConfig), named after the restore.
NODE_MAPPING_SUFFIX = "-node-mapping"
NODE_MAPPING_KEY = "node-mapping.yaml"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

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


def restore_body(name, namespace, backup_name, params, resource_modifier=None):
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
    if resource_modifier:
        # restore_types.go RestoreSpec.ResourceModifier (a TypedLocalObjectReference); restore_controller.go reads it
        # from the restore's namespace when its kind is "configmap" (case-insensitive).
        spec["resourceModifier"] = {"kind": "ConfigMap", "name": resource_modifier}
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


def node_mapping_configmap_name(restore_name):
    """The name of a restore's node-mapping ConfigMap (a DNS subdomain of at most 253 characters)."""
    return restore_name[:253 - len(NODE_MAPPING_SUFFIX)].rstrip(".-") + NODE_MAPPING_SUFFIX


def _go_regex_literal(text):
    """text as a literal in Go's RE2 syntax (an object name holds only [a-z0-9.-]; other punctuation is escaped too)."""
    return re.sub(r"([^A-Za-z0-9_-])", r"\\\1", text)


def node_mapping_rules(mapping, claims, namespaces):
    """The resource modifier rules that put restored claims on the node mapping maps them to.

    Velero 1.18 (vmware-tanzu/velero v1.18.1 pkg/restore/actions/pvc_action.go, PVCAction.Execute; commit 7e15e9ba0
    "deprecate pvc node selection") always removes a claim's volume.kubernetes.io/selected-node and no longer reads the
    change-pvc-node-selector ConfigMap. pkg/restore/restore.go restoreItem() applies the restore's resource modifiers
    after the item actions, to the object still in its original namespace, just before it is created: a merge patch
    there puts the annotation back, and K3s's local-path provisions the volume on that node. The claim's old node is
    gone by then, so every claim goes to the one node the mapping names; the claims are those given (namespace/name),
    else every claim the restore brings back (in namespaces, when given).
    """
    targets = sorted(set(str(node) for node in mapping.values()))
    if len(targets) != 1:
        raise VeleroError("node_mapping maps to %s: Velero 1.18 removes each restored claim's node before resource modifiers "
                          "apply (pkg/restore/actions/pvc_action.go), so a restore can put its claims on one node only. Run one "
                          "restore per target node." % ", ".join(targets))
    patch = json.dumps({"metadata": {"annotations": {SELECTED_NODE: targets[0]}}}, sort_keys=True)
    rules = []
    by_namespace = {}
    for claim in claims or []:
        namespace, sep, name = str(claim).partition("/")
        if not (sep and namespace and name) or "/" in name:
            raise VeleroError("node_mapping_claims: %r is not namespace/name" % claim)
        by_namespace.setdefault(namespace, set()).add(name)
    for namespace in sorted(by_namespace):
        rules.append({"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": [namespace],
                                     "resourceNameRegex": "^(%s)$" % "|".join(_go_regex_literal(n) for n in sorted(by_namespace[namespace]))},
                      "mergePatches": [{"patchData": patch}]})
    if claims is None:
        conditions = {"groupResource": "persistentvolumeclaims"}
        if namespaces:
            conditions["namespaces"] = list(namespaces)
        rules.append({"conditions": conditions, "mergePatches": [{"patchData": patch}]})
    return rules


# Where a workload's pod template and a pod pin their node by nodeSelector, as JSON pointers (RFC 6901: "/" in the label
# key is written ~1).
HOSTNAME_PIN_TEMPLATE = "/spec/template/spec/nodeSelector/kubernetes.io~1hostname"
HOSTNAME_PIN_POD = "/spec/nodeSelector/kubernetes.io~1hostname"
# The objects of a workload that Velero restores with its pod template, and the names their controllers give them:
# a Deployment's ReplicaSets <deployment>-<pod-template-hash>, a StatefulSet's pods <statefulset>-<ordinal>, and a
# ReplicaSet's pods generateName <replicaset>- plus 5 random characters. A generated name's base is cut to 58
# characters first (kubernetes/apiserver pkg/storage/names/generate.go: maxGeneratedNameLength = 63 - 5), so a long
# Deployment's pods do not end in -<hash>-<5>: they are matched by the first 58 characters of <deployment>- (None
# below), their labels (the workload's selector) and the pin.
# A StatefulSet's own template is not rewritten (None): the StatefulSet controller would make a new revision of the
# changed template and roll the restored pod (still labelled with the backup's revision) to it, and with
# podManagementPolicy Parallel (prometheus-operator's default) it deletes that pod at once, while Velero's restore-wait
# init container still waits for the volume's data (kubernetes/kubernetes pkg/controller/statefulset/
# stateful_set_control.go updateStatefulSet: the rolling update deletes a pod of another revision before it waits for
# unhealthy pods; processReplica waits for Running and Ready only with OrderedReady). Its template is pinned once the
# restore has completed (infra.k3s.dr failover), and the controller then rolls the pod, whose data is back.
PINNED_KINDS = {
    "Deployment": ("deployments.apps", [("replicasets.apps", "-[a-z0-9]+", HOSTNAME_PIN_TEMPLATE),
                                        ("pods", None, HOSTNAME_PIN_POD)]),
    "StatefulSet": (None, [("pods", "-[0-9]+", HOSTNAME_PIN_POD)]),
}
GENERATED_NAME_BASE = 63 - 5


def _dependent_regex(name, suffix):
    """The resourceNameRegex of a workload's ReplicaSets or pods: <name><suffix>, or (suffix None) the generated names
    whose base starts with <name>- (cut to GENERATED_NAME_BASE characters) followed by what the controllers add."""
    if suffix is not None:
        return "^%s%s$" % (_go_regex_literal(name), suffix)
    return "^%s[a-z0-9-]+$" % _go_regex_literal((name + "-")[:GENERATED_NAME_BASE])


def _patch_string(text):
    """A JSON patch value that Velero reads as a string whatever it looks like: internal/resourcemodifiers/json_patch.go
    addQuotes() leaves a number, true/false or null unquoted unless the value is written in double quotes."""
    return '"%s"' % text


def pinned_workload_rules(mapping, workloads):
    """The resource modifier rules that move the nodeSelector pin of restored workloads to the node the mapping names.

    For each workload (kind Deployment or StatefulSet, namespace as in the backup, name, and its spec.selector) and each
    old node of the mapping: a rule for a Deployment itself (groupResource deployments.apps, the namespace,
    resourceNameRegex of its name; not for a StatefulSet, see PINNED_KINDS), one for a Deployment's ReplicaSets (the Deployment controller takes the
    ReplicaSet whose template equals the Deployment's as its current one, so a rewritten ReplicaSet is not rolled), and
    one for its pods (a pod's spec is immutable once created: Velero restores the backed-up pods, and a pod still pinned
    to the lost node would stay Pending and never get its volume's data). The ReplicaSet and pod rules are scoped also by
    the workload's selector. Every rule is guarded by conditions.matches (vmware-tanzu/velero v1.18.1
    internal/resourcemodifiers/resource_modifiers.go matchConditions: a JSON patch "test" of the pin against the old node;
    a failed test or a missing path means no match), so an object pinned elsewhere or not at all is left as it is; the
    patch is a JSON patch "replace" of the pin (json_patch.go). Velero applies the rules in pkg/restore/restore.go
    restoreItem() after the restore item actions, just before it creates the object; `matches` exists since Velero 1.13.
    """
    rules = []
    for old, new in sorted((str(k), str(v)) for k, v in (mapping or {}).items()):
        if old == new:
            continue
        for workload in workloads or []:
            kind, namespace, name = workload.get("kind"), workload.get("namespace"), workload.get("name")
            if kind not in PINNED_KINDS or not namespace or not name:
                raise VeleroError("node_mapping_workloads: %r needs kind (%s), namespace and name"
                                  % (workload, " or ".join(sorted(PINNED_KINDS))))
            own, dependents = PINNED_KINDS[kind]
            literal = _go_regex_literal(name)
            targets = [(own, "^%s$" % literal, HOSTNAME_PIN_TEMPLATE, None)] if own else []
            selector = dict((k, v) for k, v in (workload.get("selector") or {}).items() if v)
            targets += [(resource, _dependent_regex(name, suffix), path, selector or None) for resource, suffix, path in dependents]
            for resource, regex, path, labels in targets:
                conditions = {"groupResource": resource, "namespaces": [namespace], "resourceNameRegex": regex,
                              "matches": [{"path": path, "value": _patch_string(old)}]}
                if labels:
                    conditions["labelSelector"] = labels
                rules.append({"conditions": conditions,
                              "patches": [{"operation": "replace", "path": path, "value": _patch_string(new)}]})
    return rules


def node_mapping_configmap(namespace, name, rules):
    """The resource modifier ConfigMap of a node mapping: one data key, YAML (written as JSON, which YAML reads) of
    version v1 and the rules (site/content/docs/v1.18/restore-resource-modifiers.md)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_MANAGED_BY: "infra.k3s"}},
            "data": {NODE_MAPPING_KEY: json.dumps({"version": "v1", "resourceModifierRules": rules}, indent=2, sort_keys=True) + "\n"}}

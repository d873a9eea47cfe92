# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run() of each Velero module (velero_backup, velero_restore, velero_schedule,
velero_storage_location, velero_backup_info) and execute(), the one place that turns the family's
failures (KubernetesError and its VeleroError, waiter.py's WaitTimeout) into fail_json.

Each runner(module, api) returns the module's result; waiting is waiter.py's Waiter with Velero's
predicates (a run's terminal phase, a deleted backup, an Available location).
"""

from __future__ import annotations

import traceback

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import (
    KubernetesError,
    require_kubernetes,
    show_kubeconfig_path,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import (
    backup_body,
    BACKUP_DELETING,
    BACKUP_TERMINAL,
    BACKUPS,
    BSL_AVAILABLE,
    bsl_body,
    bsl_patch,
    COMPLETED,
    CONFLICT_ATTEMPTS,
    DBR_PROCESSED,
    delete_request_body,
    DELETE_REQUESTS,
    exact_patch,
    KINDS,
    LABEL_BACKUP_NAME,
    LABEL_SCHEDULE,
    LOCATIONS,
    merge_patch,
    node_mapping_configmap,
    node_mapping_configmap_name,
    node_mapping_rules,
    outcome_fields,
    PARTIALLY_FAILED,
    phase_of,
    pinned_workload_rules,
    restore_body,
    RESTORES,
    schedule_body,
    schedule_patch,
    SCHEDULES,
    status_of,
    utc_stamp,
    valid_label_value,
    VeleroError,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_client import (
    is_already_exists,
    is_conflict,
    VeleroAPI,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_select import (
    backup_view,
    check_outcome,
    default_location,
    describe_run,
    includes_namespace,
    latest_backup,
    newest_first,
    storage_location_of,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_storage import (
    StorageChecker,
)
from ansible_collections.infra.k3s.plugins.module_utils.waiter import (
    Waiter,
    WaitTimeout,
)


# --------------------------------------------------------------------------------------
# Waiting for a run
# --------------------------------------------------------------------------------------

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
            if not is_already_exists(exc):
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


def ensure_node_mapping(api, desired, check_mode):
    """Make the restore's node-mapping ConfigMap exactly desired; (changed, configmap, before)."""
    name = desired["metadata"]["name"]
    current = api.get_configmap(name)
    if current is None:
        return True, api.create_configmap(desired, dry_run=check_mode), None
    labels = (current.get("metadata") or {}).get("labels") or {}
    patch = {}
    label_patch = dict((k, v) for k, v in desired["metadata"]["labels"].items() if labels.get(k) != v)
    if label_patch:
        patch["metadata"] = {"labels": label_patch}
    data_patch = exact_patch(current.get("data") or {}, desired["data"])
    if data_patch:
        patch["data"] = data_patch
    if not patch:
        return False, current, current
    patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"].get("resourceVersion")
    return True, api.patch_configmap(name, patch, dry_run=check_mode), current


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
    restore_name = name or "%s-%s" % (backup_name[:238], utc_stamp())
    modifier = None
    if params.get("node_mapping"):
        # Velero 1.18 places restored claims only through a resource modifier (velero_bodies.node_mapping_rules).
        rules = node_mapping_rules(params["node_mapping"], params.get("node_mapping_claims"), params.get("included_namespaces"))
        # ... and moves the nodeSelector pin of the workloads named, their ReplicaSets and pods (pinned_workload_rules).
        rules += pinned_workload_rules(params["node_mapping"], params.get("node_mapping_workloads"))
        if rules:
            desired = node_mapping_configmap(api.namespace, node_mapping_configmap_name(restore_name), rules)
            changed, configmap, before = ensure_node_mapping(api, desired, module.check_mode)
            modifier = desired["metadata"]["name"]
            result["node_mapping_configmap"] = configmap
            result["changed"] = result["changed"] or changed
            if changed and module._diff:
                result.setdefault("diffs", []).append(_diff({"data": before.get("data") or {}} if before else {},
                                                            {"data": desired["data"]}, "ConfigMap %s/%s" % (api.namespace, modifier)))
    body = restore_body(restore_name, api.namespace, backup_name, params, resource_modifier=modifier)
    try:
        restore = api.create(RESTORES, body, dry_run=module.check_mode)
        result["changed"] = True
    except KubernetesError as exc:
        if not (is_already_exists(exc) and name):
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
        # The restore is over (whatever its outcome): Velero read its resource modifier when it validated the restore
        # (pkg/controller/restore_controller.go), so the ConfigMap is no longer needed.
        if params.get("node_mapping") and not params["keep_node_mapping"]:
            result["node_mapping_removed"] = api.delete_configmap(node_mapping_configmap_name(restore["metadata"]["name"]))
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
                if is_already_exists(exc) and attempt < CONFLICT_ATTEMPTS:
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
            if is_conflict(exc) and attempt < CONFLICT_ATTEMPTS:
                continue  # changed meanwhile: read again and compare again
            if is_conflict(exc):
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


def _apply_with_diff(module, api, plural, body, make_patch, key):
    """Create or patch one object (_apply); the result holds it under `key`, and a diff of its spec in diff mode."""
    changed, obj, before = _apply(module, api, plural, body, make_patch)
    result = {"changed": changed, key: obj}
    if changed and module._diff:
        after = merge_patch(before or {}, make_patch(before or {}, body["spec"])) if before is not None else body["spec"]
        result["diff"] = _diff({"spec": before} if before is not None else {}, {"spec": after},
                               "%s %s/%s" % (KINDS[plural], api.namespace, body["metadata"]["name"]))
    return result


def run_schedule(module, api):
    params = module.params
    name = params["name"]
    if params["state"] == "absent":
        result, unused = _remove(module, api, SCHEDULES, name)
        result["schedule"] = None
        return result
    return _apply_with_diff(module, api, SCHEDULES, schedule_body(params), schedule_patch, "schedule")


def run_storage_location(module, api):
    params = module.params
    name = params["name"]
    if params["state"] == "absent":
        result, unused = _remove(module, api, LOCATIONS, name)
        result["storage_location"] = None
        return result
    result = _apply_with_diff(module, api, LOCATIONS, bsl_body(params), bsl_patch, "storage_location")
    changed = result["changed"]
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
    """Run one module's runner(module, api) and exit; every KubernetesError (VeleroError) and WaitTimeout becomes fail_json here."""
    show_kubeconfig_path(module)
    try:
        require_kubernetes()
        api = (api_factory or VeleroAPI.from_params)(module.params)
        result = runner(module, api)
    except (KubernetesError, WaitTimeout) as exc:
        fields = exc.fail_fields()
        fields.setdefault("exception", traceback.format_exc())
        module.fail_json(msg=exc.msg, **fields)
    module.exit_json(**result)

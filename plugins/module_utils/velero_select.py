# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading Velero's objects: which backup is the latest of a schedule (Velero's server's rule), which
backups include a namespace, the default storage location, what a finished Backup/Restore's outcome
means, and the views the modules return.
"""

from __future__ import annotations

import datetime

from ansible_collections.infra.k3s.plugins.module_utils.label_selector import namespace_included
from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import (
    BACKUP_DELETING,
    COMPLETED,
    FAILED,
    FAILED_VALIDATION,
    LABEL_SCHEDULE,
    LABEL_STORAGE_LOCATION,
    LOCATIONS,
    outcome_fields,
    parse_time,
    PARTIALLY_FAILED,
    phase_of,
    status_of,
    valid_label_value,
    VeleroError,
)


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
    """Whether the backup includes the namespace, by Velero's namespace scoping (label_selector.namespace_included:
    included empty, '*' or a glob naming it, and no excluded glob naming it)."""
    spec = backup.get("spec") or {}
    return namespace_included(namespace, spec.get("includedNamespaces"), spec.get("excludedNamespaces"))


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


def default_location(api):
    for location in api.list(LOCATIONS):
        if (location.get("spec") or {}).get("default"):
            return location
    return api.get(LOCATIONS, "default")


# --------------------------------------------------------------------------------------
# Outcomes
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

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes label selectors and Velero's backup scoping, the one implementation in the collection.

- ``selector_matches``: a ``metav1.LabelSelector`` against an object's labels, as Kubernetes
  evaluates it. kubernetes/apimachinery ``pkg/apis/meta/v1/helpers.go`` LabelSelectorAsSelector: a
  null selector selects nothing, an empty one (no matchLabels, no matchExpressions) everything;
  otherwise every matchLabels entry (an Equals requirement) AND every matchExpressions entry must
  hold. ``pkg/labels/selector.go`` Requirement.Matches: In needs the key present with one of the
  values, NotIn holds when the key is absent or its value is not listed, Exists/DoesNotExist look at
  the key only. NewRequirement refuses In/NotIn without values and Exists/DoesNotExist with values;
  an unknown operator is an error (LabelSelectorAsSelector) - both raise SelectorError here.
- ``namespace_included``: Velero's namespace filter, vmware-tanzu/velero
  ``pkg/util/collections/includes_excludes.go`` IncludesExcludes.ShouldInclude: an excluded match
  wins; no includes or ``*`` among them means every namespace; entries are glob patterns (globStringSet,
  gobwas/glob; ``pkg/util/wildcard/expand.go`` allows ``*``, ``?`` and ``[abc]`` in them).
- ``backup_selects``: which objects a Backup's label scoping takes, ``pkg/backup/item_collector.go``
  listResourceByLabelsPerNamespace: when spec.orLabelSelectors is set, an object is listed when any of
  them selects it and spec.labelSelector is not used; otherwise spec.labelSelector filters, and a
  Backup without one takes every object.
- ``resource_included``: Velero's resource filter for a namespaced kind. ``includes_excludes.go``
  UseOldResourceFilters: spec.includedResources/excludedResources (or includeClusterResources) select the
  old filter, IncludesExcludes.ShouldInclude over names GetResourceIncludesExcludes resolved to
  group-resources through discovery (``pods``, ``deployments.apps``; a name discovery cannot resolve, like a
  glob, stays as written); otherwise ScopeIncludesExcludes.ShouldInclude over
  spec.includedNamespaceScopedResources/excludedNamespaceScopedResources (``*`` among the excludes
  excludes all). ``pkg/backup/item_backupper.go`` itemInclusionChecks applies it to the additional items
  too (a pod's claims), so a backup that leaves claims out restores pods without their data.
"""

from __future__ import annotations

import fnmatch

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A label selector Kubernetes would refuse."""


def _requirements(selector):
    """The selector as (key, operator, values) requirements; SelectorError where NewRequirement refuses."""
    if not isinstance(selector, dict):
        raise SelectorError("a label selector is a mapping of matchLabels and matchExpressions, got %r" % (selector,))
    unknown = sorted(set(selector) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise SelectorError("a label selector has only matchLabels and matchExpressions, got %s" % ", ".join(unknown))
    reqs = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((str(key), "In", [str(value)]))
    for expr in selector.get("matchExpressions") or []:
        key, operator = (expr or {}).get("key"), (expr or {}).get("operator")
        values = [str(v) for v in (expr or {}).get("values") or []]
        if not key:
            raise SelectorError("a matchExpressions entry needs a key: %r" % (expr,))
        if operator not in OPERATORS:
            raise SelectorError("%r is not a valid label selector operator (one of %s)" % (operator, ", ".join(OPERATORS)))
        if operator in ("In", "NotIn") and not values:
            raise SelectorError("for 'In', 'NotIn' operators, values set can't be empty (key %s)" % key)
        if operator in ("Exists", "DoesNotExist") and values:
            raise SelectorError("values set must be empty for exists and does not exist (key %s)" % key)
        reqs.append((str(key), operator, values))
    return reqs


def validate_selector(selector):
    """Raise SelectorError when Kubernetes would refuse the selector (None is valid: it selects nothing)."""
    if selector is not None:
        _requirements(selector)


def selector_matches(selector, labels):
    """Whether a metav1.LabelSelector selects an object with these labels (None selects nothing)."""
    if selector is None:
        return False
    labels = labels or {}
    for key, operator, values in _requirements(selector):
        present = key in labels
        if operator == "In" and not (present and str(labels[key]) in values):
            return False
        if operator == "NotIn" and present and str(labels[key]) in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _glob_match(patterns, name):
    return any(pattern == name or fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def namespace_included(namespace, included=None, excluded=None):
    """Whether Velero's includedNamespaces/excludedNamespaces take this namespace."""
    included = list(included or [])
    if _glob_match(excluded or [], namespace):
        return False
    return not included or "*" in included or _glob_match(included, namespace)


def backup_selectors(spec):
    """The label selectors that scope a Backup or Restore spec (empty: no label scoping)."""
    spec = spec or {}
    ors = spec.get("orLabelSelectors") or []
    if ors:
        return list(ors)
    return [spec["labelSelector"]] if spec.get("labelSelector") is not None else []


def backup_selects(spec, labels):
    """Whether a Backup/Restore spec's label scoping takes an object with these labels (namespaces aside)."""
    selectors = backup_selectors(spec)
    return not selectors or any(selector_matches(selector, labels) for selector in selectors)


# The kinds the DR decisions ask about: the group-resource Velero resolves them to, and the names that resolve there
# (plural and singular, with or without the group, as a RESTMapper's ResourceFor takes them).
RESOURCES = {
    "Pod": ("pods", ("pods", "pod")),
    "PersistentVolumeClaim": ("persistentvolumeclaims", ("persistentvolumeclaims", "persistentvolumeclaim")),
    "Deployment": ("deployments.apps", ("deployments", "deployment", "deployments.apps", "deployment.apps")),
    "StatefulSet": ("statefulsets.apps", ("statefulsets", "statefulset", "statefulsets.apps", "statefulset.apps")),
    "ReplicaSet": ("replicasets.apps", ("replicasets", "replicaset", "replicasets.apps", "replicaset.apps")),
}


def _resolved(names):
    aliases = dict((alias, resource) for resource, known in RESOURCES.values() for alias in known)
    return [aliases.get((name or "").lower(), name) for name in names or []]


def resource_included(spec, kind):
    """Whether a Backup spec's resource filter takes objects of this namespaced kind (a kind not in RESOURCES: True)."""
    spec = spec or {}
    if kind not in RESOURCES:
        return True
    resource = RESOURCES[kind][0]
    if spec.get("includeClusterResources") is not None or spec.get("includedResources") or spec.get("excludedResources"):
        included, excluded = _resolved(spec.get("includedResources")), _resolved(spec.get("excludedResources"))
        if _glob_match(excluded, resource):
            return False
        return not included or "*" in included or _glob_match(included, resource)
    included = _resolved(spec.get("includedNamespaceScopedResources"))
    excluded = _resolved(spec.get("excludedNamespaceScopedResources"))
    if "*" in excluded or _glob_match(excluded, resource):
        return False
    return not included or "*" in included or _glob_match(included, resource)


def backup_takes(spec, namespace, labels, kind=None):
    """Whether a Backup spec takes a namespaced object: its namespace is included, its labels are selected and
    (given its kind) its resource is included."""
    spec = spec or {}
    return (namespace_included(namespace, spec.get("includedNamespaces"), spec.get("excludedNamespaces"))
            and backup_selects(spec, labels) and resource_included(spec, kind))

"""Unit tests of plugins/module_utils/label_selector.py: Kubernetes label selectors and Velero's backup scoping.

Expected results follow kubernetes/apimachinery pkg/apis/meta/v1/helpers.go (LabelSelectorAsSelector),
pkg/labels/selector.go (Requirement.Matches, NewRequirement) and their tests (selector_test.go), and
vmware-tanzu/velero pkg/util/collections/includes_excludes.go and pkg/backup/item_collector.go.
"""
from __future__ import annotations

import pytest

from support.module_utils import load_module_utils

ls = load_module_utils("label_selector")

LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize("selector, expected", [
    (None, False),                                   # a null selector selects nothing
    ({}, True),                                      # an empty one everything
    ({"matchLabels": {}, "matchExpressions": []}, True),
    ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "web", "tier": "back"}}, False),     # matchLabels are ANDed
    ({"matchLabels": {"missing": ""}}, False),       # Equals needs the key, even for an empty value
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}, False),
    ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}, False),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),   # NotIn holds for an absent key
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
    # matchLabels AND matchExpressions
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, False),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, True),
])
def test_selector_matches_as_kubernetes(selector, expected):
    assert ls.selector_matches(selector, LABELS) is expected


def test_no_labels_and_empty_values():
    assert ls.selector_matches({}, None) is True
    assert ls.selector_matches({"matchLabels": {"app": ""}}, {"app": ""}) is True
    assert ls.selector_matches({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, None) is True


@pytest.mark.parametrize("selector, message", [
    ({"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["web"]}]}, "not a valid label selector operator"),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}, "values set can't be empty"),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn"}]}, "values set can't be empty"),
    ({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}, "values set must be empty"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "needs a key"),
    ({"matchLabel": {"app": "web"}}, "only matchLabels and matchExpressions"),
    (["app=web"], "is a mapping"),
])
def test_selectors_kubernetes_refuses_raise(selector, message):
    with pytest.raises(ls.SelectorError, match=message):
        ls.selector_matches(selector, LABELS)
    with pytest.raises(ls.SelectorError):
        ls.validate_selector(selector)


@pytest.mark.parametrize("included, excluded, namespace, expected", [
    (None, None, "shop", True),          # no includes: every namespace
    ([], [], "shop", True),
    (["*"], [], "shop", True),
    (["*"], ["shop"], "shop", False),     # an exclusion wins over '*'
    (["shop"], ["shop"], "shop", False),
    (["wiki"], [], "shop", False),
    (["wiki", "shop"], [], "shop", True),
    (["sh*"], [], "shop", True),          # globs (gobwas/glob: *, ?, [abc])
    (["s?op"], [], "shop", True),
    (["[st]hop"], [], "shop", True),
    (["[xy]hop"], [], "shop", False),
    ([], ["sh*"], "shop", False),
    ([], ["sh*"], "wiki", True),
])
def test_namespace_included_as_velero(included, excluded, namespace, expected):
    assert ls.namespace_included(namespace, included, excluded) is expected


def test_backup_label_scoping_as_velero():
    web = {"app.kubernetes.io/name": "web"}
    # No selector: every object.
    assert ls.backup_selects({}, web) is True
    assert ls.backup_selects({"labelSelector": None}, web) is True
    # labelSelector alone.
    assert ls.backup_selects({"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}, web) is True
    assert ls.backup_selects({"labelSelector": {"matchLabels": {"app": "web"}}}, web) is False
    # orLabelSelectors: any of them, and labelSelector is then not used (item_collector.go lists by the ORs only).
    spec = {"labelSelector": {"matchLabels": {"tier": "db"}},
            "orLabelSelectors": [{"matchLabels": {"app": "web"}}, {"matchLabels": {"app.kubernetes.io/name": "web"}}]}
    assert ls.backup_selects(spec, web) is True
    assert ls.backup_selects(spec, {"tier": "db"}) is False
    assert ls.backup_selectors(spec) == spec["orLabelSelectors"]
    assert ls.backup_selectors({"orLabelSelectors": [], "labelSelector": {"matchLabels": {"a": "b"}}}) == [{"matchLabels": {"a": "b"}}]


def test_backup_takes_needs_namespace_and_labels():
    spec = {"includedNamespaces": ["shop"], "labelSelector": {"matchLabels": {"app": "web"}}}
    assert ls.backup_takes(spec, "shop", {"app": "web"}) is True
    assert ls.backup_takes(spec, "wiki", {"app": "web"}) is False
    assert ls.backup_takes(spec, "shop", {"app": "api"}) is False
    assert ls.backup_takes({}, "anything", None) is True


@pytest.mark.parametrize("spec, kind, taken", [
    ({}, "Deployment", True),
    ({"includedResources": ["pods", "persistentvolumeclaims"]}, "Pod", True),
    ({"includedResources": ["pods", "persistentvolumeclaims"]}, "Deployment", False),
    ({"includedResources": ["deployment"]}, "Deployment", True),  # singular, resolved as discovery does
    ({"includedResources": ["deployments.apps"]}, "Deployment", True),
    ({"includedResources": ["*"], "excludedResources": ["persistentvolumeclaims"]}, "PersistentVolumeClaim", False),
    ({"excludedResources": ["stateful*"]}, "StatefulSet", False),  # a glob stays as written, matched on the group-resource
    ({"includeClusterResources": False}, "Pod", True),  # the old filter, taking every namespaced kind
    ({"includedNamespaceScopedResources": ["pods"]}, "PersistentVolumeClaim", False),
    ({"includedNamespaceScopedResources": ["*"], "excludedNamespaceScopedResources": ["*"]}, "Pod", False),
    ({"excludedNamespaceScopedResources": ["replicasets"]}, "Deployment", True),
    ({"includedResources": ["pods"]}, "object", True),  # a kind the filter is not asked about
])
def test_resource_included_follows_velero_resource_filters(spec, kind, taken):
    assert ls.resource_included(spec, kind) is taken
    assert ls.backup_takes(spec, "shop", {"app": "web"}, kind) is taken

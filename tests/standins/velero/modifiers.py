"""Velero's restore resource modifiers (Restore spec.resourceModifier), as vmware-tanzu/velero v1.18.1 has them.

- read(): the ConfigMap must have exactly one data key, its value strict YAML of {version, resourceModifierRules}
  (internal/resourcemodifiers/resource_modifiers.go GetResourceModifiersFromConfig, unmarshalResourceModifiers with
  sigs.k8s.io/yaml UnmarshalStrict) that validates (resource_modifiers_validator.go: version v1, at least one rule,
  groupResource set, one kind of patch per rule, JSON patch operations). Failures are the messages
  pkg/controller/restore_controller.go puts in status.validationErrors.
- apply(): each rule whose conditions match (resource_modifiers.go ResourceModifierRule.match: the object's original
  namespace against conditions.namespaces as an IncludesExcludes, groupResource as a glob with '.' separator,
  resourceNameRegex searched in the name, labelSelector, matches as JSON patch "test" operations) patches the object
  with its JSON patches (json_patch.go), merge patches (json_merge_patch.go, RFC 7386). With more than one rule the
  conditions are matched against the object as it was before any rule (ApplyResourceModifierRules).

The stand-in is stricter in one place: strategic merge patches (strategic_merge_patch.go) need Kubernetes' patch
strategies per type, which it does not model; a restore whose modifier has them is FailedValidation, saying so.
"""
from __future__ import annotations

import copy
import json
import re

import yaml

FIELDS = {
    "top": {"version", "resourceModifierRules"},
    "rule": {"conditions", "patches", "mergePatches", "strategicPatches"},
    "conditions": {"namespaces", "groupResource", "resourceNameRegex", "labelSelector", "matches"},
    "match": {"path", "value"},
    "patch": {"operation", "from", "path", "value"},
    "mergePatch": {"patchData"},
    "labelSelector": {"matchLabels", "matchExpressions"},
}
OPERATIONS = ("add", "remove", "replace", "test", "move", "copy")


class ModifierError(Exception):
    """A resource modifier ConfigMap Velero would not accept (the restore is FailedValidation)."""


class PatchTestFailed(Exception):
    """A JSON patch "test" operation did not hold (jsonpatch.ErrTestFailed)."""


def _strict(obj, kind: str, where: str) -> None:
    if not isinstance(obj, dict):
        raise ModifierError(f"failed to decode yaml data into resource modifiers, err: error unmarshaling JSON: "
                            f"{where} is not an object")
    unknown = sorted(set(obj) - FIELDS[kind])
    if unknown:
        raise ModifierError(f'failed to decode yaml data into resource modifiers, err: error unmarshaling JSON: while '
                            f'decoding JSON: json: unknown field "{unknown[0]}"')


def read(configmap: dict | None, namespace: str, name: str) -> list:
    """The rules of a resource modifier ConfigMap; ModifierError with restore_controller.go's message otherwise."""
    if configmap is None:
        raise ModifierError(f"failed to get resource modifiers configmap {namespace}/{name}")
    parsing = f"Error in parsing resource modifiers provided in configmap {namespace}/{name}: "
    data = configmap.get("data") or {}
    if len(data) != 1:
        raise ModifierError(parsing + f"illegal resource modifiers {namespace}/{name} configmap")
    try:
        doc = yaml.safe_load(next(iter(data.values())))
        _strict(doc, "top", "the document")
        rules = doc.get("resourceModifierRules") or []
        if not isinstance(rules, list):
            raise ModifierError("failed to decode yaml data into resource modifiers, err: resourceModifierRules is not a list")
        for rule in rules:
            _strict(rule, "rule", "a rule")
            _strict(rule.get("conditions") or {}, "conditions", "conditions")
            for match in (rule.get("conditions") or {}).get("matches") or []:
                _strict(match, "match", "a match")
            if (rule.get("conditions") or {}).get("labelSelector") is not None:
                _strict(rule["conditions"]["labelSelector"], "labelSelector", "labelSelector")
            for patch in rule.get("patches") or []:
                _strict(patch, "patch", "a patch")
            for patch in rule.get("mergePatches") or []:
                _strict(patch, "mergePatch", "a merge patch")
            for patch in rule.get("strategicPatches") or []:
                _strict(patch, "mergePatch", "a strategic patch")
    except yaml.YAMLError as exc:
        raise ModifierError(parsing + f"failed to decode yaml data into resource modifiers, err: {exc}") from exc
    except ModifierError as exc:
        raise ModifierError(parsing + str(exc)) from exc
    try:
        _validate(doc, rules)
    except ModifierError as exc:
        raise ModifierError(f"Validation error in resource modifiers provided in configmap {namespace}/{name}: {exc}") from exc
    return rules


def _validate(doc: dict, rules: list) -> None:
    """resource_modifiers_validator.go ResourceModifiers.Validate, ResourceModifierRule.Validate, JSONPatch.Validate."""
    if str(doc.get("version") or "").lower() != "v1":
        raise ModifierError(f"unsupported resource modifier version {doc.get('version') or ''}")
    if not rules:
        raise ModifierError("resource modifier rules cannot be empty")
    for rule in rules:
        if not (rule.get("conditions") or {}).get("groupResource"):
            raise ModifierError("groupkResource cannot be empty")  # sic, as upstream spells it
        if sum(1 for key in ("patches", "mergePatches", "strategicPatches") if rule.get(key)) > 1:
            raise ModifierError("only one of patches, mergePatches, strategicPatches can be specified")
        for patch in rule.get("patches") or []:
            if not patch.get("operation"):
                raise ModifierError("operation cannot be empty")
            if str(patch["operation"]).lower() not in OPERATIONS:
                raise ModifierError(f"unsupported operation {patch['operation']}")
            if not patch.get("path"):
                raise ModifierError("path cannot be empty")
        if rule.get("strategicPatches"):
            raise ModifierError("velero-standin: strategicPatches are not modelled (they need Kubernetes' patch strategies "
                                "per type, internal/resourcemodifiers/strategic_merge_patch.go); use patches or mergePatches")


def _glob(pattern: str) -> re.Pattern:
    """gobwas/glob with separator '.': * within a dotted part, ** across parts, ?, [...] and {a,b} alternatives."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^.]*")
        elif char == "?":
            out.append("[^.]")
        elif char == "{":
            end = pattern.index("}", i)
            out.append("(?:" + "|".join(re.escape(alt) for alt in pattern[i + 1:end].split(",")) + ")")
            i = end
        elif char == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1:end]
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _pointer(path: str) -> list:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _value(text: str):
    """json_patch.go JSONPatch.ToString/addQuotes: a string unless it is null, a boolean, a number, an object or an array."""
    text = text or ""
    if text.startswith('"') and text.endswith('"') and len(text) > 1:
        return text[1:-1]
    if text == "null" or text.lower() in ("true", "false") or text.startswith(("{", "[")):
        return json.loads(text.lower() if text.lower() in ("true", "false") else text)
    try:
        float(text)
        return json.loads(text)
    except ValueError:
        return text


def _parent(doc, parts: list):
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _get(doc, parts: list):
    node = doc
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _json_patch(obj: dict, patches: list) -> dict:
    """RFC 6902 on a copy (evanphx/json-patch: a missing parent is an error, a failed test is PatchTestFailed)."""
    doc = copy.deepcopy(obj)
    for patch in patches:
        oper, parts = str(patch["operation"]).lower(), _pointer(patch["path"])
        try:
            if oper == "test":
                if _get(doc, parts) != _value(patch.get("value")):
                    raise PatchTestFailed(patch["path"])
                continue
            if oper in ("move", "copy"):
                value = copy.deepcopy(_get(doc, _pointer(patch.get("from") or "")))
                if oper == "move":
                    src = _pointer(patch["from"])
                    parent = _parent(doc, src)
                    parent.pop(int(src[-1]) if isinstance(parent, list) else src[-1])
            elif oper != "remove":
                value = _value(patch.get("value"))
            parent = _parent(doc, parts)
            key = parts[-1]
            if isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if oper == "remove":
                    parent.pop(index)
                elif oper == "replace":
                    parent[index] = value
                else:
                    parent.insert(index, value)
            else:
                if oper in ("remove", "replace") and key not in parent:
                    raise KeyError(key)
                if oper == "remove":
                    del parent[key]
                else:
                    parent[key] = value
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            if oper == "test":
                raise PatchTestFailed(patch["path"]) from exc
            raise ValueError(f"error in applying JSON Patch {oper} {patch['path']}: missing or invalid path") from exc
    return doc


def _merge(target, patch):
    """RFC 7386 JSON merge patch (jsonpatch.MergePatch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _matches(obj: dict, rule: dict, group_resource: str, namespace: str | None, selector_match, namespace_selected) -> bool:
    cond = rule.get("conditions") or {}
    if namespace and not namespace_selected(namespace, cond.get("namespaces"), None):
        return False
    if not _glob(cond["groupResource"]).match(group_resource):
        return False
    if cond.get("resourceNameRegex") and not re.search(cond["resourceNameRegex"], obj["metadata"]["name"]):
        return False
    if cond.get("labelSelector") is not None and not selector_match(obj["metadata"].get("labels") or {}, cond["labelSelector"]):
        return False
    tests = [{"operation": "test", "path": m.get("path") or "", "value": m.get("value")} for m in cond.get("matches") or []]
    if any(not t["path"] for t in tests):
        raise ValueError("path is required for match rule")
    try:
        _json_patch(obj, tests)
    except (PatchTestFailed, ValueError):
        return False
    return True


def apply(rules: list, obj: dict, group_resource: str, namespace: str | None, selector_match, namespace_selected):
    """Patch obj in place by every matching rule; (names of the rules applied, errors).

    namespace is the object's namespace in the backup (restore.go applies the modifiers before it maps the namespace).
    """
    origin = copy.deepcopy(obj) if len(rules) > 1 else obj
    applied, errors = [], []
    for index, rule in enumerate(rules):
        try:
            if not _matches(origin, rule, group_resource, namespace, selector_match, namespace_selected):
                continue
            if not rule.get("patches") and not rule.get("mergePatches"):
                raise ValueError("no patch data found")
            if rule.get("patches"):
                try:
                    updated = _json_patch(obj, rule["patches"])
                except PatchTestFailed:
                    continue  # json_patch.go: a failed test leaves the object as it is
            else:
                updated = copy.deepcopy(obj)
                for patch in rule.get("mergePatches") or []:
                    updated = _merge(updated, yaml.safe_load(patch.get("patchData") or "{}"))
        except (ValueError, re.error, yaml.YAMLError) as exc:
            errors.append(f"error in applying patch {exc}")
            continue
        obj.clear()
        obj.update(updated)
        applied.append(index)
    return applied, errors

"""The CEL rules (x-kubernetes-validations) of a real CRD, evaluated with cel-python, for objects the stand-in
API server stores without evaluating them (tests/README.md "CEL rules the stand-in API server does not enforce").

As the Kubernetes API server does (k8s.io/apiextensions-apiserver pkg/apiserver/schema/cel/validation.go
Validate, and defaulting before validation, pkg/apiserver/schema/defaulting): the schema's `default`s are applied
first, then every rule is evaluated with `self` bound to the node it sits on. Two adjustments for cel-python 0.5.0:
the escaped identifier `__namespace__` (Kubernetes escapes the reserved word `namespace`, apiextensions
"Escaping") is written back as `namespace`; rules with `oldSelf` (transition rules) are skipped, as the API server
skips them on create. A rule that cel-python cannot evaluate is reported as an error, never passed.
"""
from __future__ import annotations

import copy
from pathlib import Path

import celpy
import yaml

_ENV = celpy.Environment()
_PROGRAMS: dict = {}


def storage_schemas(directory) -> dict:
    """{(apiVersion, kind): openAPIV3Schema} of the storage version of every CRD in directory (a Path), or in the
    files of a list of paths."""
    docs = []
    for path in (sorted(directory.glob("*.yaml")) if isinstance(directory, Path) else directory):
        docs.extend(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return schemas_of(docs)


def schemas_of(docs) -> dict:
    """{(apiVersion, kind): openAPIV3Schema} of the storage version of every CRD among docs (parsed objects)."""
    out = {}
    for doc in docs:
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        for version in doc["spec"]["versions"]:
            if version.get("storage"):
                out[(f"{doc['spec']['group']}/{version['name']}", doc["spec"]["names"]["kind"])] = \
                    version["schema"]["openAPIV3Schema"]
    return out


def apply_defaults(value, schema: dict):
    """The structural schema's defaults, in place (objects and arrays, recursively)."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
    elif schema.get("type") == "array" and isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(item, schema["items"])
    return value


def _program(rule: str):
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule.replace("__namespace__", "namespace")))
    return _PROGRAMS[rule]


def _check(value, schema: dict, path: str, errors: list) -> None:
    if value is None:
        return
    for item in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in item["rule"]:
            continue
        try:
            ok = bool(_program(item["rule"]).evaluate({"self": celpy.json_to_cel(value)}))
        except Exception as exc:  # pylint: disable=broad-except
            errors.append((path or ".", f"cel-python could not evaluate {item['rule']!r}: {exc}"))
            continue
        if not ok:
            errors.append((path or ".", item.get("message") or item["rule"]))
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                _check(value[key], sub, f"{path}.{key}", errors)
    elif schema.get("type") == "array" and isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{index}]", errors)


def violations(obj: dict, schemas: dict) -> list:
    """[(path, message)] of the CEL rules obj breaks, after defaulting a copy of it."""
    schema = schemas[(obj["apiVersion"], obj["kind"])]
    value = apply_defaults(copy.deepcopy(obj), schema)
    errors: list = []
    _check(value, schema, "", errors)
    return errors

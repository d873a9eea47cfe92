"""A subset of Kubernetes structural-schema (openAPIV3Schema) validation with pruning.

Deliberately used everywhere instead of the jsonschema package (absent in the lab images):
Kubernetes semantics differ from JSON Schema (unknown fields are pruned, not rejected;
`nullable`; `x-kubernetes-*`), and the host and the containers must behave the same.
Supported: type, nullable, required, properties, additionalProperties (bool or schema),
x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, enum, items, format
(date-time/int32/int64 loosely), minimum/maximum, minLength/maxLength, pattern,
minItems/maxItems, anyOf/oneOf/allOf (structural subset: all branches validated leniently).
"""
from __future__ import annotations

import re

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$")
_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
}


def _type_ok(value, expected: str) -> bool:
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(expected, (object,)))


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate(value, schema: dict, path: str = "", errors: list | None = None, root: bool = True) -> list:
    """Validate value against schema, pruning unknown fields in place; returns [(field, reason, message)]."""
    errors = [] if errors is None else errors
    if not schema:
        return errors
    if value is None:
        if not schema.get("nullable") and "type" in schema and not root:
            errors.append((path, "FieldValueRequired", f"Required value: {path or 'value'} must not be null"))
        return errors
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            errors.append((path, "FieldValueTypeInvalid", f"Invalid value: \"{_json_type(value)}\": {path} in body must be of type int-or-string"))
        return errors
    if expected and not _type_ok(value, expected):
        errors.append((path, "FieldValueTypeInvalid",
                       f"Invalid value: \"{_json_type(value)}\": {path or 'body'} in body must be of type {expected}: \"{_json_type(value)}\""))
        return errors
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{item}"' for item in schema["enum"])
        errors.append((path, "FieldValueNotSupported", f"Unsupported value: {value!r}: supported values: {allowed}"))
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt == "date-time" and not _DATE_TIME.match(value):
            errors.append((path, "FieldValueInvalid", f"Invalid value: \"{value}\": {path} in body must be of type date-time"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append((path, "FieldValueTooLong", f"Too long: may not be longer than {schema['maxLength']}"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append((path, "FieldValueInvalid", f"Invalid value: \"{value}\": {path} in body should be at least {schema['minLength']} chars long"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append((path, "FieldValueInvalid", f"Invalid value: \"{value}\": {path} in body should match '{schema['pattern']}'"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append((path, "FieldValueInvalid", f"Invalid value: {value}: {path} in body should be greater than or equal to {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append((path, "FieldValueInvalid", f"Invalid value: {value}: {path} in body should be less than or equal to {schema['maximum']}"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append((path, "FieldValueInvalid", f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append((path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
        for idx, item in enumerate(value):
            validate(item, schema.get("items") or {}, f"{path}[{idx}]", errors, root=False)
    if isinstance(value, dict):
        _validate_object(value, schema, path, errors, root)
    for branch in schema.get("allOf", []):
        validate(value, branch, path, errors, root=False)
    return errors


def _validate_object(value: dict, schema: dict, path: str, errors: list, root: bool) -> None:
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    # "null values for fields that either don't specify the nullable flag, or give it a false value, will be
    # pruned before defaulting happens" (kubernetes/website, content/en/docs/tasks/extend-kubernetes/
    # custom-resources/custom-resource-definitions.md, "Defaulting and Nullable"): then `required` reports them.
    for key in [k for k, v in value.items() if v is None and props and k in props and not props[k].get("nullable")]:
        del value[key]
    for key in schema.get("required", []):
        if key not in value:
            field = f"{path}.{key}" if path else key
            errors.append((field, "FieldValueRequired", "Required value"))
    for key in list(value):
        field = f"{path}.{key}" if path else key
        if root and key in ("apiVersion", "kind", "metadata"):
            continue
        if props is not None and key in props:
            validate(value[key], props[key], field, errors, root=False)
        elif isinstance(extra, dict):
            validate(value[key], extra, field, errors, root=False)
        elif extra is True or preserve or (props is None and extra is None and not schema.get("type")):
            continue
        else:
            del value[key]  # pruned, like the API server does for unknown fields

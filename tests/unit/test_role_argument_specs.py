"""Role inputs are documented in one place: each role's meta/argument_specs.yml.

defaults/main.yml holds the values (and one pointer comment), the docs point to `ansible-doc -t role`.
These tests keep the two files in step and keep a third copy of the documentation from growing back.
"""
from __future__ import annotations

import re

import pytest
import yaml

from support.paths import PROJECT_ROOT

ROLES = sorted(path.name for path in (PROJECT_ROOT / "roles").iterdir() if (path / "meta" / "argument_specs.yml").is_file())
# Ansible's argument spec types (ansible/module_utils/common/parameters.py, DEFAULT_TYPE_VALIDATORS) and the
# Python types a literal YAML default of that type has; `raw` takes anything.
PYTHON_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict, "float": (int, float)}


def _defaults(role: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}


def _entry_points(role: str) -> dict:
    specs = yaml.safe_load((PROJECT_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return specs["argument_specs"]


def _options(role: str) -> list[tuple[str, str, dict]]:
    """(entry point, option, its spec) for every option of every entry point."""
    return [(entry, name, spec) for entry, point in _entry_points(role).items()
            for name, spec in (point.get("options") or {}).items()]


def _templated(value) -> bool:
    return isinstance(value, str) and "{{" in value


def test_roles_are_found():
    assert {"common", "firewall", "tailscale", "k3s", "k3s_server", "k3s_agent", "node_agent"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_a_documented_input(role):
    documented = {name for unused_entry, name, unused_spec in _options(role)}
    assert sorted(set(_defaults(role)) - documented) == []


@pytest.mark.parametrize("role", ROLES)
def test_every_documented_input_has_a_default_or_is_required(role):
    defaults = _defaults(role)
    loose = [f"{entry}: {name}" for entry, name, spec in _options(role)
             if name not in defaults and not spec.get("required") and not name.startswith("__")]
    assert loose == []


@pytest.mark.parametrize("role", ROLES)
def test_every_input_is_described(role):
    bare = [f"{entry}: {name}" for entry, name, spec in _options(role) if not spec.get("description")]
    assert bare == []


@pytest.mark.parametrize("role", ROLES)
def test_documented_defaults_are_the_defaults(role):
    """The spec shows the value defaults/main.yml sets; a literal default is always shown."""
    defaults = _defaults(role)
    wrong = []
    for entry, name, spec in _options(role):
        if name not in defaults:
            continue
        if "default" in spec and spec["default"] != defaults[name]:
            wrong.append(f"{entry}: {name}: spec {spec['default']!r}, defaults/main.yml {defaults[name]!r}")
        if "default" not in spec and not _templated(defaults[name]):
            wrong.append(f"{entry}: {name}: defaults/main.yml sets {defaults[name]!r}, the spec shows no default")
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_defaults_have_the_documented_types(role):
    defaults = _defaults(role)
    wrong = []
    for entry, name, spec in _options(role):
        value = defaults.get(name)
        if name not in defaults or _templated(value) or spec.get("type", "str") == "raw":
            continue
        expected = PYTHON_TYPES[spec.get("type", "str")]
        is_bool = isinstance(value, bool)
        if not isinstance(value, expected) or (is_bool and expected is not bool):
            wrong.append(f"{entry}: {name}: {spec.get('type', 'str')}, but the default is {value!r}")
        elif "choices" in spec and value not in spec["choices"]:
            wrong.append(f"{entry}: {name}: {value!r} is not one of {spec['choices']}")
        elif isinstance(value, list) and "elements" in spec:
            element_type = PYTHON_TYPES[spec["elements"]]
            wrong += [f"{entry}: {name}: element {item!r} is no {spec['elements']}" for item in value
                      if not isinstance(item, element_type) or (isinstance(item, bool) and element_type is not bool)]
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_defaults_file_holds_values_not_documentation(role):
    """At most a short pointer to the spec, before the first variable; no comment beside a variable."""
    lines = (PROJECT_ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8").splitlines()
    first_key = next((i for i, line in enumerate(lines) if re.match(r"^[A-Za-z_]", line)), len(lines))
    header = [line for line in lines[:first_key] if line.startswith("#")]
    later = [line for line in lines[first_key:] if line.lstrip().startswith("#") or " # " in line]
    assert later == [], later
    assert len(header) <= 2, header
    assert not header or "argument_specs.yml" in " ".join(header), header


def _role_option_names() -> set[str]:
    return {name for role in ROLES for unused_entry, name, unused_spec in _options(role) if not name.startswith("__")}


def _table_rows(text: str):
    """(line number, header cells, first cell) of every body row of every Markdown table."""
    header = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip().lower() for cell in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            yield number, header, cells[0]


def test_docs_have_no_tables_of_role_variables():
    """A table of role inputs with their defaults copies the spec: the docs point to `ansible-doc -t role` instead.

    Tables of other things that share a name with a role input (the facts the inventory plugin sets) stay."""
    names = _role_option_names()
    assert "k3s_version" in names and "tailscale_authkey" in names  # the reader works
    rows = 0
    copies = []
    for path in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]:
        for number, header, first in _table_rows(path.read_text(encoding="utf-8")):
            rows += 1
            variable = re.match(r"^`([a-z0-9_]+)`", first)
            if variable and variable.group(1) in names and "default" in header:
                copies.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {variable.group(1)}")
    assert rows > 50  # the reader finds the docs' tables
    assert copies == []

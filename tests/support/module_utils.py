"""Load the collection's module_utils files by path, for unit tests that need no collection tree."""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from contextlib import contextmanager

from support.paths import PROJECT_ROOT

PREFIX = "ansible_collections.infra.k3s.plugins.module_utils."
_IMPORT = re.compile(r"^from ansible_collections\.infra\.k3s\.plugins\.module_utils\.(\w+) import", re.MULTILINE)


def _utils_imported_by(path) -> list:
    """The collection's module_utils a file imports (by name), in order."""
    return list(dict.fromkeys(_IMPORT.findall(path.read_text(encoding="utf-8"))))


@contextmanager
def _as_collection(utils):
    """The module_utils in utils under their collection names, only while the block runs.

    An import finds a module already in sys.modules without importing its parent packages, so
    nothing is left behind that would shadow the installed collection for other tests.

    A file that imports another collection (module_utils/kubernetes.py imports kubernetes.core's
    args_common) imports it, with no collection finder installed, from the ``ansible_collections``
    namespace package in the venv's site-packages (the ``ansible`` package). Those entries are removed
    again: left in sys.modules, that package would hide infra.k3s from ansible-core's collection finder
    for every later test in the same process (``init_plugin_loader`` then imports nothing from
    ``ansible_collections.infra``: seen in CI as ModuleNotFoundError in test_kubernetes_connection).
    """
    saved = {util: sys.modules.get(PREFIX + util) for util in utils}
    before = {name for name in sys.modules if name.split(".")[0] == "ansible_collections"}
    try:
        for util in utils:
            sys.modules[PREFIX + util] = load_module_utils(util)
        yield
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "ansible_collections"]:
            if name not in before and name.removeprefix(PREFIX) not in saved:
                del sys.modules[name]
        for util, previous in saved.items():
            if previous is None:
                sys.modules.pop(PREFIX + util, None)
            else:
                sys.modules[PREFIX + util] = previous


def _load(module_name, path):
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    with _as_collection(_utils_imported_by(path)):
        spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


def load_module_utils(name: str):
    """plugins/module_utils/<name>.py as a module (loaded once per test session), its imports of other
    module_utils of the collection satisfied by the same loaded modules."""
    return _load("infra_k3s_module_utils_%s" % name, PROJECT_ROOT / "plugins" / "module_utils" / ("%s.py" % name))


def namespace_of(*modules):
    """The names of several modules in one namespace (a module_utils family split by job: client, records, ...).

    A name defined in two of them must be the same object (one imports it from the other).
    """
    merged = {}
    names = [module.__name__ for module in modules]
    for module in modules:
        for key, value in vars(module).items():
            if key.startswith("__"):
                continue
            if key in merged and merged[key] is not value and not isinstance(value, types.ModuleType):
                raise AssertionError("%s is defined in two of %s" % (key, ", ".join(names)))
            merged.setdefault(key, value)
    return types.SimpleNamespace(**merged)


def load_module_utils_family(*names: str):
    """plugins/module_utils/<name>.py of each name (loaded by path) in one namespace: see namespace_of()."""
    return namespace_of(*(load_module_utils(name) for name in names))


def load_module(name: str, utils: tuple = ()):  # pylint: disable=unused-argument
    """plugins/modules/<name>.py as a module, its imports of the collection's module_utils satisfied
    (found in the file; ``utils`` is kept for the callers that name them)."""
    return _load("infra_k3s_module_%s" % name, PROJECT_ROOT / "plugins" / "modules" / ("%s.py" % name))

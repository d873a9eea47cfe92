"""Load one of the collection's module_utils files by path, for unit tests that need no collection tree."""
from __future__ import annotations

import importlib.util
import sys

from support.paths import PROJECT_ROOT


def load_module_utils(name: str):
    """plugins/module_utils/<name>.py as a module (loaded once per test session)."""
    module_name = "infra_k3s_module_utils_%s" % name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PROJECT_ROOT / "plugins" / "module_utils" / ("%s.py" % name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_module(name: str, utils: tuple = ()):
    """plugins/modules/<name>.py as a module, its imports of the collection's module_utils (by name) satisfied."""
    import types  # pylint: disable=import-outside-toplevel

    prefix = "ansible_collections.infra.k3s.plugins.module_utils"
    parts = prefix.split(".")
    for index in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:index]), types.ModuleType(".".join(parts[:index])))
    for util in utils:
        sys.modules.setdefault("%s.%s" % (prefix, util), load_module_utils(util))
    module_name = "infra_k3s_module_%s" % name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PROJECT_ROOT / "plugins" / "modules" / ("%s.py" % name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module

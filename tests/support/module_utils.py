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
    """plugins/modules/<name>.py as a module, its imports of the collection's module_utils (by name) satisfied.

    The module_utils are put in sys.modules under their collection names only while the module file
    runs (an import finds a module already in sys.modules without importing its parent packages), so
    nothing is left behind that would shadow the installed collection for other tests.
    """
    module_name = "infra_k3s_module_%s" % name
    if module_name in sys.modules:
        return sys.modules[module_name]
    prefix = "ansible_collections.infra.k3s.plugins.module_utils."
    saved = {util: sys.modules.get(prefix + util) for util in utils}
    spec = importlib.util.spec_from_file_location(module_name, PROJECT_ROOT / "plugins" / "modules" / ("%s.py" % name))
    module = importlib.util.module_from_spec(spec)
    try:
        for util in utils:
            sys.modules[prefix + util] = load_module_utils(util)
        spec.loader.exec_module(module)
    finally:
        for util, previous in saved.items():
            if previous is None:
                sys.modules.pop(prefix + util, None)
            else:
                sys.modules[prefix + util] = previous
    sys.modules[module_name] = module
    return module

"""Fixtures of the inventory plugin tests: the plugin loaded as infra.k3s.tailscale from the working tree,
a stand-in Tailscale API on 127.0.0.1 (APIServer in tests/standins/tailscale/control.py), recorded sleeps and warnings."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import yaml

from standins.tailscale.control import APIServer

# As tests/conftest.py's CONTRACTS: the project's shared, read-only contract data.
CONTRACTS = Path(__file__).resolve().parents[4].parent / "shared" / "contracts"


@pytest.fixture
def contract_devices(contracts):
    return json.loads((contracts / "api-v2-devices.json").read_text())["devices"]


@pytest.fixture(scope="session")
def contracts():
    return CONTRACTS / "tailscale"


@pytest.fixture
def api_server():
    server = APIServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plugin_loader(collections_path):
    """ansible-core's plugin loader, with infra.k3s resolving to the working tree."""
    from ansible.plugins.loader import init_plugin_loader, inventory_loader
    init_plugin_loader([str(collections_path)])
    return inventory_loader


@pytest.fixture
def plugin_module(plugin_loader):
    plugin = plugin_loader.get("infra.k3s.tailscale")
    assert plugin is not None, "infra.k3s.tailscale did not load"
    module = importlib.import_module(type(plugin).__module__)
    assert Path(module.__file__).resolve().parts[-3:] == ("plugins", "inventory", "tailscale.py")
    return module


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("TAILSCALE_API_KEY", "TAILSCALE_OAUTH_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_SECRET",
                 "TAILSCALE_TAILNET", "TAILSCALE_API_URL", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeps(plugin_module, monkeypatch):
    """Sleeps the plugin asked for, recorded instead of slept; OAuth tokens forgotten between tests."""
    recorded = []
    monkeypatch.setattr(plugin_module, "_sleep", recorded.append)
    plugin_module._TOKENS.clear()
    yield recorded
    plugin_module._TOKENS.clear()


@pytest.fixture
def warnings(plugin_loader, monkeypatch):
    from ansible.utils.display import Display
    recorded = []
    monkeypatch.setattr(Display(), "warning", lambda msg, *args, **kwargs: recorded.append(msg))
    return recorded


class Loaded:
    """What one parse produced."""

    def __init__(self, inventory, plugin):
        self.inventory = inventory
        self.plugin = plugin

    @property
    def hosts(self):
        return set(self.inventory.hosts)

    def vars(self, host):
        return self.inventory.get_host(host).get_vars()

    def group(self, name):
        group = self.inventory.groups.get(name)
        return None if group is None else set(host.name for host in group.get_hosts())


@pytest.fixture
def load(plugin_loader, tmp_path, sleeps):
    """load(config) -> Loaded: write <tmp>/x.tailscale.yml and run the plugin's parse() on it."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader

    def _load(config, name="x.tailscale.yml", cache=True):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict({"plugin": "infra.k3s.tailscale"}, **config)))
        plugin = plugin_loader.get("infra.k3s.tailscale")
        assert plugin.verify_file(str(path))
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if plugin.get_option("cache"):
            plugin.update_cache_if_changed()  # as InventoryManager does after parse()
        return Loaded(inventory, plugin)

    return _load

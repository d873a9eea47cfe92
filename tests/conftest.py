"""Shared pytest fixtures: run the working tree as the collection infra.k3s."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import CONTRACTS, PROJECT_ROOT, UPSTREAM_CHARTS, VENV_BIN, upstream_bin  # noqa: F401  pylint: disable=unused-import


def pytest_configure(config):  # pylint: disable=unused-argument
    """Every stand-in K3s a test starts (and the roles' `k3s kubectl`) uses the real helm, charts and kubectl.

    They come from `tests/bin/setup.sh upstream` and ../shared/upstream/; a missing one stops the run here,
    with the command that makes it, instead of failing test by test.
    """
    # pytest sets and removes PYTEST_CURRENT_TEST in os.environ around every test phase (_pytest/runner.py,
    # _update_current_test_var). Stand-in threads that outlive a test (the Velero controller, API servers)
    # iterate os.environ when their HTTP clients look for proxies (urllib.request.getproxies_environment),
    # and a key removed in the middle of that raises KeyError in them: seen once in make test as the Velero
    # stand-in's "_sync_backups: KeyError: 'PYTEST_CURRENT_TEST'". Nothing in this project reads the variable.
    import _pytest.runner  # pylint: disable=import-outside-toplevel
    _pytest.runner._update_current_test_var = lambda item, when: None  # pylint: disable=protected-access
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    os.environ["K3S_STANDIN_KUBECTL"] = upstream_bin("kubectl")
    os.environ["K3S_STANDIN_HELM"] = upstream_bin("helm")
    os.environ["K3S_STANDIN_CHARTS"] = str(UPSTREAM_CHARTS)


# `make pytest` runs two pytest-xdist workers with --dist loadfile: each takes the next whole file
# in collection order when it is free. The longest files (about 2 minutes down to 30 s on a 2-core
# machine, measured with --durations) go first, so that the workers finish together instead of
# one running the longest file alone at the end. Order within a file is kept.
LONGEST_FIRST = ("test_dr_playbooks.py", "test_velero_modules.py", "test_cloudflare_dns.py", "test_tailscale_node.py",
                 "test_r2_bucket.py", "test_node_agent.py", "test_k3s_standin.py", "test_collection.py",
                 "test_k3s_inputs.py", "test_velero_standin.py", "test_tailscale_control.py", "test_tailscale_up_tailnet.py")


def pytest_collection_modifyitems(items):
    """Sort the collected tests by file, longest files first (a stable sort: order within a file stays)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory) -> Path:
    """A collections path where infra.k3s is this working tree (a symlink)."""
    root = tmp_path_factory.mktemp("collections")
    target = root / "ansible_collections" / "infra"
    target.mkdir(parents=True)
    (target / "k3s").symlink_to(PROJECT_ROOT)
    return root


@pytest.fixture(scope="session")
def ansible_env(collections_path, tmp_path_factory) -> dict:
    """Environment for ansible-* commands run by tests against the working tree."""
    home = tmp_path_factory.mktemp("ansible_home")
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote_tmp"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture
def run_ansible(ansible_env, tmp_path):
    """Run an ansible CLI (ansible-playbook, ansible-doc, ...) and return the completed process.

    Example: run_ansible("ansible-playbook", "-i", "localhost,", "play.yml", extra_env={...})
    """

    def _run(tool: str, *args: str, extra_env: dict | None = None, cwd: Path | None = None,
             timeout: int = 600) -> subprocess.CompletedProcess:
        env = dict(ansible_env)
        if extra_env:
            env.update(extra_env)
        return subprocess.run(
            [str(VENV_BIN / tool), *args],
            cwd=str(cwd or tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return _run


@pytest.fixture(scope="module")
def k3s(tmp_path_factory):
    """A stand-in K3s server (support/k3s_process.py) for one test file; a file that needs more defines its own."""
    from support.k3s_process import K3s  # pylint: disable=import-outside-toplevel
    server = K3s(tmp_path_factory.mktemp("k3s"))
    yield server
    server.stop()


def load_json(path: Path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)

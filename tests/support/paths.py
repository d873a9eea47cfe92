"""Paths every test uses. Import as `from support.paths import ...` (tests/ is on sys.path).

Test modules must not import `conftest`: several conftest.py files exist, and which one
Python knows as `conftest` depends on the order pytest loads them.
"""
from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Read-only contract data shared by the project (Velero CRDs, Tailscale JSON shapes).
CONTRACTS = PROJECT_ROOT.parent / "shared" / "contracts"
VENV_BIN = Path(sys.executable).parent
# Real upstream Helm charts and CRDs (../shared/upstream/SOURCE.md).
UPSTREAM = PROJECT_ROOT.parent / "shared" / "upstream"
UPSTREAM_CHARTS = UPSTREAM / "charts"
UPSTREAM_CRDS = UPSTREAM / "crds"
# The real helm and kubectl, extracted by `tests/bin/setup.sh upstream` (part of make test's set-up).
UPSTREAM_BIN = PROJECT_ROOT / ".cache" / "upstream" / "bin"
HELM = UPSTREAM_BIN / "helm"
KUBECTL = UPSTREAM_BIN / "kubectl"


def upstream_bin(name: str) -> str:
    """Path of the real helm or kubectl; a clear error (not a skip) when set-up has not run."""
    path = UPSTREAM_BIN / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run tests/bin/setup.sh upstream (make setup does)")
    return str(path)

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

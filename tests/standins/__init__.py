"""Stand-ins for what the tests cannot have here, one package each (see tests/README.md).

Every package has its CLI in ``__main__`` (``python -m standins.<name>``, run from tests/), a README
naming the upstream evidence it follows, and its own tests under ``<name>/tests/``.
"""

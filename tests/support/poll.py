"""Waiting in tests: poll a predicate on the monotonic clock until it holds or time runs out."""
from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    """Call predicate every 0.2 s until it returns something true (returned), else AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)

"""Unit tests of plugins/module_utils/waiter.py: the loop on an injectable monotonic clock, its deadline,
the timeout carrying the last object seen, and check mode doing nothing."""
from __future__ import annotations

import time

import pytest

from support.module_utils import load_module_utils

waiting = load_module_utils("waiter")


class Clock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_waiter_returns_when_done():
    clock = Clock()
    states = iter(["New", "InProgress", "InProgress", "Completed"])
    waiter = waiting.Waiter(lambda: {"phase": next(states)}, lambda obj: obj["phase"] == "Completed", timeout=60, sleep=5,
                            clock=clock, sleeper=clock.sleep)
    assert waiter.wait("backup") == {"phase": "Completed"}
    assert waiter.polls == 4 and clock.sleeps == [5, 5, 5]


def test_waiter_times_out_with_last_object():
    clock = Clock()
    waiter = waiting.Waiter(lambda: {"phase": "InProgress", "n": len(clock.sleeps)}, lambda obj: False, timeout=12, sleep=5,
                            describe=lambda obj: "phase %s" % obj["phase"], clock=clock, sleeper=clock.sleep)
    with pytest.raises(waiting.WaitTimeout) as info:
        waiter.wait("Backup velero/b to finish")
    assert clock.sleeps == [5, 5, 2]  # never sleeps past the deadline
    assert info.value.last == {"phase": "InProgress", "n": 3}
    assert info.value.msg == "Timed out after 12s waiting for Backup velero/b to finish: phase InProgress"
    assert info.value.elapsed == 12


def test_waiter_is_a_noop_in_check_mode():
    def fetch():
        raise AssertionError("check mode must not read")

    assert waiting.Waiter(fetch, lambda obj: True, timeout=10).wait("x", check_mode=True) is None


def test_waiter_uses_the_monotonic_clock_by_default():
    # A wall-clock jump (NTP, a VM resumed) must not end or stretch a wait.
    assert waiting.Waiter(lambda: None, lambda obj: True, timeout=1).clock is time.monotonic


def test_timeout_reports_its_fields_for_fail_json():
    clock = Clock()
    with pytest.raises(waiting.WaitTimeout) as info:
        waiting.Waiter(lambda: None, lambda obj: False, timeout=0, clock=clock, sleeper=clock.sleep).wait("x")
    assert info.value.last is None and "it" not in info.value.fail_fields()
    timeout = waiting.WaitTimeout("m", last={"a": 1}, backup={"a": 1}, phase="InProgress")
    assert timeout.fail_fields() == {"backup": {"a": 1}, "phase": "InProgress"} and timeout.msg == "m"

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for an object to be done, shared by the modules that wait (as kubernetes.core keeps its
waiter apart: plugins/module_utils/k8s/waiter.py).

A loop on the monotonic clock that fetches the object until a predicate says it is done, does
nothing in check mode and raises WaitTimeout carrying the last object it saw. It knows nothing of
what it waits for: the fetch, the predicate and the description come from the caller.
"""

from __future__ import annotations

import time


class WaitTimeout(Exception):
    """The object was not done within the timeout; ``last`` is the object as last seen (or None).

    ``result`` holds extra fields for fail_json (the module's execute() reports them).
    """

    def __init__(self, msg, last=None, elapsed=None, **result):
        super().__init__(msg)
        self.msg = msg
        self.last = last
        self.elapsed = elapsed
        self.result = result

    def fail_fields(self):
        return dict(self.result)


class Waiter(object):
    """Fetch an object until ``done(obj)`` is true, on the monotonic clock.

    ``fetch()`` returns the object (None when it does not exist); ``done(obj)`` decides,
    and may raise the caller's own exception to stop waiting with a failure. ``describe(obj)`` says
    what the object is doing, for the timeout message. clock and sleep are injectable for tests.
    """

    def __init__(self, fetch, done, timeout, sleep=5, describe=None, clock=time.monotonic, sleeper=time.sleep):
        self.fetch = fetch
        self.done = done
        self.timeout = max(0, timeout)
        self.sleep = max(0.05, sleep)
        self.describe = describe or (lambda obj: "not done")
        self.clock = clock
        self.sleeper = sleeper
        self.polls = 0

    def wait(self, what, check_mode=False):
        """The object once done; WaitTimeout after ``timeout`` seconds. A no-op (None) in check mode."""
        if check_mode:
            return None
        start = self.clock()
        deadline = start + self.timeout
        while True:
            obj = self.fetch()
            self.polls += 1
            if self.done(obj):
                return obj
            now = self.clock()
            if now >= deadline:
                raise WaitTimeout("Timed out after %ds waiting for %s: %s" % (int(round(now - start)), what, self.describe(obj)),
                                  last=obj, elapsed=now - start)
            self.sleeper(min(self.sleep, max(0.0, deadline - now)))


def wait_params(params):
    """(wait, wait_timeout, wait_sleep) of a module's params (doc_fragments/kubernetes.py WAIT)."""
    return params.get("wait"), params.get("wait_timeout"), params.get("wait_sleep")

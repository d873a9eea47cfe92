"""The stand-in's controllers that sync on a timer (helm-controller, ServiceLB, Traefik's Gateway status writer)."""
from __future__ import annotations

import threading
from typing import Callable


class Poller:
    """sync() every `interval` seconds in a daemon thread until stop(); a failed pass is logged and the next one runs.

    A subclass sets `thread_name` and `log_name`, and in its __init__ `interval`, `log` and `_stop` (a threading.Event).
    """

    thread_name = "poller"
    log_name = "poller"
    interval: float
    log: Callable[..., None]
    _stop: threading.Event

    def sync(self) -> None:
        """One pass."""
        raise NotImplementedError

    def start(self):
        """Run in a daemon thread."""
        threading.Thread(target=self.loop, daemon=True, name=self.thread_name).start()
        return self

    def stop(self) -> None:
        """Stop the loop."""
        self._stop.set()

    def loop(self) -> None:
        """Sync until stopped."""
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", f"{self.log_name}: {exc!r}")

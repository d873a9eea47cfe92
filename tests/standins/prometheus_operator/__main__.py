"""`python -m standins.prometheus_operator --kubeconfig PATH` (run from tests/): the loop in the foreground until
SIGTERM, printing what it did."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .controller import Controller


def main(argv=None) -> int:
    """Parse arguments and run the loop until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m standins.prometheus_operator", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the (stand-in) cluster")
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval in seconds (default: 0.5)")
    args = parser.parse_args(argv)
    ctl = Controller(args.kubeconfig, args.interval)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    printed = threading.Thread(target=_print, args=(ctl, stop), daemon=True)
    printed.start()
    ctl.run(stop)
    return 1 if ctl.errors else 0


def _print(ctl: Controller, stop: threading.Event) -> None:
    shown = 0
    while not stop.wait(0.5):
        for line in ctl.log[shown:]:
            print(line, flush=True)
        shown = len(ctl.log)


if __name__ == "__main__":
    sys.exit(main())

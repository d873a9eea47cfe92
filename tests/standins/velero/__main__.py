"""`python -m standins.velero --kubeconfig PATH` (run from tests/): the controller in the foreground until SIGTERM."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .controller import Controller


def main(argv=None) -> int:
    """Parse arguments and run the controller until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m standins.velero", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the (stand-in) cluster")
    parser.add_argument("--namespace", default="velero", help="Velero's namespace (default: velero)")
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval in seconds (default: 0.5)")
    parser.add_argument("--bsl-period", type=float, default=3.0, help="seconds between BackupStorageLocation validations")
    parser.add_argument("--sync-period", type=float, default=5.0, help="seconds between backup syncs from object storage")
    parser.add_argument("--no-cron", action="store_true", help="never fire schedules by their cron expression")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctl = Controller(args.kubeconfig, args.namespace, args.interval, bsl_period=args.bsl_period,
                     sync_period=args.sync_period, cron_enabled=not args.no_cron)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ctl.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

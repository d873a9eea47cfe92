"""The R2 stand-in as a process, for the lab and Molecule (from tests/):

    python -m standins.r2 --listen ADDR:PORT [--strict-listen ADDR:PORT]

Serves moto's S3 on ADDR:PORT (moto takes any key) and, with --strict-listen, the strict layer (strict.py) in
front of it on that address; prints `ready URL` (and `strict URL`) on stdout, and serves until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import start_moto
from .strict import StrictR2


def address(text: str) -> tuple:
    """ADDR:PORT or [ADDR6]:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("wants ADDR:PORT")
    return host.strip("[]"), int(port)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.r2", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, required=True, help="ADDR:PORT of moto's S3 (port 0: a free one)")
    parser.add_argument("--strict-listen", type=address, help="ADDR:PORT of the strict layer in front of it")
    args = parser.parse_args(argv)
    server, url = start_moto(*args.listen)
    strict = StrictR2(url, listen=args.strict_listen).start() if args.strict_listen else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *unused: stop.set())
    signal.signal(signal.SIGINT, lambda *unused: stop.set())
    print("ready %s" % url, flush=True)
    if strict is not None:
        print("strict %s" % strict.url, flush=True)
    stop.wait()
    if strict is not None:
        strict.stop()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

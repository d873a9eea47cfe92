#!/usr/bin/env python
"""Watch every process's command line for secrets while a test runs.

    argv_watch.py --secrets FILE --out FILE [--interval 0.02]

FILE holds one secret per line (so the secrets are never on this script's own command line).
Runs until SIGTERM or SIGINT, scanning /proc/*/cmdline (the host's /proc also shows the
processes of the lab's containers), then writes a JSON report to --out: how many scans and
processes it saw, and for each secret found, the pid and the command name (never the secret).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import time


def scan(secrets, hits, seen):
    """One pass over /proc; returns the number of processes read."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry.name, "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        count += 1
        seen.add(entry.name)
        for index, secret in enumerate(secrets):
            if secret in cmdline:
                name = cmdline.split(b"\0", 1)[0].decode(errors="replace")
                hits.append({"secret": index, "pid": int(entry.name), "command": name})
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secrets", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    with open(args.secrets, "rb") as handle:
        secrets = [line.strip() for line in handle if line.strip()]
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    hits, seen, scans = [], set(), 0
    while not stop:
        scan(secrets, hits, seen)
        scans += 1
        time.sleep(args.interval)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({"scans": scans, "processes": len(seen), "hits": hits}, handle)


if __name__ == "__main__":
    main()

"""Where a secret must not be while a role runs: other processes' arguments, files (tests/integration/test_ingress_certs.py
and test_gitops_sealed_secrets.py)."""
from __future__ import annotations

import os
import threading
from pathlib import Path


class CmdlineWatch(threading.Thread):
    """Reads every process's arguments (/proc/<pid>/cmdline) while the role runs and keeps those holding the token."""

    def __init__(self, needles):
        super().__init__(daemon=True)
        self.needles = [n.encode() for n in needles]
        self.seen, self.looks, self.done = [], 0, threading.Event()

    def run(self):
        own = str(os.getpid()).encode()
        while not self.done.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name.encode() == own:
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:
                    continue
                if any(n in cmdline for n in self.needles):
                    self.seen.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.looks += 1
            self.done.wait(0.02)


def files_holding(roots, needles, skip=()) -> list:
    found = []
    for root in roots:
        for dirpath, unused, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath) / name
                if path in skip or path.parent in skip or path.is_symlink() or not path.is_file():
                    continue
                data = path.read_bytes()
                if any(n.encode() in data for n in needles):
                    found.append(str(path))
    return found


def watched(run, needles):
    """run() while a CmdlineWatch reads every process's arguments for the needles; returns (its result, the watch)."""
    watch = CmdlineWatch(needles)
    watch.start()
    try:
        result = run()
    finally:
        watch.done.set()
        watch.join()
    return result, watch


def leaks(k3s, tmp_path, needles, *roots) -> list:
    """The files holding a needle under the stand-in K3s's root, the test's directory and roots, except the API's
    datastore (where a Secret lives) and the test's vars-*.json inputs (as the vault holds them)."""
    skip = set(tmp_path.glob("vars-*.json")) | {k3s.data / "server" / "db"}
    return files_holding([k3s.root, tmp_path, *roots], needles, skip=skip)

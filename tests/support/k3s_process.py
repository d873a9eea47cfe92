"""A stand-in `k3s server` as a process on loopback, for tests (tests/standins/k3s/).

The `k3s` it runs is a wrapper around this source tree, the same code build-release.sh zips for the lab.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from .poll import wait_for

TESTS = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_k3s_wrapper(path: Path) -> Path:
    """An executable `k3s` that runs the stand-in from this source tree (what build-release.sh zips)."""
    path.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s -m standins.k3s \"$@\"\n" % (TESTS, sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


class K3s(object):
    """A stand-in `k3s server` process with its data dir, kubeconfig and log."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = write_k3s_wrapper(root / "k3s")
        self.data = root / "data"
        self.kubeconfig = root / "k3s.yaml"
        self.manifests = self.data / "server" / "manifests"
        self.log = root / "server.log"
        port = free_port()
        (root / "config.yaml").write_text("bind-address: 127.0.0.1\nhttps-listen-port: %d\nnode-name: master-1\n"
                                          "node-ip: 127.0.0.1\n" % port, encoding="utf-8")
        env = dict(os.environ, K3S_STANDIN_HEARTBEAT="2")
        with open(self.log, "w", encoding="utf-8") as handle:
            self.proc = subprocess.Popen([str(self.bin), "server", "--config", str(root / "config.yaml"), "--data-dir", str(self.data),
                                          "--write-kubeconfig", str(self.kubeconfig)], stdout=handle, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(lambda: "registered and Ready" in self.log.read_text(encoding="utf-8"), what="k3s server and its node")
        except AssertionError:
            self.stop()
            raise AssertionError(self.log.read_text(encoding="utf-8"))

    def kubectl(self, *args, stdin=None, check=True):
        proc = subprocess.run([str(self.bin), "kubectl", "--kubeconfig", str(self.kubeconfig), *args], input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def get(self, *args):
        proc = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

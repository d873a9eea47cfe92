"""The host state a real K3s node leaves behind, so that reset.yml has something real to remove.

A running K3s node has a flannel VXLAN device (flannel.1, UDP 8472 over the flannel interface),
the cni0 bridge for its pods, /run/flannel/subnet.env, /run/k3s, and iptables chains named
KUBE-*, CNI-* and FLANNEL-* hooked into the built-in chains, and pods: processes under containerd
shims that outlive `systemctl stop k3s`, each pod in a cni-<uuid> network namespace with CNI state
in /var/lib/cni (shims.py). The stand-in makes the same (without forwarding any traffic) when it
runs as root with the default data directory, that is on a lab node, never in pytest runs that
relocate the data directory.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from . import config, shims

# (table, chain, the built-in chain that jumps to it)
CHAINS = [
    ("filter", "KUBE-FIREWALL", "INPUT"),
    ("filter", "KUBE-FORWARD", "FORWARD"),
    ("filter", "FLANNEL-FWD", "FORWARD"),
    ("nat", "KUBE-SERVICES", "PREROUTING"),
    ("nat", "FLANNEL-POSTRTG", "POSTROUTING"),
    ("nat", "CNI-HOSTPORT-DNAT", "PREROUTING"),
]


def _run(*argv: str) -> bool:
    return subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def pod_cidr(node_name: str) -> str:
    """A stable per-node /24 in K3s's default cluster CIDR 10.42.0.0/16."""
    index = int(hashlib.sha256(node_name.encode()).hexdigest(), 16) % 250 + 1
    return f"10.42.{index}.0/24"


def setup(node_name: str, node_ip: str, flannel_iface: str, log) -> None:
    """Create flannel.1, cni0, /run/flannel/subnet.env, /run/k3s, the iptables chains and a pod (each only if missing)."""
    cidr = pod_cidr(node_name)
    gateway = cidr.replace(".0/24", ".1/24")
    if shutil.which("ip"):
        if not _link_exists("flannel.1"):
            # Not bound to the flannel interface (`dev`): the stand-in tailscaled recreates its
            # device when it restarts (a package update), which would take flannel.1 with it.
            argv = ["ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", node_ip, "dstport", "8472", "nolearning"]
            if not _run(*argv):
                log("warning", "could not create flannel.1")
        if not _link_exists("cni0"):
            if _run("ip", "link", "add", "cni0", "type", "bridge"):
                _run("ip", "addr", "add", gateway, "dev", "cni0")
            else:
                log("warning", "could not create cni0")
        for name in ("flannel.1", "cni0"):
            _run("ip", "link", "set", name, "up")
    if shutil.which("iptables"):
        for table, chain, parent in CHAINS:
            if not _run("iptables", "-t", table, "-S", chain):
                _run("iptables", "-t", table, "-N", chain)
            if not _run("iptables", "-t", table, "-C", parent, "-j", chain):
                _run("iptables", "-t", table, "-A", parent, "-j", chain)
    flannel = Path("/run/flannel")
    flannel.mkdir(parents=True, exist_ok=True)
    (flannel / "subnet.env").write_text(
        f"FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET={gateway.split('/', maxsplit=1)[0]}/24\nFLANNEL_MTU=1230\nFLANNEL_IPMASQ=true\n",
        encoding="utf-8")
    Path("/run/k3s/containerd").mkdir(parents=True, exist_ok=True)
    shims.setup_pod(Path(config.DEFAULT_DATA_DIR), cidr, log)
    log("info", f"flannel.1 (for {flannel_iface or 'the default route'}) and cni0 ({cidr}) are up")


def wanted(data_dir: Path, default_data_dir: Path) -> bool:
    """Only a node: root, the default data directory, not switched off."""
    return (os.geteuid() == 0 and Path(data_dir) == Path(default_data_dir)
            and os.environ.get("K3S_STANDIN_HOST_NETWORK", "1") != "0")

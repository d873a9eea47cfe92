"""Stand-in containerd shims, each with a pod's processes beneath it, as a running K3s node has them.

What a real node has, and what this module makes (only what reset.yml must find and remove):

- K3s unpacks its bundled binaries to DATA_DIR/data/<hash>/bin (containerd-shim-runc-v2, and
  iptables-save/-restore under bin/aux) and points DATA_DIR/data/current at it
  (k3s-io/k3s cmd/k3s/main.go, extract()/getAssetAndDir()/stageAndRun()).
- containerd starts one shim per pod sandbox as `<bin>/containerd-shim-runc-v2 -namespace k8s.io
  -address <containerd.sock> ... -id <id> start` (containerd/containerd runtime/v2/shim/util.go,
  Command()); `start` launches the long-lived shim (`-namespace k8s.io -id <id> -address ...`) in
  its own session and returns, so the shim is not a child of K3s. The pod's processes are children
  of the shim. With the unit's KillMode=process (k3s-io/k3s install.sh,
  create_systemd_service_file) `systemctl stop k3s` leaves the shims and the pods running, which is
  why k3s-killall.sh kills the whole process tree under every shim (install.sh, create_killall:
  getshims/killtree).
- The pod's network namespace is /run/netns/cni-<uuid>, joined to cni0 by a veth; the CNI plugins
  keep their state under /var/lib/cni (host-local IPAM leases in /var/lib/cni/networks/cbr0,
  "cbr0" being K3s's flannel CNI network, k3s-io/k3s pkg/agent/flannel/setup_linux.go cniConf;
  the flannel plugin's saved config in /var/lib/cni/flannel). k3s-killall.sh deletes the cni-*
  namespaces and /var/lib/cni.

The shim here is a small Python program, not containerd's; its command line carries the same path
and arguments, and its process name is the one the kernel shows for the real shim
("containerd-shim", the first 15 characters). The pod is `sh` running `sleep`, so the tree under
the shim has a child and a grandchild.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from . import version

SHIM = "containerd-shim-runc-v2"
NAMESPACE = "k8s.io"
ADDRESS = "/run/k3s/containerd/containerd.sock"
# containerd's task directory for the k8s.io namespace under K3s's state directory /run/k3s/containerd.
TASK_ROOT = Path("/run/k3s/containerd/io.containerd.runtime.v2.task") / NAMESPACE
CNI_DIR = Path("/var/lib/cni")
CNI_NETWORK = "cbr0"
# K3s's bundled iptables tools (bin/aux), linked here to the host's own when it has them.
AUX_TOOLS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")
POD = ["/bin/sh", "-c", "sleep infinity & wait"]

# The shim program written to <data>/data/<hash>/bin/containerd-shim-runc-v2. It must run on its
# own (it is not part of the zipapp), so it only uses the standard library.
SHIM_PROGRAM = r'''#!/usr/bin/python3
"""Lab stand-in for containerd-shim-runc-v2 (see tests/standins/k3s/shims.py)."""
import ctypes
import json
import os
import subprocess
import sys
import time

args = sys.argv[1:]


def option(name):
    return args[args.index(name) + 1]


if args[-1:] == ["start"]:
    # Launch the long-lived shim in its own session, print its address, return.
    daemon = [sys.argv[0], "-namespace", option("-namespace"), "-id", option("-id"), "-address", option("-address")]
    subprocess.Popen(daemon, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, close_fds=True)
    print("unix:///run/containerd/s/" + option("-id")[:16])
    sys.exit(0)

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"containerd-shim", 0, 0, 0)  # PR_SET_NAME: the name the kernel shows for the real shim
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as containerd's shims set it
with open("pod.json", encoding="utf-8") as handle:
    pod = json.load(handle)
child = subprocess.Popen(pod, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open("init.pid", "w", encoding="utf-8") as handle:
    handle.write(str(child.pid))
with open("shim.pid", "w", encoding="utf-8") as handle:
    handle.write(str(os.getpid()))
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(60)
'''


def asset_dir(data_dir: Path) -> Path:
    """DATA_DIR/data/<hash>: one directory per K3s build (here: per stand-in version)."""
    digest = hashlib.sha256(f"k3s-standin {version.VERSION}".encode()).hexdigest()
    return Path(data_dir) / "data" / digest


def install(data_dir: Path) -> Path:
    """Unpack the stand-in's bundled binaries like K3s does; return the bin directory."""
    target = asset_dir(data_dir)
    bin_dir = target / "bin"
    (bin_dir / "aux").mkdir(parents=True, exist_ok=True)
    shim = bin_dir / SHIM
    if not shim.exists() or shim.read_text(encoding="utf-8") != SHIM_PROGRAM:
        shim.write_text(SHIM_PROGRAM, encoding="utf-8")
        shim.chmod(0o755)
    for tool in AUX_TOOLS:
        found = shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
        link = bin_dir / "aux" / tool
        if found and not link.is_symlink():
            link.symlink_to(os.path.realpath(found))
    current = Path(data_dir) / "data" / "current"
    if not current.is_symlink() or Path(os.readlink(current)) != target:
        if current.is_symlink():
            current.replace(current.with_name("previous"))
        current.symlink_to(target)
    return bin_dir


def running(task_root: Path = TASK_ROOT) -> list[str]:
    """Ids of the sandboxes whose shim is alive (K3s reconnects to them after a restart)."""
    alive = []
    if not Path(task_root).is_dir():
        return alive
    for bundle in sorted(Path(task_root).iterdir()):
        try:
            pid = int((bundle / "shim.pid").read_text(encoding="utf-8"))
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(part.endswith(SHIM.encode()) for part in cmdline) and bundle.name.encode() in cmdline:
            alive.append(bundle.name)
    return alive


def start(bin_dir: Path, sandbox_id: str, pod: list[str], task_root: Path = TASK_ROOT, timeout: float = 10.0) -> int:
    """Run `<shim> ... -id ID start` in the sandbox's bundle directory, as containerd does; return the shim's pid."""
    bundle = Path(task_root) / sandbox_id
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "pod.json").write_text(json.dumps(pod), encoding="utf-8")
    argv = [str(Path(bin_dir) / SHIM), "-namespace", NAMESPACE, "-address", ADDRESS,
            "-publish-binary", str(Path(bin_dir) / "containerd"), "-id", sandbox_id, "start"]
    subprocess.run(argv, cwd=bundle, check=True, stdout=subprocess.DEVNULL, timeout=timeout)
    pid_file = bundle / "shim.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text(encoding="utf-8"):
            return int(pid_file.read_text(encoding="utf-8"))
        time.sleep(0.05)
    raise RuntimeError(f"shim for {sandbox_id} did not start")


def _run(*argv: str) -> bool:
    return subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def setup_pod(data_dir: Path, pod_cidr: str, log) -> None:
    """On a node (root): one pod sandbox with its shim, cni-<uuid> namespace, veth on cni0 and CNI state.

    Nothing is started when a sandbox's shim is still running (K3s was only restarted).
    """
    bin_dir = install(data_dir)
    if running():
        return
    sandbox_id = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    netns = f"cni-{uuid.uuid4()}"
    pod = list(POD)
    if shutil.which("ip") and _run("ip", "netns", "add", netns):
        # The host end is named like the bridge plugin's veths (veth + 8 hex digits), on cni0.
        host_end = "veth" + sandbox_id[:8]
        if _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns):
            _run("ip", "link", "set", host_end, "master", "cni0", "up")
        pod = ["ip", "netns", "exec", netns, *POD]
    else:
        log("warning", f"could not create network namespace {netns}")
    address = pod_cidr.replace(".0/24", ".2")
    leases = CNI_DIR / "networks" / CNI_NETWORK
    leases.mkdir(parents=True, exist_ok=True)
    (leases / address).write_text(f"{sandbox_id}\r\neth0", encoding="utf-8")
    (leases / "last_reserved_ip.0").write_text(address, encoding="utf-8")
    (CNI_DIR / "flannel").mkdir(parents=True, exist_ok=True)
    (CNI_DIR / "flannel" / sandbox_id).write_text(json.dumps({"name": CNI_NETWORK, "type": "bridge"}), encoding="utf-8")
    try:
        pid = start(bin_dir, sandbox_id, pod)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log("warning", f"could not start the pod sandbox's shim: {exc}")
        return
    log("info", f"pod sandbox {sandbox_id[:12]} runs under shim {pid} in {netns}")

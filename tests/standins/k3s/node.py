"""Node registration and heartbeats over HTTPS (what the kubelet does), shared by `k3s server` and `k3s agent`."""
from __future__ import annotations

import base64
import json
import os
import platform
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

from . import version
from .apiserver import now_iso
from .config import log

HEARTBEAT_SECONDS = float(os.environ.get("K3S_STANDIN_HEARTBEAT", "10"))


class HttpError(Exception):
    """An HTTP error answer."""

    def __init__(self, code: int, reason: str, body: str):
        super().__init__(f"{code} {reason}")
        self.code, self.reason, self.body = code, reason, body


def request(url: str, context: ssl.SSLContext, method: str = "GET", body=None, auth: str | None = None,
            content_type: str = "application/json", timeout: float = 10, extra_headers: dict | None = None):
    """One HTTPS request; returns the decoded JSON or text; raises HttpError or OSError."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", **(extra_headers or {})}
    if data is not None:
        headers["Content-Type"] = content_type
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    # No proxy, whatever HTTP(S)_PROXY says: K3s's own client for the join and supervisor requests is an
    # http.Transport without a Proxy function (k3s-io/k3s pkg/clientaccess/token.go, GetHTTPClient), which
    # in Go means direct connections (only http.DefaultTransport uses ProxyFromEnvironment); the agent's
    # load balancer dials through a proxy only with K3S_AGENT_HTTP_PROXY_ALLOWED=true
    # (pkg/agent/loadbalancer/httpproxy.go, SetHTTPProxy), which the stand-in does not model.
    # urlopen() alone would send these through HTTP(S)_PROXY from the unit's environment file.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(req, timeout=timeout) as resp:  # nosec - lab URL
            raw = resp.read().decode()
    except urllib.error.HTTPError as err:
        raise HttpError(err.code, err.reason, err.read().decode(errors="replace")) from err
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class NodePasswordRejected(HttpError):
    """The supervisor refused this node's password (another host registered the name before)."""


def password_file(data_dir: Path, default_data_dir: Path) -> Path:
    """Where the node keeps its password.

    k3s-io/k3s pkg/agent/config/config.go, get(): /etc/rancher/node/password, or under
    <data-dir>/agent/ when rootless. The stand-in uses the rootless place whenever the data directory
    is not the default one (a pytest run), so that tests never write to the machine's /etc.
    """
    root = Path("/") if data_dir == default_data_dir else data_dir / "agent"
    return root / "etc" / "rancher" / "node" / "password"


def ensure_password(path: Path) -> str:
    """The node password, made once (k3s-io/k3s pkg/agent/config/config.go, ensureNodePassword:
    16 random bytes, hex, written 0600 when the file does not exist yet)."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = os.urandom(16).hex()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password


def basic(user: str, secret: str) -> str:
    """A Basic authorization header value."""
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def primary_ip() -> str:
    """The address of the default route's interface (like K3s's node-ip default)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def interface_ip(iface: str) -> str | None:
    """The first IPv4 address of an interface (via iproute2), or None."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface], capture_output=True, text=True, check=False, timeout=5).stdout
    except OSError:
        return None
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def _os_image() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _memory_ki() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            return handle.readline().split()[1] + "Ki"
    except (OSError, IndexError):
        return "1024000Ki"


def taint_from(text: str) -> dict:
    """'key=value:Effect' or 'key:Effect' -> taint dict."""
    keyval, unused, effect = text.rpartition(":")
    key, unused, value = keyval.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def ready_conditions() -> list:
    """Kubelet-style conditions with a fresh heartbeat."""
    stamp = now_iso()
    conds = [("MemoryPressure", "False", "KubeletHasSufficientMemory"), ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
             ("PIDPressure", "False", "KubeletHasSufficientPID"), ("Ready", "True", "KubeletReady")]
    return [{"type": t, "status": s, "reason": r, "message": "kubelet is posting ready status" if t == "Ready" else r,
             "lastHeartbeatTime": stamp, "lastTransitionTime": stamp} for t, s, r in conds]


def node_object(name: str, internal_ip: str, external_ip: str | None, labels: dict, taints: list, annotations: dict) -> dict:
    """The Node a K3s kubelet would register."""
    addresses = [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}]
    if external_ip:
        addresses.insert(1, {"type": "ExternalIP", "address": external_ip})
    base_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                   "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "k3s",
                   "node.kubernetes.io/instance-type": "k3s"}
    base_labels.update(labels)
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": _memory_ki(), "pods": "110", "ephemeral-storage": "20000000Ki"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": base_labels,
                     "annotations": dict({"k3s.io/hostname": name, "k3s.io/internal-ip": internal_ip,
                                          "flannel.alpha.coreos.com/public-ip": external_ip or internal_ip,
                                          "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
                                         **({"k3s.io/external-ip": external_ip} if external_ip else {}), **annotations)},
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "providerID": f"k3s://{name}",
                 **({"taints": taints} if taints else {})},
        "status": {"addresses": addresses, "capacity": capacity, "allocatable": dict(capacity), "conditions": ready_conditions(),
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                                "kernelVersion": platform.release(), "kubeProxyVersion": version.VERSION, "kubeletVersion": version.VERSION,
                                "machineID": "", "operatingSystem": "linux", "osImage": _os_image(), "systemUUID": ""}},
    }


class NodeRunner:
    """Registers a node and keeps its Ready condition fresh until stopped."""

    def __init__(self, url: str, context: ssl.SSLContext, auth: str, node: dict, password: Path | None = None):
        self.url, self.context, self.auth, self.node = url.rstrip("/"), context, auth, node
        self.name = node["metadata"]["name"]
        self.password = password
        self.stopped = threading.Event()

    def check_password(self) -> None:
        """Ask for the kubelet's client certificate with the node's name and password, as a joining node does.

        k3s-io/k3s pkg/agent/config/config.go, getNodeNamedCrt(): the request carries K3s-Node-Name and
        K3s-Node-Password; a 403 answer becomes upstream's "Node password rejected" error, which Get()
        logs as "Waiting to retrieve agent configuration; server is not ready: ..." and retries.
        """
        if self.password is None:
            return
        headers = {"K3s-Node-Name": self.name, "K3s-Node-Password": ensure_password(self.password)}
        try:
            request(f"{self.url}/v1-k3s/client-kubelet.crt", self.context, auth=self.auth, extra_headers=headers)
        except HttpError as err:
            if err.code == 403:
                raise NodePasswordRejected(
                    403, "Node password rejected, duplicate hostname or contents of "
                    f"'{self.password}' may not match server node-passwd entry, try enabling a unique node name "
                    "with the --with-node-id flag", err.body) from err
            raise

    def register(self) -> None:
        """Create the node, or refresh labels/annotations/addresses of an existing one (cordon state is kept)."""
        self.check_password()
        path = f"{self.url}/api/v1/nodes/{self.name}"
        try:
            request(path, self.context, auth=self.auth)
        except HttpError as err:
            if err.code != 404:
                raise
            request(f"{self.url}/api/v1/nodes", self.context, "POST", self.node, self.auth)
            log("info", f"Registered node {self.name} with the apiserver")
            return
        meta = self.node["metadata"]
        request(path, self.context, "PATCH", {"metadata": {"labels": meta["labels"], "annotations": meta["annotations"]}},
                self.auth, "application/merge-patch+json")
        self.heartbeat()
        log("info", f"Node {self.name} already registered; updated labels and status")

    def heartbeat(self) -> None:
        """Post a fresh status (addresses, nodeInfo, Ready)."""
        status = dict(self.node["status"], conditions=ready_conditions())
        path = f"{self.url}/api/v1/nodes/{self.name}"
        request(path + "/status", self.context, "PATCH", {"status": status}, self.auth, "application/merge-patch+json")
        current = request(path, self.context, auth=self.auth)
        taints = (current.get("spec") or {}).get("taints") or []
        clean = [t for t in taints if t.get("key") != "node.kubernetes.io/unreachable"]
        if clean != taints:
            request(path, self.context, "PATCH", {"spec": {"taints": clean or None}}, self.auth, "application/merge-patch+json")

    def loop(self) -> None:
        """Heartbeat every K3S_STANDIN_HEARTBEAT seconds (default 10)."""
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except HttpError as err:
                # Like the kubelet, a deleted Node is not re-created until the agent restarts.
                log("error", f"failed to update node status for {self.name}: {err}")
            except OSError as exc:
                log("error", f"failed to update node status: {exc}")

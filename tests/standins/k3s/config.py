"""K3s-style configuration: config.yaml (+ config.yaml.d), K3S_* environment and CLI flags; logfmt logging."""
from __future__ import annotations

import datetime
import glob
import os
import sys

from . import yamlish

DEFAULT_CONFIG = "/etc/rancher/k3s/config.yaml"
DEFAULT_DATA_DIR = "/var/lib/rancher/k3s"
DEFAULT_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"

# Flags taking no value.
BOOL_FLAGS = {
    "cluster-init", "cluster-reset", "secrets-encryption", "debug", "disable-network-policy", "disable-cloud-controller",
    "disable-kube-proxy", "disable-helm-controller", "disable-scheduler", "disable-apiserver", "disable-etcd",
    "disable-controller-manager", "protect-kernel-defaults", "selinux", "rootless", "prefer-bundled-bin", "embedded-registry",
    "docker", "disable-default-registry-endpoint", "flannel-ipv6-masq", "flannel-external-ip", "egress-selector-mode-disabled",
    "supervisor-metrics", "etcd-expose-metrics", "etcd-disable-snapshots", "etcd-s3", "disable-agent", "enable-pprof",
    "kube-proxy-arg-disabled", "node-external-dns-disabled", "lb-server-port-disabled", "vpn-auth-disabled", "help",
}
# Flags that may be repeated (lists in config.yaml).
LIST_FLAGS = {
    "node-label", "node-taint", "tls-san", "disable", "kubelet-arg", "kube-apiserver-arg", "kube-controller-manager-arg",
    "kube-scheduler-arg", "kube-proxy-arg", "kube-cloud-controller-manager-arg", "etcd-arg", "node-ip", "node-external-ip",
    "cluster-cidr", "service-cidr", "advertise-address-list", "tls-san-list", "image-credential-provider-arg",
}
SERVER_FLAGS = {
    "config", "data-dir", "write-kubeconfig", "write-kubeconfig-mode", "write-kubeconfig-group", "token", "token-file",
    "agent-token", "agent-token-file", "server", "bind-address", "advertise-address", "advertise-port", "https-listen-port",
    "supervisor-port", "apiserver-port", "apiserver-bind-address", "tls-san-security", "cluster-cidr", "service-cidr",
    "service-node-port-range", "cluster-dns", "cluster-domain", "flannel-backend", "flannel-iface", "flannel-conf",
    "flannel-cni-conf-file", "egress-selector-mode", "servicelb-namespace", "default-local-storage-path", "datastore-endpoint",
    "datastore-cafile", "datastore-certfile", "datastore-keyfile", "etcd-snapshot-schedule-cron", "etcd-snapshot-retention",
    "etcd-snapshot-dir", "etcd-snapshot-name", "etcd-snapshot-compress", "etcd-s3-endpoint", "etcd-s3-bucket", "etcd-s3-region",
    "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-folder", "system-default-registry", "node-name", "with-node-id",
    "node-ip", "node-external-ip", "node-internal-dns", "node-external-dns", "resolv-conf", "container-runtime-endpoint",
    "default-runtime", "image-service-endpoint", "snapshotter", "private-registry", "pause-image", "kubelet-path", "log", "alsologtostderr",
    "v", "vmodule", "secrets-encryption-provider", "cluster-reset-restore-path", "lb-server-port", "vpn-auth", "vpn-auth-file",
    "airgap-extra-registry", "token-ttl", "kine-tls", "helm-job-image", "nonroot-devices", "multi-cluster-cidr",
} | LIST_FLAGS | BOOL_FLAGS
AGENT_FLAGS = {
    "config", "data-dir", "token", "token-file", "server", "node-name", "with-node-id", "node-ip", "node-external-ip",
    "node-internal-dns", "node-external-dns", "resolv-conf", "flannel-iface", "flannel-conf", "flannel-cni-conf-file",
    "container-runtime-endpoint", "default-runtime", "image-service-endpoint", "snapshotter", "private-registry", "pause-image",
    "lb-server-port", "vpn-auth", "vpn-auth-file", "log", "alsologtostderr", "v", "vmodule", "kubelet-path", "airgap-extra-registry",
    "nonroot-devices", "bind-address",
} | {"node-label", "node-taint", "kubelet-arg", "kube-proxy-arg", "image-credential-provider-arg"} | BOOL_FLAGS
SHORT = {"c": "config", "d": "data-dir", "o": "write-kubeconfig", "t": "token", "s": "server", "i": "node-ip", "l": "log"}
ENV = {
    "K3S_CONFIG_FILE": "config", "K3S_TOKEN": "token", "K3S_TOKEN_FILE": "token-file", "K3S_URL": "server",
    "K3S_AGENT_TOKEN": "agent-token", "K3S_AGENT_TOKEN_FILE": "agent-token-file", "K3S_NODE_NAME": "node-name",
    "K3S_KUBECONFIG_OUTPUT": "write-kubeconfig", "K3S_KUBECONFIG_MODE": "write-kubeconfig-mode", "K3S_DATA_DIR": "data-dir",
    "K3S_CLUSTER_INIT": "cluster-init", "K3S_DATASTORE_ENDPOINT": "datastore-endpoint", "K3S_RESOLV_CONF": "resolv-conf",
}
SECRET_KEYS = {"token", "agent-token", "etcd-s3-secret-key", "vpn-auth", "datastore-endpoint"}


def log(level: str, msg: str) -> None:
    """One logfmt line on stderr, like K3s (logrus)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    escaped = msg.replace("\\", "\\\\").replace('"', '\\"')
    sys.stderr.write(f'time="{stamp}" level={level} msg="{escaped}"\n')
    sys.stderr.flush()


class Fatal(SystemExit):
    """Log at level=fatal and exit 1."""

    def __init__(self, msg: str):
        log("fatal", msg)
        super().__init__(1)


def _parse_args(args: list, known: set) -> dict:
    out: dict = {}
    idx = 0
    while idx < len(args):
        arg = args[idx]
        idx += 1
        if not arg.startswith("-") or arg == "-":
            raise Fatal(f"unexpected argument {arg!r}")
        name, has_value, value = arg.lstrip("-").partition("=")
        name = SHORT.get(name, name)
        if name not in known:
            sys.stderr.write(f"Incorrect Usage: flag provided but not defined: -{name}\n")
            raise SystemExit(1)
        if name in BOOL_FLAGS:
            value = value.lower() not in ("false", "0") if has_value else True
        elif not has_value:
            if idx >= len(args):
                raise Fatal(f"flag needs an argument: --{name}")
            value = args[idx]
            idx += 1
        if name in LIST_FLAGS:
            out.setdefault(name, []).extend(str(value).split(",") if name in ("disable", "tls-san", "node-ip", "node-external-ip") else [value])
        else:
            out[name] = value
    return out


def _read_file(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = yamlish.load(handle.read())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Fatal(f"failed to parse {path}: expected a map at the top level")
    return data


def load(role: str, args: list) -> dict:
    """Merge config file(s) < K3S_* environment < CLI flags; list values are lists."""
    known = SERVER_FLAGS if role == "server" else AGENT_FLAGS
    cli = _parse_args(args, known)
    env = {}
    for var, key in ENV.items():
        if os.environ.get(var) and key in known:
            env[key] = os.environ[var] if key != "cluster-init" else os.environ[var].lower() == "true"
    path = cli.get("config") or env.get("config") or DEFAULT_CONFIG
    merged: dict = {}
    files = []
    if os.path.exists(path):
        files.append(path)
    elif cli.get("config") or env.get("config"):
        raise Fatal(f"open {path}: no such file or directory")
    files += sorted(glob.glob(os.path.join(path + ".d", "*.yaml")))
    for name in files:
        try:
            data = _read_file(name)
        except (ValueError, OSError) as exc:
            raise Fatal(f"failed to parse config file {name}: {exc}") from exc
        for key, value in data.items():
            key = str(key)
            append = key.endswith("+")
            key = key.rstrip("+")
            if key not in known:
                log("warning", f"Unknown flag --{key} found in config.yaml, skipping")
                continue
            if key in LIST_FLAGS:
                if not isinstance(value, list):
                    value = str(value).split(",") if key in ("disable", "tls-san", "node-ip") else [value]
                values = [str(v) for v in value]
                merged[key] = (merged.get(key, []) + values) if append else values
            else:
                merged[key] = value
    merged.update(env)
    for key, value in cli.items():
        merged[key] = value
    merged["config"] = path
    return merged


def first(cfg: dict, key: str, default=None):
    """A scalar value (the first one for list flags like node-ip)."""
    value = cfg.get(key, default)
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value in (None, "") else value


def redacted(cfg: dict) -> dict:
    """The config with secrets replaced (for logs and node annotations)."""
    return {k: ("********" if k in SECRET_KEYS else v) for k, v in cfg.items()}


def parse_token(token: str) -> tuple:
    """Split a token: (ca_hash or '', user or '', secret). Short tokens have no hash/user."""
    token = token.strip()
    if token.startswith("K10") and "::" in token:
        head, unused, rest = token.partition("::")
        user, sep, secret = rest.partition(":")
        if sep:
            return head[3:], user, secret
        return head[3:], "", rest
    return "", "", token


def read_token(cfg: dict, key: str) -> str | None:
    """token / token-file (or agent-token / agent-token-file) from the config."""
    if cfg.get(key):
        return str(cfg[key]).strip()
    path = cfg.get(f"{key}-file")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise Fatal(f"failed to read {key} file {path}: {exc.strerror}") from exc
    return None

"""The `k3s` command of the stand-in: server, agent, kubectl, completion, --version.

Like upstream's multi-call binary (k3s-io/k3s cmd/server/main.go, main(): reexec on the base name of
argv[0]), the stand-in answers as kubectl, crictl or ctr when called through links of those names, as
the install script makes them. kubectl is the real kubectl (see run_kubectl).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

from . import apiserver, config, kubelet, netstate, node, pki, version
from .config import Fatal, log

USAGE = """NAME:
   k3s - Kubernetes, but small and simple (lab stand-in)

USAGE:
   k3s [global options] command [command options] [arguments...]

COMMANDS:
   server   Run management server
   agent    Run node agent
   kubectl     Run kubectl (the real kubectl, against this server's API)
   crictl      Run crictl (the stand-in has no container runtime)
   ctr         Run ctr (the stand-in has no container runtime)
   completion  Generate shell completion script

GLOBAL OPTIONS:
   --version, -v  print the version
"""


def version_text() -> str:
    """What `k3s --version` prints."""
    return f"k3s version {version.VERSION} ({version.git_commit()})\ngo version {version.go_version()}\n"


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify units) about our state, if NOTIFY_SOCKET is set."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
    except OSError as exc:
        log("warning", f"sd_notify failed: {exc}")


def _wait_for_signal(stop: threading.Event) -> None:
    def handler(signum, unused_frame):
        log("info", f"Received {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(1):
        pass


def _mode(value) -> int:
    text = str(value)
    try:
        return int(text, 8)
    except ValueError as exc:
        raise Fatal(f"invalid write-kubeconfig-mode {text!r}") from exc


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _verified(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False  # K3s agents connect by IP to servers whose SANs they cannot know
    return context


def fetch_ca(server: str, ca_hash: str, connect_timeout: float) -> str:
    """GET /cacerts (retrying until connect_timeout) and check it against the token's CA hash.

    As k3s-io/k3s pkg/clientaccess/token.go, validateCAHash(): a full token (K10<ca-hash>::user:secret)
    pins the cluster CA; a short one is accepted with a warning, trusting whatever CA answers.
    """
    deadline = time.time() + connect_timeout
    while True:
        try:
            ca_pem = node.request(f"{server}/cacerts", _insecure())
            break
        except node.HttpError as err:
            raise Fatal(f"Failed to validate connection to cluster at {server}: failed to get CA certs: {server}/cacerts: {err}") from err
        except OSError as exc:
            if time.time() >= deadline:
                reason = getattr(exc, "reason", exc)
                raise Fatal(f"Failed to validate connection to cluster at {server}: failed to get CA certs: "
                            f"Get \"{server}/cacerts\": {reason}") from exc
            log("info", f"Waiting to retrieve CA certificates from {server}: {getattr(exc, 'reason', exc)}")
            time.sleep(2)
    if not ca_hash:
        log("warning", SHORT_TOKEN_WARNING)
    elif pki.ca_hash(ca_pem) != ca_hash:
        raise Fatal(f"Failed to validate connection to cluster at {server}: token CA hash does not match the Cluster CA "
                    f"certificate hash: {ca_hash} != {pki.ca_hash(ca_pem)}")
    return ca_pem


# k3s-io/k3s pkg/clientaccess/token.go, validateCAHash(): logged when a token has no CA hash.
SHORT_TOKEN_WARNING = ("Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. "
                       "Use the full token from the server's node-token file to enable Cluster CA validation.")
# k3s-io/k3s pkg/cluster/storage.go, getBootstrapKeyFromStorage(): the bootstrap data (CA keys, encryption
# config...) is stored under a key derived from the server token and encrypted with it; a server restarted
# with another token finds only the old key and refuses to start.
DIFFERENT_TOKEN = ("starting kubernetes: preparing server: failed to bootstrap cluster data: "
                   "bootstrap data already found and encrypted with different token")


def _validate_agent_join(server: str, token: str) -> tuple:
    """The agent's join check, retried every 2 seconds until it passes: never gives up.

    As k3s-io/k3s pkg/agent/run.go, createProxyAndValidateToken(): ParseAndValidateToken (CA from /cacerts,
    the token's CA hash, the token against the supervisor) is retried forever, logging
    "Failed to validate connection to cluster at <url>: <err>"; the agent only exits when stopped. Its unit is
    Type=notify with TimeoutStartSec=0 (install.sh), so `systemctl start k3s-agent` never returns meanwhile.
    """
    ca_hash, user, secret = config.parse_token(token)
    auth = node.basic(user or "node", secret)
    warned = False
    while True:
        try:
            ca_pem = node.request(f"{server}/cacerts", _insecure())
        except node.HttpError as err:
            problem = f"failed to get CA certs: {server}/cacerts: {err}"
        except OSError as exc:
            problem = f"failed to get CA certs: Get \"{server}/cacerts\": {getattr(exc, 'reason', exc)}"
        else:
            if not ca_hash and not warned:
                log("warning", SHORT_TOKEN_WARNING)
                warned = True
            if ca_hash and pki.ca_hash(ca_pem) != ca_hash:
                problem = f"token CA hash does not match the Cluster CA certificate hash: {ca_hash} != {pki.ca_hash(ca_pem)}"
            else:
                context = _verified(ca_pem)
                try:
                    node.request(f"{server}/v1-k3s/readyz", context, auth=auth)
                    return ca_pem, context, auth
                except node.HttpError as err:
                    problem = f"token is not valid: {server}/v1-k3s/readyz: {err}"
                except OSError as exc:
                    problem = str(getattr(exc, "reason", exc))
        log("error", f"Failed to validate connection to cluster at {server}: {problem}")
        time.sleep(2)


def node_args(role: str, cfg: dict) -> str:
    """The k3s.io/node-args annotation: the effective flags, secrets redacted."""
    args = [role]
    for key, value in config.redacted(cfg).items():
        if key != "config":
            args += [f"--{key}={item}" for item in (value if isinstance(value, list) else [value])]
    return json.dumps(args)


def _node_settings(cfg: dict) -> tuple:
    name = str(config.first(cfg, "node-name") or socket.gethostname().split(".")[0]).lower()
    if cfg.get("with-node-id"):
        name = f"{name}-{secrets.token_hex(4)}"
    node_ip = config.first(cfg, "node-ip")
    if not node_ip and cfg.get("flannel-iface"):
        node_ip = node.interface_ip(str(cfg["flannel-iface"]))
        if not node_ip:
            log("warning", f"flannel-iface {cfg['flannel-iface']} has no IPv4 address (interface missing?); using the default route's address")
    node_ip = str(node_ip or node.primary_ip())
    external_ip = config.first(cfg, "node-external-ip")
    labels = {}
    for item in cfg.get("node-label") or []:
        key, unused, value = str(item).partition("=")
        labels[key] = value
    taints = [node.taint_from(str(t)) for t in cfg.get("node-taint") or []]
    return name, node_ip, (str(external_ip) if external_ip else None), labels, taints


def _addons(store: apiserver.Store, disabled: set) -> None:
    """Objects of K3s's packaged components (deployments only; nothing runs); Traefik comes from its HelmCharts (traefik.py)."""
    apps = store.find("apps", "v1", "deployments")
    for name, component in (("coredns", "coredns"), ("local-path-provisioner", "local-storage"),
                            ("metrics-server", "metrics-server")):
        if component in disabled:
            continue
        body = {"metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": name}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"k8s-app": name}},
                         "template": {"metadata": {"labels": {"k8s-app": name}}, "spec": {"containers": [{"name": name, "image": f"rancher/{name}"}]}}}}
        try:
            store.create(apps, body, "kube-system")
        except apiserver.ApiError:
            pass
    if "local-storage" not in disabled:
        try:
            store.create(store.find("storage.k8s.io", "v1", "storageclasses"),
                         {"metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                          "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}, None)
        except apiserver.ApiError:
            pass


def _controllers(store: apiserver.Store, cfg: dict, server_dir: Path, disabled: set) -> None:
    """K3s's helm-controller, deploy controller (server/manifests/*.yaml auto-applied, with the packaged
    traefik.yaml _stage() wrote), ServiceLB, and Traefik's Gateway status writer (runs while Traefik's
    Deployment exists)."""
    from . import helm, manifests, servicelb, traefik  # pylint: disable=import-outside-toplevel
    manifests.register_crds(store)
    if not cfg.get("disable-helm-controller"):
        helm.register_crds(store)
        helm.HelmController(store, log=log).start()
    manifests.ManifestWatcher(store, server_dir / "manifests", log=log, disables=disabled).start()
    if "servicelb" not in disabled:
        servicelb.ServiceLB(store, log=log).start()
    traefik.GatewayStatus(store, log=log).start()


def _stage(server_dir: Path, disabled: set) -> None:
    """The server's manifests directory, with K3s's packaged manifests staged in it.

    Every server stages them at start, outside the leader election (k3s-io/k3s pkg/server/server.go
    stageFiles(): deploy.Stage into <data-dir>/server/manifests, then deploy.WatchFiles on it), so the
    directory exists on every server and a role writes its manifests there on each (K3s does not sync
    them between servers). Deviation: a joined server's deploy controller does not run here (its API
    requests go to the first server, whose controllers apply that server's directory); roles write the
    same files on every server, which the lab checks by comparing them.
    """
    from . import traefik  # pylint: disable=import-outside-toplevel
    manifests_dir = server_dir / "manifests"
    manifests_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    traefik.stage(manifests_dir, disabled)


def run_server(args: list) -> int:
    """`k3s server`: API server + own control-plane node."""
    cfg = config.load("server", args)
    log("info", f"Starting k3s {version.VERSION} ({version.git_commit()})")
    data_dir = Path(str(cfg.get("data-dir") or config.DEFAULT_DATA_DIR))
    server_dir = data_dir / "server"
    tls_dir = server_dir / "tls"
    name, node_ip, external_ip, labels, taints = _node_settings(cfg)
    bind = str(cfg.get("bind-address") or "0.0.0.0")
    port = int(cfg.get("https-listen-port") or 6443)
    advertise = str(cfg.get("advertise-address") or node_ip)
    join = cfg.get("server")
    token = config.read_token(cfg, "token")
    agent_token = config.read_token(cfg, "agent-token")
    if cfg.get("datastore-endpoint"):
        log("warning", "datastore-endpoint is not supported by the stand-in; using its own datastore")
    if cfg.get("secrets-encryption"):
        log("info", "Secrets encryption is enabled (stand-in: secrets are stored as given)")
    stored = server_dir / "token"
    if token and stored.is_file() and config.parse_token(token)[2] != config.parse_token(stored.read_text(encoding="utf-8"))[2]:
        raise Fatal(DIFFERENT_TOKEN)
    upstream = None
    if join:
        join = str(join).rstrip("/")
        if not token:
            raise Fatal("--token is required when joining a server with --server")
        ca_hash, user, secret = config.parse_token(token)
        ca_pem = fetch_ca(join, ca_hash, float(os.environ.get("K3S_STANDIN_CONNECT_TIMEOUT", "30")))
        context = _verified(ca_pem)
        try:
            boot = node.request(f"{join}/v1-k3s/server-bootstrap", context, auth=node.basic("server", secret))
        except node.HttpError as err:
            raise Fatal(f"Failed to validate connection to cluster at {join}: token is not valid: {join}/v1-k3s/server-bootstrap: {err}") from err
        except OSError as exc:
            raise Fatal(f"Failed to validate connection to cluster at {join}: {exc}") from exc
        if not isinstance(boot, dict) or "ca_key" not in boot:
            raise Fatal(f"{join}/v1-k3s/server-bootstrap: unexpected answer")
        tls_dir.mkdir(parents=True, exist_ok=True)
        apiserver.write_secret(tls_dir / "server-ca.key", boot["ca_key"])
        (tls_dir / "server-ca.crt").write_text(boot["ca_cert"], encoding="utf-8")
        server_secret, agent_secret, admin_token = boot["server_secret"], boot["agent_secret"], boot["admin_token"]
        upstream = join
        log("info", f"Joined the cluster of {join}; API requests are forwarded to it")
    sans = [name, socket.gethostname(), node_ip, advertise, external_ip or "", bind if bind not in ("0.0.0.0", "::") else ""]
    sans += [str(s) for s in cfg.get("tls-san") or []]
    ca_pem, ca_key, cert, key, unused_ca_path = apiserver.make_certs(tls_dir, hostnames=[s for s in sans if s])
    chash = pki.ca_hash(ca_pem)
    if not join:
        server_secret = agent_secret = None
        if token:
            given_hash, unused, server_secret = config.parse_token(token)
            if given_hash and given_hash != chash:
                raise Fatal(f"token CA hash does not match the Cluster CA certificate hash: {given_hash} != {chash}")
        elif (server_dir / "token").exists():
            server_secret = config.parse_token((server_dir / "token").read_text(encoding="utf-8"))[2]
        server_secret = server_secret or secrets.token_hex(16)
        if agent_token:
            agent_secret = config.parse_token(agent_token)[2]
        elif (server_dir / "agent-token").exists():
            agent_secret = config.parse_token((server_dir / "agent-token").read_text(encoding="utf-8"))[2]
        agent_secret = agent_secret or server_secret
        cred = server_dir / "cred" / "admin.token"
        admin_token = cred.read_text(encoding="utf-8").strip() if cred.exists() else secrets.token_hex(24)
        apiserver.write_secret(cred, admin_token + "\n")
    elif agent_token:
        agent_secret = config.parse_token(agent_token)[2]
    apiserver.write_secret(server_dir / "token", f"K10{chash}::server:{server_secret}\n")
    apiserver.write_secret(server_dir / "agent-token", f"K10{chash}::node:{agent_secret}\n")
    node_token = server_dir / "node-token"
    if not node_token.is_symlink():
        if node_token.exists():
            node_token.unlink()
        node_token.symlink_to("token")
    store = apiserver.Store(None if join else server_dir / "db" / apiserver.STATE_FILE)
    bootstrap = {"ca_cert": ca_pem, "ca_key": ca_key.pem(), "server_secret": server_secret, "agent_secret": agent_secret, "admin_token": admin_token}
    try:
        api = apiserver.ApiServer(store, apiserver.Auth(admin_token, server_secret, agent_secret), ca_pem, cert, key, bind, port,
                                  upstream=upstream, bootstrap=bootstrap,
                                  heartbeat_grace=float(os.environ.get("K3S_STANDIN_NODE_GRACE", "40")), log=log)
    except OSError as exc:
        raise Fatal(f"starting kubernetes: preparing server: failed to listen on {bind}:{port}: {exc.strerror or exc}") from exc
    api.start()
    log("info", f"Running kube-apiserver --advertise-address={advertise} --bind-address={bind} --secure-port={port} (stand-in)")
    disabled = {str(d) for d in cfg.get("disable") or []}
    _stage(server_dir, disabled)
    if not join:
        _addons(store, disabled)
        _controllers(store, cfg, server_dir, disabled)
    local = "127.0.0.1" if bind in ("0.0.0.0", "127.0.0.1") else (f"[{bind}]" if ":" in bind else bind)
    local = "[::1]" if bind == "::" else local
    kubeconfig = Path(str(cfg.get("write-kubeconfig") or config.DEFAULT_KUBECONFIG))
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    apiserver.write_secret(kubeconfig, apiserver.kubeconfig_text(f"https://{local}:{port}", ca_pem, admin_token),
                           _mode(cfg.get("write-kubeconfig-mode") or "0600"))
    log("info", f"Wrote kubeconfig {kubeconfig}")
    roles = {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}
    if cfg.get("cluster-init") or join:
        roles["node-role.kubernetes.io/etcd"] = "true"
    annotations = {"k3s.io/node-args": node_args("server", cfg)}
    # A joining server's node passes the node-password check through the first server (nodepassword.Ensure);
    # the first server checks its own node against its local password file (k3s-io/k3s pkg/server/router.go,
    # verifyLocalPassword), which always matches here, so the stand-in skips it there.
    runner = node.NodeRunner(f"https://{local}:{port}", _verified(ca_pem), node.basic("node", agent_secret),
                             node.node_object(name, node_ip, external_ip, dict(roles, **labels), taints, annotations),
                             password=node.password_file(data_dir, Path(config.DEFAULT_DATA_DIR)) if join else None)
    # k3s-io/k3s pkg/cli/server/server.go, run(): "k3s is up and running" and READY=1 come once the
    # apiserver is ready; the embedded agent's kubelet registers the node afterwards. So a server is
    # "started" for systemd before its node object exists: the stand-in registers it later.
    log("info", "k3s is up and running")
    sd_notify("READY=1")
    stop = threading.Event()

    def register_node() -> None:
        if stop.wait(float(os.environ.get("K3S_STANDIN_REGISTER_DELAY", "3"))):
            return
        while not stop.is_set():
            try:
                runner.register()
                break
            except (node.HttpError, OSError) as exc:
                log("error", f"Unable to register node {name} with API server: {exc}")
                stop.wait(2)
        if netstate.wanted(data_dir, Path(config.DEFAULT_DATA_DIR)):
            netstate.setup(name, node_ip, str(cfg.get("flannel-iface") or ""), log)
        log("info", f"Node {name} registered and Ready")
        _start_kubelet(runner, data_dir, stop)
        runner.loop()

    threading.Thread(target=register_node, daemon=True).start()
    _wait_for_signal(stop)
    runner.stopped.set()
    api.stop()
    return 0


def _start_kubelet(runner: node.NodeRunner, data_dir: Path, stop: threading.Event) -> None:
    """The node's volumes and pods (kubelet.py) where the stand-in is a node; stops with the process."""
    if not kubelet.wanted(data_dir, Path(config.DEFAULT_DATA_DIR)):
        return
    agent = kubelet.Kubelet(runner.url, runner.context, runner.auth, runner.name,
                            os.environ.get("K3S_STANDIN_HOST_ROOT", "/"),
                            interval=float(os.environ.get("K3S_STANDIN_KUBELET_INTERVAL", "1")), log=log).start()
    threading.Thread(target=lambda: (stop.wait(), agent.stop()), daemon=True).start()


def run_agent(args: list) -> int:
    """`k3s agent`: register this node with a server and keep it Ready."""
    cfg = config.load("agent", args)
    log("info", f"Starting k3s agent {version.VERSION} ({version.git_commit()})")
    server = str(cfg.get("server") or "").rstrip("/")
    if not server:
        raise Fatal("--server is required")
    token = config.read_token(cfg, "token")
    if not token:
        raise Fatal("--token is required")
    ca_pem, context, auth = _validate_agent_join(server, token)
    data_dir = Path(str(cfg.get("data-dir") or config.DEFAULT_DATA_DIR))
    (data_dir / "agent").mkdir(parents=True, exist_ok=True)
    (data_dir / "agent" / "server-ca.crt").write_text(ca_pem, encoding="utf-8")
    name, node_ip, external_ip, labels, taints = _node_settings(cfg)
    annotations = {"k3s.io/node-args": node_args("agent", cfg)}
    runner = node.NodeRunner(server, context, auth, node.node_object(name, node_ip, external_ip, labels, taints, annotations),
                             password=node.password_file(data_dir, Path(config.DEFAULT_DATA_DIR)))
    # k3s-io/k3s pkg/agent/config/config.go, Get(): the agent's configuration (and with it the node's
    # registration) is retried with jitter, 5 to 10 seconds apart, until it succeeds.
    while True:
        try:
            runner.register()
            break
        except (node.HttpError, OSError) as exc:
            log("info", f"Waiting to retrieve agent configuration; server is not ready: {getattr(exc, 'reason', exc)}")
            time.sleep(5 + 5 * secrets.randbelow(1000) / 1000)
    if netstate.wanted(data_dir, Path(config.DEFAULT_DATA_DIR)):
        netstate.setup(name, node_ip, str(cfg.get("flannel-iface") or ""), log)
    log("info", f"k3s agent is up and running; node {name} is Ready")
    sd_notify("READY=1")
    threading.Thread(target=runner.loop, daemon=True).start()
    stop = threading.Event()
    _start_kubelet(runner, data_dir, stop)
    _wait_for_signal(stop)
    runner.stopped.set()
    return 0


KUBECTL_ENV = "K3S_STANDIN_KUBECTL"


def run_kubectl(args: list) -> int:
    """`k3s kubectl` / the kubectl link: exec the real kubectl (v1.35.2, ../shared/upstream/SOURCE.md).

    K3s embeds kubectl; before running it, it points KUBECONFIG at K3s's admin kubeconfig when neither
    --kubeconfig nor $KUBECONFIG is given and that file exists (k3s-io/k3s pkg/kubectl/main.go, Main()).
    """
    from . import helm  # pylint: disable=import-outside-toplevel
    real = helm.upstream_binary("kubectl", KUBECTL_ENV)
    if real is None:
        sys.stderr.write(f"k3s (lab stand-in): the real kubectl is missing: set {KUBECTL_ENV} or install it at "
                         f"{helm.LAB_UPSTREAM / 'bin' / 'kubectl'} (tests/bin/setup.sh upstream extracts it)\n")
        return 1
    env = dict(os.environ)
    given = env.get("KUBECONFIG") or any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in args)
    if not given and Path(config.DEFAULT_KUBECONFIG).is_file():
        env["KUBECONFIG"] = config.DEFAULT_KUBECONFIG
    os.execve(str(real), ["kubectl", *args], env)
    return 1  # not reached


def run_no_runtime(name: str) -> int:
    """crictl and ctr talk to K3s's containerd, which the stand-in does not run; they fail as with no socket."""
    sock = "/run/k3s/containerd/containerd.sock"
    log("fatal", f"{name}: failed to connect to {sock}: connect: no such file or directory (lab stand-in: no container runtime)")
    return 1


def run_completion(args: list) -> int:
    """`k3s completion bash|zsh`: the script on stdout (k3s-io/k3s pkg/cli/completion/completion.go, Run)."""
    shells = {"bash": ("#! /bin/bash\n_cli_bash_autocomplete() {\nif [[ \"${COMP_WORDS[0]}\" != \"source\" ]]; then\n"
                       "\tlocal cur opts base\n\tCOMPREPLY=()\n\tcur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
                       "\topts=$( ${COMP_WORDS[@]:0:$COMP_CWORD} --generate-bash-completion )\n"
                       "\tCOMPREPLY=( $(compgen -W \"${opts}\" -- ${cur}) )\n\treturn 0\nfi\n}\n\n"
                       "complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete k3s\n"),
              "zsh": ("#compdef k3s\n_cli_zsh_autocomplete() {\n\tlocal -a opts\n"
                      "\topts=(\"${(@f)$(_CLI_ZSH_AUTOCOMPLETE_HACK=1 ${words[@]:0:#words[@]-1} --generate-bash-completion)}\")\n"
                      "\t_describe 'values' opts\n\treturn\n}\n\ncompdef _cli_zsh_autocomplete k3s\n")}
    positional = [a for a in args if not a.startswith("-")]
    if not positional:
        log("fatal", "must provide a valid SHELL argument")
        return 1
    if positional[0] not in shells:
        log("fatal", f"unkown shell: {positional[0]}")  # sic, upstream's spelling
        return 1
    if "-i" in args:
        sys.stderr.write("k3s (lab stand-in): completion -i (install into the shell's rc file) is not modelled\n")
        return 1
    sys.stdout.write(shells[positional[0]])
    return 0


def main(argv: list | None = None) -> int:
    """Entry point of the `k3s` zipapp and `python -m standins.k3s`."""
    called = os.path.basename(sys.argv[0]) if argv is None and sys.argv else "k3s"
    args = list(sys.argv[1:] if argv is None else argv)
    if called == "kubectl":
        return run_kubectl(args)
    if called in ("crictl", "ctr"):
        return run_no_runtime(called)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 1
    cmd, rest = args[0], args[1:]
    if cmd in ("--version", "-v"):
        sys.stdout.write(version_text())
        return 0
    if "--debug" in rest:
        rest.remove("--debug")
    try:
        if cmd == "server":
            return run_server(rest)
        if cmd == "agent":
            return run_agent(rest)
        if cmd == "kubectl":
            return run_kubectl(rest)
        if cmd in ("crictl", "ctr"):
            return run_no_runtime(cmd)
        if cmd == "completion":
            return run_completion(rest)
    except KeyboardInterrupt:
        return 130
    sys.stderr.write(f"k3s: unsupported command {cmd!r} in the lab stand-in (server, agent, kubectl, crictl, ctr, completion, --version)\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())

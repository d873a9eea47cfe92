"""`k3s kubectl` subset: get, cordon, uncordon, drain, delete, apply, create, label, wait, version."""
from __future__ import annotations

import base64
import json
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.parse

from . import version, yamlish
from .apiserver import parse_iso
from .config import DEFAULT_KUBECONFIG
from .node import HttpError, request

VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "-l", "--selector", "--field-selector", "-f", "--filename",
               "--kubeconfig", "--timeout", "--for", "--raw", "--grace-period", "--context", "--pod-selector"}


class KubectlError(Exception):
    """Printed as 'error: ...' (or 'Error from server (...)') with exit 1."""


def parse(args: list) -> tuple:
    """Split kubectl args into (positionals, {flag: value or True})."""
    pos, flags = [], {}
    idx = 0
    while idx < len(args):
        arg = args[idx]
        idx += 1
        if arg.startswith("-") and arg != "-":
            name, has_value, value = arg.partition("=")
            if not has_value and name in VALUE_FLAGS:
                if idx >= len(args):
                    raise KubectlError(f"flag needs an argument: {name}")
                value, idx = args[idx], idx + 1
            elif not has_value:
                value = True
            flags[{"-n": "--namespace", "-o": "--output", "-l": "--selector", "-f": "--filename", "-A": "--all-namespaces"}.get(name, name)] = value
        else:
            pos.append(arg)
    return pos, flags


class Client:
    """Minimal REST client from a kubeconfig."""

    def __init__(self, path: str):
        try:
            with open(path, encoding="utf-8") as handle:
                cfg = yamlish.load(handle.read()) or {}
        except OSError as exc:
            raise KubectlError(f"unable to read kubeconfig {path}: {exc.strerror}") from exc
        current = cfg.get("current-context")
        ctx = next((c["context"] for c in cfg.get("contexts", []) if c.get("name") == current), {})
        cluster = next((c["cluster"] for c in cfg.get("clusters", []) if c.get("name") == ctx.get("cluster")), {})
        user = next((u["user"] for u in cfg.get("users", []) if u.get("name") == ctx.get("user")), {}) or {}
        self.server = cluster.get("server", "").rstrip("/")
        self.namespace = ctx.get("namespace") or "default"
        if cluster.get("insecure-skip-tls-verify"):
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            self.context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        else:
            self.context = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
        self.auth = None
        if user.get("token"):
            self.auth = f"Bearer {user['token']}"
        elif user.get("username"):
            self.auth = "Basic " + base64.b64encode(f"{user['username']}:{user.get('password', '')}".encode()).decode()
        if user.get("client-certificate-data"):
            with tempfile.TemporaryDirectory() as tmp:
                crt, key = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
                for name, field in ((crt, "client-certificate-data"), (key, "client-key-data")):
                    with open(name, "wb") as handle:
                        handle.write(base64.b64decode(user[field]))
                self.context.load_cert_chain(crt, key)
        self._resources = None

    def call(self, method: str, path: str, body=None, content_type: str = "application/json"):
        """Request; API errors become KubectlError('Error from server (Reason): message')."""
        try:
            return request(self.server + path, self.context, method, body, self.auth, content_type)
        except HttpError as err:
            try:
                status = json.loads(err.body)
                raise KubectlError(f"Error from server ({status.get('reason', err.reason)}): {status.get('message', err.body)}") from err
            except ValueError:
                raise KubectlError(f"Error from server: {err.code} {err.reason}: {err.body.strip()}") from err
        except OSError as exc:
            raise KubectlError(f"The connection to the server {self.server} was refused - did you specify the right host or port? ({exc})") from exc

    def resources(self) -> list:
        """Discovered resources: dicts with group, version, name, kind, namespaced, shortNames."""
        if self._resources is None:
            found = []
            lists = [("", "v1", self.call("GET", "/api/v1"))]
            for group in self.call("GET", "/apis").get("groups", []):
                gv = group["preferredVersion"]["groupVersion"]
                lists.append((group["name"], group["preferredVersion"]["version"], self.call("GET", f"/apis/{gv}")))
            for group, ver, rlist in lists:
                for res in rlist.get("resources", []):
                    if "/" not in res["name"]:
                        found.append(dict(res, group=group, version=ver))
            self._resources = found
        return self._resources

    def resolve(self, text: str, api_version: str | None = None) -> dict:
        """Find a resource by plural, singular, short name, kind or plural.group (or kind + apiVersion)."""
        lowered = text.lower()
        for res in self.resources():
            if api_version is not None:
                group = api_version.rpartition("/")[0]
                if res["kind"] == text and res["group"] == group:
                    return res
                continue
            names = {res["name"], res.get("singularName", ""), res["kind"].lower(), *res.get("shortNames", [])}
            if lowered in names or (res["group"] and lowered in {f"{n}.{res['group']}" for n in names}):
                return res
        raise KubectlError(f'the server doesn\'t have a resource type "{text}"')

    @staticmethod
    def path(res: dict, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        """REST path of a resource."""
        base = f"/apis/{res['group']}/{res['version']}" if res["group"] else "/api/v1"
        if res["namespaced"] and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{res['name']}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


def _age(obj: dict) -> str:
    seconds = int(time.time() - parse_iso(obj["metadata"].get("creationTimestamp", "")))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _node_status(obj: dict) -> str:
    ready = next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), {})
    text = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "NotReady" if not ready else "Unknown")
    if ready.get("status") == "Unknown":
        text = "NotReady"
    if obj.get("spec", {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def _address(obj: dict, kind: str) -> str:
    return next((a["address"] for a in obj.get("status", {}).get("addresses", []) if a.get("type") == kind), "<none>")


def _columns(res: dict, obj: dict, wide: bool) -> list:
    meta = obj["metadata"]
    if res["kind"] == "Node":
        roles = sorted(k.split("/", 1)[1] for k in meta.get("labels", {}) if k.startswith("node-role.kubernetes.io/"))
        info = obj.get("status", {}).get("nodeInfo", {})
        cols = [("NAME", meta["name"]), ("STATUS", _node_status(obj)), ("ROLES", ",".join(roles) or "<none>"), ("AGE", _age(obj)),
                ("VERSION", info.get("kubeletVersion", ""))]
        if wide:
            cols += [("INTERNAL-IP", _address(obj, "InternalIP")), ("EXTERNAL-IP", _address(obj, "ExternalIP")),
                     ("OS-IMAGE", info.get("osImage", "")), ("KERNEL-VERSION", info.get("kernelVersion", "")),
                     ("CONTAINER-RUNTIME", info.get("containerRuntimeVersion", ""))]
        return cols
    if res["kind"] == "Pod":
        count = len(obj.get("spec", {}).get("containers", []))
        ready = count if obj.get("status", {}).get("phase") == "Running" else 0
        cols = [("NAME", meta["name"]), ("READY", f"{ready}/{count}"), ("STATUS", obj.get("status", {}).get("phase", "")),
                ("RESTARTS", "0"), ("AGE", _age(obj))]
        if wide:
            cols += [("IP", obj.get("status", {}).get("podIP", "<none>")), ("NODE", obj.get("spec", {}).get("nodeName", "<none>"))]
        return cols
    if res["kind"] == "Namespace":
        return [("NAME", meta["name"]), ("STATUS", obj.get("status", {}).get("phase", "")), ("AGE", _age(obj))]
    if res["kind"] in ("Deployment", "StatefulSet"):
        status = obj.get("status", {})
        return [("NAME", meta["name"]), ("READY", f"{status.get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 1)}"), ("AGE", _age(obj))]
    return [("NAME", meta["name"]), ("AGE", _age(obj))]


def _table(rows: list, no_headers: bool) -> str:
    if not rows:
        return ""
    widths = [max(len(str(r[i][1])) for r in rows + [[(c, c) for c, unused in rows[0]]]) for i in range(len(rows[0]))]
    lines = [] if no_headers else ["   ".join(c.ljust(w) for (c, unused), w in zip(rows[0], widths)).rstrip()]
    for row in rows:
        lines.append("   ".join(str(v).ljust(w) for (unused, v), w in zip(row, widths)).rstrip())
    return "\n".join(lines) + "\n"


# --- jsonpath subset -----------------------------------------------------------------------

def _jp_eval(path: str, data) -> list:
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    results = [data]
    for token in re.findall(r"\.\.?[^.\[]+|\[[^\]]*\]", path):
        nxt = []
        for item in results:
            if token.startswith("["):
                inner = token[1:-1]
                if inner == "*":
                    nxt.extend(item if isinstance(item, list) else list(item.values()) if isinstance(item, dict) else [])
                elif inner.startswith("?("):
                    match = re.match(r"\?\(@\.([\w.\-/]+)\s*(==|!=)\s*[\"']?([^\"')]*)[\"']?\)", inner)
                    for elem in item if isinstance(item, list) else []:
                        value = _jp_eval("." + match.group(1), elem)
                        hit = bool(value) and str(value[0]) == match.group(3)
                        if hit == (match.group(2) == "=="):
                            nxt.append(elem)
                elif inner.lstrip("-").isdigit() and isinstance(item, list):
                    try:
                        nxt.append(item[int(inner)])
                    except IndexError:
                        pass
                elif isinstance(item, dict) and inner.strip("'\"") in item:
                    nxt.append(item[inner.strip("'\"")])
            else:
                key = token.lstrip(".")
                if key == "*":
                    nxt.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else [])
                elif isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        results = nxt
    return results


def _jp_text(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def jsonpath(template: str, data) -> str:
    """Render a kubectl jsonpath template ({.a.b}, [*], [n], [?(@.k=="v")], range/end, quoted literals)."""
    parts = re.split(r"(\{[^{}]*\})", template)

    def render(items, scope) -> str:
        text, pos = "", 0
        while pos < len(items):
            part = items[pos]
            pos += 1
            if not (part.startswith("{") and part.endswith("}")):
                text += part
                continue
            expr = part[1:-1].strip()
            if expr.startswith("range "):
                depth, end = 1, pos
                while end < len(items) and depth:
                    inner = items[end][1:-1].strip() if items[end].startswith("{") else ""
                    depth += 1 if inner.startswith("range ") else -1 if inner == "end" else 0
                    end += 1
                body = items[pos:end - 1]
                for elem in _jp_eval(expr[6:], scope):
                    text += render(body, elem)
                pos = end
            elif expr.startswith('"') or expr.startswith("'"):
                text += expr[1:-1].encode().decode("unicode_escape")
            else:
                text += " ".join(_jp_text(v) for v in _jp_eval(expr, scope))
        return text

    return render(parts, data)


# --- commands --------------------------------------------------------------------------

def _kind_name(pos: list) -> list:
    """[(kind, name or None)] from 'kind name...' or 'kind/name ...' positionals."""
    if not pos:
        raise KubectlError("You must specify the type of resource to get.")
    if "/" in pos[0]:
        return [tuple(p.split("/", 1)) for p in pos]
    if len(pos) == 1:
        return [(pos[0], None)]
    return [(pos[0], name) for name in pos[1:]]


def _display(res: dict) -> str:
    return f"{res['kind'].lower()}.{res['group']}" if res["group"] else res["kind"].lower()


def cmd_get(client: Client, pos: list, flags: dict) -> str:
    """kubectl get."""
    if flags.get("--raw"):
        result = client.call("GET", flags["--raw"])
        return (result if isinstance(result, str) else json.dumps(result)) + "\n"
    output = flags.get("--output", "")
    all_ns = flags.get("--all-namespaces")
    items, res = [], None
    targets = _kind_name(pos)
    single = len(targets) == 1 and targets[0][1] is not None
    for kind, name in targets:
        res = client.resolve(kind)
        namespace = None if all_ns else flags.get("--namespace", client.namespace)
        if name:
            items.append(client.call("GET", client.path(res, namespace, name)))
        else:
            query = {k: v for k, v in (("labelSelector", flags.get("--selector")), ("fieldSelector", flags.get("--field-selector"))) if v}
            listing = client.call("GET", client.path(res, namespace) + ("?" + urllib.parse.urlencode(query) if query else ""))
            items.extend(listing.get("items", []))
    data = items[0] if single and len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
    if output == "json":
        return json.dumps(data, indent=4) + "\n"
    if output == "yaml":
        return yamlish.dump(data)
    if output == "name":
        return "".join(f"{_display(client.resolve(i['kind'], i['apiVersion']))}/{i['metadata']['name']}\n" for i in items)
    if output.startswith("jsonpath="):
        return jsonpath(output[len("jsonpath="):].strip("'"), data)
    if not items:
        namespace = flags.get("--namespace", client.namespace)
        sys.stderr.write("No resources found" + ("" if all_ns or not res["namespaced"] else f" in {namespace} namespace") + ".\n")
        return ""
    rows = []
    for item in items:
        row = _columns(client.resolve(item["kind"], item["apiVersion"]), item, output == "wide")
        if all_ns and item["metadata"].get("namespace"):
            row = [("NAMESPACE", item["metadata"]["namespace"])] + row
        rows.append(row)
    return _table(rows, bool(flags.get("--no-headers")))


def _set_unschedulable(client: Client, name: str, value: bool) -> str:
    res = client.resolve("nodes")
    current = client.call("GET", client.path(res, None, name))
    word = "cordoned" if value else "uncordoned"
    if bool(current.get("spec", {}).get("unschedulable")) == value:
        return f"node/{name} already {word}\n"
    client.call("PATCH", client.path(res, None, name), {"spec": {"unschedulable": True if value else None}}, "application/merge-patch+json")
    return f"node/{name} {word}\n"


def _duration(text) -> float:
    if text in (None, True, "", "0", "0s"):
        return 0.0
    total = 0.0
    for amount, unit in re.findall(r"([0-9.]+)(ms|s|m|h)?", str(text)):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}[unit]
    return total


def cmd_drain(client: Client, name: str, flags: dict) -> str:
    """kubectl drain: cordon, then evict the node's pods (DaemonSet/mirror pods skipped with --ignore-daemonsets)."""
    sys.stdout.write(_set_unschedulable(client, name, True))
    sys.stdout.flush()
    pods_res = client.resolve("pods")
    selectors = {"fieldSelector": f"spec.nodeName={name}"}
    if flags.get("--pod-selector"):
        selectors["labelSelector"] = flags["--pod-selector"]
    query = urllib.parse.urlencode(selectors)
    pods = client.call("GET", client.path(pods_res, None) + "?" + query).get("items", [])
    errors, evict, ignored = [], [], []
    for pod in pods:
        meta = pod["metadata"]
        owners = meta.get("ownerReferences") or []
        ident = f"{meta['namespace']}/{meta['name']}"
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        if any(o.get("kind") == "DaemonSet" for o in owners):
            if flags.get("--ignore-daemonsets"):
                ignored.append(ident)
                continue
            errors.append(f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {ident}")
            continue
        if not any(o.get("controller") for o in owners) and not flags.get("--force"):
            errors.append(f"cannot delete Pods that declare no controller (use --force to override): {ident}")
            continue
        if any("emptyDir" in v for v in pod.get("spec", {}).get("volumes", []) or []) and not (
                flags.get("--delete-emptydir-data") or flags.get("--delete-local-data")):
            errors.append(f"cannot delete Pods with local storage (use --delete-emptydir-data to override): {ident}")
            continue
        evict.append(pod)
    if errors:
        raise KubectlError(f"unable to drain node \"{name}\" due to error: " + ", ".join(errors) + ", continuing command...\n"
                           "There are pending nodes to be drained:\n " + name)
    if ignored:
        sys.stderr.write(f"Warning: ignoring DaemonSet-managed Pods: {', '.join(ignored)}\n")
    for pod in evict:
        meta = pod["metadata"]
        sys.stdout.write(f"evicting pod {meta['namespace']}/{meta['name']}\n")
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        client.call("POST", client.path(pods_res, meta["namespace"], meta["name"], "eviction"), body)
    timeout = _duration(flags.get("--timeout"))
    deadline = time.time() + (timeout or 3600)
    for pod in evict:
        meta = pod["metadata"]
        while True:
            try:
                client.call("GET", client.path(pods_res, meta["namespace"], meta["name"]))
            except KubectlError:
                sys.stdout.write(f"pod/{meta['name']} evicted\n")
                break
            if time.time() > deadline:
                raise KubectlError(f"error when waiting for pod \"{meta['name']}\" in namespace \"{meta['namespace']}\" to terminate: "
                                   "global timeout reached: " + str(flags.get("--timeout")))
            time.sleep(0.5)
    return f"node/{name} drained\n"


def _documents(flags: dict) -> list:
    path = flags.get("--filename")
    if not path or path is True:
        raise KubectlError("must specify one of -f and -k")
    if path == "-":
        text = sys.stdin.read()
        docs = yamlish.load_all(text)
    else:
        files = [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith((".yaml", ".yml", ".json"))] if os.path.isdir(path) else [path]
        docs = []
        for name in files:
            with open(name, encoding="utf-8") as handle:
                docs.extend(yamlish.load_all(handle.read()))
    out = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        elif isinstance(doc, dict):
            out.append(doc)
    return out


def cmd_apply(client: Client, flags: dict, create_only: bool = False) -> str:
    """kubectl apply/create -f (merge-patch of existing objects)."""
    text = ""
    for doc in _documents(flags):
        res = client.resolve(doc["kind"], doc["apiVersion"])
        namespace = (doc.get("metadata") or {}).get("namespace") or flags.get("--namespace", client.namespace) if res["namespaced"] else None
        name = doc["metadata"]["name"]
        label = f"{_display(res)}/{name}"
        try:
            current = client.call("GET", client.path(res, namespace, name))
        except KubectlError as err:
            if "(NotFound)" not in str(err):
                raise
            client.call("POST", client.path(res, namespace), doc)
            text += f"{label} created\n"
            continue
        if create_only:
            raise KubectlError(f'Error from server (AlreadyExists): error when creating "{flags["--filename"]}": {res["name"]} "{name}" already exists')
        updated = client.call("PATCH", client.path(res, namespace, name), doc, "application/merge-patch+json")
        same = updated["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        text += f"{label} {'unchanged' if same else 'configured'}\n"
    return text


def cmd_delete(client: Client, pos: list, flags: dict) -> str:
    """kubectl delete kind name... / kind/name / -f file."""
    targets = []
    if flags.get("--filename"):
        for doc in _documents(flags):
            res = client.resolve(doc["kind"], doc["apiVersion"])
            targets.append((res, doc["metadata"]["name"], doc["metadata"].get("namespace")))
    else:
        for kind, name in _kind_name(pos):
            if not name:
                raise KubectlError("resource(s) were provided, but no name was specified")
            targets.append((client.resolve(kind), name, None))
    text = ""
    for res, name, namespace in targets:
        namespace = namespace or flags.get("--namespace", client.namespace)
        try:
            client.call("DELETE", client.path(res, namespace, name))
        except KubectlError as err:
            if flags.get("--ignore-not-found") and "(NotFound)" in str(err):
                continue
            raise
        text += f'{_display(res)} "{name}" deleted\n'
    return text


def cmd_label(client: Client, pos: list, flags: dict) -> str:
    """kubectl label KIND NAME k=v k2- [--overwrite]."""
    if len(pos) < 2:
        raise KubectlError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    kind, name = pos[0].split("/", 1) if "/" in pos[0] else (pos[0], pos[1])
    changes = pos[1:] if "/" in pos[0] else pos[2:]
    res = client.resolve(kind)
    namespace = flags.get("--namespace", client.namespace)
    current = client.call("GET", client.path(res, namespace, name))
    labels = {}
    for change in changes:
        if change.endswith("-"):
            labels[change[:-1]] = None
        else:
            key, unused, value = change.partition("=")
            if key in (current["metadata"].get("labels") or {}) and not flags.get("--overwrite") and current["metadata"]["labels"][key] != value:
                raise KubectlError(f"'{key}' already has a value ({current['metadata']['labels'][key]}), and --overwrite is false")
            labels[key] = value
    client.call("PATCH", client.path(res, namespace, name), {"metadata": {"labels": labels}}, "application/merge-patch+json")
    return f"{_display(res)}/{name} labeled\n"


def cmd_wait(client: Client, pos: list, flags: dict) -> str:
    """kubectl wait --for=condition=X[=value]|delete KIND/NAME | KIND --all [--timeout=]."""
    cond = str(flags.get("--for", ""))
    deadline = time.time() + (_duration(flags.get("--timeout")) or 30)
    targets = _kind_name(pos)
    text = ""
    for kind, name in targets:
        res = client.resolve(kind)
        namespace = flags.get("--namespace", client.namespace)
        while True:
            try:
                items = [client.call("GET", client.path(res, namespace, name))] if name else \
                    client.call("GET", client.path(res, namespace)).get("items", [])
            except KubectlError:
                if cond == "delete":
                    break
                items = None
            if cond.startswith("condition="):
                ctype, unused, want = cond[len("condition="):].partition("=")
                want = want or "True"
                if items and all(any(c.get("type", "").lower() == ctype.lower() and c.get("status") == want
                                     for c in i.get("status", {}).get("conditions", [])) for i in items):
                    text += "".join(f"{_display(res)}/{i['metadata']['name']} condition met\n" for i in items)
                    break
            if time.time() > deadline:
                raise KubectlError(f"timed out waiting for the condition on {res['name']}/{name or ''}")
            time.sleep(0.5)
    return text


def main(args: list) -> int:
    """`k3s kubectl ...`."""
    try:
        pos, flags = parse(args)
        if not pos:
            sys.stderr.write("kubectl controls the Kubernetes cluster manager (stand-in subset).\n")
            return 1
        verb, rest = pos[0], pos[1:]
        path = flags.get("--kubeconfig") or (os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]) or DEFAULT_KUBECONFIG
        if verb == "version" and flags.get("--client"):
            sys.stdout.write(f"Client Version: {version.VERSION}\nKustomize Version: v5.4.2\n")
            return 0
        client = Client(path)
        if verb == "version":
            server = client.call("GET", "/version")
            sys.stdout.write(f"Client Version: {version.VERSION}\nKustomize Version: v5.4.2\nServer Version: {server['gitVersion']}\n")
        elif verb == "get":
            sys.stdout.write(cmd_get(client, rest, flags))
        elif verb in ("cordon", "uncordon"):
            for name in rest:
                sys.stdout.write(_set_unschedulable(client, name, verb == "cordon"))
        elif verb == "drain":
            for name in rest:
                sys.stdout.write(cmd_drain(client, name, flags))
        elif verb == "apply":
            sys.stdout.write(cmd_apply(client, flags))
        elif verb == "create":
            if rest[:1] in (["namespace"], ["ns"]) and len(rest) == 2:
                client.call("POST", "/api/v1/namespaces", {"metadata": {"name": rest[1]}})
                sys.stdout.write(f"namespace/{rest[1]} created\n")
            else:
                sys.stdout.write(cmd_apply(client, flags, create_only=True))
        elif verb == "delete":
            sys.stdout.write(cmd_delete(client, rest, flags))
        elif verb == "label":
            sys.stdout.write(cmd_label(client, rest, flags))
        elif verb == "wait":
            sys.stdout.write(cmd_wait(client, rest, flags))
        else:
            raise KubectlError(f'unknown command "{verb}" for "kubectl" (the lab stand-in supports get, cordon, uncordon, drain, '
                               "delete, apply, create, label, wait, version)")
        return 0
    except KubectlError as err:
        text = str(err)
        sys.stderr.write(("" if text.startswith("Error from server") else "error: ") + text + "\n")
        return 1

"""K3s's packaged Traefik (lab and tests only): K3s's traefik.yaml, and Traefik's Gateway API status writer.

1. `stage()` writes `<data-dir>/server/manifests/traefik.yaml` at every server start, as K3s stages its
   packaged manifests (k3s-io/k3s pkg/deploy/stage.go, Stage(): written 0600, skipped when disabled): the
   HelmCharts `traefik-crd` and `traefik` of kube-system with K3s's own values (k3s-io/k3s
   manifests/traefik.yaml: podAnnotations, publishedService, priorityClassName, image, tolerations,
   ipFamilyPolicy; `set: global.systemDefaultRegistry: ""`). The stand-in's Helm controller renders them
   with the real helm, with a HelmChartConfig `kube-system/traefik` merged after K3s's values (helm.py), so
   Traefik's Deployment, Service, IngressClass and, from traefik-crd, the Gateway API CRDs arrive as on a
   real server. Deviation: the chart packages are K3s's 39.0.701+up39.0.7 (Traefik v3.6.12, Gateway API
   v1.4.0 standard, 6 CRDs) for every K3s version, the newest in ../shared/upstream/charts; the pinned
   K3s releases ship chart 40.x (Traefik v3.7.8, Gateway API v1.5.1, 8 CRDs).
   `--disable=traefik` is honoured as K3s does: the file is not written, and one left from an earlier start
   is deleted with its objects by the deploy controller (manifests.py, k3s-io/k3s pkg/deploy/controller.go
   listFilesIn(), shouldDisableFile(), delete()).

2. `GatewayStatus` plays Traefik's Kubernetes Gateway provider while a Deployment rendered from the
   `traefik` HelmChart exists (a Deployment with Helm's release annotation `traefik`): it reads that
   Deployment's container args, the flags Traefik itself parses, and writes the status Traefik writes
   (traefik/traefik v3.6.12, pkg/provider/kubernetes/gateway/; v3.7.8 has the same rules):
   * static_config.go (SetEffectiveConfiguration): entrypoints are `--entryPoints.<name>.address`, the
     address without its `/tcp` suffix (entrypoints.go GetAddress()), with HTTP TLS when any
     `--entryPoints.<name>.http.tls` flag is set; the provider runs only with `--providers.kubernetesgateway`;
   * kubernetes.go loadConfigurationFromGateways(): GatewayClasses whose controllerName is
     `traefik.io/gateway-controller` get Accepted=True/Handled; Gateways of those classes only;
     gatewayAddresses(): statusaddress.ip, else .hostname, else every status.loadBalancer.ingress entry of
     the statusaddress.service Service (a missing Service stops the whole pass, as upstream returns early);
   * loadGatewayListeners(), per listener, first failure wins: entryPointName() (an entrypoint whose address
     ends in `:<port>`, for HTTP one without HTTP TLS) else Accepted=False/PortUnavailable; allowedRoutes
     namespaces (allowedNamespaces()); supportedRouteKinds()/allowedRouteKinds(); duplicate
     protocol|hostname|port -> Conflicted/DuplicateListener; HTTP or TCP with tls -> InvalidTLSConfiguration;
     HTTPS: tls and a certificateRef of kind Secret in group ""/core, a ReferenceGrant across namespaces
     (isReferenceGranted()), the Secret with non-empty tls.crt and tls.key (getTLS(),
     getCertificateBlocks()) else ResolvedRefs=False/InvalidCertificateRef and Programmed=False/Invalid;
   * makeGatewayStatus(): valid listeners get Accepted, ResolvedRefs and Programmed True ("No error found");
     the Gateway Accepted and Programmed True ("Gateway successfully scheduled"), or Accepted=False/
     ListenersNotValid when any listener has a condition;
   * httproute.go loadHTTPRoutes(): one status.parents entry per parentRef of a route whose parents include a
     Traefik Gateway, controllerName traefik.io/gateway-controller, Accepted from matchListener(),
     allowRoute() and findMatchingHostnames() (reasons Accepted, NoMatchingParent, NotAllowedByListeners,
     NoMatchingListenerHostname), ResolvedRefs True; each accepted route counts in its listener's
     attachedRoutes; parents written by other controllers are kept;
   * client.go UpdateGatewayClassStatus()/UpdateGatewayStatus()/UpdateHTTPRouteStatus(): through the
     /status subresource, only when type, status, reason, message or observedGeneration of a condition,
     the addresses, a listener's attachedRoutes or a route's parents differ (conditionsEqual(),
     gatewayStatusEqual(), routeParentStatusesEqual()).
   Deviations: the certificate's PEM is not parsed (upstream also fails a Secret whose blocks are not a
   valid key pair); backendRefs are not resolved (ResolvedRefs is always True); GatewayClass
   supportedFeatures, GRPCRoutes and the experimental TCP/TLS routes are not written.
"""
from __future__ import annotations

import threading
from pathlib import Path

from .poller import Poller
from . import apiserver

CHART_VERSION = "39.0.701+up39.0.7"
CONTROLLER = "traefik.io/gateway-controller"  # kubernetes.go controllerName
GATEWAY_GROUP = "gateway.networking.k8s.io"
MANIFEST = f"""---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik-crd
  namespace: kube-system
spec:
  chart: https://%{{KUBERNETES_API}}%/static/charts/traefik-crd-{CHART_VERSION}.tgz
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik
  namespace: kube-system
spec:
  chart: https://%{{KUBERNETES_API}}%/static/charts/traefik-{CHART_VERSION}.tgz
  set:
    global.systemDefaultRegistry: ""
  valuesContent: |-
    deployment:
      podAnnotations:
        prometheus.io/port: "8082"
        prometheus.io/scrape: "true"
    providers:
      kubernetesIngress:
        publishedService:
          enabled: true
    priorityClassName: "system-cluster-critical"
    image:
      repository: "rancher/mirrored-library-traefik"
      tag: "3.6.12"
    tolerations:
    - key: "CriticalAddonsOnly"
      operator: "Exists"
    - key: "node-role.kubernetes.io/control-plane"
      operator: "Exists"
      effect: "NoSchedule"
    - key: "node-role.kubernetes.io/master"
      operator: "Exists"
      effect: "NoSchedule"
    service:
      ipFamilyPolicy: "PreferDualStack"
"""


def stage(manifests: Path, disabled: set) -> None:
    """Stage(): write traefik.yaml (0600) unless `traefik` is disabled."""
    if "traefik" in disabled:
        return
    manifests.mkdir(parents=True, exist_ok=True)
    path = manifests / "traefik.yaml"
    apiserver.write_secret(path, MANIFEST)


# --- Traefik's configuration, from its Deployment's arguments ---------------------------------------------

def provider_config(args: list) -> dict | None:
    """The Gateway provider's settings from Traefik's flags; None when the provider is off.

    Traefik's flags are case-insensitive (its paerser flag parser lowercases the keys).
    """
    flags = {}
    for arg in args:
        if not str(arg).startswith("--"):
            continue
        key, has_value, value = str(arg)[2:].partition("=")
        flags[key.lower()] = value if has_value else "true"
    if flags.get("providers.kubernetesgateway", "false").lower() == "false" and \
            not any(k.startswith("providers.kubernetesgateway.") for k in flags):
        return None
    entrypoints = {}
    for key, value in flags.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "entrypoints" and parts[2] == "address":
            entrypoints.setdefault(parts[1], {})["address"] = value.split("/", 1)[0]
    for key, value in flags.items():
        parts = key.split(".")
        if len(parts) >= 4 and parts[0] == "entrypoints" and parts[2:4] == ["http", "tls"] and parts[1] in entrypoints:
            if not (len(parts) == 4 and value.lower() == "false"):
                entrypoints[parts[1]]["tls"] = True
    prefix = "providers.kubernetesgateway."
    status_keys = [k for k in flags if k.startswith(prefix + "statusaddress.")]
    status = None
    if status_keys:
        status = {"ip": flags.get(prefix + "statusaddress.ip", ""), "hostname": flags.get(prefix + "statusaddress.hostname", ""),
                  "service": (flags.get(prefix + "statusaddress.service.name", ""), flags.get(prefix + "statusaddress.service.namespace", ""))}
    namespaces = [n for n in flags.get(prefix + "namespaces", "").split(",") if n]
    return {"entrypoints": entrypoints, "status": status, "namespaces": namespaces,
            "experimental": flags.get(prefix + "experimentalchannel", "false").lower() == "true"}


def entrypoint_name(config: dict, port: int, protocol: str) -> str | None:
    """entryPointName(): an entrypoint whose address ends in :<port>; for HTTP one without HTTP TLS."""
    for name, entrypoint in sorted(config["entrypoints"].items()):
        if str(entrypoint.get("address", "")).endswith(f":{port}"):
            if protocol == "HTTP" and entrypoint.get("tls"):
                continue
            return name
    return None


def _cond(ctype: str, status: str, reason: str, message: str, generation: int) -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": apiserver.now_iso()}


def _kinds(protocol: str, experimental: bool, generation: int) -> tuple:
    """supportedRouteKinds(): (kinds, conditions)."""
    group = GATEWAY_GROUP
    if protocol in ("HTTP", "HTTPS"):
        return [{"group": group, "kind": "HTTPRoute"}, {"group": group, "kind": "GRPCRoute"}], []
    if protocol == "TCP" and experimental:
        return [{"group": group, "kind": "TCPRoute"}], []
    if protocol == "TLS" and experimental:
        return [{"group": group, "kind": "TCPRoute"}, {"group": group, "kind": "TLSRoute"}], []
    if protocol in ("TCP", "TLS"):
        reason = "ProtocolConflict" if protocol == "TCP" else "InvalidRouteKinds"
        message = f'Protocol "{protocol}" requires the experimental channel support to be enabled, please use the `experimentalChannel` option'
    else:
        reason, message = "UnsupportedProtocol", f'Unsupported listener protocol "{protocol}"'
    cond = _cond("Conflicted", "True", reason, message, generation)
    cond.pop("observedGeneration")  # upstream sets none here
    return None, [cond]


class GatewayStatus(Poller):
    """Writes GatewayClass, Gateway and HTTPRoute status as Traefik's Gateway provider does."""

    thread_name = "traefik-gateway"
    log_name = "traefik (stand-in)"

    def __init__(self, store: apiserver.Store, interval: float = 1.0, log=None):
        self.store = store
        self.interval = interval
        self.log = log or (lambda *a, **k: None)
        self._stop = threading.Event()

    def _res(self, plural: str):
        return self.store.registry.get((GATEWAY_GROUP, "v1", plural))

    def traefik_args(self) -> list | None:
        """The args of the traefik container of a Deployment Helm rendered from the `traefik` HelmChart."""
        for deploy in self.store.list(self.store.find("apps", "v1", "deployments"), None):
            annotations = deploy["metadata"].get("annotations") or {}
            if annotations.get("meta.helm.sh/release-name") != "traefik":
                continue
            for container in ((deploy.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
                if container.get("name") == "traefik":
                    return [str(a) for a in container.get("args") or []]
        return None

    def sync(self) -> None:
        """One pass of loadConfigurationFromGateways()."""
        args = self.traefik_args()
        if args is None or self._res("gatewayclasses") is None or self._res("gateways") is None:
            return
        config = provider_config(args)
        if config is None:
            return
        addresses = self.addresses(config)
        if addresses is False:
            return
        watched = config["namespaces"]
        classes = set()
        for gwc in self.store.list(self._res("gatewayclasses"), None):
            if (gwc.get("spec") or {}).get("controllerName") != CONTROLLER:
                continue
            classes.add(gwc["metadata"]["name"])
            cond = _cond("Accepted", "True", "Handled", "Handled by Traefik controller", gwc["metadata"].get("generation", 1))
            conditions = [c for c in ((gwc.get("status") or {}).get("conditions") or []) if c.get("type") != "Accepted"] + [cond]
            self._write("gatewayclasses", gwc, dict(gwc.get("status") or {}, conditions=conditions))
        gateways = [g for g in self.store.list(self._res("gateways"), None)
                    if (g.get("spec") or {}).get("gatewayClassName") in classes and (not watched or g["metadata"]["namespace"] in watched)]
        listeners = []
        for gateway in gateways:
            listeners += self.listeners(gateway, config)
        if self._res("httproutes") is not None:
            self.routes(listeners, watched)
        for gateway in gateways:
            mine = [entry for entry in listeners if entry["gateway"] is gateway]
            self._write("gateways", gateway, self.gateway_status(gateway, mine, addresses))

    def addresses(self, config: dict):
        """gatewayAddresses(): a list, None (no status address configured) or False (the Service is missing)."""
        status = config["status"]
        if status is None:
            return None
        if status["ip"]:
            return [{"type": "IPAddress", "value": status["ip"]}]
        if status["hostname"]:
            return [{"type": "Hostname", "value": status["hostname"]}]
        name, namespace = status["service"]
        if name and namespace:
            try:
                svc = self.store.get(self.store.find("", "v1", "services"), namespace, name)
            except apiserver.ApiError:
                self.log("error", f"traefik (stand-in): Unable to get Gateway status addresses: getting service: "
                                  f'services "{name}" not found')
                return False
            out = []
            for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                if entry.get("ip"):
                    out.append({"type": "IPAddress", "value": entry["ip"]})
                elif entry.get("hostname"):
                    out.append({"type": "Hostname", "value": entry["hostname"]})
            return out
        self.log("error", "traefik (stand-in): Unable to get Gateway status addresses: empty Gateway status address configuration")
        return False

    def listeners(self, gateway: dict, config: dict) -> list:
        """loadGatewayListeners()."""
        gen = gateway["metadata"].get("generation", 1)
        namespace = gateway["metadata"]["namespace"]
        allocated, out = set(), []
        for listener in (gateway.get("spec") or {}).get("listeners") or []:
            entry = {"gateway": gateway, "name": listener["name"], "port": listener.get("port"), "hostname": listener.get("hostname"),
                     "attached": False, "namespaces": [], "kinds": [],
                     "status": {"name": listener["name"], "supportedKinds": [], "attachedRoutes": 0, "conditions": []}}
            out.append(entry)
            conditions = entry["status"]["conditions"]
            protocol = listener.get("protocol")
            if entrypoint_name(config, listener.get("port"), protocol) is None:
                conditions.append(_cond("Accepted", "False", "PortUnavailable", "Cannot find entryPoint for Gateway: no matching entryPoint "
                                                                                f'for port {listener.get("port")} and protocol "{protocol}"', gen))
                continue
            allowed = ((listener.get("allowedRoutes") or {}).get("namespaces") or {"from": "Same"})
            source = allowed.get("from") or "Same"
            if source == "All":
                entry["namespaces"] = [""]
            elif source == "Selector":
                selector = allowed.get("selector") or {}
                text = ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())
                entry["namespaces"] = [n["metadata"]["name"] for n in self.store.list(self.store.find("", "v1", "namespaces"), None, label_selector=text)]
            else:
                entry["namespaces"] = [namespace]
            kinds, conds = _kinds(protocol, config["experimental"], gen)
            if conds:
                conditions += conds
                continue
            wanted = ((listener.get("allowedRoutes") or {}).get("kinds")) or []
            if wanted:  # allowedRouteKinds()
                chosen = []
                for kind in wanted:
                    if not any(kind.get("kind") == k["kind"] and kind.get("group", GATEWAY_GROUP) == k["group"] for k in kinds):
                        conditions.append(_cond("ResolvedRefs", "False", "InvalidRouteKinds", f'Listener protocol "{protocol}" does not support '
                                                f'RouteGroupKind {kind.get("group", GATEWAY_GROUP)}/{kind.get("kind")}', gen))
                    elif all(c["kind"] != kind.get("kind") for c in chosen):
                        chosen.append({"group": kind.get("group", GATEWAY_GROUP), "kind": kind.get("kind")})
                kinds = chosen
            entry["kinds"] = [k["kind"] for k in kinds]
            entry["status"]["supportedKinds"] = kinds
            if conditions:
                continue
            key = f'{protocol}|{listener.get("hostname") or ""}|{listener.get("port")}'  # makeListenerKey()
            if key in allocated:
                conditions.append(_cond("Conflicted", "True", "DuplicateListener", "A listener with same protocol, port and hostname already exists", gen))
                continue
            allocated.add(key)
            tls = listener.get("tls")
            if protocol in ("HTTP", "TCP") and tls is not None:
                conditions.append(_cond("Accepted", "False", "InvalidTLSConfiguration",
                                        "TLS configuration must no be defined when using HTTP or TCP protocol", gen))  # sic, upstream's text
                continue
            if protocol in ("HTTPS", "TLS") and self._tls_conditions(listener, namespace, gen, conditions):
                continue
            entry["attached"] = True
        return out

    def _tls_conditions(self, listener: dict, namespace: str, gen: int, conditions: list) -> bool:
        """The HTTPS/TLS checks of loadGatewayListeners(); True when a condition was added."""
        tls, protocol = listener.get("tls"), listener.get("protocol")
        refs = (tls or {}).get("certificateRefs") or []
        mode = (tls or {}).get("mode")
        if tls is None or (not refs and mode is not None and mode != "Passthrough"):
            conditions.append(_cond("Accepted", "False", "InvalidTLSConfiguration",
                                    f'No TLS configuration for Gateway Listener {listener["name"]}:{listener.get("port")} and protocol "{protocol}"', gen))
            return True
        if mode == "Passthrough":
            if protocol == "HTTPS":
                conditions.append(_cond("Accepted", "False", "UnsupportedProtocol", "HTTPS protocol is not supported with TLS mode Passthrough", gen))
                return True
            return False
        if not refs:
            conditions.append(_cond("ResolvedRefs", "False", "InvalidCertificateRef", "One TLS CertificateRef is required in Terminate mode", gen))
            return True
        ref = refs[0]
        if ref.get("kind") != "Secret" or ref.get("group") not in ("", "core"):
            conditions.append(_cond("ResolvedRefs", "False", "InvalidCertificateRef",
                                    f'Unsupported TLS CertificateRef group/kind: {ref.get("group")}/{ref.get("kind")}', gen))
            return True
        secret_ns = ref.get("namespace") or namespace
        if secret_ns != namespace and not self._granted(namespace, secret_ns, ref["name"]):
            conditions.append(_cond("ResolvedRefs", "False", "RefNotPermitted",
                                    f'Cannot load CertificateRef {secret_ns}/{ref["name"]}: missing ReferenceGrant', gen))
            return True
        error = self._certificate_error(secret_ns, ref["name"])
        if error:
            message = f"Error while retrieving certificate: {error}"
            conditions += [_cond("ResolvedRefs", "False", "InvalidCertificateRef", message, gen), _cond("Programmed", "False", "Invalid", message, gen)]
            return True
        return False

    def _granted(self, from_ns: str, to_ns: str, name: str) -> bool:
        """isReferenceGranted() for a Gateway's Secret in another namespace."""
        res = self.store.registry.get((GATEWAY_GROUP, "v1beta1", "referencegrants"))
        if res is None:
            return False
        for grant in self.store.list(res, to_ns):
            spec = grant.get("spec") or {}
            if any(f.get("group") == GATEWAY_GROUP and f.get("kind") == "Gateway" and f.get("namespace") == from_ns for f in spec.get("from") or []) \
                    and any(t.get("group") in ("", "core") and t.get("kind") == "Secret" and t.get("name") in (None, "", name) for t in spec.get("to") or []):
                return True
        return False

    def _certificate_error(self, namespace: str, name: str) -> str:
        """getTLS() and getCertificateBlocks(): the error text, or "" when the Secret has both blocks."""
        try:
            secret = self.store.get(self.store.find("", "v1", "secrets"), namespace, name)
        except apiserver.ApiError:
            return f'getting secret: secrets "{name}" not found'
        data = secret.get("data") or {}
        missing = [k for k in ("tls.crt", "tls.key") if k not in data]
        if missing:
            return f"getting certificate blocks: secret {namespace}/{name} is missing the following TLS data entries: {', '.join(missing)}"
        empty = [k for k in ("tls.crt", "tls.key") if not data[k]]
        if empty:
            return f"getting certificate blocks: secret {namespace}/{name} contains the following empty TLS data entries: {', '.join(empty)}"
        return ""

    def routes(self, listeners: list, watched: list) -> None:
        """loadHTTPRoutes(): parents' status, and attachedRoutes on the listeners."""
        res = self._res("httproutes")
        for route in self.store.list(res, None):
            namespace = route["metadata"]["namespace"]
            if watched and namespace not in watched:
                continue
            gen = route["metadata"].get("generation", 1)
            spec = route.get("spec") or {}
            refs = spec.get("parentRefs") or []

            def matches(entry, ref, route_ns=namespace):
                return ref.get("group", GATEWAY_GROUP) == GATEWAY_GROUP and ref.get("kind", "Gateway") == "Gateway" \
                    and entry["gateway"]["metadata"]["namespace"] == (ref.get("namespace") or route_ns) \
                    and entry["gateway"]["metadata"]["name"] == ref.get("name")
            route_listeners = [e for e in listeners for ref in refs if matches(e, ref)]
            if not route_listeners:
                continue
            parents = []
            for ref in refs:
                accepted_cond = _cond("Accepted", "False", "NoMatchingParent", "", gen)
                resolved = _cond("ResolvedRefs", "True", "ResolvedRefs", "", gen)
                for entry in route_listeners:
                    if not matches(entry, ref):
                        continue
                    ok = (not ref.get("sectionName") or ref["sectionName"] == entry["name"]) and \
                        (ref.get("port") is None or ref["port"] == entry["port"])
                    if ok and not ("HTTPRoute" in entry["kinds"] and any(n in ("", namespace) for n in entry["namespaces"])):
                        if accepted_cond["status"] != "True":
                            accepted_cond["reason"] = "NotAllowedByListeners"
                        ok = False
                    if ok and not _hostnames_match(entry["hostname"], spec.get("hostnames") or []):
                        if accepted_cond["status"] != "True":
                            accepted_cond["reason"] = "NoMatchingListenerHostname"
                        ok = False
                    if ok:
                        entry["status"]["attachedRoutes"] += 1
                        if entry["attached"] and accepted_cond["status"] != "True":
                            accepted_cond.update(status="True", reason="Accepted")
                parents.append({"parentRef": ref, "controllerName": CONTROLLER, "conditions": [accepted_cond, resolved]})
            others = [p for p in (route.get("status") or {}).get("parents") or [] if p.get("controllerName") != CONTROLLER]
            self._write("httproutes", route, dict(route.get("status") or {}, parents=parents + others))

    @staticmethod
    def gateway_status(gateway: dict, listeners: list, addresses) -> dict:
        """makeGatewayStatus()."""
        gen = gateway["metadata"].get("generation", 1)
        status = {}
        if addresses:
            status["addresses"] = addresses
        errors = False
        statuses = []
        for entry in listeners:
            if not entry["status"]["conditions"]:
                entry["status"]["conditions"] = [_cond("Accepted", "True", "Accepted", "No error found", gen),
                                                 _cond("ResolvedRefs", "True", "ResolvedRefs", "No error found", gen),
                                                 _cond("Programmed", "True", "Programmed", "No error found", gen)]
            else:
                errors = True
            statuses.append(entry["status"])
        if statuses:
            status["listeners"] = statuses
        if errors:
            status["conditions"] = [_cond("Accepted", "False", "ListenersNotValid", "All Listeners must be valid", gen)]
        else:
            status["conditions"] = [_cond("Accepted", "True", "Accepted", "Gateway successfully scheduled", gen),
                                    _cond("Programmed", "True", "Programmed", "Gateway successfully scheduled", gen)]
        return status

    def _write(self, plural: str, obj: dict, status: dict) -> None:
        """UpdateStatus only when it differs beyond lastTransitionTime (client.go's equality functions)."""
        if _comparable(obj.get("status") or {}) == _comparable(status):
            return
        obj = dict(obj, status=status)
        try:
            self.store.update(self._res(plural), obj["metadata"].get("namespace"), obj["metadata"]["name"], obj, "status")
        except apiserver.ApiError as err:
            self.log("warning", f"traefik (stand-in): Unable to update {plural} {obj['metadata']['name']} status: {err.message}")


def _hostnames_match(listener_hostname, route_hostnames: list) -> bool:
    """findMatchingHostnames(): no listener hostname or no route hostnames match; else one pair must match."""
    if not listener_hostname or not route_hostnames:
        return True

    def one(first: str, second: str) -> bool:  # findMatchingHostname()
        return first == second or (first.startswith("*.") and second.endswith(first[1:]))
    return any(one(listener_hostname, h) or one(h, listener_hostname) for h in route_hostnames)


def _comparable(value):
    """A status without lastTransitionTime, for the only-when-different rule."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value

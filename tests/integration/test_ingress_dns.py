"""infra.k3s.ingress, DNS for routes and the tunnel (issue 18): its tasks preflight_dns.yml, external_dns.yml and
tunnel.yml run by ansible-playbook against the stand-in K3s server (deploy controller, helm-controller with the real
helm and the real external-dns chart from ../shared/upstream/charts, real kubectl) and the Cloudflare API stand-in,
both on loopback.

The role's other task files (Traefik, cert-manager, Gateway) have their own tests; the play here includes only the
DNS ones (tasks_from), with the role's defaults and vars.
"""
from __future__ import annotations

import base64
import json
import re
import stat
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s_client

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support.k3s_process import K3s  # noqa: E402
from support.poll import wait_for  # noqa: E402
from support.paths import PROJECT_ROOT  # noqa: E402
from standins.cloudflare import DEFAULT_TOKEN, CloudflareAPIServer  # noqa: E402
from support.recap import localhost_recap  # noqa: E402

ZONE = "example.com"
TUNNEL_ID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
TUNNEL_SECRET = base64.b64encode(b"tunnel-secret-ingress-dns-0123456").decode()
TUNNEL_TOKEN = base64.b64encode(json.dumps({"a": "0123456789abcdef0123456789abcdef", "s": TUNNEL_SECRET,
                                            "t": TUNNEL_ID}).encode()).decode()
CLEAN_ENV = {"CLOUDFLARE_API_TOKEN": "", "CLOUDFLARE_EMAIL": "", "CLOUDFLARE_API_KEY": "",
             "CLOUDFLARE_API_USER_SERVICE_KEY": "", "CLOUDFLARE_BASE_URL": ""}


@pytest.fixture
def cloudflare():
    with CloudflareAPIServer(zones=(ZONE,)) as srv:
        yield srv


def inventory(k3s_server: K3s) -> dict:
    """One server (this host, connection local) flagged for ingress, one worker that is never contacted."""
    return {"all": {"children": {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                                "public_ip": "192.0.2.11", "dns_ingress": True}}},
        "k3s_workers": {"hosts": {"worker1": {"public_ip": "192.0.2.21"}}}}}}}}


@pytest.fixture
def converge(run_ansible, tmp_path, k3s):
    """Run the DNS task files of the role on localhost; the variables go in a 0600 file, not on the command line."""
    count = [0]

    def _run(variables: dict, check=False, verbosity=0):
        count[0] += 1
        base = {"ingress_zone": ZONE, "ingress_cloudflare_api_token": DEFAULT_TOKEN,
                "ingress_k3s_bin": str(k3s.bin), "ingress_kubeconfig": str(k3s.kubeconfig),
                "ingress_manifest_dir": str(k3s.manifests),
                "ingress_cert_manager_namespace": "cert-manager", "ingress_cloudflare_token_secret": "cloudflare-api-token"}
        base.update(variables)
        vars_file = tmp_path / ("vars-%d.json" % count[0])
        vars_file.write_text(json.dumps(base), encoding="utf-8")
        vars_file.chmod(0o600)
        inv = tmp_path / "inventory.json"
        inv.write_text(json.dumps(inventory(k3s)), encoding="utf-8")
        tasks = [{"name": "DNS inputs", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "preflight_dns", "public": True}},
                 {"name": "external-dns", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "external_dns"},
                  "when": "ingress_external_dns_enabled | bool"},
                 {"name": "tunnel", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "tunnel"},
                  "when": "ingress_tunnel_enabled | bool"}]
        play = tmp_path / "play.yml"
        play.write_text(json.dumps([{"name": "ingress dns", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]),
                        encoding="utf-8")
        args = ["-i", str(inv), str(play), "-e", "@" + str(vars_file)]
        if check:
            args.append("--check")
        if verbosity:
            args.append("-" + "v" * verbosity)
        return run_ansible("ansible-playbook", *args, extra_env=dict(CLEAN_ENV, ANSIBLE_PYTHON_INTERPRETER=sys.executable))

    return _run


recap = localhost_recap


def secrets_in(text: str) -> list:
    found = [s for s in (TUNNEL_TOKEN, TUNNEL_SECRET, base64.b64encode(TUNNEL_TOKEN.encode()).decode(), DEFAULT_TOKEN)
             if s in text]
    return found


def api_type_errors(obj, type_name: str, path: str = "") -> list:
    """Fields of obj that the Kubernetes API type does not have, or of the wrong shape, and required fields missing.

    The stand-in API server serves no OpenAPI definitions, so kubectl's own validation (--validate=strict) passes
    anything there; the types here are kubernetes-client/python 36.0.3's models, generated from Kubernetes 1.36's
    OpenAPI spec (openapi_types, attribute_map; a required field is one whose setter refuses None)."""
    scalars = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
    if type_name in scalars:
        return [] if isinstance(obj, scalars[type_name]) and not (type_name == "int" and isinstance(obj, bool)) \
            else ["%s: %r is not %s" % (path, obj, type_name)]
    if type_name == "object":
        return []
    if type_name.startswith("list["):
        if not isinstance(obj, list):
            return ["%s: not a list" % path]
        return [e for i, item in enumerate(obj) for e in api_type_errors(item, type_name[5:-1], "%s[%d]" % (path, i))]
    if type_name.startswith("dict["):
        if not isinstance(obj, dict):
            return ["%s: not a map" % path]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in obj.items() for e in api_type_errors(v, inner, "%s.%s" % (path, k))]
    model = getattr(k8s_client, type_name)
    if not isinstance(obj, dict):
        return ["%s: not an object (%s)" % (path, type_name)]
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    errors = ["%s.%s: unknown field of %s" % (path, key, type_name) for key in obj if key not in by_json]
    for key, value in obj.items():
        if key in by_json and value is not None:
            errors += api_type_errors(value, model.openapi_types[by_json[key]], "%s.%s" % (path, key))
    instance = model.__new__(model)
    instance.local_vars_configuration = k8s_client.Configuration()
    for attr, json_name in model.attribute_map.items():
        if json_name not in obj:
            try:
                setattr(instance, attr, None)
            except ValueError:
                errors.append("%s.%s: required by %s" % (path, json_name, type_name))
    return errors


def test_api_type_check_catches_what_the_api_refuses():
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"replicas": "2", "selector": {}, "template": {"spec": {"containers": [{"name": "c", "imag": "i"}]}}}}
    assert api_type_errors(deployment, "V1Deployment") == [
        ".spec.replicas: '2' is not int", ".spec.template.spec.containers[0].imag: unknown field of V1Container"]
    del deployment["spec"]["selector"]
    assert ".spec.selector: required by V1DeploymentSpec" in api_type_errors(deployment, "V1Deployment")


# --- external-dns -------------------------------------------------------------------------------------

def test_external_dns_installed_by_k3s_with_the_role_values(converge, k3s):
    proc = converge({"ingress_external_dns_enabled": True}, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert not secrets_in(proc.stdout + proc.stderr)
    manifest = k3s.manifests / "infra-k3s-external-dns.yaml"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    assert not secrets_in(manifest.read_text(encoding="utf-8"))

    # K3s's deploy controller made the HelmChart (the real helm.cattle.io CRD validates it), its helm-controller ran
    # the real helm on the real chart 1.21.1 with the role's values: nothing refused by the chart's values schema.
    wait_for(lambda: (k3s.get("helmchart", "-n", "kube-system", "external-dns") or {}).get("status", {}).get("conditions"),
             what="the external-dns HelmChart's status")
    chart = k3s.get("helmchart", "-n", "kube-system", "external-dns")
    assert {c["type"]: c["status"] for c in chart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}, chart["status"]
    assert chart["spec"]["version"] == "1.21.1" and chart["spec"]["targetNamespace"] == "cert-manager"

    deploy = k3s.get("deployment", "-n", "cert-manager", "external-dns")
    assert deploy is not None, k3s.kubectl("get", "all", "-A", check=False).stdout
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    for flag in ("--source=gateway-httproute", "--policy=sync", "--registry=txt", "--txt-owner-id=infra-k3s-example-com",
                 "--domain-filter=example.com", "--provider=cloudflare", "--gateway-name=public", "--gateway-namespace=ingress"):
        assert flag in args, (flag, args)
    # what dns.yml publishes for this inventory (localhost and worker1 by their names, the API, the wildcard's parent)
    assert sorted(a.split("=", 1)[1] for a in args if a.startswith("--exclude-domains=")) == [
        "apps.example.com", "k3s.example.com", "localhost.example.com", "worker1.example.com"]
    # the token only through the env, from cert-manager's token Secret (never in the args or the values)
    token_ref = {"secretKeyRef": {"name": "cloudflare-api-token", "key": "api-token"}}
    assert container["env"] == [{"name": "CF_API_TOKEN", "valueFrom": token_ref}]
    role = k3s.get("clusterrole", "external-dns")
    watched = {(r["apiGroups"][0], res) for r in role["rules"] for res in r["resources"]}
    assert {("gateway.networking.k8s.io", "httproutes"), ("gateway.networking.k8s.io", "gateways")} <= watched

    again = converge({"ingress_external_dns_enabled": True})
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]


def test_external_dns_check_mode_changes_nothing(converge, k3s, tmp_path):
    manifests = tmp_path / "manifests"
    proc = converge({"ingress_external_dns_enabled": True, "ingress_manifest_dir": str(manifests)}, check=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not manifests.exists()


def test_dns_role_variables_are_read_with_the_dns_role_defaults():
    """preflight_dns.yml reads dns.yml's variables with the dns role's own defaults (they are not visible here)."""
    dns_defaults = yaml.safe_load((PROJECT_ROOT / "roles/dns/defaults/main.yml").read_text(encoding="utf-8"))
    tasks = yaml.safe_load((PROJECT_ROOT / "roles/ingress/tasks/preflight_dns.yml").read_text(encoding="utf-8"))
    read = {}
    for task in tasks:
        for value in (task.get("vars") or {}).values():
            match = re.fullmatch(r"\{\{ (dns_\w+) \| default\((.*)\)( \| bool)? \}\}", str(value))
            if match:
                read[match.group(1)] = yaml.safe_load(match.group(2))
    assert set(read) == {"dns_api_name", "dns_ingress_wildcard", "dns_node_records", "dns_node_suffix", "dns_extra_records"}
    for name, default in read.items():
        assert dns_defaults[name] == default, name


# --- the tunnel ---------------------------------------------------------------------------------------

TUNNEL = {"ingress_tunnel_enabled": True, "ingress_tunnel_token": TUNNEL_TOKEN,
          "ingress_tunnel_hostnames": ["blog", "shop.example.com"]}


def test_tunnel_secret_cloudflared_and_cnames(converge, k3s, cloudflare, tmp_path):
    variables = dict(TUNNEL, ingress_cloudflare_base_url=cloudflare.base_url)
    proc = converge(variables, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert not secrets_in(proc.stdout + proc.stderr)

    # the token only in the Secret, which cloudflared reads through its env
    secret = k3s.get("secret", "-n", "ingress", "cloudflared-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == TUNNEL_TOKEN
    deploy = k3s.get("deployment", "-n", "ingress", "cloudflared")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "cloudflare/cloudflared:2026.8.2" and deploy["spec"]["replicas"] == 2
    assert container["env"] == [{"name": "TUNNEL_TOKEN", "valueFrom": {"secretKeyRef": {"name": "cloudflared-token", "key": "token"}}}]
    assert container["args"] == ["tunnel", "--no-autoupdate", "--config", "/etc/cloudflared/config.yaml", "--metrics",
                                 "0.0.0.0:2000", "run"]
    assert not secrets_in(json.dumps(deploy))
    for kind, name, type_name in (("deployment", "cloudflared", "V1Deployment"), ("configmap", "cloudflared", "V1ConfigMap"),
                                  ("secret", "cloudflared-token", "V1Secret")):
        stored = k3s.get(kind, "-n", "ingress", name)
        stored.pop("status", None)  # written by the stand-in's controllers, not by the role
        assert api_type_errors(stored, type_name) == [], kind
    for path in [p for p in k3s.manifests.rglob("*") if p.is_file()]:
        assert not secrets_in(path.read_text(encoding="utf-8", errors="replace")), path

    # cloudflared's ingress rules: each hostname to Traefik's websecure port with SNI, then the catch-all
    config = yaml.safe_load(k3s.get("configmap", "-n", "ingress", "cloudflared")["data"]["config.yaml"])
    origin = {"matchSNItoHost": True, "noTLSVerify": True}  # the staging issuer is the default
    assert config == {"ingress": [
        {"hostname": "blog.example.com", "service": "https://traefik.kube-system.svc.cluster.local:443", "originRequest": origin},
        {"hostname": "shop.example.com", "service": "https://traefik.kube-system.svc.cluster.local:443", "originRequest": origin},
        {"service": "http_status:404"}]}

    # proxied CNAMEs to the tunnel, from the tunnel id in the token
    for name in ("blog.example.com", "shop.example.com"):
        records = cloudflare.get_records(ZONE, name, "CNAME")
        assert [(r["content"], r["proxied"]) for r in records] == [(TUNNEL_ID + ".cfargotunnel.com", True)], records

    again = converge(variables)
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]


@pytest.mark.parametrize("override,words", [
    ({"ingress_tunnel_token": "not a token"}, "white space"),
    ({"ingress_tunnel_token": base64.b64encode(b'{"a": "x", "s": "y", "t": "z"}').decode()}, "not a UUID"),
    ({"ingress_tunnel_hostnames": []}, "ingress_tunnel_hostnames is empty"),
    ({"ingress_tunnel_hostnames": ["k3s", "x.apps"]}, "k3s.example.com, x.apps.example.com are names infra.k3s.dns publishes"),
])
def test_bad_tunnel_input_fails_before_any_change(converge, k3s, cloudflare, override, words):
    before = k3s.get("secret", "-n", "ingress", "cloudflared-token")
    proc = converge(dict(TUNNEL, ingress_cloudflare_base_url=cloudflare.base_url, **override), verbosity=3)
    assert proc.returncode != 0 and words in proc.stdout, proc.stdout[-3000:]
    assert not secrets_in(proc.stdout + proc.stderr)
    assert k3s.get("secret", "-n", "ingress", "cloudflared-token") == before
    assert cloudflare.writes() == []

"""The Gateway and the redirect HTTPRoute infra.k3s.ingress applies, checked against the real Gateway API v1.4.0
standard CRDs (../shared/upstream/crds/gateway-api-v1.4.0-standard, the bundle of K3s's traefik-crd 39.0.x):
their structural schema (the stand-in's validator) and their CEL rules (cel-python, tests/support/crd_cel.py),
which the stand-in API server does not evaluate. Bad objects show the CRD's own messages."""
from __future__ import annotations

import copy
import json
import subprocess

import pytest

from support import crd_cel
from standins.k3s import schema
from support.paths import PROJECT_ROOT, UPSTREAM_CRDS, VENV_BIN

CRDS = UPSTREAM_CRDS / "gateway-api-v1.4.0-standard"
SCHEMAS = crd_cel.storage_schemas(CRDS)


def crd_messages(kind: str) -> list:
    """Every x-kubernetes-validations message of a kind's storage schema (the CRD's own words)."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            out.extend(item.get("message", "") for item in node.get("x-kubernetes-validations") or [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(SCHEMAS[("gateway.networking.k8s.io/v1", kind)])
    return out


def role_objects(run_ansible, tmp_path, **variables) -> dict:
    """The role's __ingress_gateway_objects, templated by Ansible from its defaults and vars."""
    role = PROJECT_ROOT / "roles" / "ingress"
    copy_task = {"content": "{{ __ingress_gateway_objects | to_json }}", "dest": str(tmp_path / "objects.json"), "mode": "0600"}
    play = [{"name": "objects", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars_files": [str(role / "defaults" / "main.yml"), str(role / "vars" / "main.yml")],
             "tasks": [{"name": "write", "ansible.builtin.copy": copy_task}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps({"dns_zone": "example.com", **variables}))
    result = run_ansible("ansible-playbook", "-i", "localhost,", "play.yml", "-e", "@vars.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return {obj["kind"]: obj for obj in json.loads((tmp_path / "objects.json").read_text())}


@pytest.fixture(scope="module")
def objects(ansible_env, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("objects")

    def run(tool, *args, cwd):
        return subprocess.run([str(VENV_BIN / tool), *args], cwd=str(cwd), env=ansible_env, capture_output=True, text=True,
                              timeout=600, check=False)
    return role_objects(run, tmp_path)


def structural(obj: dict) -> list:
    pruned = copy.deepcopy(obj)
    errors = schema.validate(pruned, SCHEMAS[(obj["apiVersion"], obj["kind"])])
    assert pruned == obj, "fields the CRD does not know were pruned"
    return errors


def test_the_role_applies_a_namespace_a_gateway_and_the_redirect(objects):
    assert sorted(objects) == ["Gateway", "HTTPRoute", "Namespace"]
    gateway = objects["Gateway"]
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"], gateway["spec"]["gatewayClassName"]) == \
        ("ingress", "public", "traefik")
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    assert (listeners["web"]["port"], listeners["web"]["protocol"], listeners["web"]["allowedRoutes"]["namespaces"]["from"]) == \
        (8000, "HTTP", "Same")
    secure = listeners["websecure"]
    assert (secure["port"], secure["protocol"], secure["allowedRoutes"]["namespaces"]["from"], secure["tls"]["mode"]) == \
        (8443, "HTTPS", "All", "Terminate")
    assert secure["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "example-com-tls"}]
    route = objects["HTTPRoute"]["spec"]
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "sectionName": "web"}]
    assert route["rules"] == [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]


def test_the_redirect_can_be_switched_off(run_ansible, tmp_path):
    assert sorted(role_objects(run_ansible, tmp_path, ingress_http_redirect=False)) == ["Gateway", "Namespace"]


@pytest.mark.parametrize("kind", ["Gateway", "HTTPRoute"])
def test_the_role_objects_pass_the_real_crds(objects, kind):
    assert structural(objects[kind]) == []
    assert crd_cel.violations(objects[kind], SCHEMAS) == []


def test_the_crds_carry_the_rules():
    """The CRD files hold the rules these tests rely on (Gateway API v1.4.0: 14 on Gateway, 77 on HTTPRoute)."""
    assert len(crd_messages("Gateway")) == 14 and len(crd_messages("HTTPRoute")) == 77


def _gateway_bad(objects, change):
    bad = copy.deepcopy(objects["Gateway"])
    change(bad["spec"]["listeners"])
    return bad


BAD_GATEWAYS = {
    "tls on HTTP": (lambda ls: ls[0].update(tls={"mode": "Terminate", "certificateRefs": [{"name": "x"}]}),
                    "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"),
    "passthrough on HTTPS": (lambda ls: ls[1]["tls"].update(mode="Passthrough"), "tls mode must be Terminate for protocol HTTPS"),
    "same name twice": (lambda ls: ls[1].update(name="web"), "Listener name must be unique within the Gateway"),
    "same port twice": (lambda ls: ls[1].update(port=8000, protocol="HTTP", tls=None) or ls[1].pop("tls"),
                        "Combination of port, protocol and hostname must be unique for each listener"),
}


@pytest.mark.parametrize("case", sorted(BAD_GATEWAYS))
def test_bad_gateways_break_the_crd_rules(objects, case):
    change, message = BAD_GATEWAYS[case]
    bad = _gateway_bad(objects, change)
    assert message in crd_messages("Gateway")  # the CRD's own words
    assert message in [m for unused, m in crd_cel.violations(bad, SCHEMAS)]


def test_tls_on_http_passes_the_structural_schema(objects):
    """Only the CEL rule catches it: the stand-in API server (structural schema only) would store it."""
    bad = _gateway_bad(objects, BAD_GATEWAYS["tls on HTTP"][0])
    assert structural(bad) == []


def test_a_redirect_with_a_backend_breaks_the_crd_rule(objects):
    bad = copy.deepcopy(objects["HTTPRoute"])
    bad["spec"]["rules"][0]["backendRefs"] = [{"name": "app", "port": 80}]
    message = "RequestRedirect filter must not be used together with backendRefs"
    assert message in crd_messages("HTTPRoute")
    assert [m for unused, m in crd_cel.violations(bad, SCHEMAS)] == [message]

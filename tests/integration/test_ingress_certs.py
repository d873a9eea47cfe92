"""infra.k3s.ingress, its cert-manager part (tasks/cert_manager.yml), against the stand-in K3s server on loopback.

The stand-in's helm-controller installs the real cert-manager chart (../shared/upstream/charts) with the role's
values through the real helm; the ClusterIssuers and the Certificate the role applies are validated against the real
CRDs in ../shared/upstream/crds/cert-manager-v1.21.1. The role runs with ansible_connection=local; its paths (k3s
binary, kubeconfig, manifest) are its ordinary variables pointed into the test's directory.
"""
from __future__ import annotations

import base64
import copy
import stat
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/
from support.k3s_process import K3s  # noqa: E402
from standins.k3s import apiserver, yamlish  # noqa: E402
from support.paths import UPSTREAM_CHARTS, UPSTREAM_CRDS, upstream_bin  # noqa: E402
from support.play import local_server, run_play  # noqa: E402
from support.recap import localhost_recap  # noqa: E402
from support.secret_watch import leaks, watched  # noqa: E402

ZONE = "example.com"
EMAIL = "ops@example.org"
TOKEN = "cfTOKENingress_0123456789abcdefghijklmnopqrs"
CM_CRDS = UPSTREAM_CRDS / "cert-manager-v1.21.1"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"


def secrets_of(token=TOKEN) -> tuple:
    return token, base64.b64encode(token.encode()).decode()


def role_vars(server: K3s, **extra) -> dict:
    base = {"ingress_zone": ZONE, "ingress_acme_email": EMAIL, "ingress_cloudflare_api_token": TOKEN,
            "ingress_k3s_bin": str(server.bin), "ingress_kubeconfig": str(server.kubeconfig),
            "ingress_manifest_dir": str(server.manifests), "k3s_version": "v1.36.4+k3s1",
            "ingress_wait_timeout": 90, "ingress_wait_delay": 1}
    base.update(extra)
    return base


@pytest.fixture
def converge(run_ansible, tmp_path):
    """Run the role's preflight and cert-manager task files on localhost (connection local, the one server of
    k3s_cluster), as tasks/main.yml includes them (the Traefik and Gateway parts need what the stand-in K3s does not
    play yet); the variables go in a 0600 file (the vault's stand-in), not on the command line."""
    def _run(variables: dict, check=False, verbosity=0, entry="cert_manager"):
        if entry == "main":
            tasks = [{"name": "the role", "ansible.builtin.include_role": {"name": "infra.k3s.ingress"}}]
        else:
            tasks = [{"name": "preflight", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "preflight.yml"}},
                     {"name": "cert-manager", "ansible.builtin.include_role": {"name": "infra.k3s.ingress", "tasks_from": "cert_manager.yml"}}]
        play = {"name": "ingress certs", "hosts": "k3s_masters", "gather_facts": False, "tasks": tasks}
        return run_play(run_ansible, tmp_path, play, variables, local_server(public_ip="192.0.2.11"),
                        check=check, verbosity=verbosity)

    return _run


recap = localhost_recap


def assert_no_token(proc, token=TOKEN):
    output = proc.stdout + proc.stderr
    for secret in secrets_of(token):
        assert secret not in output


# --- the chart, rendered by the real helm with the role's values ----------------------------------------------------

def render_chart(values_content: str, tmp_path) -> list:
    values = tmp_path / "values.yaml"
    values.write_text(values_content, encoding="utf-8")
    proc = subprocess.run([upstream_bin("helm"), "template", "cert-manager", str(UPSTREAM_CHARTS / "cert-manager-v1.21.1.tgz"),
                           "--namespace", "cert-manager", "--values", str(values)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yamlish.load_all(proc.stdout) if d]


def controller_args(docs) -> list:
    deploy = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "cert-manager")
    return deploy["spec"]["template"]["spec"]["containers"][0]["args"]


def strip_server_fields(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj["metadata"]
    obj["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
    return obj


def upstream_crd_store():
    store = apiserver.Store(None)
    store.create(store.find("", "v1", "namespaces"), {"metadata": {"name": "ingress"}}, None)
    for crd in apiserver.load_crd_files(sorted(CM_CRDS.glob("*.yaml"))):
        store.create(store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), crd, None)
    return store


# --- the role ------------------------------------------------------------------------------------------------------

def test_check_mode_against_a_fresh_server(converge, k3s):
    proc = converge(role_vars(k3s), check=True, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert not (k3s.manifests / "infra-k3s-cert-manager.yaml").exists()
    assert k3s.get("secret", "-n", "cert-manager", "cloudflare-api-token") is None
    assert_no_token(proc)


def test_install_then_idempotent(converge, k3s, ansible_env, tmp_path):
    proc, watch = watched(lambda: converge(role_vars(k3s), verbosity=3), secrets_of())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    # the manifest, the namespace with the Secret, the issuers with the Certificate
    assert recap(proc)["changed"] == 3
    # the token is in no output (-vvv), no process's arguments, no file but the API's datastore
    assert_no_token(proc)
    assert watch.looks > 10 and watch.seen == []
    assert leaks(k3s, tmp_path, secrets_of(), ansible_env["ANSIBLE_HOME"]) == []

    manifest = k3s.manifests / "infra-k3s-cert-manager.yaml"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    chart = yamlish.load(manifest.read_text(encoding="utf-8"))
    assert chart["kind"] == "HelmChart" and chart["spec"]["chart"] == "cert-manager"
    assert chart["spec"]["repo"] == "https://charts.jetstack.io" and chart["spec"]["version"] == "v1.21.1"
    assert chart["spec"]["targetNamespace"] == "cert-manager"
    assert yamlish.load(chart["spec"]["valuesContent"]) == {
        "crds": {"enabled": True, "keep": True}, "dns01RecursiveNameservers": "1.1.1.1:53,1.0.0.1:53",
        "dns01RecursiveNameserversOnly": True}

    # K3s's helm-controller (stand-in, real helm, real chart) installed it
    helmchart = k3s.get("helmchart", "-n", "kube-system", "cert-manager")
    assert {c["type"]: c["status"] for c in helmchart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}
    assert k3s.get("deployment", "-n", "cert-manager", "cert-manager-webhook") is not None

    secret = k3s.get("secret", "-n", "cert-manager", "cloudflare-api-token")
    assert base64.b64decode(secret["data"]["api-token"]).decode() == TOKEN and secret["type"] == "Opaque"

    issuers = {i["metadata"]["name"]: i for i in k3s.get("clusterissuers.cert-manager.io")["items"]}
    assert sorted(issuers) == ["letsencrypt-prod", "letsencrypt-staging"]
    for name, server in (("letsencrypt-staging", STAGING), ("letsencrypt-prod", PRODUCTION)):
        acme = issuers[name]["spec"]["acme"]
        assert acme["server"] == server and acme["email"] == EMAIL
        assert acme["privateKeySecretRef"] == {"name": name + "-account-key"}
        assert acme["solvers"] == [{"selector": {"dnsZones": [ZONE]},
                                    "dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cloudflare-api-token", "key": "api-token"}}}}]
    cert = k3s.get("certificates.cert-manager.io", "-n", "ingress", "example-com-tls")
    assert cert["spec"]["secretName"] == "example-com-tls"
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt-staging"}
    # "*.example.com" does not cover x.apps.example.com (dns.yml's ingress wildcard): the deeper one is named
    assert cert["spec"]["dnsNames"] == [ZONE, "*." + ZONE, "*.apps." + ZONE]

    again = converge(role_vars(k3s), verbosity=3)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0
    assert_no_token(again)

    check = converge(role_vars(k3s), check=True)
    assert check.returncode == 0 and recap(check)["changed"] == 0


def test_applied_objects_validate_against_the_upstream_crds(k3s):
    """What the API stores from the role, created again in an API that has only ../shared/upstream's CRDs; a broken
    copy of each is refused there (the validation is real)."""
    store = upstream_crd_store()
    issuers = k3s.get("clusterissuers.cert-manager.io")["items"]
    cert = k3s.get("certificates.cert-manager.io", "-n", "ingress", "example-com-tls")
    assert len(issuers) == 2 and cert
    issuer_res = store.find("cert-manager.io", "v1", "clusterissuers")
    cert_res = store.find("cert-manager.io", "v1", "certificates")
    for issuer in issuers:
        store.create(issuer_res, strip_server_fields(issuer), None)
    store.create(cert_res, strip_server_fields(cert), "ingress")

    broken = strip_server_fields(issuers[0])
    broken["metadata"]["name"] = "broken"
    del broken["spec"]["acme"]["privateKeySecretRef"]
    with pytest.raises(apiserver.ApiError) as err:
        store.create(issuer_res, broken, None)
    assert err.value.code == 422 and "privateKeySecretRef" in err.value.message
    broken = strip_server_fields(cert)
    broken["metadata"]["name"] = "broken"
    broken["spec"]["issuerRef"] = {"kind": "ClusterIssuer"}
    with pytest.raises(apiserver.ApiError) as err:
        store.create(cert_res, broken, "ingress")
    assert err.value.code == 422 and "spec.issuerRef.name" in err.value.message


def test_new_token_and_production(converge, k3s):
    new_token = TOKEN[::-1]
    proc = converge(role_vars(k3s, ingress_cloudflare_api_token=new_token, ingress_acme_production=True), verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["changed"] == 2  # the Secret and the Certificate; the HelmChart is the same
    assert_no_token(proc, new_token)
    secret = k3s.get("secret", "-n", "cert-manager", "cloudflare-api-token")
    assert base64.b64decode(secret["data"]["api-token"]).decode() == new_token
    cert = k3s.get("certificates.cert-manager.io", "-n", "ingress", "example-com-tls")
    assert cert["spec"]["issuerRef"]["name"] == "letsencrypt-prod"
    again = converge(role_vars(k3s, ingress_cloudflare_api_token=new_token, ingress_acme_production=True))
    assert again.returncode == 0 and recap(again)["changed"] == 0


def test_an_apply_that_loses_the_namespace_race_is_retried(converge, k3s, tmp_path):
    """kubectl apply GETs each object and Creates what it did not find (kubernetes/kubectl pkg/cmd/apply/apply.go
    applyOneObject), so when cert-manager's helm install (createNamespace) makes the namespace between the two, kubectl
    exits 1 with AlreadyExists; CI hit it once (stop 26). Here the k3s binary the role runs fails its first apply that
    way (after the namespace exists, as in the race): the role retries and writes the Secret."""
    assert k3s.kubectl("--namespace", "cert-manager", "delete", "secret", "cloudflare-api-token").returncode == 0
    marker = tmp_path / "raced"
    racing = tmp_path / "k3s-racing"
    racing.write_text(
        "#!/bin/sh\n"
        f'if [ "$4" = apply ] && [ ! -e "{marker}" ]; then\n'
        f'  : > "{marker}"\n'
        '  echo \'Error from server (AlreadyExists): error when creating "STDIN": namespaces "cert-manager" already exists\' >&2\n'
        "  exit 1\n"
        "fi\n"
        f'exec "{k3s.bin}" "$@"\n', encoding="utf-8")
    racing.chmod(0o700)
    proc = converge(role_vars(k3s, ingress_k3s_bin=str(racing), ingress_acme_production=True), verbosity=1)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert marker.exists()
    assert proc.stdout.count("FAILED - RETRYING: [localhost]: Create or update cert-manager's namespace") == 1
    assert recap(proc)["changed"] == 1  # the Secret
    secret = k3s.get("secret", "-n", "cert-manager", "cloudflare-api-token")
    assert base64.b64decode(secret["data"]["api-token"]).decode() == TOKEN
    assert_no_token(proc)


def test_the_chart_renders_the_roles_values(k3s, tmp_path):
    """The real helm renders the real chart with the values the role wrote: the flags it is meant to give."""
    chart = yamlish.load((k3s.manifests / "infra-k3s-cert-manager.yaml").read_text(encoding="utf-8"))
    docs = render_chart(chart["spec"]["valuesContent"], tmp_path)
    args = controller_args(docs)
    assert "--dns01-recursive-nameservers-only=true" in args
    assert "--dns01-recursive-nameservers=1.1.1.1:53,1.0.0.1:53" in args
    # the Secret's namespace: a ClusterIssuer's Secrets are read from the cluster resource namespace, the controller's own
    assert "--cluster-resource-namespace=$(POD_NAMESPACE)" in args
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"clusterissuers.cert-manager.io", "certificates.cert-manager.io"} <= set(crds)
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds.values())
    assert any(d["kind"] == "Deployment" and d["metadata"]["name"] == "cert-manager-webhook" for d in docs)
    # the chart's defaults, for contrast: no CRDs, and the self check through the node's resolver
    plain = render_chart("{}\n", tmp_path)
    assert not [d for d in plain if d["kind"] == "CustomResourceDefinition"]
    assert not [a for a in controller_args(plain) if a.startswith("--dns01-recursive-nameservers")]


@pytest.mark.parametrize("override,message", [
    ({"ingress_acme_email": ""}, "Set ingress_acme_email"),
    ({"ingress_acme_email": "ops.example.org"}, "Set ingress_acme_email"),
    ({"ingress_cert_manager_chart_version": "1.21.1"}, "must be a pinned chart version vX.Y.Z"),
    ({"ingress_dns01_recursive_nameservers": ["1.1.1.1"]}, "are host:port or https:// URLs"),
    ({"ingress_certificate_dns_names": ["apps.*.example.com"]}, "a wildcard only as the first label"),
    ({"ingress_cloudflare_api_token": ""}, "ingress_cloudflare_api_token (default dns_cloudflare_api_token) must be set"),
    ({"ingress_cloudflare_api_token": TOKEN + "\n" + TOKEN}, "must be set, one line"),
], ids=["no-email", "bad-email", "chart-unpinned", "nameserver-no-port", "bad-name", "no-token", "token-two-lines"])
def test_bad_input_fails_before_any_change(converge, tmp_path, override, message):
    fresh = tmp_path / "fresh"
    variables = role_vars(K3sPaths(fresh), **override)
    proc = converge(variables, verbosity=3)
    assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
    assert not fresh.exists()
    assert_no_token(proc)


def test_missing_email_is_named_by_the_argument_spec(converge, tmp_path):
    fresh = tmp_path / "fresh"
    variables = role_vars(K3sPaths(fresh))
    del variables["ingress_acme_email"]
    proc = converge(variables, entry="main")
    assert proc.returncode != 0 and "ingress_acme_email" in proc.stdout and "missing required arguments" in proc.stdout, proc.stdout[-3000:]
    assert not fresh.exists()


class K3sPaths:  # pylint: disable=too-few-public-methods
    """Where a K3s that is not there would keep its files."""

    def __init__(self, root: Path):
        self.bin = root / "k3s"
        self.kubeconfig = root / "k3s.yaml"
        self.manifests = root / "manifests"


# --- what the stand-in API needed for cert-manager's chart ----------------------------------------------------------

def test_standin_takes_rbac_names_as_kubernetes_does():
    """Roles and bindings take path segment names (kubernetes pkg/apis/rbac/validation/validation.go ValidateRBACName),
    e.g. cert-manager's ClusterRole "cert-manager-controller-approve:cert-manager-io"; other kinds keep RFC 1123."""
    store = apiserver.Store(None)
    roles = store.find("rbac.authorization.k8s.io", "v1", "clusterroles")
    store.create(roles, {"metadata": {"name": "cert-manager-controller-approve:cert-manager-io"}, "rules": []}, None)
    for bad, words in (("a/b", "may not contain '/'"), ("a%b", "may not contain '%'"), ("..", "may not be '..'")):
        with pytest.raises(apiserver.ApiError) as err:
            store.create(roles, {"metadata": {"name": bad}, "rules": []}, None)
        assert err.value.code == 422 and words in err.value.message
    with pytest.raises(apiserver.ApiError) as err:
        store.create(store.find("", "v1", "configmaps"), {"metadata": {"name": "a:b", "namespace": "default"}}, "default")
    assert "RFC 1123 subdomain" in err.value.message
    # the chart's webhook configurations are stored (no webhook is called)
    store.create(store.find("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"),
                 {"metadata": {"name": "cert-manager-webhook"}, "webhooks": []}, None)

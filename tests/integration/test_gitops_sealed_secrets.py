"""infra.k3s.gitops, its Sealed Secrets part (tasks/sealed_secrets.yml), against stand-in K3s servers on loopback.

The stand-in's helm-controller installs the real sealed-secrets chart 2.18.5 (../shared/upstream/charts) with the
values of the role's HelmChart through the real helm (`helm template`), and its API validates every object: the
HelmChart against the real helm.cattle.io CRD, the chart's objects against the CRDs they need. So the Deployment
and Service the API holds are the real chart's rendering of the role's values. A SealedSecret sealed by
infra.k3s.sealed_secret is checked against ../shared/upstream/crds/bitnami.com_sealedsecrets.yaml and unsealed by
tests/support/sealed_secrets_unseal.py (upstream HybridDecrypt) with the key a cluster stores.
The role runs with ansible_connection=local; its paths (k3s binary, kubeconfig, manifests) point into the test's
directories.
"""
from __future__ import annotations

import base64
import json
import re
import stat
import sys

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from support.k3s_process import K3s
from support.paths import UPSTREAM_CRDS
from support.play import k3s_paths, local_server, role_runner
from support.recap import localhost_recap as recap
from support.sealed_secrets_keys import key_pair, private_key
from support.sealed_secrets_unseal import UnsealError, unseal
from support.secret_watch import leaks, watched
from standins.k3s import apiserver, yamlish

NS = "kube-system"
NAME = "sealed-secrets-controller"
MANIFEST = "infra-k3s-sealed-secrets.yaml"
KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"


@pytest.fixture(scope="module")
def vault():
    """The vault's pair, made once for the file (as `openssl req -x509 -newkey rsa:...` makes it, docs/gitops.md)."""
    key, cert = key_pair(2048)
    return {"key": key, "cert": cert}


def needles(vault) -> list:
    """What must not leak: the key's base64 body (two pieces, as PEM lines wrap it) and the Secret's base64 of it."""
    body = "".join(vault["key"].strip().splitlines()[1:-1])
    secret_b64 = base64.b64encode((vault["key"].strip() + "\n").encode()).decode()
    return [body[10:70], body[-70:-10], secret_b64[20:80]]


def role_vars(server: K3s, vault: dict, **extra) -> dict:
    base = {"gitops_sealed_secrets_key": vault["key"], "gitops_sealed_secrets_cert": vault["cert"],
            "gitops_argocd_enabled": False, "gitops_wait_timeout": 90, "gitops_wait_delay": 1, **k3s_paths(server, "gitops")}
    base.update(extra)
    return base


@pytest.fixture
def converge(run_ansible, tmp_path):
    """Run the role (tasks/main.yml) on localhost, one server of k3s_masters; the variables go in a 0600 file (the
    vault's stand-in), not on the command line."""
    return role_runner(run_ansible, tmp_path, "infra.k3s.gitops", local_server())


def key_secrets(server: K3s) -> list:
    found = server.get("secret", "-n", NS, "-l", KEY_LABEL + "=active")
    return found["items"] if found else []


def nothing_changed(server: K3s):
    assert not (server.manifests / MANIFEST).exists()
    assert key_secrets(server) == []
    assert server.get("helmchart", "-n", NS, NAME) is None


def task_results(output: str) -> list:
    """(task name, first result word) in the order the play ran them."""
    out = []
    for match in re.finditer(r"^TASK \[(?:[^:\]]+ : )?([^\]]+)\].*?\n(?:.*\n)*?^(ok|changed|skipping|fatal|included)", output, re.M):
        out.append((match.group(1), match.group(2)))
    return out


# --- refusals before any change ------------------------------------------------------------------------------------

def bad_inputs():
    unused_key, other_cert = key_pair(2048)
    return [
        ({"gitops_sealed_secrets_key": ""}, "the certificate is given but not the private key"),
        ({"gitops_sealed_secrets_cert": other_cert}, "the certificate does not belong to the private key"),
        ({"gitops_sealed_secrets_key": "", "gitops_sealed_secrets_cert": ""}, "set gitops_sealed_secrets_allow_generated_key to true"),
    ]


def test_bad_input_fails_before_any_change(converge, k3s, vault):
    for extra, message in bad_inputs():
        proc = converge(role_vars(k3s, vault, **extra), verbosity=3)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 2, output[-3000:]
        assert message in output, output[-3000:]
        assert recap(proc)["changed"] == 0
        for needle in needles(vault):
            assert needle not in output
        nothing_changed(k3s)


def test_check_mode_first_changes_nothing(converge, k3s, vault):
    proc = converge(role_vars(k3s, vault), check=True, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    for needle in needles(vault):
        assert needle not in proc.stdout + proc.stderr
    nothing_changed(k3s)


# --- the controller with the vault's key ---------------------------------------------------------------------------

def test_install_then_idempotent(converge, k3s, vault, ansible_env, tmp_path):
    proc, watch = watched(lambda: converge(role_vars(k3s, vault), verbosity=3), needles(vault))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert recap(proc)["changed"] == 2  # the key Secret, the HelmChart manifest
    # the private key is in no output (-vvv), no process's arguments, no file but the API's datastore
    for needle in needles(vault):
        assert needle not in output
    assert watch.looks > 10 and watch.seen == []
    assert leaks(k3s, tmp_path, needles(vault), ansible_env["ANSIBLE_HOME"]) == []

    # the key Secret was applied (changed) before the HelmChart's manifest was written: the controller's first start
    # finds the vault's key and makes none (pkg/controller/main.go initKeyRenewal)
    order = [(name, result) for name, result in task_results(proc.stdout)
             if name.startswith(("Create or update the key Secret", "Write the Sealed Secrets HelmChart"))]
    assert order == [("Create or update the key Secret (labelled active for the controller, critical for Velero)", "changed"),
                     ("Write the Sealed Secrets HelmChart where K3s applies manifests (no secret in it)", "changed")], order

    # the API: one key Secret, the vault's pair, labelled for the controller and for Velero's critical schedule
    (secret,) = key_secrets(k3s)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"].startswith("sealed-secrets-vault-") and len(secret["metadata"]["name"]) == 21 + 16
    assert secret["metadata"]["labels"] == {KEY_LABEL: "active", "backup.infra.k3s/tier": "critical",
                                            "app.kubernetes.io/managed-by": "infra.k3s"}
    assert base64.b64decode(secret["data"]["tls.key"]).decode().strip() == vault["key"].strip()
    assert base64.b64decode(secret["data"]["tls.crt"]).decode().strip() == vault["cert"].strip()
    helmchart = k3s.get("helmchart", "-n", NS, NAME)
    assert secret["metadata"]["creationTimestamp"] <= helmchart["metadata"]["creationTimestamp"]

    manifest = k3s.manifests / MANIFEST
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600
    chart = yamlish.load(manifest.read_text(encoding="utf-8"))
    assert chart["metadata"] == {"name": NAME, "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "infra.k3s"}}
    assert chart["spec"]["chart"] == "sealed-secrets" and chart["spec"]["version"] == "2.18.5"
    assert chart["spec"]["repo"] == "https://bitnami-labs.github.io/sealed-secrets" and chart["spec"]["targetNamespace"] == NS
    assert yaml.safe_load(chart["spec"]["valuesContent"]) == {
        "fullnameOverride": NAME, "keyrenewperiod": "0", "watchForSecrets": True,
        "privateKeyLabels": {"backup.infra.k3s/tier": "critical"}}

    # K3s's helm-controller (stand-in: the real helm, the real chart) installed it; the rendering in the API
    assert {c["type"]: c["status"] for c in helmchart["status"]["conditions"]} == {"JobCreated": "True", "Failed": "False"}
    assert k3s.get("service", "-n", NS, NAME)["spec"]["ports"][0]["name"] == "http"  # kubeseal's --controller-name/-namespace
    deployment = k3s.get("deployment", "-n", NS, NAME)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--key-renew-period") + 1] == "0"  # renewal off (cmd/controller/main.go)
    assert "--watch-for-secrets" in args
    assert args[args.index("--privatekey-labels") + 1] == "backup.infra.k3s/tier=critical"
    crd = k3s.get("crd", "sealedsecrets.bitnami.com")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"

    again = converge(role_vars(k3s, vault), verbosity=3)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again)["changed"] == 0
    for needle in needles(vault):
        assert needle not in again.stdout + again.stderr
    check = converge(role_vars(k3s, vault), check=True)
    assert check.returncode == 0 and recap(check)["changed"] == 0


def test_the_chart_crd_is_upstreams_and_a_broken_sealedsecret_is_refused(k3s):
    """The SealedSecret CRD the chart installed is the one in ../shared/upstream/crds (same schema), and the stand-in
    API refuses what it refuses."""
    (upstream,) = apiserver.load_crd_files([UPSTREAM_CRDS / "bitnami.com_sealedsecrets.yaml"])
    installed = k3s.get("crd", "sealedsecrets.bitnami.com")
    assert [v["schema"] for v in installed["spec"]["versions"]] == [v["schema"] for v in upstream["spec"]["versions"]]
    broken = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "x", "namespace": "default"},
              "spec": {"encryptedData": "not-a-map"}}
    proc = k3s.kubectl("apply", "-f", "-", stdin=json.dumps(broken), check=False)
    assert proc.returncode != 0 and "encryptedData" in proc.stderr, proc.stderr


# --- a rebuilt cluster ---------------------------------------------------------------------------------------------

def test_a_rebuilt_cluster_gets_the_same_key_and_unseals_the_repository(
        converge, run_ansible, k3s, vault, tmp_path, tmp_path_factory):
    # sealed by infra.k3s.sealed_secret with the certificate the first cluster stores (its controller's)
    (first_secret,) = key_secrets(k3s)
    first_cert = base64.b64decode(first_secret["data"]["tls.crt"]).decode()
    dest = tmp_path / "repo" / "db-sealedsecret.yaml"
    play = tmp_path / "seal.yml"
    args = {"name": "db", "namespace": "shop", "data": {"password": "s3cr3t-pw"}, "certificate": first_cert, "dest": str(dest)}
    task = {"name": "seal", "infra.k3s.sealed_secret": args}
    play.write_text(json.dumps([{"name": "seal", "hosts": "localhost", "gather_facts": False, "tasks": [task]}]), encoding="utf-8")
    proc = run_ansible("ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                       "ansible_python_interpreter=" + sys.executable, str(play))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    sealed = yaml.safe_load(dest.read_text(encoding="utf-8"))

    second = K3s(tmp_path_factory.mktemp("k3s-rebuilt"))
    try:
        proc = converge(role_vars(second, vault))
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
        (secret,) = key_secrets(second)
        assert secret["metadata"]["name"] == first_secret["metadata"]["name"]
        assert secret["data"] == first_secret["data"]
        # the committed SealedSecret is accepted by the rebuilt cluster's API (the chart's CRD) ...
        second.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        second.kubectl("apply", "-f", "-", stdin=json.dumps(sealed))
        # ... and unseals with the private key the rebuilt cluster stored (upstream HybridDecrypt)
        stored_key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), password=None)
        assert unseal(sealed, stored_key)["data"] == {"password": b"s3cr3t-pw"}
        # a cluster whose controller made its own key (the failure this prevents) could not unseal it
        with pytest.raises(UnsealError):
            unseal(sealed, private_key(2048))
    finally:
        second.stop()


def test_without_a_pair_the_controller_may_make_its_own_when_allowed(converge, k3s):
    """The refusal is lifted by gitops_sealed_secrets_allow_generated_key, and the role says what it costs (check mode:
    the cluster of this file keeps its vault key)."""
    proc = converge(role_vars(k3s, {"key": "", "cert": ""}, gitops_sealed_secrets_allow_generated_key=True), check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "a cluster rebuilt from the vault will not have it" in " ".join(proc.stdout.split())
    assert recap(proc)["changed"] == 1  # the manifest's comment names no vault Secret; the chart is the same

"""infra.k3s.sealed_secret: what it seals unseals as the Sealed Secrets controller unseals it, and only there.

The controller's side is tests/support/sealed_secrets_unseal.py (upstream pkg/crypto HybridDecrypt and
v1alpha1 SealedSecret.Unseal). The key pair is made as the controller makes its own (bitnami-labs/sealed-secrets
pkg/crypto/keys.go GeneratePrivateKeyAndCert: RSA 4096, a self-signed certificate; the chart's default
keysize). Objects are checked against the real CRD (../shared/upstream/crds/bitnami.com_sealedsecrets.yaml).
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import stat
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from support.module_utils import load_module_utils
from support.paths import UPSTREAM_CRDS
from support.sealed_secrets_unseal import UnsealError, hybrid_decrypt, unseal

CRYPTO = load_module_utils("sealed_secret_crypto")
OBJ = load_module_utils("sealed_secret_object")
MODULE = "infra.k3s.sealed_secret"
CRD = yaml.safe_load((UPSTREAM_CRDS / "bitnami.com_sealedsecrets.yaml").read_text())


def make_cert(key, days=3650, not_before=None):
    """keys.go SignKeyWithNotBefore: self-signed, CN sealed-secret (the controller's default --my-cn is empty;
    the name does not matter to sealing)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    return key, make_cert(key)


def params(**over):
    base = dict(name="db", namespace="shop", scope="strict", data={"password": "pw-" + secrets.token_hex(8), "user": "app"},
                type=None, labels=None, annotations=None)
    base.update(over)
    return base


def sealed(keypair, **over):
    key, pem = keypair
    par = params(**over)
    public_key, fingerprint = CRYPTO.load_certificate(pem)
    return par, OBJ.build(par, public_key, fingerprint)


def assert_valid(obj):
    """JSON-schema valid against the CRD, and no field under spec unknown to it (nothing the API server would prune)."""
    schema = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert CRD["spec"]["group"] + "/" + CRD["spec"]["versions"][0]["name"] == obj["apiVersion"]
    assert CRD["spec"]["names"]["kind"] == obj["kind"]
    jsonschema.validate(obj, schema)

    def known(value, sch, where):
        if isinstance(value, dict) and "properties" in sch and not sch.get("x-kubernetes-preserve-unknown-fields"):
            for field, item in value.items():
                assert field in sch["properties"], f"{where}.{field} is not in the CRD"
                known(item, sch["properties"][field], f"{where}.{field}")
    known(obj["spec"], schema["properties"]["spec"], "spec")


def moved(obj, name=None, namespace=None, annotations=None):
    """The same ciphertexts under other metadata (what someone copying them elsewhere would apply)."""
    other = json.loads(json.dumps(obj))
    if name:
        other["metadata"]["name"] = name
    if namespace:
        other["metadata"]["namespace"] = namespace
    if annotations is not None:
        other["metadata"]["annotations"] = annotations
    return other


# ---------------------------------------------------------------------------------------
# The sealing itself (module_utils), unsealed as the controller does
# ---------------------------------------------------------------------------------------

def test_hybrid_layout_is_upstreams(keypair):
    """2-byte big-endian RSA length, 512 bytes of RSA-OAEP for a 4096-bit key, then AES-GCM (value + 16-byte tag)."""
    key, pem = keypair
    public_key, _fp = CRYPTO.load_certificate(pem)
    blob = CRYPTO.hybrid_encrypt(public_key, b"hello", b"shop/db")
    assert int.from_bytes(blob[:2], "big") == 512 and len(blob) == 2 + 512 + 5 + 16
    assert hybrid_decrypt(key, blob, b"shop/db") == b"hello"
    assert CRYPTO.hybrid_encrypt(public_key, b"hello", b"shop/db") != blob  # randomised, as upstream
    with pytest.raises(UnsealError):
        hybrid_decrypt(key, blob, b"shop/other")


@pytest.mark.parametrize("scope, annotation", [("strict", None),
                                               ("namespace-wide", "sealedsecrets.bitnami.com/namespace-wide"),
                                               ("cluster-wide", "sealedsecrets.bitnami.com/cluster-wide")])
def test_each_scope_unseals_as_the_controller_does(keypair, scope, annotation):
    par, obj = sealed(keypair, scope=scope, labels={"app": "shop"}, annotations={"team": "a"}, type="Opaque")
    assert_valid(obj)
    secret = unseal(obj, keypair[0])
    assert {k: v.decode() for k, v in secret["data"].items()} == par["data"]
    assert secret["metadata"]["labels"] == {"app": "shop"} and secret["type"] == "Opaque"
    scope_annotations = {annotation: "true"} if annotation else {}
    assert {k: v for k, v in obj["metadata"]["annotations"].items() if k != OBJ.INPUT_ANNOTATION} == scope_annotations
    assert obj["spec"]["template"]["metadata"]["annotations"] == dict({"team": "a"}, **scope_annotations)
    assert obj["metadata"]["namespace"] == obj["spec"]["template"]["metadata"]["namespace"] == "shop"


def test_strict_only_unseals_under_its_name_and_namespace(keypair):
    _par, obj = sealed(keypair)
    for other in (moved(obj, name="db2"), moved(obj, namespace="shop2"),
                  moved(obj, annotations={"sealedsecrets.bitnami.com/namespace-wide": "true"}),
                  moved(obj, annotations={"sealedsecrets.bitnami.com/cluster-wide": "true"})):
        with pytest.raises(UnsealError):
            unseal(other, keypair[0])


def test_namespace_wide_unseals_under_any_name_but_only_in_its_namespace(keypair):
    par, obj = sealed(keypair, scope="namespace-wide")
    assert unseal(moved(obj, name="other"), keypair[0])["data"]["user"] == b"app"
    for other in (moved(obj, namespace="shop2"), moved(obj, annotations={}),
                  moved(obj, annotations={"sealedsecrets.bitnami.com/cluster-wide": "true"})):
        with pytest.raises(UnsealError):
            unseal(other, keypair[0])
    assert par["scope"] == "namespace-wide"


def test_cluster_wide_unseals_anywhere_and_may_have_no_namespace(keypair):
    _par, obj = sealed(keypair, scope="cluster-wide", namespace=None)
    assert "namespace" not in obj["metadata"] and "namespace" not in obj["spec"]["template"]["metadata"]
    assert_valid(obj)
    assert unseal(moved(obj, name="x", namespace="anywhere"), keypair[0])["data"]["user"] == b"app"
    with pytest.raises(UnsealError):
        unseal(moved(obj, annotations={}), keypair[0])  # read as strict: label "/db" is not ""


def test_another_key_cannot_unseal(keypair):
    _par, obj = sealed(keypair)
    with pytest.raises(UnsealError):
        unseal(obj, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_still_holds_only_the_same_input_for_the_same_key(keypair):
    par, obj = sealed(keypair)
    _pub, fingerprint = CRYPTO.load_certificate(keypair[1])
    assert OBJ.still_holds(obj, par, fingerprint)
    assert not OBJ.still_holds(obj, dict(par, data=dict(par["data"], password="changed")), fingerprint)
    assert not OBJ.still_holds(obj, dict(par, scope="namespace-wide"), fingerprint)
    assert not OBJ.still_holds(obj, dict(par, labels={"a": "b"}), fingerprint)
    assert not OBJ.still_holds(obj, par, "0" * 64)  # another certificate key
    dropped = json.loads(json.dumps(obj))
    dropped["spec"]["encryptedData"]["user"] = ""
    assert not OBJ.still_holds(dropped, par, fingerprint)
    unhashed = json.loads(json.dumps(obj))
    del unhashed["metadata"]["annotations"]
    assert not OBJ.still_holds(unhashed, par, fingerprint)
    # the hash holds no plaintext, and another salt gives another hash
    stored = obj["metadata"]["annotations"][OBJ.INPUT_ANNOTATION]
    assert par["data"]["password"] not in stored and stored != OBJ.input_hash(par, fingerprint)


def test_the_first_certificate_is_used_as_kubeseal_does(keypair):
    """ParseKey takes certs[0] of what /v1/cert.pem sends (the controller writes every certificate it has)."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    first, _fp = CRYPTO.load_certificate(keypair[1] + make_cert(other))
    assert first.public_numbers() == keypair[0].public_key().public_numbers()
    second, _fp = CRYPTO.load_certificate(make_cert(other) + keypair[1])
    assert second.public_numbers() == other.public_key().public_numbers()


def test_certificates_kubeseal_refuses(keypair):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CRYPTO.SealingError, match="expected an RSA public key"):
        CRYPTO.load_certificate(make_cert(ec_key))
    expired = make_cert(keypair[0], days=1, not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    with pytest.raises(CRYPTO.SealingError, match="expired certificate"):
        CRYPTO.load_certificate(expired)
    with pytest.raises(CRYPTO.SealingError, match="not a PEM certificate"):
        CRYPTO.load_certificate(keypair[0].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


@pytest.mark.parametrize("over, message", [
    (dict(namespace=None), "needs a namespace"),
    (dict(scope="namespace-wide", namespace=None), "needs a namespace"),
    (dict(name="Bad_Name"), "not a valid Secret name"),
    (dict(data={}), "data is empty"),
    (dict(data={"bad/key": "x"}), "not a valid Secret key"),
    (dict(data={"port": 5432}), "not a string"),
    (dict(annotations={"sealedsecrets.bitnami.com/cluster-wide": "true"}), "set by the module"),
])
def test_input_refused(over, message):
    with pytest.raises(OBJ.InvalidInput, match=message):
        OBJ.check_input(params(**over))


# ---------------------------------------------------------------------------------------
# The module through ansible-playbook
# ---------------------------------------------------------------------------------------

class ApiStandIn(BaseHTTPRequestHandler):
    """The two requests kubeseal --fetch-cert makes (pkg/kubeseal/kubeseal.go openCertCluster), answered as the
    API server does: GET the Service (its first port name), then GET through the service proxy
    (/api/v1/namespaces/<ns>/services/<scheme>:<name>:<port>/proxy/<path>, k8s.io/apiserver's proxy subresource of
    services), which the controller answers with its PEM (pkg/controller/server.go, /v1/cert.pem). Anything else is a
    404 Status; a wrong bearer token a 401."""

    token = ""
    pem = ""
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code, reason, message):
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                          "reason": reason, "code": code})

    def do_GET(self):  # noqa: N802 - http.server's name
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        type(self).requests.append(path)
        if self.headers.get("Authorization") != "Bearer " + self.token:
            return self._status(401, "Unauthorized", "Unauthorized")
        if path == "/api/v1/namespaces/kube-system/services/sealed-secrets-controller":
            return self._send(200, {"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": "sealed-secrets-controller", "namespace": "kube-system"},
                                    "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 8080,
                                                                             "protocol": "TCP", "targetPort": "http"}]}})
        if path == "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem":
            return self._send(200, self.pem, "application/x-pem-file")
        name = path.split("/services/")[-1].split("/")[0] if "/services/" in path else path
        return self._status(404, "NotFound", f'services "{name}" not found')


@pytest.fixture
def api(keypair):
    handler = type("Api", (ApiStandIn,), {"token": secrets.token_hex(16), "pem": keypair[1], "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def run_play(run_ansible, tmp_path, tasks, check=False, name="play"):
    play_tasks = [dict({"name": "task %d" % i, MODULE: args, "register": "r%d" % i, "ignore_errors": True})
                  for i, args in enumerate(tasks)]
    play_tasks.append({"name": "save results",
                       "ansible.builtin.debug": {"msg": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))}})
    playbook = tmp_path / (name + ".yml")
    playbook.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "tasks": play_tasks}]))
    proc = run_ansible("ansible-playbook", "-vvv", "-i", "localhost,", str(playbook), *(["--check"] if check else []),
                       extra_env={"K8S_AUTH_KUBECONFIG": "", "K8S_AUTH_HOST": "", "K8S_AUTH_API_KEY": ""})
    marker = proc.stdout.rfind("TASK [save results]")
    assert marker >= 0, proc.stdout + proc.stderr
    start = proc.stdout.index("{", proc.stdout.index("ok: [localhost]", marker))
    printed, _end = json.JSONDecoder().raw_decode(proc.stdout, start)
    return proc, json.loads(printed["msg"])


def test_module_seals_writes_once_and_keeps_plaintext_out_of_vvv(run_ansible, tmp_path, keypair, api):
    key, pem = keypair
    handler, url = api
    cert_path = tmp_path / "pub-cert.pem"
    cert_path.write_text(pem)
    dest = tmp_path / "repo" / "apps" / "shop" / "db-sealedsecret.yaml"
    wide = tmp_path / "repo" / "registry.yaml"
    pw, pw2, token = ("pw-" + secrets.token_hex(12) for _i in range(3))
    strict = {"name": "db", "namespace": "shop", "data": {"password": pw, "user": "app"},
              "certificate_path": str(cert_path), "dest": str(dest)}
    cluster = {"name": "registry", "scope": "cluster-wide", "type": "kubernetes.io/dockerconfigjson",
               "labels": {"app": "registry"}, "annotations": {"note": "a: b"},
               "data": {".dockerconfigjson": json.dumps({"auths": {"r.example": {"auth": token}}})},
               "certificate": pem, "dest": str(wide)}
    from_cluster = {"name": "db", "namespace": "shop", "scope": "namespace-wide", "data": {"password": pw},
                    "host": url, "api_key": handler.token}
    ec_pem = make_cert(ec.generate_private_key(ec.SECP256R1()))
    proc, r = run_play(run_ansible, tmp_path, [
        strict,                                                          # 0 written
        strict,                                                          # 1 kept
        dict(strict, data={"password": pw2, "user": "app"}),             # 2 a changed value: sealed again
        cluster,                                                         # 3 cluster-wide, no namespace
        from_cluster,                                                    # 4 the cluster's certificate
        dict(from_cluster, controller_name="sealed-secrets"),            # 5 no such Service
        dict(strict, certificate=pem),                                   # 6 both certificate sources
        dict({k: v for k, v in strict.items() if k != "certificate_path"}, certificate=ec_pem),  # 7 not RSA
        {k: v for k, v in strict.items() if k != "namespace"},         # 8 strict without namespace
        dict(strict, bogus=1),                                           # 9 an unknown option
    ])
    output = proc.stdout + proc.stderr
    assert "ESTABLISH LOCAL CONNECTION" in output  # really -vvv
    for plaintext in (pw, pw2, token, handler.token):
        assert plaintext not in output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # the invocations were printed, masked

    assert [x.get("failed", False) for x in r] == [False] * 5 + [True] * 5, r
    assert [x["changed"] for x in r[:5]] == [True, False, True, True, False]
    assert r[1]["sealed_secret"] == r[0]["sealed_secret"]  # the file's ciphertexts, not new ones
    assert r[2]["sealed_secret"]["spec"]["encryptedData"] != r[0]["sealed_secret"]["spec"]["encryptedData"]
    on_disk = yaml.safe_load(dest.read_text())
    assert dest.read_text().startswith("---\n") and on_disk == r[2]["sealed_secret"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert unseal(on_disk, key)["data"] == {"password": pw2.encode(), "user": b"app"}
    assert_valid(on_disk)

    registry = yaml.safe_load(wide.read_text())
    assert registry == r[3]["sealed_secret"] and "namespace" not in registry["metadata"]
    assert registry["spec"]["template"] == {"metadata": {"name": "registry", "labels": {"app": "registry"}, "annotations": {
        "note": "a: b", "sealedsecrets.bitnami.com/cluster-wide": "true"}}, "type": "kubernetes.io/dockerconfigjson"}
    assert json.loads(unseal(moved(registry, namespace="ci"), key)["data"][".dockerconfigjson"]) == json.loads(cluster["data"][".dockerconfigjson"])
    assert_valid(registry)

    assert r[4]["certificate_source"] == "cluster" and r[4]["certificate_fingerprint"] == r[0]["certificate_fingerprint"]
    assert unseal(moved(r[4]["sealed_secret"], name="any"), key)["data"] == {"password": pw.encode()}
    assert handler.requests[:2] == ["/api/v1/namespaces/kube-system/services/sealed-secrets-controller",
                                    "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem"]
    assert r[5]["status"] == 404 and "controller_name" in r[5]["msg"]
    assert "mutually exclusive" in r[6]["msg"]
    assert "expected an RSA public key" in r[7]["msg"]
    assert "needs a namespace" in r[8]["msg"]
    assert "Unsupported parameters" in r[9]["msg"] and "bogus" in r[9]["msg"]


def test_module_check_mode_writes_nothing(run_ansible, tmp_path, keypair):
    dest = tmp_path / "out" / "s.yaml"
    task = {"name": "db", "namespace": "shop", "data": {"password": "pw-" + secrets.token_hex(8)}, "certificate": keypair[1],
            "dest": str(dest)}
    _proc, r = run_play(run_ansible, tmp_path, [task], check=True)
    assert r[0]["changed"] is True and not r[0].get("failed")
    assert not dest.exists() and not dest.parent.exists()
    assert unseal(r[0]["sealed_secret"], keypair[0])["data"]["password"] == task["data"]["password"].encode()
    os.makedirs(dest.parent)
    before = "---\nnot: a sealed secret\n"
    dest.write_text(before)
    _proc, r = run_play(run_ansible, tmp_path, [task], check=True, name="again")
    assert r[0]["changed"] is True and dest.read_text() == before
    assert base64.b64decode(r[0]["sealed_secret"]["spec"]["encryptedData"]["password"])[:2] == (512).to_bytes(2, "big")

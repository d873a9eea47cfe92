"""The Kubernetes connection options (plugins/module_utils/kubernetes.py): kubernetes.core's argument spec
(AUTH_ARG_SPEC, documented by kubernetes.core.k8s_auth_options) with the environment variables its client
reads, and what each option does on the wire.

Each option is checked by building the ApiClient and sending one request with it to servers on 127.0.0.1 in
this process that record what they got (request line, headers, the TLS client certificate).
"""
from __future__ import annotations

import base64
import copy
import datetime
import importlib
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "t0ken-connection-0123456789"


@pytest.fixture(scope="module")
def k8s(collections_path):
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader([str(collections_path)])
    return importlib.import_module("ansible_collections.infra.k3s.plugins.module_utils.kubernetes")


@pytest.fixture(scope="module")
def core_spec(collections_path):
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader([str(collections_path)])
    return importlib.import_module("ansible_collections.kubernetes.core.plugins.module_utils.args_common")


class Recorder(ThreadingHTTPServer):
    """Answers every request with a JSON object and records (request line, headers, client certificate CN)."""

    daemon_threads = True

    def __init__(self, tls=None):
        self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                cert = self.connection.getpeercert() if tls else None
                common_name = None
                if cert:
                    common_name = dict(part[0] for part in cert["subject"]).get("commonName")
                self.server.seen.append({"line": self.requestline, "headers": self.headers, "client_cn": common_name})
                body = b'{"major": "1", "minor": "35"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_CONNECT(self):  # noqa: N802
                """A proxy's tunnel request: recorded and refused."""
                self.server.seen.append({"line": self.requestline, "headers": self.headers, "client_cn": None})
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if isinstance(self.socket, ssl.SSLSocket) else "http", self.server_address[1])


@pytest.fixture
def recorder():
    servers = []

    def make(tls=None):
        servers.append(Recorder(tls))
        return servers[-1]

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def send(client):
    """One GET /version through the client, as the modules' calls go (bearer token auth setting)."""
    return client.call_api("/version", "GET", response_types_map={"200": "object"}, auth_settings=["BearerToken"],
                           _return_http_data_only=True, _request_timeout=10)


def params(**given):
    """Module params as AnsibleModule makes them: every connection option present, None unless given."""
    from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import K8S_CONNECTION_ARGS
    values = dict.fromkeys(K8S_CONNECTION_ARGS)
    values.update(given)
    return values


# ---------------------------------------------------------------------------------------------
# The argument spec
# ---------------------------------------------------------------------------------------------

def test_connection_spec_is_kubernetes_cores_with_env_fallbacks(k8s, core_spec):
    spec = k8s.k8s_argument_spec(extra=dict(type="str"))
    assert set(spec) == set(core_spec.AUTH_ARG_SPEC) | {"wait", "wait_timeout", "wait_sleep", "extra"}
    for option, upstream in core_spec.AUTH_ARG_SPEC.items():
        ours = dict(spec[option])
        ours.pop("fallback", None)
        expected = dict(upstream)
        if option == "kubeconfig":
            expected["no_log"] = True
        assert ours == expected, option
    assert spec["api_key"]["no_log"] is True and spec["password"]["no_log"] is True
    assert "default" not in spec["validate_certs"]  # as kubernetes.core: unset keeps the kubeconfig's choice
    assert spec["kubeconfig"]["fallback"][1] == ["K8S_AUTH_KUBECONFIG"]
    assert spec["validate_certs"]["fallback"][1] == ["K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"]
    assert spec["ca_cert"]["fallback"][1] == ["K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"]
    assert spec["client_cert"]["fallback"][1] == ["K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"]
    assert spec["client_key"]["fallback"][1] == ["K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"]
    assert spec["impersonate_groups"]["fallback"][1] == ["K8S_AUTH_IMPERSONATE_GROUPS"]
    assert "fallback" not in spec["proxy_headers"]  # its suboptions' variables are read by build_api_client
    spec["kubeconfig"]["type"] = "str"
    assert k8s.K8S_CONNECTION_ARGS["kubeconfig"]["type"] == "raw", "the shared spec must be copied"
    assert core_spec.AUTH_ARG_SPEC["validate_certs"] == {"type": "bool", "aliases": ["verify_ssl"]}, "kubernetes.core's must not change"
    assert "wait" not in k8s.k8s_argument_spec(wait=False)


def test_env_fallbacks_and_aliases_as_a_module_validates_them(k8s, monkeypatch):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    monkeypatch.setenv("K8S_AUTH_CERT_FILE", "/etc/k/client.crt")
    monkeypatch.setenv("K8S_AUTH_IMPERSONATE_GROUPS", "ops,audit")
    monkeypatch.setenv("K8S_AUTH_API_KEY", TOKEN)
    result = ArgumentSpecValidator(copy.deepcopy(k8s.K8S_CONNECTION_ARGS)).validate({"ssl_ca_cert": "/etc/k/ca.crt", "key_file": "/etc/k/c.key"})
    assert result.error_messages == []
    got = result.validated_parameters
    assert got["validate_certs"] is False and got["client_cert"] == "/etc/k/client.crt"
    assert got["impersonate_groups"] == ["ops", "audit"] and got["api_key"] == TOKEN
    assert got["ca_cert"] == "/etc/k/ca.crt" and got["client_key"] == "/etc/k/c.key"
    assert TOKEN in result._no_log_values  # pylint: disable=protected-access
    monkeypatch.setenv("K8S_AUTH_VALIDATE_CERTS", "yes")  # the option's own name comes first, as in kubernetes.core
    assert ArgumentSpecValidator(copy.deepcopy(k8s.K8S_CONNECTION_ARGS)).validate({}).validated_parameters["validate_certs"] is True


# ---------------------------------------------------------------------------------------------
# Each option on the wire
# ---------------------------------------------------------------------------------------------

def test_host_and_api_key(k8s, recorder):
    server = recorder()
    send(k8s.build_api_client(params(host=server.url + "/", api_key=TOKEN)))
    [request] = server.seen
    assert request["line"] == "GET /version HTTP/1.1"
    assert request["headers"]["Authorization"] == "Bearer " + TOKEN
    assert request["headers"].get_all("Impersonate-User") is None


def test_impersonate_user_and_groups(k8s, recorder):
    server = recorder()
    send(k8s.build_api_client(params(host=server.url, api_key=TOKEN, impersonate_user="alice",
                                     impersonate_groups=["ops", "audit"])))
    headers = server.seen[0]["headers"]
    assert headers.get_all("Impersonate-User") == ["alice"]
    assert headers.get_all("Impersonate-Group") == ["ops", "audit"]  # one line per group, as kubectl --as-group


def test_proxy_and_proxy_headers(k8s, recorder, monkeypatch):
    proxy = recorder()
    target = "http://k8s-api.invalid:6443"
    send(k8s.build_api_client(params(host=target, api_key=TOKEN, proxy=proxy.url, proxy_headers={"proxy_basic_auth": "pu:pp"})))
    [request] = proxy.seen
    assert request["line"] == "GET %s/version HTTP/1.1" % target
    assert request["headers"]["Proxy-Authorization"] == "Basic " + base64.b64encode(b"pu:pp").decode()
    assert request["headers"]["Authorization"] == "Bearer " + TOKEN
    # HTTPS through the proxy: the proxy headers (all three suboptions) go with the CONNECT
    with pytest.raises(Exception):  # the recording proxy refuses the tunnel
        send(k8s.build_api_client(params(host="https://k8s-api.invalid:6443", api_key=TOKEN, proxy=proxy.url, proxy_headers={
            "proxy_basic_auth": "pu:pp", "basic_auth": "bu:bp", "user_agent": "infra-k3s-test/1"})))
    connect = proxy.seen[1]  # (the client retries once: cfg.retries = 1)
    assert connect["line"].startswith("CONNECT k8s-api.invalid:6443 HTTP/")
    assert connect["headers"]["Proxy-Authorization"] == "Basic " + base64.b64encode(b"pu:pp").decode()
    assert connect["headers"]["Authorization"] == "Basic " + base64.b64encode(b"bu:bp").decode()
    assert connect["headers"]["User-Agent"] == "infra-k3s-test/1"
    assert TOKEN not in str(connect["headers"])  # the API token is only sent inside the tunnel
    # proxy_headers not given: K8S_AUTH_PROXY_HEADERS_<KEY>, as kubernetes.core reads them
    monkeypatch.setenv("K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH", "eu:ep")
    proxy.seen.clear()
    send(k8s.build_api_client(params(host=target, api_key=TOKEN, proxy=proxy.url)))
    assert proxy.seen[0]["headers"]["Proxy-Authorization"] == "Basic " + base64.b64encode(b"eu:ep").decode()


def test_no_proxy_goes_direct(k8s, recorder):
    proxy, server = recorder(), recorder()
    send(k8s.build_api_client(params(host=server.url, api_key=TOKEN, proxy=proxy.url, no_proxy="localhost,127.0.0.1")))
    assert proxy.seen == [] and server.seen[0]["line"] == "GET /version HTTP/1.1"
    send(k8s.build_api_client(params(host=server.url, api_key=TOKEN, proxy=proxy.url, no_proxy="other.example")))
    assert len(proxy.seen) == 1 and len(server.seen) == 1


def _cert(name, key, issuer=None, issuer_key=None, ca=False, ip=None):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        import ipaddress  # pylint: disable=import-outside-toplevel
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN kube-admin), as PEM files."""
    root = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for unused in range(3))
    ca = _cert("test-ca", ca_key, ca=True)
    files = {}
    for name, cert, key in (("ca", ca, ca_key), ("server", _cert("127.0.0.1", server_key, ca.subject, ca_key, ip="127.0.0.1"), server_key),
                            ("client", _cert("kube-admin", client_key, ca.subject, ca_key), client_key)):
        (root / (name + ".crt")).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (root / (name + ".key")).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
        files[name] = (str(root / (name + ".crt")), str(root / (name + ".key")))
    return files


def test_client_cert_and_key(k8s, recorder, pki):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*pki["server"])
    tls.load_verify_locations(pki["ca"][0])
    tls.verify_mode = ssl.CERT_REQUIRED
    server = recorder(tls)
    send(k8s.build_api_client(params(host=server.url, ca_cert=pki["ca"][0], client_cert=pki["client"][0], client_key=pki["client"][1])))
    assert server.seen[0]["client_cn"] == "kube-admin"
    with pytest.raises(Exception):  # without them the server refuses the handshake
        send(k8s.build_api_client(params(host=server.url, ca_cert=pki["ca"][0])))
    assert len(server.seen) == 1


def _kubeconfig(server, token=TOKEN):
    return {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": server.url}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}]}


def test_kubeconfig_as_a_dictionary(k8s, recorder):
    server = recorder()
    send(k8s.build_api_client(params(kubeconfig=_kubeconfig(server, "dict-token"))))
    assert server.seen[0]["headers"]["Authorization"] == "Bearer dict-token"
    with pytest.raises(k8s.KubernetesError, match="given as a dictionary .context nope."):
        k8s.build_api_client(params(kubeconfig=_kubeconfig(server), context="nope"))
    with pytest.raises(k8s.KubernetesError, match="must be a path"):
        k8s.build_api_client(params(kubeconfig=["a", "b"]))


def test_kubeconfig_files_separated_by_colons(k8s, recorder, tmp_path):
    server = recorder()
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig(server, "file-token")))
    send(k8s.build_api_client(params(kubeconfig="%s:%s" % (tmp_path / "missing", path))))
    assert server.seen[0]["headers"]["Authorization"] == "Bearer file-token"
    with pytest.raises(k8s.KubernetesError, match="does not exist"):
        k8s.build_api_client(params(kubeconfig="%s:%s" % (tmp_path / "missing", tmp_path / "missing2")))


def test_persist_config_reaches_the_kubeconfig_loader(k8s, recorder, tmp_path, monkeypatch):
    import kubernetes  # pylint: disable=import-outside-toplevel
    server = recorder()
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig(server)))
    real, seen = kubernetes.config.load_kube_config, []

    def recording(**kwargs):
        seen.append(kwargs["persist_config"])
        return real(**kwargs)

    monkeypatch.setattr(kubernetes.config, "load_kube_config", recording)
    for value in (None, True, False):
        send(k8s.build_api_client(params(kubeconfig=str(path), persist_config=value)))
    assert seen == [False, True, False] and len(server.seen) == 3


@pytest.mark.parametrize("given", [{"username": "admin", "password": "pw"}, {"username": "admin"}, {"password": "pw"}])
def test_username_and_password_are_refused(k8s, recorder, given):
    server = recorder()
    with pytest.raises(k8s.KubernetesError) as info:
        k8s.build_api_client(params(host=server.url, **given))
    assert info.value.msg == k8s.BASIC_AUTH_REFUSED and "v1.19" in info.value.msg
    assert server.seen == []

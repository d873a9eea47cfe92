# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run() of sealed_secret (where the certificate comes from, writing dest) and execute(), the one place
where its failures (InvalidInput, SealingError, KubernetesError) become fail_json.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import (
    REQUEST_TIMEOUT,
    ApiException,
    KubernetesError,
    api_error,
    build_api_client,
    connection_errors,
    kubernetes,
    show_kubeconfig_path,
)
from ansible_collections.infra.k3s.plugins.module_utils.sealed_secret_crypto import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    SealingError,
    load_certificate,
)
from ansible_collections.infra.k3s.plugins.module_utils.sealed_secret_object import (
    InvalidInput,
    build,
    check_input,
    still_holds,
)

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

DEST_MODE = 0o644  # ciphertext only: meant to be committed


def fetch_cluster_certificate(params, client_factory=build_api_client):
    """The controller's certificate as kubeseal --fetch-cert reads it (bitnami-labs/sealed-secrets
    pkg/kubeseal/kubeseal.go OpenCert/openCertCluster): the Service's first port name
    (getServicePortName), then GET /v1/cert.pem through the API server's service proxy
    (ProxyGet("http", name, portName, ...): the proxied name is http:<service>:<port name>)."""
    name, namespace = params["controller_name"], params["controller_namespace"]
    client = client_factory(params)
    what = "reading the Sealed Secrets controller's Service %s/%s" % (namespace, name)
    try:
        service = kubernetes.client.CoreV1Api(client).read_namespaced_service(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        ports = (service.spec.ports or []) if service.spec else []
        port_name = (ports[0].name or "") if ports else ""
        what = "fetching the certificate from %s/%s (/v1/cert.pem through the service proxy)" % (namespace, name)
        resp = client.call_api(
            "/api/v1/namespaces/{namespace}/services/{name}/proxy/v1/cert.pem", "GET",
            path_params={"namespace": namespace, "name": "http:%s:%s" % (name, port_name)},
            header_params={"Accept": "application/x-pem-file, */*"},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        body = resp[0].data if isinstance(resp, tuple) else resp.data
    except connection_errors() as exc:
        raise api_error(exc, what)
    except ApiException as exc:
        err = api_error(exc, what)
        if getattr(err, "status", None) == 404:
            err.msg += (" (is the controller installed under this name? set controller_name and controller_namespace, "
                        "as kubeseal's --controller-name and --controller-namespace)")
        raise err
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def certificate_of(module, client_factory=build_api_client):
    """(PEM text, where it came from) from certificate, certificate_path or the cluster."""
    params = module.params
    if params.get("certificate"):
        return params["certificate"], "certificate"
    if params.get("certificate_path"):
        path = params["certificate_path"]
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("utf-8", "replace"), path
        except OSError as exc:
            raise SealingError("could not read certificate_path %s: %s" % (path, to_native(exc.strerror or exc)))
    return fetch_cluster_certificate(params, client_factory), "cluster"


def _read_dest(path):
    """The object in dest, or None when it is missing or not YAML."""
    try:
        with open(path, "rb") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError):
        return None


def _write_dest(module, path, obj):
    text = "---\n" + yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=4096)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sealed_secret.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, DEST_MODE)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_sealed_secret(module, client_factory=build_api_client):
    """sealed_secret: the SealedSecret for the input, written to dest when asked; the module's result."""
    params = module.params
    check_input(params)
    pem, source = certificate_of(module, client_factory)
    public_key, fingerprint = load_certificate(pem)
    result = dict(changed=False, certificate_source=source, certificate_fingerprint=fingerprint)
    dest = params.get("dest")
    if dest:
        result["dest"] = dest
        existing = _read_dest(dest)
        if existing is not None and still_holds(existing, params, fingerprint):
            result["sealed_secret"] = existing
            return result
    obj = build(params, public_key, fingerprint)
    result["sealed_secret"] = obj
    if dest:
        result["changed"] = True
        if not module.check_mode:
            _write_dest(module, dest, obj)
    return result


def execute(module, runner, client_factory=build_api_client):
    """Run runner(module, client_factory) and exit: the one place its failures become fail_json."""
    show_kubeconfig_path(module)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=str(YAML_IMPORT_ERROR))
    try:
        result = runner(module, client_factory)
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sealed: %s" % exc)
    except SealingError as exc:
        module.fail_json(msg="Could not seal, nothing was written: %s" % exc)
    except KubernetesError as exc:
        module.fail_json(msg=exc.msg, **exc.fail_fields())
    module.exit_json(**result)

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the infra.k3s modules that talk to the Kubernetes API.

- The connection options (documented in doc_fragments/kubernetes.py), deep-copied by each
  module, and building an ``ApiClient`` of the official ``kubernetes`` client from them.
- The wait options (doc_fragments/kubernetes.py, attribute WAIT); the waiter itself is waiter.py.
- KubernetesError, the exception the Kubernetes modules turn into fail_json (with waiter.py's
  WaitTimeout, at one place: velero_runners.py execute()), and the translation of the client's
  exceptions into it.
"""

from __future__ import annotations

import copy
import json
import os

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import kubernetes
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    kubernetes = None
    ApiException = ConfigException = None
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

try:
    import urllib3
    HAS_URLLIB3 = True
except ImportError:  # pragma: no cover - the kubernetes client depends on it
    urllib3 = None
    HAS_URLLIB3 = False

# Options shared by every module that talks to Kubernetes (doc_fragments/kubernetes.py DOCUMENTATION).
K8S_CONNECTION_ARGS = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
    ca_cert=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
)

# Options of the modules that can wait for an object (doc_fragments/kubernetes.py WAIT).
K8S_WAIT_ARGS = dict(
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=600),
    wait_sleep=dict(type="int", default=5),
)

# Seconds each HTTP request may take (connect, read).
REQUEST_TIMEOUT = (10, 60)


def k8s_argument_spec(wait=True, **extra):
    """A fresh copy of the connection options (and the wait options), merged with a module's own."""
    spec = copy.deepcopy(K8S_CONNECTION_ARGS)
    if wait:
        spec.update(copy.deepcopy(K8S_WAIT_ARGS))
    spec.update(copy.deepcopy(extra))
    return spec


class KubernetesError(Exception):
    """A failure to report as it is. ``result`` holds extra fields for fail_json."""

    def __init__(self, msg, status=None, reason=None, **result):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.reason = reason
        self.result = result

    def fail_fields(self):
        fields = dict(self.result)
        if self.status is not None:
            fields["status"] = self.status
        if self.reason is not None:
            fields["reason"] = self.reason
        return fields


def require_kubernetes():
    """Raise KubernetesError naming the missing library (the modules' way of missing_required_lib)."""
    if not HAS_KUBERNETES:
        raise KubernetesError(missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))


# --------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------

def _default_kubeconfig():
    paths = os.environ.get("KUBECONFIG")
    if paths:
        first = [p for p in paths.split(os.pathsep) if p]
        return first[0] if first else None
    return os.path.expanduser("~/.kube/config")


def build_api_client(params):
    """An ApiClient for the connection options in params (a module's params).

    A kubeconfig is read when O(kubeconfig) or O(context) is given, or when O(host) is not;
    O(host), O(api_key), O(validate_certs) and O(ca_cert) then override what it says.
    Without a kubeconfig file and O(host), the in-cluster service account is used.
    """
    require_kubernetes()
    cfg = kubernetes.client.Configuration()
    kubeconfig = params.get("kubeconfig")
    context = params.get("context")
    host = params.get("host")
    if kubeconfig or context or not host:
        path = kubeconfig or _default_kubeconfig()
        if kubeconfig and not os.path.exists(kubeconfig):
            raise KubernetesError("The kubeconfig file %s does not exist" % kubeconfig)
        if path and os.path.exists(path):
            try:
                kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                                   persist_config=False)
            except (ConfigException, ValueError, TypeError, KeyError) as exc:
                raise KubernetesError("Could not use the kubeconfig %s%s: %s"
                                      % (path, " (context %s)" % context if context else "", exc))
        elif not host:
            try:
                kubernetes.config.load_incluster_config(client_configuration=cfg)
            except ConfigException as exc:
                raise KubernetesError("No Kubernetes API to talk to: set kubeconfig (or K8S_AUTH_KUBECONFIG), or host and api_key "
                                      "(no kubeconfig at %s and not running in a cluster: %s)" % (path, exc))
    if host:
        cfg.host = host.rstrip("/")
    if params.get("api_key"):
        cfg.api_key = {"authorization": "Bearer %s" % params["api_key"]}
        cfg.api_key_prefix = {}
    if params.get("ca_cert"):
        cfg.ssl_ca_cert = params["ca_cert"]
    if params.get("validate_certs") is False:
        cfg.verify_ssl = False
        if HAS_URLLIB3:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    cfg.retries = 1
    return kubernetes.client.ApiClient(cfg)


def api_error(exc, what):
    """KubernetesError for an ApiException (or a connection error) met while doing ``what``."""
    if HAS_KUBERNETES and isinstance(exc, ApiException):
        status = exc.status
        reason = exc.reason
        message = None
        try:
            body = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            body = {}
        if isinstance(body, dict) and body.get("kind") == "Status":
            reason = body.get("reason") or reason
            message = body.get("message")
        if message is None:
            message = (exc.body if isinstance(exc.body, str) else None) or exc.reason or "no details"
        if status == 401:
            hint = " (the credentials were rejected: check api_key or the kubeconfig's user)"
        elif status == 403:
            hint = " (the credentials lack the RBAC permission for this)"
        elif status == 404 and reason == "NotFound" and "could not find the requested resource" in message:
            hint = " (is Velero installed? its CustomResourceDefinitions are not served)"
        elif status and status >= 500:
            hint = " (the API server is having trouble; try again later)"
        else:
            hint = ""
        return KubernetesError("Kubernetes API answered HTTP %s (%s) while %s: %s%s" % (status, reason, what, message, hint),
                               status=status, reason=reason)
    return KubernetesError("Could not reach the Kubernetes API while %s: %s" % (what, exc))


def connection_errors():
    """Exception classes that mean the API could not be reached."""
    errors = [OSError]
    if HAS_URLLIB3:
        errors.append(urllib3.exceptions.HTTPError)
    return tuple(errors)


def is_status(exc, status, reason=None):
    """Whether exc is an ApiException with this HTTP status (and Status reason)."""
    if not (HAS_KUBERNETES and isinstance(exc, ApiException)) or exc.status != status:
        return False
    if reason is None:
        return True
    try:
        return json.loads(exc.body).get("reason") == reason
    except (TypeError, ValueError, AttributeError):
        return False

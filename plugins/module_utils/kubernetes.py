# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the infra.k3s modules that talk to the Kubernetes API.

- The connection options: kubernetes.core's (its ``AUTH_ARG_SPEC``, documented by its doc fragment
  ``kubernetes.core.k8s_auth_options``) with the environment variables it reads as fallbacks, deep-copied by
  each module, and building an ``ApiClient`` of the official ``kubernetes`` client that honours each of them
  (O(username)/O(password) are refused, see BASIC_AUTH_REFUSED).
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
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
    AUTH_ARG_MAP,
    AUTH_ARG_SPEC,
    AUTH_PROXY_HEADERS_SPEC,
)

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


def _connection_args():
    """kubernetes.core's connection options, with the environment variables its client reads as fallbacks.

    kubernetes.core plugins/module_utils/k8s/client.py (_create_auth_spec, _create_headers) reads, for an option
    not given, K8S_AUTH_<OPTION> and then K8S_AUTH_<name in the client's Configuration> (AUTH_ARG_MAP: verify_ssl,
    ssl_ca_cert, cert_file, key_file); here they are argument spec fallbacks, so the values are type-checked
    and a secret read from the environment is no_log like one given as an option. proxy_headers' suboptions
    (K8S_AUTH_PROXY_HEADERS_<KEY>) are read by build_api_client.
    kubeconfig is no_log (kubernetes.core 6.x marks it so: a kubeconfig given as a dictionary holds keys and
    tokens, and AnsibleModule logs its arguments to the host's journal before the module runs); a kubeconfig
    path is shown again in results by show_kubeconfig_path().
    """
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    client_names = dict((option, name) for name, option in AUTH_ARG_MAP.items())
    for option, settings in spec.items():
        if option == "proxy_headers":
            continue
        names = ["K8S_AUTH_%s" % option.upper()]
        if client_names.get(option, option) != option:
            names.append("K8S_AUTH_%s" % client_names[option].upper())
        settings["fallback"] = (env_fallback, names)
    spec["kubeconfig"]["no_log"] = True
    return spec


# Options shared by every module that talks to Kubernetes: kubernetes.core's, documented by its doc fragment
# kubernetes.core.k8s_auth_options (with infra.k3s.kubernetes for what this client does with them).
K8S_CONNECTION_ARGS = _connection_args()

# kubernetes/kubernetes removed HTTP Basic authentication from the API server in v1.19 (CHANGELOG-1.19.md:
# "Support for basic authentication via the --basic-auth-file flag has been removed", #89069), so no K3s
# this collection supports accepts a username and password; kubernetes.core documents the options as working
# only where a cluster is configured for Basic auth.
BASIC_AUTH_REFUSED = ("username and password (HTTP Basic authentication) are not supported: the Kubernetes API server has "
                      "not accepted them since v1.19 (kubernetes/kubernetes#89069). Use api_key (a bearer token), "
                      "client_cert and client_key, or a kubeconfig")

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

class _RepeatedHeader(str):
    """A header name that can be a key of the default headers more than once, one value each: Kubernetes reads
    every Impersonate-Group header line as one group (kubernetes/apiserver pkg/endpoints/filters/impersonation.go),
    so a list must not be joined into one line. The client keeps default headers in a dict, so each name must be
    a distinct key: a string equal only to itself (kubernetes.core's client.py does the same, unique_string)."""

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def lower(self):
        return self


def show_kubeconfig_path(module):
    """Let a kubeconfig given as a path (not a secret) appear in results and messages again (see _connection_args)."""
    kubeconfig = module.params.get("kubeconfig")
    if isinstance(kubeconfig, str):
        module.no_log_values.discard(kubeconfig)


def _proxy_headers(params):
    """proxy_headers as urllib3 headers: the option, else K8S_AUTH_PROXY_HEADERS_<KEY> (as kubernetes.core reads them)."""
    given = params.get("proxy_headers")
    if given is None:
        given = dict((key, os.environ.get("K8S_AUTH_PROXY_HEADERS_%s" % key.upper())) for key in AUTH_PROXY_HEADERS_SPEC)
    given = dict((key, value) for key, value in given.items() if value is not None)
    if not given:
        return None
    return urllib3.util.make_headers(**given)


def _default_kubeconfig():
    paths = os.environ.get("KUBECONFIG")
    if paths:
        first = [p for p in paths.split(os.pathsep) if p]
        return first[0] if first else None
    return os.path.expanduser("~/.kube/config")


def build_api_client(params):
    """An ApiClient for the connection options in params (a module's params).

    A kubeconfig is read when O(kubeconfig) or O(context) is given, or when O(host) is not; O(kubeconfig)
    is a file, several separated by ":" (merged as kubectl does), or the kubeconfig itself as a dictionary.
    O(host), O(api_key), O(validate_certs), O(ca_cert), O(client_cert) and O(client_key) then override what it
    says. Without a kubeconfig file and O(host), the in-cluster service account is used.
    """
    require_kubernetes()
    if params.get("username") or params.get("password"):
        raise KubernetesError(BASIC_AUTH_REFUSED)
    cfg = kubernetes.client.Configuration()
    kubeconfig = params.get("kubeconfig")
    context = params.get("context")
    host = params.get("host")
    if isinstance(kubeconfig, dict):
        try:
            kubernetes.config.load_kube_config_from_dict(config_dict=kubeconfig, context=context, client_configuration=cfg,
                                                         persist_config=False)
        except (ConfigException, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise KubernetesError("Could not use the kubeconfig given as a dictionary%s: %s"
                                  % (" (context %s)" % context if context else "", exc))
    elif kubeconfig is not None and not isinstance(kubeconfig, str):
        raise KubernetesError("kubeconfig must be a path (or several separated by %r) or a dictionary, not %s"
                              % (os.pathsep, type(kubeconfig).__name__))
    elif kubeconfig or context or not host:
        path = kubeconfig or _default_kubeconfig()
        if kubeconfig and not any(os.path.exists(os.path.expanduser(part)) for part in kubeconfig.split(os.pathsep) if part):
            raise KubernetesError("The kubeconfig file %s does not exist" % kubeconfig)
        if path and any(os.path.exists(os.path.expanduser(part)) for part in path.split(os.pathsep) if part):
            try:
                kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                                   persist_config=bool(params.get("persist_config")))
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
    if params.get("client_cert"):
        cfg.cert_file = params["client_cert"]
    if params.get("client_key"):
        cfg.key_file = params["client_key"]
    if params.get("validate_certs") is False:
        cfg.verify_ssl = False
        if HAS_URLLIB3:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if params.get("proxy"):
        cfg.proxy = params["proxy"]
    if params.get("no_proxy"):
        cfg.no_proxy = params["no_proxy"]
    proxy_headers = _proxy_headers(params)
    if proxy_headers:
        cfg.proxy_headers = proxy_headers
    cfg.retries = 1
    client = kubernetes.client.ApiClient(cfg)
    # User impersonation: the headers kubectl's --as and --as-group send (k8s.io/client-go transport/round_trippers.go).
    if params.get("impersonate_user"):
        client.set_default_header("Impersonate-User", params["impersonate_user"])
    for group in params.get("impersonate_groups") or []:
        client.set_default_header(_RepeatedHeader("Impersonate-Group"), group)
    return client


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

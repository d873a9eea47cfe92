# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VeleroAPI: velero.io/v1 objects of one namespace (and the few core objects the modules touch)
through the official kubernetes client's CustomObjectsApi/CoreV1Api. Every client error becomes
KubernetesError (kubernetes.py); check mode sends dryRun=All.
"""

from __future__ import annotations

import base64

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import (
    api_error,
    build_api_client,
    connection_errors,
    KubernetesError,
)
from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import (
    GROUP,
    KINDS,
    VERSION,
)

try:
    import kubernetes
    from kubernetes.client.rest import ApiException
except ImportError:  # pragma: no cover - reported by require_kubernetes()
    kubernetes = None
    ApiException = None


class VeleroAPI(object):
    """velero.io/v1 objects of one namespace (and the few core objects the modules touch)."""

    def __init__(self, api_client, namespace):
        self.api_client = api_client
        self.namespace = namespace
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    @classmethod
    def from_params(cls, params):
        return cls(build_api_client(params), params["namespace"])

    def _call(self, what, func, *args, **kwargs):
        kwargs.setdefault("_request_timeout", (10, 60))
        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, what)
        except connection_errors() as exc:
            raise api_error(exc, what)

    def _what(self, verb, plural, name=None):
        return "%s %s %s/%s" % (verb, KINDS.get(plural, plural), self.namespace, name or "")

    def get(self, plural, name):
        """The object, or None when it does not exist."""
        try:
            return self._call(self._what("reading", plural, name), self.custom.get_namespaced_custom_object,
                              GROUP, VERSION, self.namespace, plural, name)
        except KubernetesError as exc:
            if exc.status == 404 and exc.reason == "NotFound" and "could not find the requested resource" not in exc.msg:
                return None
            raise

    def list(self, plural, label_selector=None):
        kwargs = {"label_selector": label_selector} if label_selector else {}
        body = self._call("listing %ss in namespace %s" % (KINDS[plural], self.namespace), self.custom.list_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, **kwargs)
        return list((body or {}).get("items") or [])

    def create(self, plural, body, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        name = body["metadata"].get("name") or body["metadata"].get("generateName", "") + "*"
        return self._call(self._what("creating", plural, name), self.custom.create_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, body, **kwargs)

    def patch(self, plural, name, patch, dry_run=False):
        """Merge patch; a metadata.resourceVersion in it makes the API refuse (409 Conflict) when the object changed meanwhile."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._call(self._what("patching", plural, name), self.custom.patch_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, plural, name, patch,
                          _content_type="application/merge-patch+json", **kwargs)

    def delete(self, plural, name, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            self._call(self._what("deleting", plural, name), self.custom.delete_namespaced_custom_object,
                       GROUP, VERSION, self.namespace, plural, name, **kwargs)
        except KubernetesError as exc:
            if exc.status == 404 and exc.reason == "NotFound":
                return False
            raise
        return True

    # core objects
    def _plain(self, obj):
        return self.api_client.sanitize_for_serialization(obj) if obj is not None else None

    def get_configmap(self, name):
        try:
            return self._plain(self._call("reading ConfigMap %s/%s" % (self.namespace, name), self.core.read_namespaced_config_map,
                                          name, self.namespace))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def create_configmap(self, body, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._plain(self._call("creating ConfigMap %s/%s" % (self.namespace, body["metadata"]["name"]),
                                      self.core.create_namespaced_config_map, self.namespace, body, **kwargs))

    def patch_configmap(self, name, patch, dry_run=False):
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self._plain(self._call("patching ConfigMap %s/%s" % (self.namespace, name), self.core.patch_namespaced_config_map,
                                      name, self.namespace, patch, _content_type="application/merge-patch+json", **kwargs))

    def delete_configmap(self, name, dry_run=False):
        """Delete a ConfigMap; False when it did not exist."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        try:
            self._call("deleting ConfigMap %s/%s" % (self.namespace, name), self.core.delete_namespaced_config_map,
                       name, self.namespace, **kwargs)
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def secret_value(self, name, key):
        """A Secret's value (decoded), None when the Secret or key does not exist."""
        try:
            secret = self._call("reading Secret %s/%s" % (self.namespace, name), self.core.read_namespaced_secret, name, self.namespace)
        except KubernetesError as exc:
            if exc.status in (403, 404):
                return None
            raise
        data = (secret.data or {}) if secret is not None else {}
        if key not in data:
            return None
        return base64.b64decode(data[key]).decode("utf-8", "replace")


def is_conflict(exc):
    return exc.status == 409 and exc.reason == "Conflict"


def is_already_exists(exc):
    return exc.status == 409 and exc.reason == "AlreadyExists"

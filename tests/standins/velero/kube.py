"""A minimal JSON client for the Kubernetes API over the official client's transport (kubeconfig auth, TLS)."""
from __future__ import annotations

import json
import urllib.parse

import urllib3
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException


_OBJECT = {code: "object" for code in (200, 201, 202)}


class KubeError(Exception):
    """An API error: .code (HTTP status), .reason and .body (the Status object when there is one)."""

    def __init__(self, code: int, body):
        self.code = code
        self.body = body if isinstance(body, dict) else {}
        self.reason = self.body.get("reason", "")
        super().__init__(f"{code} {self.body.get('message') or body}")


def path(group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None,
         sub: str | None = None) -> str:
    """The REST path of a collection or an object."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{urllib.parse.quote(namespace)}"
    base += f"/{plural}"
    if name:
        base += f"/{urllib.parse.quote(name)}"
    if sub:
        base += f"/{sub}"
    return base


class Kube:
    """GET/POST/PUT/PATCH/DELETE with JSON bodies, authenticated from a kubeconfig."""

    def __init__(self, kubeconfig_path: str, timeout: float = 15.0):
        self.api = kube_config.new_client_from_config(config_file=str(kubeconfig_path))
        self.timeout = timeout

    def request(self, method: str, url_path: str, body=None, query: dict | None = None,
                content_type: str = "application/json"):
        """One request; returns the decoded JSON body or raises KubeError."""
        try:
            return self.api.call_api(
                url_path, method, query_params=list((query or {}).items()), body=body,
                # Kept-alive connections (urllib3's pool): the stand-in API server answers in one write with Nagle off.
                header_params={"Accept": "application/json", "Content-Type": content_type},
                response_types_map=_OBJECT, auth_settings=["BearerToken"], _return_http_data_only=True,
                _preload_content=True, _request_timeout=self.timeout)
        except ApiException as exc:
            try:
                decoded = json.loads(exc.body or "{}")
            except ValueError:
                decoded = {"message": exc.body}
            raise KubeError(exc.status or 0, decoded) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The request may or may not have reached the server (e.g. the response was lost): code 0.
            raise KubeError(0, {"reason": "ConnectionError", "message": f"{method} {url_path}: {exc}"}) from exc

    @staticmethod
    def transient(exc: "KubeError") -> bool:
        """Worth retrying: no answer at all, the server busy or unavailable, or a resourceVersion conflict."""
        return exc.code in (0, 429, 500, 502, 503, 504) or (exc.code == 409 and exc.reason == "Conflict")

    def get(self, group, version, plural, namespace=None, name=None, default=KeyError):
        """An object (or `default` when given and the object is missing)."""
        try:
            return self.request("GET", path(group, version, plural, namespace, name))
        except KubeError as exc:
            if exc.code == 404 and default is not KeyError:
                return default
            raise

    def list(self, group, version, plural, namespace=None, label_selector: str = "") -> list:
        """Items of a collection."""
        query = {"labelSelector": label_selector} if label_selector else None
        return self.request("GET", path(group, version, plural, namespace), query=query).get("items") or []

    def create(self, group, version, plural, obj: dict, namespace=None) -> dict:
        """POST an object."""
        return self.request("POST", path(group, version, plural, namespace), body=obj)

    def replace(self, group, version, plural, obj: dict, namespace=None, sub=None) -> dict:
        """PUT an object (resourceVersion conflicts apply)."""
        return self.request("PUT", path(group, version, plural, namespace, obj["metadata"]["name"], sub), body=obj)

    def patch(self, group, version, plural, name: str, patch: dict, namespace=None, sub=None) -> dict:
        """JSON merge patch."""
        return self.request("PATCH", path(group, version, plural, namespace, name, sub), body=patch,
                            content_type="application/merge-patch+json")

    def delete(self, group, version, plural, name: str, namespace=None) -> None:
        """DELETE an object (missing objects are fine)."""
        try:
            self.request("DELETE", path(group, version, plural, namespace, name))
        except KubeError as exc:
            if exc.code != 404:
                raise

    def resources(self, group: str, version: str) -> list:
        """Discovery: the APIResource entries of a group version ([] when not served)."""
        url_path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            return self.request("GET", url_path).get("resources") or []
        except KubeError as exc:
            if exc.code == 404:
                return []
            raise

    def groups(self) -> list:
        """Discovery: [(group, preferred version)] of the named API groups."""
        found = self.request("GET", "/apis").get("groups") or []
        return [(g["name"], (g.get("preferredVersion") or g["versions"][0])["version"]) for g in found]

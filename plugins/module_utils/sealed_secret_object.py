# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SealedSecret object sealed_secret makes, and how a re-run tells that a written one still holds the input.

The object is what kubeseal prints for a Secret (bitnami-labs/sealed-secrets at 86671a8,
pkg/kubeseal/kubeseal.go Seal, pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go NewSealedSecret):
- metadata: the Secret's name and namespace; the scope annotation (UpdateScopeAnnotations: namespace-wide or
  cluster-wide "true", none for strict). The controller reads the scope from these annotations when it
  unseals (SealedSecret.Unseal, labelFor(smeta)), so they must match the label the values were sealed with.
- spec.template: the Secret's metadata (name, namespace, labels, annotations; kubeseal adds the scope
  annotation to the Secret before copying it when the scope is not the default) and its type.
- spec.encryptedData: each value sealed on its own (HybridEncrypt), under the scope's label.
A cluster-wide Secret keeps no namespace unless it is given (Seal sets the context's namespace only for the
other scopes); strict and namespace-wide need one ("secret must declare a namespace").

Sealing is randomised (a fresh session key and OAEP seed per value), so the same input never gives the same
file, and only the controller's private key can read a value back. kubeseal's --merge-into (SealMergingInto)
re-seals every key it is given and rewrites the file each time. To leave an unchanged file alone, sealed_secret
stores in the SealedSecret's own metadata (never copied to the Secret: the controller builds the Secret from
spec.template only) the annotation INPUT_ANNOTATION: a salted scrypt hash of everything the file was made from
(the certificate's key, scope, name, namespace, type, labels, annotations, and the values). A re-run computes
the hash of its input with the stored salt: the same hash and the same object apart from the ciphertexts means
the file already holds this input. The hash lets someone who reads the file test guesses of the values at
scrypt's cost (about 32 MiB and tens of milliseconds a guess): docs/gitops.md says to seal strong, generated values.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import re

from ansible_collections.infra.k3s.plugins.module_utils.sealed_secret_crypto import (
    SCOPE_ANNOTATIONS,
    SCOPES,
    SealingError,
    encryption_label,
    seal_value,
)

API_VERSION = "bitnami.com/v1alpha1"
KIND = "SealedSecret"
INPUT_ANNOTATION = "infra.k3s/sealed-input-hash"
# scrypt cost: N=2^15, r=8, p=1 (32 MiB of memory per hash).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16

# A Secret's name is a DNS subdomain (RFC 1123), its data keys match this (k8s.io/apimachinery
# pkg/util/validation IsDNS1123Subdomain, IsConfigMapKey); a namespace is a DNS label (IsDNS1123Label).
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class InvalidInput(Exception):
    """Parameters that cannot make a SealedSecret; nothing was sealed or written."""


def check_input(params):
    """Validate name, namespace, scope, data, labels and annotations; raise InvalidInput."""
    name, namespace, scope = params["name"], params.get("namespace"), params["scope"]
    if scope not in SCOPES:
        raise InvalidInput("scope must be one of %s, not %s" % (", ".join(SCOPES), scope))
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        raise InvalidInput("name %r is not a valid Secret name (a lowercase RFC 1123 subdomain)" % name)
    if namespace is not None and (len(namespace) > 63 or not _LABEL.match(namespace)):
        raise InvalidInput("namespace %r is not a valid namespace name (a lowercase RFC 1123 label)" % namespace)
    if not namespace and scope != "cluster-wide":
        raise InvalidInput("a %s SealedSecret needs a namespace (its values are sealed for it); only a cluster-wide "
                           "one may go without" % scope)
    data = params.get("data") or {}
    if not data:
        raise InvalidInput("data is empty: there is nothing to seal (kubeseal refuses an empty Secret too)")
    for key, value in data.items():
        if len(key) > 253 or not _KEY.match(key):
            raise InvalidInput("data key %r is not a valid Secret key (letters, digits, '-', '_', '.')" % key)
        if not isinstance(value, str):
            raise InvalidInput("the value of data key %r is a %s, not a string: quote it" % (key, type(value).__name__))
    for what in ("labels", "annotations"):
        for key, value in (params.get(what) or {}).items():
            if not isinstance(value, str):
                raise InvalidInput("%s.%s must be a string, not a %s: quote it" % (what, key, type(value).__name__))
    for key in list(SCOPE_ANNOTATIONS.values()) + [INPUT_ANNOTATION]:
        if key in (params.get("annotations") or {}):
            raise InvalidInput("annotation %s is set by the module (use scope); remove it from annotations" % key)


def _scope_annotations(scope):
    """UpdateScopeAnnotations: the one annotation of a non-strict scope."""
    return {SCOPE_ANNOTATIONS[scope]: "true"} if scope in SCOPE_ANNOTATIONS else {}


def skeleton(params):
    """The SealedSecret without ciphertexts (encryptedData values empty) and without the input hash."""
    name, namespace, scope = params["name"], params.get("namespace"), params["scope"]
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    template_meta = dict(meta)
    if params.get("labels"):
        template_meta["labels"] = dict(sorted(params["labels"].items()))
    annotations = dict(params.get("annotations") or {}, **_scope_annotations(scope))
    if annotations:
        template_meta["annotations"] = dict(sorted(annotations.items()))
    template = {"metadata": template_meta}
    if params.get("type"):
        template["type"] = params["type"]
    top_meta = dict(meta)
    if _scope_annotations(scope):
        top_meta["annotations"] = _scope_annotations(scope)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": top_meta,
        "spec": {"encryptedData": {key: "" for key in sorted(params["data"])}, "template": template},
    }


def _material(params, fingerprint):
    """Everything a file is made from, as one canonical byte string."""
    return json.dumps({
        "fingerprint": fingerprint, "scope": params["scope"], "name": params["name"],
        "namespace": params.get("namespace") or "", "type": params.get("type") or "",
        "labels": params.get("labels") or {}, "annotations": params.get("annotations") or {},
        "data": params["data"],
    }, sort_keys=True, separators=(",", ":")).encode("utf-8")


def input_hash(params, fingerprint, salt=None):
    """The INPUT_ANNOTATION value: scrypt$N$r$p$<salt>$<hash> (base64)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(_material(params, fingerprint), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT_N, SCRYPT_R, SCRYPT_P, base64.b64encode(salt).decode("ascii"),
                                      base64.b64encode(digest).decode("ascii"))


def _hash_matches(stored, params, fingerprint):
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != "scrypt" or parts[1:4] != [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]:
        return False  # not ours, or other costs: seal again
    try:
        salt = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(input_hash(params, fingerprint, salt), stored)


def _without_ciphertexts(obj):
    """obj with its encryptedData values emptied and the input hash taken out (None if not a SealedSecret)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("spec"), dict) or not isinstance(obj.get("metadata"), dict) \
            or not isinstance(obj["spec"].get("encryptedData"), dict):
        return None
    view = copy.deepcopy(obj)
    view["spec"]["encryptedData"] = {key: "" for key in view["spec"]["encryptedData"]}
    annotations = dict(view["metadata"].get("annotations") or {})
    annotations.pop(INPUT_ANNOTATION, None)
    if annotations:
        view["metadata"]["annotations"] = annotations
    else:
        view["metadata"].pop("annotations", None)
    return view


def still_holds(existing, params, fingerprint):
    """Whether a SealedSecret read back (from dest) was made from this very input for this key."""
    view = _without_ciphertexts(existing)
    if view is None or view != skeleton(params):
        return False
    if not all(isinstance(v, str) and v for v in existing["spec"]["encryptedData"].values()):
        return False
    return _hash_matches((existing["metadata"].get("annotations") or {}).get(INPUT_ANNOTATION), params, fingerprint)


def build(params, public_key, fingerprint):
    """A freshly sealed SealedSecret for params (each value under the scope's label)."""
    obj = skeleton(params)
    label = encryption_label(params.get("namespace"), params["name"], params["scope"])
    try:
        obj["spec"]["encryptedData"] = {key: seal_value(public_key, params["data"][key], label)
                                        for key in sorted(params["data"])}
    except ValueError as exc:  # the key is too small for OAEP-SHA256 of a 32-byte key
        raise SealingError("could not seal with this certificate's key: %s" % exc)
    obj["metadata"]["annotations"] = dict(obj["metadata"].get("annotations") or {},
                                          **{INPUT_ANNOTATION: input_hash(params, fingerprint)})
    return obj

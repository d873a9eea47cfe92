"""The Sealed Secrets controller's side of sealing, for tests: unsealing a SealedSecret with the private key.

Written from bitnami-labs/sealed-secrets (read at 86671a8), independently of the module's code:
- pkg/crypto/crypto.go, HybridDecrypt/singleDecrypt: the first 2 bytes (big endian) are the RSA ciphertext's
  length; RSA-OAEP (SHA-256, the label) gives the 32-byte session key; AES-GCM with a zero 12-byte nonce opens
  the rest. Too short an input is ErrTooShort.
- pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go, SealedSecret.Unseal: the label comes from the
  SealedSecret's OWN metadata (labelFor(smeta): its name, namespace and scope annotations, EncryptionLabel),
  each spec.encryptedData value is base64 (standard) decoded and decrypted; the Secret gets spec.template's
  metadata and type, and the SealedSecret's name and namespace.
"""
from __future__ import annotations

import base64
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"


class UnsealError(Exception):
    """The controller could not unseal ("no key could decrypt secret")."""


def label_for(metadata: dict) -> bytes:
    """v1alpha1 labelFor / SecretScope / EncryptionLabel: cluster-wide wins over namespace-wide over strict."""
    annotations = metadata.get("annotations") or {}
    namespace, name = metadata.get("namespace") or "", metadata.get("name") or ""
    if annotations.get(CLUSTER_WIDE) == "true":
        return b""
    if annotations.get(NAMESPACE_WIDE) == "true":
        return namespace.encode()
    return f"{namespace}/{name}".encode()


def hybrid_decrypt(private_key, ciphertext: bytes, label: bytes) -> bytes:
    """crypto.go singleDecrypt for one key."""
    if len(ciphertext) < 2:
        raise UnsealError("SealedSecret data is too short")
    (rsa_len,) = struct.unpack(">H", ciphertext[:2])
    if len(ciphertext) < rsa_len + 2:
        raise UnsealError("SealedSecret data is too short")
    try:
        session_key = private_key.decrypt(ciphertext[2:rsa_len + 2], padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label or None))
        return AESGCM(session_key).decrypt(b"\0" * 12, ciphertext[rsa_len + 2:], None)
    except Exception as exc:  # ValueError (OAEP), InvalidTag (GCM): Go returns the error, HybridDecrypt tries the next key
        raise UnsealError(f"no key could decrypt secret: {exc!r}") from exc


def unseal(sealed: dict, private_key) -> dict:
    """SealedSecret.Unseal (encryptedData only; template.data is not used by the module): the Secret."""
    meta = sealed["metadata"]
    label = label_for(meta)
    template = sealed["spec"].get("template") or {}
    secret_meta = dict(template.get("metadata") or {})
    secret_meta["name"] = meta.get("name")
    if meta.get("namespace"):
        secret_meta["namespace"] = meta["namespace"]
    data = {key: hybrid_decrypt(private_key, base64.b64decode(value, validate=True), label)
            for key, value in sealed["spec"]["encryptedData"].items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta, "data": data}
    if template.get("type"):
        secret["type"] = template["type"]
    return secret

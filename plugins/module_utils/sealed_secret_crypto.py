# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sealing one value as kubeseal does: the controller's certificate, the scope's label, the hybrid encryption.

Followed (bitnami-labs/sealed-secrets, read at 86671a8):
- pkg/kubeseal/kubeseal.go, ParseKey: the first certificate of the PEM, its public key must be RSA, and an
  expired certificate is refused.
- pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go, EncryptionLabel: the RSA-OAEP label is
  "<namespace>/<name>" (strict), "<namespace>" (namespace-wide) or "" (cluster-wide).
- pkg/crypto/crypto.go, HybridEncrypt: a random 32-byte AES-256 session key, sealed with RSA-OAEP (SHA-256,
  the label); the value sealed with AES-GCM under that key and a zero nonce (the key is used once); the
  output is the RSA ciphertext's length (2 bytes, big endian), the RSA ciphertext, the AES-GCM ciphertext
  with its tag. NewSealedSecret base64-encodes it (standard alphabet, padded) into spec.encryptedData.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import struct

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    x509 = hashes = serialization = padding = rsa = AESGCM = None
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

# The scopes kubeseal knows (v1alpha1 SealingScope.Set), strict being its DefaultScope.
SCOPES = ("strict", "namespace-wide", "cluster-wide")
# v1alpha1/types.go: SealedSecretNamespaceWideAnnotation and SealedSecretClusterWideAnnotation.
SCOPE_ANNOTATIONS = {
    "namespace-wide": "sealedsecrets.bitnami.com/namespace-wide",
    "cluster-wide": "sealedsecrets.bitnami.com/cluster-wide",
}
# crypto.go: sessionKeyBytes.
SESSION_KEY_BYTES = 32
# cipher.NewGCM's standard nonce size (Go crypto/cipher gcmStandardNonceSize).
GCM_NONCE_BYTES = 12


class SealingError(Exception):
    """Input that cannot be sealed (a certificate that is not usable, a missing namespace)."""


def encryption_label(namespace, name, scope):
    """The RSA-OAEP label of a scope (v1alpha1 EncryptionLabel)."""
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return (namespace or "").encode("utf-8")
    return ("%s/%s" % (namespace or "", name)).encode("utf-8")


def load_certificate(pem, now=None):
    """The RSA public key of the first certificate in pem, as kubeseal's ParseKey takes it.

    Returns (public_key, fingerprint): fingerprint is the SHA-256 of the key's SubjectPublicKeyInfo (hex),
    used to tell whether a file was sealed for this key.
    """
    if isinstance(pem, str):
        pem = pem.encode("utf-8")
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise SealingError("the certificate is not a PEM certificate (no BEGIN CERTIFICATE block); give the "
                           "controller's certificate (kubeseal --fetch-cert prints it)")
    try:
        cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    except ValueError as exc:
        raise SealingError("the certificate could not be read: %s" % exc)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SealingError("expected an RSA public key in the certificate but found %s (the Sealed Secrets "
                           "controller's keys are RSA)" % type(key).__name__.lstrip("_"))
    not_after = cert.not_valid_after_utc
    if (now or datetime.datetime.now(datetime.timezone.utc)) > not_after:
        raise SealingError("refusing to seal with an expired certificate (it expired on %s)" % not_after.strftime("%B %d, %Y"))
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(spki).hexdigest()


def hybrid_encrypt(public_key, plaintext, label, random_bytes=os.urandom):
    """crypto.go HybridEncrypt: RSA-OAEP(SHA-256, label) of a fresh session key, then AES-256-GCM (zero nonce)."""
    session_key = random_bytes(SESSION_KEY_BYTES)
    rsa_ciphertext = public_key.encrypt(session_key, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()),
                                                                  algorithm=hashes.SHA256(), label=label or None))
    aes_ciphertext = AESGCM(session_key).encrypt(b"\0" * GCM_NONCE_BYTES, plaintext, None)
    return struct.pack(">H", len(rsa_ciphertext)) + rsa_ciphertext + aes_ciphertext


def seal_value(public_key, plaintext, label):
    """One spec.encryptedData value (NewSealedSecret: base64 of HybridEncrypt's output)."""
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    return base64.b64encode(hybrid_encrypt(public_key, plaintext, label)).decode("ascii")

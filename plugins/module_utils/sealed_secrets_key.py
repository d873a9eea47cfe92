# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking the Sealed Secrets controller's key pair before the role infra.k3s.gitops stores it in the cluster.

What the controller and kubeseal accept (bitnami-labs/sealed-secrets, read at helm-v2.18.5 / 86671a8):
- pkg/controller/keys.go, readKey: the Secret's tls.key is parsed by client-go's keyutil.ParsePrivateKeyPEM
  (an unencrypted PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY" block) and must be RSA (ErrPrivateKeyNotRSA);
  tls.crt by certUtil.ParseCertsPEM, whose first certificate (certs[0]) is the one the controller serves on
  /v1/cert.pem and registers with the key (registryNewKeyWithSecret). A key the controller cannot read is only
  logged ("Error reading key"), then registryNewKeyWithSecret dereferences certs[0] of nothing: the controller
  crashes at every start. Hence every check here, before the Secret is written.
- pkg/kubeseal/kubeseal.go, ParseKey: kubeseal (and infra.k3s.sealed_secret, module_utils/sealed_secret_crypto.py
  load_certificate) refuses an expired certificate or a non-RSA one: such a pair could not seal anything.
- The certificate's public key must be the private key's: the controller seals nothing itself, but whoever seals
  with the certificate needs the private key in the cluster to match, or nothing unseals.
- RSA of at least 2048 bits (the project's floor; the controller makes 4096-bit keys, cmd/controller/main.go
  --key-size default 4096).

Never raises, and no message repeats any part of the private key: a caller may print the reason.
"""

from __future__ import annotations

import hashlib

from ansible_collections.infra.k3s.plugins.module_utils.sealed_secret_crypto import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, SealingError, load_certificate)

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:  # pragma: no cover - HAS_CRYPTOGRAPHY says so
    serialization = rsa = None

MIN_BITS = 2048
# keyutil.ParsePrivateKeyPEM's block types for RSA (client-go util/keyutil/key.go): PKCS#1 and PKCS#8.
KEY_BLOCKS = ("-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----")


def _result(valid=False, reason="", bits=0, fingerprint="", not_after=""):
    return {"valid": valid, "reason": reason, "bits": bits, "fingerprint": fingerprint, "not_after": not_after}


def key_pair_info(key_pem, cert_pem, min_bits=MIN_BITS, now=None):
    """Whether key_pem (PEM private key) and cert_pem (PEM certificate) make a pair the controller can use.

    Returns {valid, reason, bits, fingerprint (SHA-256 of the public key's SubjectPublicKeyInfo, hex, as
    load_certificate gives it), not_after (the certificate's, ISO 8601 UTC)}; reason is empty when valid.
    """
    if not HAS_CRYPTOGRAPHY:
        return _result(reason="the Python library cryptography is needed on the controller (%s)" % CRYPTOGRAPHY_IMPORT_ERROR)
    key_text = key_pem if isinstance(key_pem, str) else ""
    cert_text = cert_pem if isinstance(cert_pem, str) else ""
    if not key_text.strip() and not cert_text.strip():
        return _result(reason="neither the private key nor the certificate is given")
    if not key_text.strip():
        return _result(reason="the certificate is given but not the private key: give both (PEM)")
    if not cert_text.strip():
        return _result(reason="the private key is given but not the certificate: give both (PEM)")

    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_text or "Proc-Type: 4,ENCRYPTED" in key_text:
        return _result(reason="the private key is encrypted with a passphrase; the controller reads only unencrypted keys "
                              "(keep it encrypted in the vault instead, openssl ... -nodes)")
    starts = [key_text.find(block) for block in KEY_BLOCKS if block in key_text]
    if not starts:
        return _result(reason="the private key is not an RSA private key in PEM (no BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY block)")
    try:
        key = serialization.load_pem_private_key(key_text[min(starts):].encode("utf-8"), password=None)
    except (ValueError, TypeError, UnicodeError):
        # The library's message is not passed on: it could quote the input.
        return _result(reason="the private key could not be read as an unencrypted PEM private key")
    if not isinstance(key, rsa.RSAPrivateKey):
        return _result(reason="the private key is not RSA (the Sealed Secrets controller reads only RSA keys)")
    bits = key.key_size
    if bits < min_bits:
        return _result(reason="the RSA key has %d bits, fewer than %d" % (bits, min_bits), bits=bits)

    try:
        unused_key, fingerprint = load_certificate(cert_text, now=now)
    except SealingError as exc:
        return _result(reason=str(exc), bits=bits)
    except Exception:  # pylint: disable=broad-except
        # never raise: the caller is a no_log task
        return _result(reason="the certificate could not be read", bits=bits)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if hashlib.sha256(spki).hexdigest() != fingerprint:
        return _result(reason="the certificate does not belong to the private key (their public keys differ)", bits=bits)
    return _result(valid=True, bits=bits, fingerprint=fingerprint, not_after=_not_after(cert_text))


def _not_after(cert_text):
    """The first certificate's notAfter, ISO 8601 UTC (load_certificate accepted it)."""
    # pylint: disable-next=import-outside-toplevel
    from cryptography import x509
    start = cert_text.index("-----BEGIN CERTIFICATE-----")
    cert = x509.load_pem_x509_certificate(cert_text[start:].encode("utf-8"))
    return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")

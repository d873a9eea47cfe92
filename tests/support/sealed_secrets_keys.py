"""Key pairs for the Sealed Secrets controller, as a user makes them for the vault (docs/gitops.md), for tests."""
from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def private_key(bits=2048, kind="rsa"):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key, pkcs8=True, passphrase=None) -> str:
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def cert_pem(key, days=3650, not_before=None) -> str:
    """A self-signed certificate as `openssl req -x509` makes it (the controller's own are self-signed too,
    pkg/crypto/keys.go GeneratePrivateKeyAndCert)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret")])
    start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pair(bits=2048) -> tuple:
    """(private key PEM, certificate PEM)."""
    key = private_key(bits)
    return key_pem(key), cert_pem(key)

"""Unit tests of plugins/module_utils/sealed_secrets_key.py: the key pair the role infra.k3s.gitops stores for the
Sealed Secrets controller (what bitnami-labs/sealed-secrets pkg/controller/keys.go readKey and pkg/kubeseal ParseKey
accept)."""
from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest

from support.module_utils import load_module_utils
from support.paths import PROJECT_ROOT
from support.sealed_secrets_keys import cert_pem, key_pem, private_key

sealed_secrets_key = load_module_utils("sealed_secrets_key")


@pytest.fixture(scope="module")
def rsa_key():
    return private_key(2048)


def check(key, cert, **kwargs):
    info = sealed_secrets_key.key_pair_info(key, cert, **kwargs)
    assert set(info) == {"valid", "reason", "bits", "fingerprint", "not_after"}
    return info


def test_a_matching_pair_is_valid_in_both_key_formats(rsa_key):
    cert = cert_pem(rsa_key, days=3650)
    for pem in (key_pem(rsa_key, pkcs8=True), key_pem(rsa_key, pkcs8=False), "\n" + key_pem(rsa_key) + "\n"):
        info = check(pem, cert)
        assert info["valid"] and info["reason"] == "" and info["bits"] == 2048, info
        assert len(info["fingerprint"]) == 64
        expected = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650)).strftime("%Y-%m-")
        assert info["not_after"].startswith(expected[:4])


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_the_pair_docs_gitops_md_makes_with_openssl_is_valid(tmp_path):
    # The command of docs/gitops.md "The controller's key pair" (4096 bits, ten years).
    doc = (PROJECT_ROOT / "docs" / "gitops.md").read_text(encoding="utf-8")
    command = next(line.strip() for line in doc.splitlines() if line.strip().startswith("openssl req -x509"))
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    info = check((tmp_path / "sealed-secrets.key").read_text(), (tmp_path / "sealed-secrets.crt").read_text())
    assert info["valid"] and info["bits"] == 4096, info


@pytest.mark.parametrize("key,cert,words", [
    ("", "", "neither"),
    (None, None, "neither"),
    ("", "CERT", "certificate is given but not the private key"),
    ("KEY", "  \n", "private key is given but not the certificate"),
    ("not a key", "CERT", "not an RSA private key in PEM"),
    ("-----BEGIN PRIVATE KEY-----\nAAAAsecretvalue\n-----END PRIVATE KEY-----\n", "CERT", "could not be read"),
])
def test_missing_or_unreadable_input_is_named(key, cert, words):
    info = check(key, cert)
    assert not info["valid"] and words in info["reason"], info
    assert "secretvalue" not in repr(info)


def test_a_certificate_of_another_key_is_refused(rsa_key):
    other = private_key(2048)
    info = check(key_pem(rsa_key), cert_pem(other))
    assert not info["valid"] and "does not belong to the private key" in info["reason"], info
    assert info["fingerprint"] == ""


def test_small_ec_encrypted_keys_are_refused(rsa_key):
    small = private_key(1024)
    info = check(key_pem(small), cert_pem(small))
    assert not info["valid"] and "1024 bits, fewer than 2048" in info["reason"], info
    assert check(key_pem(rsa_key), cert_pem(rsa_key), min_bits=3072)["reason"] == "the RSA key has 2048 bits, fewer than 3072"
    ec_key = private_key(kind="ec")
    assert "not RSA" in check(key_pem(ec_key), cert_pem(ec_key))["reason"]
    encrypted = key_pem(rsa_key, passphrase=b"pass-phrase")
    assert "encrypted with a passphrase" in check(encrypted, cert_pem(rsa_key))["reason"]
    encrypted_pkcs1 = key_pem(rsa_key, pkcs8=False, passphrase=b"pass-phrase")
    assert "encrypted with a passphrase" in check(encrypted_pkcs1, cert_pem(rsa_key))["reason"]


def test_an_expired_or_unreadable_certificate_is_refused(rsa_key):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    info = check(key_pem(rsa_key), cert_pem(rsa_key, days=30, not_before=past))
    assert not info["valid"] and "expired" in info["reason"], info
    assert "not a PEM certificate" in check(key_pem(rsa_key), "garbage")["reason"]
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert not check(key_pem(rsa_key), broken)["valid"]


def test_the_key_is_never_in_a_reason(rsa_key):
    pem = key_pem(rsa_key)
    body = "".join(pem.splitlines()[1:-1])
    for cert in ("", "garbage", cert_pem(private_key(2048))):
        info = check(pem, cert)
        assert not info["valid"]
        assert body[:40] not in repr(info) and body[-40:] not in repr(info)

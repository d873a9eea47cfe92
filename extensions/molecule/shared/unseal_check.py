"""Unseal a SealedSecret file with the keys a cluster stores, as the Sealed Secrets controller would, and compare.

    unseal_check.py SEALED_YAML < {"keys": <kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o json>,
                                   "expected": {"<key>": "<plaintext>", ...}}

The keys and the expected plaintext come on stdin, never on a command line. It tries every stored key, as the
controller does (bitnami-labs/sealed-secrets pkg/controller/controller.go attemptUnseal passes the key registry's
private keys to pkg/crypto/crypto.go HybridDecrypt, which tries each in turn), with
tests/support/sealed_secrets_unseal.py. Prints which key unsealed it and exits 0 when the data is the expected one;
otherwise exits 1, saying why without printing any plaintext.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.serialization import load_pem_private_key

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from support.sealed_secrets_unseal import unseal  # noqa: E402


def main() -> int:
    sealed = yaml.safe_load(Path(sys.argv[1]).read_text(encoding="utf-8"))
    given = json.load(sys.stdin)
    expected = {key: value.encode() for key, value in given["expected"].items()}
    keys = given["keys"].get("items", [])
    if not keys:
        print("no key Secret in the cluster")
        return 1
    for secret in keys:
        private_key = load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), password=None)
        try:
            data = unseal(sealed, private_key)["data"]
        except Exception as exc:  # the controller logs "no key could decrypt secret" and tries the next key
            print(f"{secret['metadata']['name']}: {type(exc).__name__}")
            continue
        if data != expected:
            print(f"{secret['metadata']['name']}: unsealed, but its data differs from what was sealed (keys {sorted(data)})")
            return 1
        print(f"unsealed by {secret['metadata']['name']}")
        return 0
    print("no stored key unseals it")
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Offline stand-in for ansible-test's downloaded get-pip script.

ansible-test bootstraps pip in each of its virtual environments with a script it
downloads from a host these machines cannot reach, and runs pip with
PIP_CONFIG_FILE=/dev/null in a scrubbed environment, so pip ignores the system's CA
settings. `make sanity` copies this file to ~/.ansible/test/cache/get_pip_<ver>.py,
where ansible-test looks for a cached script before downloading. It:
  1. bootstraps pip from the standard library (ensurepip),
  2. trusts the system CA bundle in that pip,
  3. runs `pip install --upgrade` with ansible-test's arguments (minus get-pip-only ones),
  4. trusts the system CA bundle again in the freshly installed pip.
"""
from __future__ import annotations

import ensurepip
import glob
import os
import subprocess
import sys

SYSTEM_CA_BUNDLE = os.environ.get("INFRA_K3S_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def trust_system_cas() -> None:
    """Append the system CA bundle to every certifi bundle vendored by pip in this environment."""
    if not os.path.exists(SYSTEM_CA_BUNDLE):
        return
    with open(SYSTEM_CA_BUNDLE, encoding="utf-8") as handle:
        system = handle.read()
    pattern = os.path.join(sys.prefix, "lib", "python*", "site-packages", "pip", "_vendor", "certifi", "cacert.pem")
    for bundle in glob.glob(pattern):
        with open(bundle, encoding="utf-8") as handle:
            current = handle.read()
        if system not in current:
            with open(bundle, "a", encoding="utf-8") as handle:
                handle.write("\n" + system)


def main() -> None:
    ensurepip.bootstrap(upgrade=True)
    trust_system_cas()
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.run([sys.executable, "-m", "pip", "install", "--upgrade", *args], check=True)
    trust_system_cas()


if __name__ == "__main__":
    main()

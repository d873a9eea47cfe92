# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the infra.k3s modules that talk to Kubernetes (spec: module_utils/kubernetes.py).

DOCUMENTATION is the connection (K8S_CONNECTION_ARGS), WAIT the waiting (K8S_WAIT_ARGS):
use them as C(infra.k3s.kubernetes) and C(infra.k3s.kubernetes.wait).
"""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, for example the one K3s writes at C(/etc/rancher/k3s/k3s.yaml).
      - If not set, the value of the E(K8S_AUTH_KUBECONFIG) environment variable is used, then the
        first file of E(KUBECONFIG), then C(~/.kube/config). Without any and without O(host), the
        in-cluster service account is used.
    type: path
  context:
    description:
      - The kubeconfig context to use; its current context if not set.
      - If not set, the value of the E(K8S_AUTH_CONTEXT) environment variable is used.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://127.0.0.1:6443).
      - Overrides the server of the kubeconfig; without O(kubeconfig) and O(context), no kubeconfig is read.
      - If not set, the value of the E(K8S_AUTH_HOST) environment variable is used.
    type: str
  api_key:
    description:
      - Bearer token to authenticate with, for example a service account token.
      - Overrides the credentials of the kubeconfig.
      - If not set, the value of the E(K8S_AUTH_API_KEY) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether the API server's certificate is verified.
      - If not set, the value of the E(K8S_AUTH_VERIFY_SSL) environment variable is used.
    type: bool
    default: true
  ca_cert:
    description:
      - Path to the CA certificate that signed the API server's certificate.
      - Overrides the CA of the kubeconfig.
      - If not set, the value of the E(K8S_AUTH_SSL_CA_CERT) environment variable is used.
    type: path
requirements:
  - kubernetes >= 24.2.0 (the official Kubernetes Python client, on the host that runs the module)
"""

    WAIT = r"""
options:
  wait:
    description:
      - Whether to wait until the object is done (what done means is described by each module).
      - In check mode nothing is waited for.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait at most. The task fails after that, showing the object as last seen.
    type: int
    default: 600
  wait_sleep:
    description:
      - Seconds between two reads of the object while waiting.
    type: int
    default: 5
"""

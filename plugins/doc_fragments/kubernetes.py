# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the infra.k3s modules that talk to Kubernetes (spec: module_utils/kubernetes.py).

The connection options are kubernetes.core's (K8S_CONNECTION_ARGS is its AUTH_ARG_SPEC), documented by its
fragment C(kubernetes.core.k8s_auth_options); DOCUMENTATION here adds what this collection's client does with
them and its requirement, WAIT documents the waiting (K8S_WAIT_ARGS). Use them as C(kubernetes.core.k8s_auth_options),
C(infra.k3s.kubernetes) and C(infra.k3s.kubernetes.wait).
"""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options: {}
notes:
  - The connection options are kubernetes.core's (C(kubernetes.core.k8s_auth_options)), read from the same
    environment variables when not given; the official C(kubernetes) client is built from them directly.
  - O(kubeconfig) is a file, several files separated by V(:) (merged as C(kubectl) merges E(KUBECONFIG)), or the
    kubeconfig itself as a dictionary. If it is not set, E(K8S_AUTH_KUBECONFIG) is used, then the first file of
    E(KUBECONFIG), then C(~/.kube/config). Without any and without O(host), the in-cluster service account is used.
  - O(username) and O(password) are refused, since the Kubernetes API server has not accepted HTTP Basic authentication
    since v1.19. Use O(api_key), O(client_cert) and O(client_key), or a kubeconfig.
  - O(impersonate_groups) sends one C(Impersonate-Group) header per group, as C(kubectl --as-group) does.
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

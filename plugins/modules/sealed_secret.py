#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sealed_secret
short_description: Seal a Secret for the Sealed Secrets controller, as kubeseal does
version_added: 0.1.0
description:
  - Makes a C(bitnami.com/v1alpha1) C(SealedSecret) from a Secret's name, namespace and values, sealed with the
    public key of the Sealed Secrets controller's certificate exactly as C(kubeseal) seals them (each value with
    RSA-OAEP SHA-256 under the scope's label and AES-256-GCM; bitnami-labs/sealed-secrets C(pkg/crypto)), so that
    only that controller can turn it back into the Secret.
  - Nothing is sent to the cluster except, when neither O(certificate) nor O(certificate_path) is given, the
    request that fetches the certificate (as C(kubeseal --fetch-cert) does).
  - Returns the object and, with O(dest), writes it as YAML (a file meant for a Git repository).
  - Sealing is randomised, so the same values never give the same ciphertexts. So that a re-run with the same
    input leaves O(dest) alone, the SealedSecret's own metadata (not the Secret's) carries the annotation
    C(infra.k3s/sealed-input-hash), a salted scrypt hash of the input and of the certificate's key. A re-run
    whose input (values, name, namespace, scope, type, labels, annotations, certificate key) gives the same hash
    keeps the file; any change seals every value again. The hash lets whoever reads the file test guesses of the
    values, at scrypt's cost; seal strong, generated values.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kubernetes.core.k8s_auth_options
  - infra.k3s.kubernetes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; C(changed) says whether O(dest) would be.
  diff_mode:
    support: none
  platform:
    platforms: all
options:
  name:
    description:
      - Name of the Secret (and of the SealedSecret). With O(scope=strict) the values only unseal under this name.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Secret. With O(scope=strict) or O(scope=namespace-wide) the values only unseal in it.
      - Required unless O(scope=cluster-wide); a cluster-wide SealedSecret without it can be applied in any namespace.
    type: str
  data:
    description:
      - The Secret's values, key to plaintext (strings). Never logged.
    type: dict
    required: true
  scope:
    description:
      - Where the sealed values may be unsealed, as C(kubeseal --scope).
      - V(strict) only under O(name) in O(namespace); V(namespace-wide) under any name in O(namespace);
        V(cluster-wide) anywhere.
    type: str
    choices: [strict, namespace-wide, cluster-wide]
    default: strict
  certificate:
    description:
      - The controller's certificate (PEM text), as C(kubeseal --fetch-cert) prints it.
      - Mutually exclusive with O(certificate_path). Without both, it is fetched from the cluster.
    type: str
  certificate_path:
    description:
      - A file holding the controller's certificate (PEM), on the host that runs the module.
    type: path
  controller_name:
    description:
      - Name of the controller's Service the certificate is fetched through (C(kubeseal --controller-name)).
    type: str
    default: sealed-secrets-controller
  controller_namespace:
    description:
      - Namespace of that Service (C(kubeseal --controller-namespace)).
    type: str
    default: kube-system
  dest:
    description:
      - Write the SealedSecret as YAML to this file (mode C(0644), it holds only ciphertext), creating its directory.
      - Left alone when it already holds a SealedSecret sealed from the same input for the same certificate key.
    type: path
  type:
    description:
      - The Secret's type (for example V(kubernetes.io/dockerconfigjson)); the API server's default (V(Opaque)) if not set.
    type: str
  labels:
    description:
      - Labels of the Secret (C(spec.template.metadata.labels)).
    type: dict
  annotations:
    description:
      - Annotations of the Secret (C(spec.template.metadata.annotations)). The scope annotations are set from O(scope).
    type: dict
notes:
  - Needs the Python library C(cryptography) (and C(kubernetes) to fetch the certificate from the cluster) on the host
    that runs the module; both are in the collection's C(requirements.txt).
  - Like C(kubeseal), an expired certificate or a key that is not RSA is refused.
requirements:
  - cryptography >= 42.0
seealso:
  - name: Sealed Secrets
    description: The controller and kubeseal.
    link: https://github.com/bitnami-labs/sealed-secrets
"""

EXAMPLES = r"""
- name: Seal the database password into the repository tree, with the cluster's certificate
  infra.k3s.sealed_secret:
    kubeconfig: ~/.kube/k3s.yaml
    name: db
    namespace: shop
    data:
      password: "{{ vault_shop_db_password }}"
    dest: "{{ gitops_tree }}/apps/shop/db-sealedsecret.yaml"
  delegate_to: localhost

- name: Seal with a certificate kept in the repository, for any namespace
  infra.k3s.sealed_secret:
    name: registry
    scope: cluster-wide
    type: kubernetes.io/dockerconfigjson
    data:
      .dockerconfigjson: "{{ registry_auth | to_json }}"
    certificate_path: "{{ gitops_tree }}/pub-cert.pem"
  register: sealed
"""

RETURN = r"""
sealed_secret:
  description: The SealedSecret (in check mode, as it would be written; when O(dest) was kept, as it is there).
  returned: success
  type: dict
  sample:
    apiVersion: bitnami.com/v1alpha1
    kind: SealedSecret
    metadata:
      name: db
      namespace: shop
      annotations: {infra.k3s/sealed-input-hash: "scrypt$32768$8$1$...$..."}
    spec:
      encryptedData: {password: AgB4...}
      template: {metadata: {name: db, namespace: shop}}
certificate_source:
  description: Where the certificate came from, V(certificate), the path, or V(cluster).
  returned: success
  type: str
certificate_fingerprint:
  description: SHA-256 (hex) of the certificate's public key (its SubjectPublicKeyInfo).
  returned: success
  type: str
dest:
  description: O(dest), when given.
  returned: when O(dest) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.kubernetes import k8s_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.sealed_secret_runners import execute, run_sealed_secret


def argument_spec():
    return k8s_argument_spec(
        wait=False,
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        data=dict(type="dict", required=True, no_log=True),
        scope=dict(type="str", choices=["strict", "namespace-wide", "cluster-wide"], default="strict"),
        certificate=dict(type="str"),
        certificate_path=dict(type="path"),
        controller_name=dict(type="str", default="sealed-secrets-controller"),
        controller_namespace=dict(type="str", default="kube-system"),
        dest=dict(type="path"),
        type=dict(type="str"),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[["certificate", "certificate_path"]],
        supports_check_mode=True,
    )
    execute(module, run_sealed_secret)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_storage_location
short_description: Manage a Velero BackupStorageLocation (S3, Cloudflare R2)
version_added: 1.0.0
description:
  - Makes a Velero C(BackupStorageLocation) (C(velero.io/v1)) look as described (provider, bucket, prefix, config,
    credentials secret, whether it is the default location and its access mode). C(spec.config) is made to hold exactly
    the entries computed from O(config), O(r2_account_id) and O(s3_url); O(prefix) and O(credential) left out are removed.
  - O(r2_account_id) fills in what Cloudflare R2 needs (provider V(aws), C(region=auto), C(s3ForcePathStyle=true),
    C(s3Url=https://<account-id>.r2.cloudflarestorage.com), C(checksumAlgorithm="")); O(config) entries override them.
  - Changes are sent as one JSON merge patch carrying the object's C(resourceVersion); when someone else changed the
    location meanwhile (HTTP 409 Conflict), it is read again and compared again.
  - With O(wait), waits until Velero has validated the location as V(Available), and fails clearly (with Velero's
    message) when it is still V(Unavailable) after O(wait_timeout).
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - kubernetes.core.k8s_auth_options
  - infra.k3s.kubernetes
  - infra.k3s.velero
  - infra.k3s.kubernetes.wait
attributes:
  check_mode:
    support: full
    details:
      - The create or patch is sent with C(dryRun=All), so the API server validates it and nothing changes.
  diff_mode:
    support: full
    details:
      - The location's spec before and after.
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.velero
options:
  name:
    description:
      - Name of the location. Velero's default location is called V(default).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the location, V(absent) deletes it (the data in the bucket stays).
    type: str
    choices: [present, absent]
    default: present
  bucket:
    description:
      - The bucket. Required with O(state=present).
    type: str
  prefix:
    description:
      - The folder in the bucket Velero writes under (C(<prefix>/backups/...)); the bucket's root if not set.
    type: str
  provider:
    description:
      - The object store plugin's provider name; V(aws) for S3 and anything that speaks S3 (R2, MinIO).
    type: str
    default: aws
  config:
    description:
      - Provider settings (C(spec.config)), for example C(region), C(s3Url), C(s3ForcePathStyle), C(profile), C(checksumAlgorithm).
      - Values are sent as strings; V(true) and V(false) become V("true") and V("false").
    type: dict
  r2_account_id:
    description:
      - Cloudflare account id, to configure the location for Cloudflare R2 (see the description).
    type: str
  s3_url:
    description:
      - S3 endpoint URL (C(config.s3Url)), overriding the one O(r2_account_id) or O(config) give, for example an R2
        jurisdiction endpoint (C(https://<account-id>.eu.r2.cloudflarestorage.com)) or a mirror.
    type: str
  credential:
    description:
      - The Secret (in O(namespace)) and key holding this location's credentials, in the AWS ini format.
      - If not set, Velero uses the credentials it was installed with (usually the secret C(cloud-credentials), key C(cloud)).
    type: dict
    suboptions:
      name:
        description: Name of the Secret.
        type: str
        required: true
      key:
        description: Key in the Secret.
        type: str
        required: true
  default:
    description:
      - Whether backups that name no location go here (C(spec.default)). One location should be the default.
    type: bool
    default: false
  access_mode:
    description:
      - V(ReadOnly) lets Velero restore from the location but not write backups to it or delete them (useful to restore
        from another cluster's bucket).
    type: str
    choices: [ReadWrite, ReadOnly]
    default: ReadWrite
  wait:
    description:
      - Wait until Velero reports the location V(Available), and fail if it does not within O(wait_timeout).
notes:
  - velero-plugin-for-aws 1.14.1 and 1.14.2 each have a bug that breaks R2 (an empty C(x-amz-tagging) header; corrupted
    metadata with C(checksumAlgorithm="")). Use another version of the plugin with R2.
  - Set the connection once for all Velero modules with C(module_defaults) and the action group C(group/infra.k3s.velero).
seealso:
  - module: infra.k3s.velero_backup_info
  - name: Velero backup storage location reference
    description: What the fields of a BackupStorageLocation mean.
    link: https://velero.io/docs/main/api-types/backupstoragelocation/
"""

EXAMPLES = r"""
- name: Velero's default location in a Cloudflare R2 bucket
  infra.k3s.velero_storage_location:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    name: default
    bucket: k3s-backups
    prefix: prod
    r2_account_id: "{{ cloudflare_account_id }}"
    credential:
      name: cloud-credentials
      key: cloud
    default: true
    wait: true
    wait_timeout: 120

- name: Another cluster's bucket, read only, on an EU jurisdiction endpoint
  infra.k3s.velero_storage_location:
    name: old-cluster
    bucket: old-k3s-backups
    r2_account_id: "{{ cloudflare_account_id }}"
    s3_url: "https://{{ cloudflare_account_id }}.eu.r2.cloudflarestorage.com"
    access_mode: ReadOnly

- name: MinIO
  infra.k3s.velero_storage_location:
    name: minio
    bucket: velero
    config:
      region: minio
      s3ForcePathStyle: true
      s3Url: http://minio.example.com:9000
"""

RETURN = r"""
storage_location:
  description: The BackupStorageLocation as last read (in check mode, as it would be); V(null) with O(state=absent).
  returned: success
  type: dict
  sample:
    apiVersion: velero.io/v1
    kind: BackupStorageLocation
    metadata: {name: default, namespace: velero}
    spec:
      provider: aws
      default: true
      accessMode: ReadWrite
      objectStorage: {bucket: k3s-backups, prefix: prod}
      config: {region: auto, s3ForcePathStyle: "true", s3Url: "https://0123abcd.r2.cloudflarestorage.com", checksumAlgorithm: ""}
    status: {phase: Available}
phase:
  description: C(status.phase), V(Available) or V(Unavailable) (V("") before Velero validated it).
  returned: state is present
  type: str
  sample: Available
message:
  description: C(status.message), Velero's reason when it is V(Unavailable).
  returned: state is present
  type: str
  sample: ""
status:
  description: HTTP status of the failed API request, if one failed.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import ACCESS_MODES, velero_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.velero_runners import execute, run_storage_location


def argument_spec():
    return velero_argument_spec(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        bucket=dict(type="str"),
        prefix=dict(type="str"),
        provider=dict(type="str", default="aws"),
        config=dict(type="dict"),
        r2_account_id=dict(type="str"),
        s3_url=dict(type="str"),
        credential=dict(type="dict", options=dict(name=dict(type="str", required=True), key=dict(type="str", required=True, no_log=False))),
        default=dict(type="bool", default=False),
        access_mode=dict(type="str", choices=ACCESS_MODES, default="ReadWrite"),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[["state", "present", ["bucket"]]],
        supports_check_mode=True,
    )
    execute(module, run_storage_location)


if __name__ == "__main__":
    main()

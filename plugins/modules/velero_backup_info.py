#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_backup_info
short_description: List Velero backups, optionally checking that their files are in object storage
version_added: 1.0.0
description:
  - Lists the Velero C(Backup) objects of O(namespace), newest first (by C(status.startTimestamp)), filtered by
    O(name), O(schedule), O(phase) and O(included_namespace); O(latest) keeps only the newest one.
  - With O(verify_storage), checks through the S3 API that each backup's C(velero-backup.json) and C(<name>.tar.gz) are in
    the bucket of its BackupStorageLocation (under C(<prefix>/backups/<name>/)), and says which are missing.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - kubernetes.core.k8s_auth_options
  - infra.k3s.kubernetes
  - infra.k3s.velero
attributes:
  check_mode:
    support: full
    details:
      - This module only reads.
  diff_mode:
    support: N/A
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.velero
options:
  name:
    description:
      - Only the backup of this name.
    type: str
  schedule:
    description:
      - Only the backups made by this schedule (labelled C(velero.io/schedule-name)).
    type: str
  phase:
    description:
      - Only the backups in one of these phases.
    type: list
    elements: str
    choices: [New, Queued, ReadyToStart, FailedValidation, InProgress, WaitingForPluginOperations,
              WaitingForPluginOperationsPartiallyFailed, Finalizing, FinalizingPartiallyFailed, Completed,
              PartiallyFailed, Failed, Deleting]
  included_namespace:
    description:
      - Only the backups that include this namespace (their C(includedNamespaces) names it, is empty or has V(*),
        and their C(excludedNamespaces) does not name it).
      - Named so because O(namespace) is the one Velero is installed in, as for every Velero module.
    type: str
  latest:
    description:
      - Keep only the newest backup (latest C(status.startTimestamp)) among those in O(phase), V(Completed) if O(phase) is not set.
      - Velero's own rule when a restore names a schedule.
    type: bool
    default: false
  verify_storage:
    description:
      - Check that the files of each backup are in object storage; adds RV(backups[].storage_verified) and
        RV(backups[].missing_keys).
      - The bucket, prefix, endpoint (C(config.s3Url), an R2 endpoint for Cloudflare R2) and region come from the backup's
        BackupStorageLocation. Credentials are O(aws_access_key_id) and O(aws_secret_access_key), else the location's
        credentials secret (C(spec.credential), by default C(cloud-credentials) key C(cloud), in the AWS ini format Velero uses).
    type: bool
    default: false
  aws_access_key_id:
    description:
      - S3 access key for O(verify_storage).
      - If not set, the value of the E(AWS_ACCESS_KEY_ID) environment variable is used.
    type: str
  aws_secret_access_key:
    description:
      - S3 secret key for O(verify_storage).
      - If not set, the value of the E(AWS_SECRET_ACCESS_KEY) environment variable is used.
    type: str
  s3_url:
    description:
      - S3 endpoint for O(verify_storage), instead of the location's C(config.s3Url) (a mirror, a jurisdiction endpoint).
    type: str
requirements:
  - boto3 (only with O(verify_storage))
notes:
  - Set the connection once for all Velero modules with C(module_defaults) and the action group C(group/infra.k3s.velero).
seealso:
  - module: infra.k3s.velero_backup
  - module: infra.k3s.velero_restore
"""

EXAMPLES = r"""
- name: The latest completed nightly backup, with its files checked in the bucket
  infra.k3s.velero_backup_info:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    schedule: nightly
    latest: true
    verify_storage: true
  register: nightly

- name: Fail unless it is there
  ansible.builtin.assert:
    that:
      - nightly.backups | length == 1
      - nightly.backups[0].storage_verified
    fail_msg: "No usable nightly backup: {{ nightly.backups }}"

- name: Failed backups that include the apps namespace
  infra.k3s.velero_backup_info:
    included_namespace: apps
    phase: [Failed, PartiallyFailed, FailedValidation]
"""

RETURN = r"""
backups:
  description: The backups, newest first.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Name of the backup.
      type: str
      sample: nightly-20250101020000
    namespace:
      description: Namespace of the Backup object (Velero's).
      type: str
      sample: velero
    uid:
      description: UID of the Backup object.
      type: str
    labels:
      description: Labels of the Backup object.
      type: dict
    schedule:
      description: The schedule that made it (its C(velero.io/schedule-name) label), V(null) for a manual backup.
      type: str
      sample: nightly
    storage_location:
      description: Its BackupStorageLocation.
      type: str
      sample: default
    included_namespaces:
      description: C(spec.includedNamespaces).
      type: list
      elements: str
    excluded_namespaces:
      description: C(spec.excludedNamespaces).
      type: list
      elements: str
    ttl:
      description: C(spec.ttl).
      type: str
      sample: 720h0m0s
    start_timestamp:
      description: C(status.startTimestamp).
      type: str
      sample: "2025-01-01T02:00:00Z"
    completion_timestamp:
      description: C(status.completionTimestamp).
      type: str
    expiration:
      description: C(status.expiration), when Velero deletes it.
      type: str
    phase:
      description: C(status.phase).
      type: str
      sample: Completed
    error_count:
      description: Errors Velero counted (C(status.errors)).
      type: int
    warning_count:
      description: Warnings Velero counted (C(status.warnings)).
      type: int
    failure_reason:
      description: C(status.failureReason).
      type: str
    validation_errors:
      description: C(status.validationErrors).
      type: list
      elements: str
    progress:
      description: C(status.progress).
      type: dict
    storage_verified:
      description: Whether both files of the backup are in the bucket.
      type: bool
      returned: with O(verify_storage)
    missing_keys:
      description: The object keys that are not in the bucket.
      type: list
      elements: str
      returned: with O(verify_storage)
      sample: [velero/backups/nightly-20250101020000/nightly-20250101020000.tar.gz]
    storage:
      description: Where the files were looked for (C(bucket), C(endpoint), C(storage_location)).
      type: dict
      returned: with O(verify_storage)
all_verified:
  description: Whether every backup listed has both its files in the bucket (V(true) when none is listed).
  returned: with O(verify_storage)
  type: bool
status:
  description: HTTP status of the failed API request, if one failed.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import BACKUP_PHASES, s3_options, velero_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.velero_runners import execute, run_backup_info


def argument_spec():
    spec = velero_argument_spec(
        wait=False,
        name=dict(type="str"),
        schedule=dict(type="str"),
        phase=dict(type="list", elements="str", choices=BACKUP_PHASES),
        included_namespace=dict(type="str"),
        latest=dict(type="bool", default=False),
        verify_storage=dict(type="bool", default=False),
    )
    spec.update(s3_options())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, run_backup_info)


if __name__ == "__main__":
    main()

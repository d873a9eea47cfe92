#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_backup
short_description: Create a Velero backup and wait for its outcome, or delete a backup with its data
version_added: 1.0.0
description:
  - Creates a Velero C(Backup) (C(velero.io/v1)) and, with O(wait), waits until it reaches a terminal phase
    (V(Completed), V(PartiallyFailed), V(Failed) or V(FailedValidation)). V(New), V(Queued), V(ReadyToStart), V(InProgress),
    V(WaitingForPluginOperations*) and V(Finalizing*) are still running.
  - A backup is one-shot. When a backup of that name exists, it is returned as it is and never changed (C(changed=false)),
    whatever the options say; with O(wait) its outcome is checked like a new one's.
  - With O(state=absent), the backup's data in object storage is deleted through a C(DeleteBackupRequest), as
    C(velero backup delete) does; Velero then removes the C(Backup) object. Deleting only the object would leave the data.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - kubernetes.core.k8s_auth_options
  - infra.k3s.kubernetes
  - infra.k3s.velero
  - infra.k3s.velero_backup_options
  - infra.k3s.kubernetes.wait
attributes:
  check_mode:
    support: full
    details:
      - The Backup (or DeleteBackupRequest) is sent with C(dryRun=All), so the API server validates it and nothing is created.
  diff_mode:
    support: full
    details:
      - The spec of the backup that is created (or deleted).
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.velero
options:
  name:
    description:
      - Name of the backup.
    type: str
    required: true
  state:
    description:
      - V(present) creates the backup unless it exists, V(absent) deletes it and its data (nothing to do when it does not exist).
    type: str
    choices: [present, absent]
    default: present
  allow_partially_failed:
    description:
      - With O(wait), whether a backup that ends V(PartiallyFailed) counts as a success (with the counts in RV(warning_count)
        and RV(error_count)). V(Failed) and V(FailedValidation) always fail the task.
    type: bool
    default: false
  wait:
    description:
      - With O(state=present), wait until the backup reaches a terminal phase and fail the task unless it is V(Completed)
        (or V(PartiallyFailed) with O(allow_partially_failed)).
      - With O(state=absent), wait until Velero has deleted the backup (fails if Velero reports deletion errors).
notes:
  - Set the connection once for all Velero modules with C(module_defaults) and the action group C(group/infra.k3s.velero).
seealso:
  - module: infra.k3s.velero_backup_info
  - module: infra.k3s.velero_restore
  - module: infra.k3s.velero_schedule
  - name: Velero backup reference
    description: What the fields of a Backup mean.
    link: https://velero.io/docs/main/api-types/backup/
"""

EXAMPLES = r"""
- name: Back up the apps namespace with file system backup of its volumes, and wait for it
  infra.k3s.velero_backup:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    name: "apps-{{ ansible_date_time.iso8601_basic_short | lower }}"
    included_namespaces: [apps]
    default_volumes_to_fs_backup: true
    ttl: 168h
    wait: true
    wait_timeout: 3600

- name: Everything, accepting a partial failure
  infra.k3s.velero_backup:
    name: before-upgrade
    include_cluster_resources: true
    wait: true
    allow_partially_failed: true
  register: backup

- name: Delete a backup and its data in the bucket
  infra.k3s.velero_backup:
    name: before-upgrade
    state: absent
    wait: true
"""

RETURN = r"""
backup:
  description:
    - The Backup object as last read (in check mode, as the API server would create it).
    - With O(state=absent), the backup as it was before the deletion was requested; V(null) if there was none.
  returned: success
  type: dict
  sample:
    apiVersion: velero.io/v1
    kind: Backup
    metadata: {name: before-upgrade, namespace: velero}
    spec: {includedNamespaces: [apps], ttl: 168h0m0s}
    status: {phase: Completed, errors: 0, warnings: 1}
phase:
  description: The backup's C(status.phase) (V("") while Velero has not picked it up).
  returned: state is present
  type: str
  sample: Completed
error_count:
  description: How many errors Velero counted (C(status.errors)).
  returned: state is present
  type: int
  sample: 0
warning_count:
  description: How many warnings Velero counted (C(status.warnings)).
  returned: state is present
  type: int
  sample: 1
failure_reason:
  description: Why the backup Failed (C(status.failureReason)).
  returned: state is present
  type: str
  sample: ""
validation_errors:
  description: Why the backup FailedValidation (C(status.validationErrors)).
  returned: state is present
  type: list
  elements: str
  sample: []
progress:
  description: C(status.progress), with C(itemsBackedUp) and C(totalItems).
  returned: state is present
  type: dict
  sample: {itemsBackedUp: 120, totalItems: 120}
delete_request:
  description: The DeleteBackupRequest created (or found pending) for the backup.
  returned: state is absent
  type: dict
status:
  description: HTTP status of the failed API request, if one failed.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import backup_options, velero_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.velero_runners import execute, run_backup


def argument_spec():
    spec = velero_argument_spec(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        allow_partially_failed=dict(type="bool", default=False),
    )
    spec.update(backup_options())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, run_backup)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_schedule
short_description: Manage a Velero backup schedule
version_added: 1.0.0
description:
  - Makes a Velero C(Schedule) (C(velero.io/v1)) look as described (its cron expression, whether it is paused, and the
    backup template its backups are made from).
  - The template fields this module knows (the backup options below) are made exactly as given, an option left out
    removing its field; other template fields (hooks, resource filters set elsewhere) are left alone.
  - Changes are sent as one JSON merge patch carrying the object's C(resourceVersion); when someone else changed the
    Schedule meanwhile (HTTP 409 Conflict), it is read again and compared again.
  - Velero names the backups of a schedule C(<schedule>-<YYYYMMDDHHMMSS>) and labels them C(velero.io/schedule-name).
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - kubernetes.core.k8s_auth_options
  - infra.k3s.kubernetes
  - infra.k3s.velero
  - infra.k3s.velero_backup_options
attributes:
  check_mode:
    support: full
    details:
      - The create or patch is sent with C(dryRun=All), so the API server validates it and nothing changes.
  diff_mode:
    support: full
    details:
      - The Schedule's spec before and after.
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.velero
options:
  name:
    description:
      - Name of the schedule.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the schedule, V(absent) deletes it (its backups are kept).
    type: str
    choices: [present, absent]
    default: present
  schedule:
    description:
      - When to back up, a cron expression in the Velero server's time zone (V(0 2 * * *)), or V(@every 6h) style.
      - Required with O(state=present).
    type: str
  paused:
    description:
      - Whether the schedule is paused (makes no backups).
    type: bool
    default: false
  use_owner_references_in_backup:
    description:
      - Whether the schedule's backups get an owner reference to the Schedule, so that deleting the Schedule deletes
        them (C(spec.useOwnerReferencesInBackup)). Left as it is if not set.
    type: bool
notes:
  - Set the connection once for all Velero modules with C(module_defaults) and the action group C(group/infra.k3s.velero).
seealso:
  - module: infra.k3s.velero_backup
  - module: infra.k3s.velero_restore
  - name: Velero schedule reference
    description: What the fields of a Schedule mean.
    link: https://velero.io/docs/main/api-types/schedule/
"""

EXAMPLES = r"""
- name: Nightly backup of everything, kept for a week
  infra.k3s.velero_schedule:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    name: nightly
    schedule: "0 2 * * *"
    ttl: 168h
    default_volumes_to_fs_backup: true
    include_cluster_resources: true

- name: Pause it during maintenance
  infra.k3s.velero_schedule:
    name: nightly
    schedule: "0 2 * * *"
    ttl: 168h
    default_volumes_to_fs_backup: true
    include_cluster_resources: true
    paused: true

- name: Remove an old schedule (its backups stay)
  infra.k3s.velero_schedule:
    name: hourly
    state: absent
"""

RETURN = r"""
schedule:
  description: The Schedule object as it now is (in check mode, as it would be); V(null) with O(state=absent).
  returned: success
  type: dict
  sample:
    apiVersion: velero.io/v1
    kind: Schedule
    metadata: {name: nightly, namespace: velero}
    spec:
      schedule: "0 2 * * *"
      paused: false
      template: {ttl: 168h0m0s, defaultVolumesToFsBackup: true, includeClusterResources: true}
status:
  description: HTTP status of the failed API request, if one failed.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import backup_options, velero_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.velero_runners import execute, run_schedule


def argument_spec():
    spec = velero_argument_spec(
        wait=False,
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        schedule=dict(type="str"),
        paused=dict(type="bool", default=False),
        use_owner_references_in_backup=dict(type="bool"),
    )
    spec.update(backup_options())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[["state", "present", ["schedule"]]],
        supports_check_mode=True,
    )
    execute(module, run_schedule)


if __name__ == "__main__":
    main()

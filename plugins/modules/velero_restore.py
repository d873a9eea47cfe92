#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_restore
short_description: Restore a Velero backup, chosen by name or as the latest good backup of a schedule
version_added: 1.0.0
description:
  - Creates a Velero C(Restore) (C(velero.io/v1)) from O(backup_name), or from the latest backup of O(schedule_name).
  - With O(schedule_name), the module picks the backup the way Velero's server does for C(spec.scheduleName) (the latest
    C(status.startTimestamp) among the V(Completed) backups labelled C(velero.io/schedule-name=<schedule>);
    O(allow_partially_failed) admits V(PartiallyFailed) backups too), and creates the Restore with C(spec.backupName),
    so the choice is explicit and returned in RV(backup_name).
  - Refuses to start (and changes nothing) when the backup is not V(Completed) or V(PartiallyFailed), or when its
    BackupStorageLocation is not V(Available), since Velero could not read the backup.
  - With O(node_mapping), puts the restored claims (K3s C(local-path) volumes are bound to a node) on the node it maps
    to. Velero 1.18 removed the C(change-pvc-node-selector) mapping, and its PVC restore action always removes a claim's
    C(volume.kubernetes.io/selected-node) annotation (vmware-tanzu/velero v1.18.1 C(pkg/restore/actions/pvc_action.go),
    commit 7e15e9ba0). The module therefore writes a resource modifier (C(internal/resourcemodifiers/resource_modifiers.go),
    C(site/content/docs/v1.18/restore-resource-modifiers.md)) - the ConfigMap C(<restore>-node-mapping) in O(namespace)
    with one data key - and references it in the restore's C(spec.resourceModifier). Velero applies it after the item
    actions, just before it creates each claim (C(pkg/restore/restore.go) restoreItem), so the merge patch that sets the
    annotation to the target node stands, and the volume is provisioned there.
  - With O(node_mapping_workloads), the same ConfigMap also moves the C(nodeSelector) pin of the workloads named (their
    ReplicaSets and pods too) from the old node to the new one, so that they can be scheduled where their claims now are.
  - Once a waited-for restore has finished (whatever its outcome), the module deletes that ConfigMap again, unless
    O(keep_node_mapping) is set. Velero reads it only when it validates the restore it names
    (C(pkg/controller/restore_controller.go)), so it affects no other restore.
  - With O(name), a restore of that name that exists is returned as it is (C(changed=false)). Without O(name), each run
    creates a new restore named C(<backup>-<YYYYMMDDHHMMSS>).
  - With O(wait), waits until the restore reaches a terminal phase and fails the task unless it is V(Completed) (or
    V(PartiallyFailed) with O(allow_partially_failed)).
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
      - The Restore and the node mapping ConfigMap are sent with C(dryRun=All), so the API server validates them and nothing
        is created.
  diff_mode:
    support: full
    details:
      - The spec of the restore created and the data of the node mapping ConfigMap.
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.velero
options:
  name:
    description:
      - Name of the restore. If not set, C(<backup>-<YYYYMMDDHHMMSS>) (UTC).
    type: str
  backup_name:
    description:
      - The backup to restore. Exactly one of O(backup_name) and O(schedule_name) is required.
    type: str
  schedule_name:
    description:
      - Restore the latest V(Completed) backup of this schedule (also V(PartiallyFailed) ones with O(allow_partially_failed)).
    type: str
  included_namespaces:
    description:
      - Namespaces to restore (C(spec.includedNamespaces)); all those in the backup if not set.
    type: list
    elements: str
  included_resources:
    description:
      - Resources to restore (C(spec.includedResources)), as C(resource) or C(resource.group), for example V(deployments.apps)
        or V(persistentvolumeclaims); all if not set.
    type: list
    elements: str
  excluded_resources:
    description:
      - Resources not to restore (C(spec.excludedResources)).
    type: list
    elements: str
  label_selector:
    description:
      - Restore only the objects carrying all these labels (C(spec.labelSelector.matchLabels)).
      - Velero restores a PersistentVolumeClaim's data only when the claim itself matches.
    type: dict
  or_label_selectors:
    description:
      - Restore the objects matching any of these label sets (C(spec.orLabelSelectors), each a C(matchLabels)), for example
        an application labelled either C(app.kubernetes.io/name) or C(app).
      - Velero refuses a restore with both a label selector and C(orLabelSelectors); so does this module, before any request.
    type: list
    elements: dict
  namespace_mapping:
    description:
      - Restore namespaces under other names, old name to new name (C(spec.namespaceMapping)).
    type: dict
  restore_pvs:
    description:
      - Whether to restore persistent volumes from snapshots (C(spec.restorePVs)); Velero decides if not set.
    type: bool
  existing_resource_policy:
    description:
      - What to do with resources that already exist in the cluster (C(spec.existingResourcePolicy)).
      - V(none) leaves them alone, V(update) updates them to the backed up version.
    type: str
    choices: [none, update]
  node_mapping:
    description:
      - Old node name to new node name, for volumes bound to a node (K3s C(local-path) PVCs carry the node in their
        C(volume.kubernetes.io/selected-node) annotation); the restored claims get the new node in that annotation.
      - Velero 1.18 removes a claim's old node before resource modifiers apply, so the module cannot tell which claim was on
        which node; all the values must be one node (run one restore per target node), and the claims moved are those of
        O(node_mapping_claims), or every claim the restore brings back (in O(included_namespaces) when set).
      - Written as a resource modifier ConfigMap C(<restore name>-node-mapping) in O(namespace) (one data key,
        C(node-mapping.yaml), holding C(version=v1) and one rule per namespace with C(groupResource=persistentvolumeclaims), the
        original namespace, C(resourceNameRegex) of the claims and a merge patch of the annotation), referenced by the
        restore's C(spec.resourceModifier).
      - V({}) or no value restores without moving any claim (Velero 1.18 then leaves each claim's node unset, and it is
        provisioned where its pod is scheduled).
    type: dict
  node_mapping_claims:
    description:
      - The claims O(node_mapping) moves, as C(namespace/name) with the namespace they had in the backup (a resource
        modifier matches the original namespace, also with O(namespace_mapping)).
      - When not set, every claim the restore brings back moves; with V([]) none does (no resource modifier is written).
    type: list
    elements: str
  node_mapping_workloads:
    description:
      - Workloads whose pod template pins its pods by C(nodeSelector) C(kubernetes.io/hostname) to an old node of
        O(node_mapping) (a Deployment or StatefulSet pinned to a node that is lost); a restored Deployment, its ReplicaSets
        and the workload's pods are pinned to the new node instead. Without it they come back still naming the
        old node, and their pods stay Pending (so Velero's node agent never restores their volumes' data).
      - A StatefulSet's own template is B(not) rewritten, only its pods, because the StatefulSet controller would roll the
        restored pod to the changed template's new revision, and with C(podManagementPolicy=Parallel) it deletes it at once,
        before the node agent has restored its data (kubernetes/kubernetes C(pkg/controller/statefulset/stateful_set_control.go)).
        Patch the StatefulSet's C(nodeSelector) once the restore has completed (the C(infra.k3s.dr) failover does).
      - Written into the same resource modifier ConfigMap as the claims, for each workload and old node three rules (one
        for a StatefulSet), C(groupResource) V(deployments.apps) with C(resourceNameRegex) of the
        name; V(replicasets.apps) named C(<name>-<hash>); V(pods) whose name starts with C(<name>-) (a generated
        name's base is cut to 58 characters) or named C(<name>-<ordinal>);
        all in the workload's namespace, the last two also by its O(node_mapping_workloads[].selector). Each is guarded by
        C(conditions.matches) on C(/spec/template/spec/nodeSelector/kubernetes.io~1hostname) (C(/spec/nodeSelector/...)
        for pods) equal to the old node, and patches it with a JSON patch C(replace) to the new node, so an object pinned
        elsewhere or not at all is left as it is (C(internal/resourcemodifiers/resource_modifiers.go) matchConditions,
        C(json_patch.go); C(matches) needs Velero 1.13 or later).
      - Other pins (C(nodeAffinity), other node labels) are left as they are. Ignored when O(node_mapping) is empty.
    type: list
    elements: dict
    suboptions:
      kind:
        description:
          - The workload's kind.
        type: str
        required: true
        choices: [Deployment, StatefulSet]
      namespace:
        description:
          - Its namespace in the backup (a resource modifier matches the original namespace, also with O(namespace_mapping)).
        type: str
        required: true
      name:
        description:
          - Its name.
        type: str
        required: true
      selector:
        description:
          - Its C(spec.selector) (C(matchLabels), C(matchExpressions)); the rules for its ReplicaSets and pods match only
            objects it selects. Without it they match by name alone.
        type: dict
  keep_node_mapping:
    description:
      - Leave the node mapping ConfigMap in place after a waited-for restore has finished.
      - By default it is deleted then. Without O(wait) the module cannot know when Velero is done with it, so it is
        always left; it affects only the restore that names it.
    type: bool
    default: false
  allow_partially_failed:
    description:
      - Whether a V(PartiallyFailed) outcome counts as a success (with O(wait)), and whether O(schedule_name) may pick a
        V(PartiallyFailed) backup.
    type: bool
    default: false
  wait:
    description:
      - Wait until the restore reaches a terminal phase and fail the task unless it is V(Completed)
        (or V(PartiallyFailed) with O(allow_partially_failed)).
notes:
  - Set the connection once for all Velero modules with C(module_defaults) and the action group C(group/infra.k3s.velero).
seealso:
  - module: infra.k3s.velero_backup
  - module: infra.k3s.velero_backup_info
  - name: Velero restore reference
    description: What the fields of a Restore mean.
    link: https://velero.io/docs/main/api-types/restore/
  - name: Velero restore resource modifiers
    description: The ConfigMap format the node mapping is written in.
    link: https://velero.io/docs/v1.18/restore-resource-modifiers/
"""

EXAMPLES = r"""
- name: Restore the latest good nightly backup and wait for it
  infra.k3s.velero_restore:
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    schedule_name: nightly
    wait: true
    wait_timeout: 3600
  register: restore

- name: Show which backup was used
  ansible.builtin.debug:
    msg: "Restored {{ restore.backup_name }} as {{ restore.restore.metadata.name }}"

- name: Restore one namespace under another name, volumes of a dead node onto a new one
  infra.k3s.velero_restore:
    name: apps-to-staging
    backup_name: apps-20250101020000
    included_namespaces: [apps]
    namespace_mapping:
      apps: apps-staging
    node_mapping:
      worker1: worker4
    node_mapping_claims: [apps/data-postgres-0, apps/uploads]
    existing_resource_policy: update
    wait: true

- name: Bring back Grafana, pinned by nodeSelector to the lost worker1, with its volume and its pin on worker2
  infra.k3s.velero_restore:
    backup_name: critical-20250101020000
    included_namespaces: [monitoring]
    node_mapping:
      worker1: worker2
    node_mapping_claims: [monitoring/kube-prometheus-stack-grafana]
    node_mapping_workloads:
      - kind: Deployment
        namespace: monitoring
        name: kube-prometheus-stack-grafana
        selector:
          matchLabels: {app.kubernetes.io/instance: kube-prometheus-stack, app.kubernetes.io/name: grafana}
    wait: true

- name: Restore one application, whichever of the two usual labels it carries, with its volumes on worker2
  infra.k3s.velero_restore:
    backup_name: standard-20250301030000
    included_namespaces: [wiki]
    or_label_selectors:
      - app.kubernetes.io/name: wiki
      - app: wiki
    node_mapping:
      worker1: worker2
    wait: true
"""

RETURN = r"""
restore:
  description: The Restore object as last read (in check mode, as the API server would create it).
  returned: success
  type: dict
  sample:
    apiVersion: velero.io/v1
    kind: Restore
    metadata: {name: nightly-20250101020000-20250102101500, namespace: velero}
    spec: {backupName: nightly-20250101020000}
    status: {phase: Completed, errors: 0, warnings: 2}
backup_name:
  description: The backup restored from (the one O(schedule_name) resolved to).
  returned: success
  type: str
  sample: nightly-20250101020000
backup:
  description: The Backup object restored from.
  returned: success
  type: dict
storage_location:
  description: The BackupStorageLocation of the backup, as checked before starting.
  returned: when a restore was created
  type: dict
node_mapping_configmap:
  description: The resource modifier ConfigMap as written for the restore (see RV(node_mapping_removed) for whether it is still there).
  returned: when O(node_mapping) is not empty, the rules are not empty and a restore was created
  type: dict
  sample:
    metadata:
      name: apps-to-staging-node-mapping
      labels: {app.kubernetes.io/managed-by: infra.k3s}
    data:
      node-mapping.yaml: |
        {"resourceModifierRules": [{"conditions": {"groupResource": "persistentvolumeclaims", "namespaces": ["apps"],
          "resourceNameRegex": "^(data-postgres-0|uploads)$"}, "mergePatches": [{"patchData":
          "{\"metadata\": {\"annotations\": {\"volume.kubernetes.io/selected-node\": \"worker4\"}}}"}]}], "version": "v1"}
node_mapping_removed:
  description: Whether the node mapping ConfigMap was deleted after the restore finished.
  returned: when O(node_mapping) is not empty, O(wait) is set, O(keep_node_mapping) is not, and the restore finished
  type: bool
  sample: true
phase:
  description: The restore's C(status.phase) (V("") while Velero has not picked it up).
  returned: success
  type: str
  sample: Completed
error_count:
  description: How many errors Velero counted (C(status.errors)).
  returned: success
  type: int
  sample: 0
warning_count:
  description: How many warnings Velero counted (C(status.warnings)).
  returned: success
  type: int
  sample: 2
failure_reason:
  description: Why the restore Failed (C(status.failureReason)).
  returned: success
  type: str
  sample: ""
validation_errors:
  description: Why the restore FailedValidation (C(status.validationErrors)).
  returned: success
  type: list
  elements: str
  sample: []
progress:
  description: C(status.progress), with C(itemsRestored) and C(totalItems).
  returned: success
  type: dict
  sample: {itemsRestored: 80, totalItems: 80}
status:
  description: HTTP status of the failed API request, if one failed.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.velero_bodies import EXISTING_RESOURCE_POLICIES, velero_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.velero_runners import execute, run_restore


def argument_spec():
    return velero_argument_spec(
        name=dict(type="str"),
        backup_name=dict(type="str"),
        schedule_name=dict(type="str"),
        included_namespaces=dict(type="list", elements="str"),
        included_resources=dict(type="list", elements="str"),
        excluded_resources=dict(type="list", elements="str"),
        label_selector=dict(type="dict"),
        or_label_selectors=dict(type="list", elements="dict"),
        namespace_mapping=dict(type="dict"),
        restore_pvs=dict(type="bool"),
        existing_resource_policy=dict(type="str", choices=EXISTING_RESOURCE_POLICIES),
        node_mapping=dict(type="dict"),
        node_mapping_claims=dict(type="list", elements="str"),
        node_mapping_workloads=dict(type="list", elements="dict", options=dict(
            kind=dict(type="str", required=True, choices=["Deployment", "StatefulSet"]),
            namespace=dict(type="str", required=True),
            name=dict(type="str", required=True),
            selector=dict(type="dict"),
        )),
        keep_node_mapping=dict(type="bool", default=False),
        allow_partially_failed=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[["backup_name", "schedule_name", "name"]],
        mutually_exclusive=[["backup_name", "schedule_name"], ["label_selector", "or_label_selectors"]],
        supports_check_mode=True,
    )
    execute(module, run_restore)


if __name__ == "__main__":
    main()

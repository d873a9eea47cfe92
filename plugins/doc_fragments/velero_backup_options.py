# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options that describe a backup (spec: module_utils/velero_bodies.py backup_options()), shared by
infra.k3s.velero_backup and the template of infra.k3s.velero_schedule."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  included_namespaces:
    description:
      - Namespaces to back up (C(spec.includedNamespaces)). Not set or V([]) means all namespaces.
    type: list
    elements: str
  excluded_namespaces:
    description:
      - Namespaces not to back up (C(spec.excludedNamespaces)).
    type: list
    elements: str
  label_selector:
    description:
      - Back up only resources that have all these labels (C(spec.labelSelector.matchLabels)).
    type: dict
  ttl:
    description:
      - How long Velero keeps the backup before it deletes it (C(spec.ttl)), a Go duration such as V(720h) or V(168h0m0s).
      - Sent the way Velero writes durations (V(72h) becomes V(72h0m0s)). Velero's default is 30 days.
    type: str
  storage_location:
    description:
      - Name of the BackupStorageLocation to store the backup in (C(spec.storageLocation)); Velero's default location if not set.
    type: str
  snapshot_volumes:
    description:
      - Whether to take snapshots of persistent volumes (C(spec.snapshotVolumes)); Velero decides if not set.
    type: bool
  default_volumes_to_fs_backup:
    description:
      - Whether to back up all pod volumes with the file system backup (Kopia) unless a pod opts out (C(spec.defaultVolumesToFsBackup)).
      - The way to back up K3s C(local-path) volumes, which cannot be snapshotted.
    type: bool
  include_cluster_resources:
    description:
      - Whether to include cluster-scoped resources (C(spec.includeClusterResources)); Velero decides if not set.
    type: bool
"""

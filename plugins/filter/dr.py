# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster-recovery decisions as filters, for playbooks/dr_failover.yml, dr_restore_workload.yml and
roles/k3s/tasks/local_volumes.yml. The logic and its unit tests live in module_utils/dr_plan.py and
module_utils/label_selector.py; these wrappers only turn its errors into AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan
from ansible_collections.infra.k3s.plugins.module_utils.label_selector import SelectorError


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (SelectorError, ValueError, TypeError, AttributeError) as exc:
            raise AnsibleFilterError("%s: %s" % (func.__name__, exc)) from exc
    run.__name__ = func.__name__
    return run


def dr_node_volumes(pvs, node):
    return dr_plan.node_volumes(pvs, node)


def dr_failover_plan(node, pvs=None, pvcs=None, pods=None, replicasets=None, deployments=None, statefulsets=None):
    return dr_plan.failover_plan(node, pvs=pvs, pvcs=pvcs, pods=pods, replicasets=replicasets,
                                 deployments=deployments, statefulsets=statefulsets)


def dr_pick_backup(backups, objects, name=None, phases=("Completed",), mode="all"):
    return dr_plan.pick_backup(backups, objects, name=name, phases=tuple(phases), mode=mode)


class FilterModule(object):
    """infra.k3s disaster-recovery filters."""

    def filters(self):
        return {name: _wrap(func) for name, func in (("dr_node_volumes", dr_node_volumes),
                                                      ("dr_failover_plan", dr_failover_plan),
                                                      ("dr_pick_backup", dr_pick_backup))}

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_failover_plan filter (documentation: dr_failover_plan.yml). What fails over with a lost node.

The logic and its unit tests live in module_utils/dr_plan.py and module_utils/label_selector.py; this file
only turns their errors into AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan
from ansible_collections.infra.k3s.plugins.module_utils.label_selector import SelectorError


def dr_failover_plan(node, pvs=None, pvcs=None, pods=None, replicasets=None, deployments=None, statefulsets=None,
                     operated=None):
    try:
        return dr_plan.failover_plan(node, pvs=pvs, pvcs=pvcs, pods=pods, replicasets=replicasets,
                                     deployments=deployments, statefulsets=statefulsets, operated=operated)
    except (SelectorError, ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_failover_plan: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_failover_plan"""

    def filters(self):
        return {"dr_failover_plan": dr_failover_plan}

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_node_volumes filter (documentation: dr_node_volumes.yml). The persistent volumes pinned to a node.

The logic and its unit tests live in module_utils/dr_plan.py and module_utils/label_selector.py; this file
only turns their errors into AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan
from ansible_collections.infra.k3s.plugins.module_utils.label_selector import SelectorError


def dr_node_volumes(pvs, node):
    try:
        return dr_plan.node_volumes(pvs, node)
    except (SelectorError, ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_node_volumes: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_node_volumes"""

    def filters(self):
        return {"dr_node_volumes": dr_node_volumes}

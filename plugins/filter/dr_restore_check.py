# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_restore_check filter (documentation: dr_restore_check.yml). Whether an application may be
restored onto a node, and Velero's node mapping for it.

The logic and its unit tests live in module_utils/dr_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan


def dr_restore_check(nodes, target="", claims=None, app="", namespace=""):
    try:
        error = dr_plan.restore_target_check(nodes, target, claims, app, namespace) if target else ""
        return {"error": error, "node_mapping": dr_plan.restore_node_mapping(nodes, target)}
    except (ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_restore_check: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_restore_check"""

    def filters(self):
        return {"dr_restore_check": dr_restore_check}

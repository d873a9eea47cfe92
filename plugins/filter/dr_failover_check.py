# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_failover_check filter (documentation: dr_failover_check.yml). Whether a failover may start, from the Nodes.

The logic and its unit tests live in module_utils/dr_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan


def dr_failover_check(nodes, source, target, force=False):
    try:
        return dr_plan.failover_check(nodes, source, target, force=bool(force))
    except (ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_failover_check: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_failover_check"""

    def filters(self):
        return {"dr_failover_check": dr_failover_check}

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dr_ingress_plan filter (documentation: dr_ingress_plan.yml). Where the public entry goes after a failover.

The logic and its unit tests live in module_utils/dr_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dr_plan


def dr_ingress_plan(facts, cluster, excluded=None, ingress_node="", open_firewall=True, wildcard="*.apps", managed=True):
    try:
        return dr_plan.ingress_plan(facts, cluster, excluded or [], ingress_node, open_firewall=bool(open_firewall),
                                    wildcard=wildcard, managed=bool(managed))
    except (ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dr_ingress_plan: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dr_ingress_plan"""

    def filters(self):
        return {"dr_ingress_plan": dr_ingress_plan}

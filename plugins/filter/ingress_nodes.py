# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.ingress_nodes filter (documentation: ingress_nodes.yml). The ingress nodes of infra.k3s.ingress.

The logic and its unit tests live in module_utils/ingress_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import ingress_plan


def ingress_nodes(facts, cluster, tailnet_ranges=None):
    try:
        return ingress_plan.ingress_nodes(facts, cluster, tailnet_ranges=tailnet_ranges or [])
    except (ingress_plan.IngressPlanError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("ingress_nodes: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.ingress_nodes"""

    def filters(self):
        return {"ingress_nodes": ingress_nodes}

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dns_record_sets filter (documentation: dns_record_sets.yml). The record sets of infra.k3s.dns.

The logic and its unit tests live in module_utils/dns_plan.py; this file only turns its errors into
AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dns_plan


def dns_record_sets(facts, cluster, masters=None, exclude=None, api_name="k3s", wildcard="*.apps", node_records=True,
                    node_suffix="", delete_excluded_node_records=False, extra=None):
    try:
        return dns_plan.record_sets(facts, cluster, masters=masters or [], exclude=exclude or [], api_name=api_name,
                                    wildcard=wildcard, node_records=node_records, node_suffix=node_suffix,
                                    delete_excluded_node_records=delete_excluded_node_records, extra=extra or [])
    except (dns_plan.DnsPlanError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dns_record_sets: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dns_record_sets"""

    def filters(self):
        return {"dns_record_sets": dns_record_sets}

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.dns_external_dns_split filter (documentation: dns_external_dns_split.yml): the names external-dns
leaves to infra.k3s.dns.

The logic and its unit tests live in module_utils/dns_plan.py (external_dns_split); this file only turns its errors
into AnsibleFilterError."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.infra.k3s.plugins.module_utils import dns_plan


def dns_external_dns_split(facts, zone, cluster, masters=None, api_name="k3s", wildcard="*.apps", node_records=True,
                           node_suffix="", extra=None, more=None):
    try:
        return dns_plan.external_dns_split(zone, facts, cluster, masters=masters or [], api_name=api_name,
                                           wildcard=wildcard, node_records=node_records, node_suffix=node_suffix,
                                           extra=extra or [], more=more or [])
    except (dns_plan.DnsPlanError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError("dns_external_dns_split: %s" % exc) from exc


class FilterModule(object):
    """infra.k3s.dns_external_dns_split"""

    def filters(self):
        return {"dns_external_dns_split": dns_external_dns_split}

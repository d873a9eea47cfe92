#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudflare_dns_info
short_description: List the DNS records of a Cloudflare zone as infra.k3s.cloudflare_dns compares them
version_added: 0.1.0
description:
  - Lists the DNS records of a zone, optionally only those of one name and/or one type.
  - Each record carries its C(value) normalised the way M(infra.k3s.cloudflare_dns) compares it
    (TXT strings joined, IPv6 compressed, names and targets in lower case without the trailing dot).
  - Pagination is followed; a zone of up to 5,000 records is read in one request.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - infra.k3s.cloudflare
attributes:
  check_mode:
    support: full
    details:
      - This module only reads.
  diff_mode:
    support: N/A
    details:
      - This module only reads.
  platform:
    platforms: all
  action_group:
    support: full
    membership:
      - infra.k3s.cloudflare
options:
  zone:
    description:
      - Name of the zone, for example V(example.com). It is looked up to find its id (needs C(Zone:Read)).
      - With O(zone_id) too, no lookup is made and O(zone) only serves to complete a relative O(name).
      - At least one of O(zone) and O(zone_id) is required.
    type: str
  zone_id:
    description:
      - Id of the zone. Use it with tokens limited to one zone that cannot look zones up.
    type: str
  name:
    description:
      - Only records of this name, relative to the zone, V(@) for the apex, or fully qualified.
    type: str
  type:
    description:
      - Only records of this type.
    type: str
    choices: [A, AAAA, CNAME, TXT, MX, SRV, CAA, NS]
seealso:
  - module: infra.k3s.cloudflare_dns
"""

EXAMPLES = r"""
- name: All records of the zone
  infra.k3s.cloudflare_dns_info:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
  register: dns

- name: The A records of the API name
  infra.k3s.cloudflare_dns_info:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    name: k3s
    type: A
  register: api_records

- name: Show the addresses
  ansible.builtin.debug:
    msg: "{{ api_records.records | map(attribute='value') | list }}"
"""

RETURN = r"""
zone:
  description: The zone that was read.
  returned: success
  type: dict
  sample: {id: 023e105f4ecef8ad9ca31a8372d0c353, name: example.com}
records:
  description: The records, sorted by name, type and value.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Record id.
      type: str
      returned: always
    name:
      description: Fully qualified name, lower case, without the trailing dot.
      type: str
      returned: always
    relative_name:
      description: The name relative to the zone (V(@) for the apex), when the zone name is known.
      type: str
      returned: when the zone name is known
    type:
      description: Record type.
      type: str
      returned: always
    value:
      description:
        - The value as M(infra.k3s.cloudflare_dns) compares it; for MX and SRV it starts with the priority.
        - A TXT value of several strings split elsewhere than at 255 bytes is shown in quoted zone-file form.
      type: str
      returned: always
    content:
      description: The content as Cloudflare returned it.
      type: str
      returned: always
    ttl:
      description: TTL in seconds, V(1) meaning automatic.
      type: int
      returned: always
    proxied:
      description: Whether the record is proxied.
      type: bool
      returned: always
    comment:
      description: The record's comment, or null.
      type: str
      returned: always
    tags:
      description: The record's tags, sorted.
      type: list
      elements: str
      returned: always
    settings:
      description:
        - The record's per-record settings as Cloudflare returns them (C(ipv4_only), C(ipv6_only), and C(flatten_cname)
          for CNAME records); empty when none are set.
      type: dict
      returned: always
    private_routing:
      description: Whether private network routing to the origin is on, as Cloudflare returns it (null when it does not say).
      type: bool
      returned: for A and AAAA records
    priority:
      description: Priority of MX and SRV records.
      type: int
      returned: for MX and SRV records
  sample:
    - id: 372e67954025e0ba6aaa6d586b9e0b59
      name: k3s.example.com
      relative_name: k3s
      type: A
      value: 192.0.2.10
      content: 192.0.2.10
      ttl: 60
      proxied: false
      comment: null
      tags: []
      settings: {}
      private_routing: null
status:
  description: HTTP status of the failed request, if one failed.
  returned: failure
  type: int
error_codes:
  description: Cloudflare's error codes of the failed request.
  returned: failure
  type: list
  elements: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_client import cloudflare_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import RECORD_TYPES
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_runners import execute, run_dns_info


def main():
    module = AnsibleModule(
        argument_spec=cloudflare_argument_spec(
            zone=dict(type="str"),
            zone_id=dict(type="str"),
            name=dict(type="str"),
            type=dict(type="str", choices=RECORD_TYPES),
        ),
        required_one_of=[["zone", "zone_id"]],
        supports_check_mode=True,
    )
    execute(module, run_dns_info)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudflare_dns
short_description: Manage Cloudflare DNS record sets, all changes of a run in one atomic batch
version_added: 0.1.0
description:
  - Makes DNS record sets of a Cloudflare zone look as described. A record set is a (name, type)
    pair and its values; the order of the values does not matter.
  - One record set is given with O(name), O(type) and O(values); many are given at once with O(records).
  - All the changes go to Cloudflare in one C(POST /zones/{zone_id}/dns_records/batch) request, which
    Cloudflare runs in one transaction, so a failure changes nothing. A value that changes takes over the
    record it replaces (same record id), so a name is never left without a record while it changes.
  - Values are compared the way Cloudflare stores them. IPv6 notation, letter case and trailing dots of names and
    targets, TXT quoting and TXT splitting at 255 bytes make no difference; TXT strings split elsewhere
    (V("v=spf1 " "-all")) are a different record from their joined text, as they are on the wire.
  - Invalid input (an A value that is not an IPv4 address, a CNAME set with two values, a CNAME beside other
    types at one name, a TTL out of range, a tag that is not C(name:value)) is rejected before any request.
  - Reads use the zone lookup (unless O(zone_id) is given) and one list request; a run that changes
    nothing makes no write request, and neither does check mode.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - infra.k3s.cloudflare
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - One diff per record set that changes, in zone-file lines (name, TTL, type, value, then proxied, comment and tags).
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
      - With O(zone_id) too, no lookup is made and O(zone) only serves to complete relative names.
      - At least one of O(zone) and O(zone_id) is required.
    type: str
  zone_id:
    description:
      - Id of the zone. Use it with tokens limited to one zone that cannot look zones up.
      - Without O(zone), every record name is taken as a fully qualified name and V(@) cannot be used.
    type: str
  name:
    description:
      - Name of the record set, relative to the zone (V(www), V(*.apps)), V(@) for the zone apex, or fully
        qualified (V(www.example.com), with or without the trailing dot).
      - A name equal to the zone or ending in C(.<zone>) is taken as fully qualified.
      - Required with O(type) unless O(records) is used.
    type: str
  type:
    description:
      - Record type of the record set.
    type: str
    choices: [A, AAAA, CNAME, TXT, MX, SRV, CAA, NS]
  values:
    description:
      - Values of the record set; the order does not matter.
      - A and AAAA take IP addresses, CNAME and NS a host name (a CNAME set has exactly one value).
      - TXT takes the text, or zone-file character-strings (V("part one" "part two")) that are kept as written, not joined;
        strings longer than 255 bytes are split as Cloudflare does.
      - MX takes V(10 mail.example.com), or V(mail.example.com) with O(priority).
      - SRV takes V(priority weight port target), or V(weight port target) with O(priority).
      - CAA takes V(flags tag value), for example V(0 issue "letsencrypt.org").
      - Required with O(state=present). With O(state=absent), the values to remove; none means the whole set.
    type: list
    elements: str
  ttl:
    description:
      - TTL of the records in seconds, V(1) meaning automatic.
      - V(1) or 30 to 86400 (zones below the Enterprise plan start at 60).
      - If not set, existing records keep their TTL and new records get V(1) (automatic), as with O(comment) and O(tags).
      - Proxied records always have automatic TTL; a TTL for a record that is proxied and stays so (O(proxied) not set)
        is refused before any write.
      - With O(records), the default for entries that do not set it.
    type: int
  proxied:
    description:
      - Whether the records are proxied by Cloudflare (A, AAAA and CNAME only).
      - If not set, existing records keep their proxy status and new records are not proxied.
      - With O(records), the default for entries that do not set it.
    type: bool
  comment:
    description:
      - Comment of the records. If not set, comments are left as they are; V("") removes them.
      - With O(records), the default for entries that do not set it.
    type: str
  tags:
    description:
      - Tags of the records (C(name:value) strings). If not set, tags are left as they are; V([]) removes them.
      - A tag name has letters, digits, C(-) and C(_) only, a value no line break; other tags are refused before any request.
      - Tag names are compared without regard to case, as Cloudflare treats them.
      - With O(records), the default for entries that do not set it.
    type: list
    elements: str
  priority:
    description:
      - Priority of MX and SRV values that do not carry their own.
    type: int
  state:
    description:
      - V(present) makes the record set exist as described, V(absent) removes it (or only the listed O(values)).
      - With O(records), the default for entries that do not set it.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - With V(true), records of the set whose value is not in O(values) are removed (or re-used for new values).
      - With V(false), the listed values are ensured and other records of the set are left alone.
      - With O(records), the default for entries that do not set it.
    type: bool
    default: true
  records:
    description:
      - Many record sets at once; all their changes go to Cloudflare in one batch.
      - Each entry takes the options of a single record set. O(ttl), O(proxied), O(comment), O(tags), O(state)
        and O(exclusive) given at the top level are the defaults of the entries.
      - Each (name, type) may appear once.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the record set, as O(name).
        type: str
        required: true
      type:
        description: Record type, as O(type).
        type: str
        required: true
        choices: [A, AAAA, CNAME, TXT, MX, SRV, CAA, NS]
      values:
        description: Values, as O(values).
        type: list
        elements: str
      ttl:
        description: TTL, as O(ttl).
        type: int
      proxied:
        description: Proxied, as O(proxied).
        type: bool
      comment:
        description: Comment, as O(comment).
        type: str
      tags:
        description: Tags, as O(tags).
        type: list
        elements: str
      priority:
        description: Priority, as O(priority).
        type: int
      state:
        description: State, as O(state).
        type: str
        choices: [present, absent]
      exclusive:
        description: Exclusive, as O(exclusive).
        type: bool
  max_batch_size:
    description:
      - The most changes one run may send. Cloudflare takes at most 200 changes in one batch on the Free plan and
        3,500 on Pro, Business and Enterprise; set V(3500) for a zone on a paid plan.
      - A run that needs more changes fails before any write, naming this option; it is not split into several
        batches, which would not be one transaction. Split the record sets over several tasks instead.
      - 1 to 3500.
    type: int
    default: 200
notes:
  - Cloudflare limits a batch to 200 changes on the Free plan and 3,500 on paid plans (O(max_batch_size)).
  - A value change replaces the record (PUT) with the same id. The record's comment, tags, TTL and proxy status
    (when not set in the task), its per-record C(settings) (C(ipv4_only), C(ipv6_only), C(flatten_cname)) and
    C(private_routing) are carried over.
  - A retry of a batch whose first answer was lost (HTTP 5xx, timeout) may meet Cloudflare's
    C(81058 An identical record already exists) or C(81044 Record does not exist). The module then reads the
    records back and succeeds if they are as asked.
  - Set the token once for all Cloudflare modules with C(module_defaults) and the action group
    C(group/infra.k3s.cloudflare).
seealso:
  - module: infra.k3s.cloudflare_dns_info
  - name: Batch record changes
    description: Cloudflare's documentation of the batch endpoint.
    link: https://developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/
"""

EXAMPLES = r"""
- name: Point www at two addresses (other A records of www are removed)
  infra.k3s.cloudflare_dns:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    name: www
    type: A
    values: [192.0.2.10, 192.0.2.11]
    ttl: 300

- name: Many record sets in one batch, token set once for the action group
  module_defaults:
    group/infra.k3s.cloudflare:
      api_token: "{{ vault_cloudflare_api_token }}"
  infra.k3s.cloudflare_dns:
    zone: example.com
    ttl: 60
    records:
      - {name: k3s, type: A, values: [192.0.2.10, 192.0.2.11]}
      - {name: k3s, type: AAAA, values: ["2001:db8::10"]}
      - {name: "*.apps", type: A, values: [192.0.2.20]}
      - {name: "@", type: MX, values: ["10 mx1.example.net", "20 mx2.example.net"], ttl: 3600}
      - {name: "@", type: TXT, values: ["v=spf1 mx -all"]}
      - {name: "_sip._tcp", type: SRV, values: ["10 5 5060 sip.example.com"]}
      - {name: "@", type: CAA, values: ['0 issue "letsencrypt.org"']}
      - {name: old, type: CNAME, state: absent}

- name: Add one TXT value and leave the others alone
  infra.k3s.cloudflare_dns:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone_id: 023e105f4ecef8ad9ca31a8372d0c353
    zone: example.com
    name: _acme-challenge
    type: TXT
    values: ["{{ challenge }}"]
    exclusive: false

- name: Remove a record set
  infra.k3s.cloudflare_dns:
    api_token: "{{ vault_cloudflare_api_token }}"
    zone: example.com
    name: legacy
    type: A
    state: absent
"""

RETURN = r"""
zone:
  description: The zone the records are in.
  returned: success
  type: dict
  sample: {id: 023e105f4ecef8ad9ca31a8372d0c353, name: example.com}
records:
  description:
    - The records of the managed record sets as they now are (in check mode, as they would be).
    - C(value) is the value as the module compares it (for MX and SRV it includes the priority; a TXT value of
      several strings split elsewhere than at 255 bytes is shown in quoted zone-file form).
    - C(settings) are the record's per-record settings, C(private_routing) (A and AAAA only) as Cloudflare returns it.
  returned: success
  type: list
  elements: dict
  sample:
    - id: 372e67954025e0ba6aaa6d586b9e0b59
      name: www.example.com
      type: A
      value: 192.0.2.10
      content: 192.0.2.10
      ttl: 300
      proxied: false
      comment: null
      tags: []
      settings: {}
      private_routing: null
created:
  description: Records created (same fields as RV(records)). In check mode, the records that would be created, without C(id).
  returned: success
  type: list
  elements: dict
updated:
  description: Records changed in place, as they are after the change (same fields as RV(records)).
  returned: success
  type: list
  elements: dict
deleted:
  description: Records deleted, as they were (same fields as RV(records)).
  returned: success
  type: list
  elements: dict
batch:
  description: How many operations of each kind the batch held (all zero when nothing changed).
  returned: success
  type: dict
  sample: {deletes: 0, patches: 1, puts: 1, posts: 2}
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
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_plan import BATCH_LIMIT_FREE
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import RECORD_TYPES
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_runners import execute, run_dns


def argument_spec():
    record_set = dict(
        name=dict(type="str", required=True),
        type=dict(type="str", required=True, choices=RECORD_TYPES),
        values=dict(type="list", elements="str"),
        ttl=dict(type="int"),
        proxied=dict(type="bool"),
        comment=dict(type="str"),
        tags=dict(type="list", elements="str"),
        priority=dict(type="int"),
        state=dict(type="str", choices=["present", "absent"]),
        exclusive=dict(type="bool"),
    )
    return cloudflare_argument_spec(
        zone=dict(type="str"),
        zone_id=dict(type="str"),
        name=dict(type="str"),
        type=dict(type="str", choices=RECORD_TYPES),
        values=dict(type="list", elements="str"),
        ttl=dict(type="int"),
        proxied=dict(type="bool"),
        comment=dict(type="str"),
        tags=dict(type="list", elements="str"),
        priority=dict(type="int"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        exclusive=dict(type="bool", default=True),
        records=dict(type="list", elements="dict", options=record_set),
        max_batch_size=dict(type="int", default=BATCH_LIMIT_FREE),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[["zone", "zone_id"], ["name", "records"]],
        mutually_exclusive=[["records", "name"], ["records", "type"], ["records", "values"], ["records", "priority"]],
        required_together=[["name", "type"]],
        supports_check_mode=True,
    )
    execute(module, run_dns)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: r2_bucket
short_description: Manage a Cloudflare R2 bucket and its lifecycle rules
version_added: 1.0.0
description:
  - Makes an R2 bucket exist or not, through R2's S3-compatible API (boto3).
  - With O(lifecycle_rules), the bucket's lifecycle rules are made to look as described. They are read
    first and written only when they differ, so a run that changes nothing makes no write request.
  - A bucket that still holds objects is not deleted unless O(force=true).
  - The keys are never shown, not in results, errors or C(-vvv) output.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - infra.k3s.r2
attributes:
  check_mode:
    support: full
    details:
      - Reads the bucket and its rules, and reports what would change without changing it.
  diff_mode:
    support: full
    details:
      - The bucket's existence and its lifecycle rules before and after.
  platform:
    platforms: all
options:
  name:
    description:
      - Name of the bucket (3 to 63 lower case letters, digits and hyphens).
    type: str
    required: true
    aliases: [bucket]
  state:
    description:
      - Whether the bucket should exist.
    type: str
    choices:
      present: The bucket exists, with the lifecycle rules of O(lifecycle_rules) when given.
      absent: The bucket does not exist. A bucket that holds objects is deleted only with O(force=true).
    default: present
  force:
    description:
      - With O(state=absent), delete the bucket's objects (and abort its multipart uploads) first.
      - Without it, a bucket that is not empty makes the task fail and nothing is deleted.
    type: bool
    default: false
  lifecycle_rules:
    description:
      - Lifecycle rules of the bucket, matched to the existing ones by O(lifecycle_rules[].id).
      - Not given, the rules are left alone. An empty list, with O(purge_lifecycle_rules=true), removes them all.
      - A new R2 bucket comes with a rule that aborts unfinished multipart uploads after seven days. With
        O(purge_lifecycle_rules=true) it is removed unless listed; give a rule with O(lifecycle_rules[].abort_multipart_days)
        to keep such a rule.
    type: list
    elements: dict
    suboptions:
      id:
        description: Unique id of the rule.
        type: str
        required: true
      prefix:
        description: Key prefix the rule applies to; empty for the whole bucket.
        type: str
        default: ""
      expiration_days:
        description: Objects are deleted this many days after they were written.
        type: int
      abort_multipart_days:
        description: Multipart uploads not completed this many days after they started are aborted.
        type: int
      enabled:
        description: Whether the rule is in force.
        type: bool
        default: true
  purge_lifecycle_rules:
    description:
      - Remove the bucket's lifecycle rules whose id is not in O(lifecycle_rules).
      - Set to V(false) to add and update rules while leaving others (made elsewhere) alone.
      - Ignored when O(lifecycle_rules) is not given.
      - Removing rules writes the remaining ones (PutBucketLifecycleConfiguration); R2 lists no call that deletes
        a bucket's lifecycle configuration, so removing the last rule is refused before anything is sent.
    type: bool
    default: true
  velero_prefix:
    description:
      - Key prefix of Velero's backup storage location in this bucket (the C(infra.k3s.node_agent) role's
        C(node_agent_prefix)); empty when Velero uses the bucket root.
      - Velero keeps Kopia's repository under C(<velero_prefix>/kopia/). An enabled O(lifecycle_rules[].expiration_days)
        rule whose prefix covers it (or lies inside it) is refused unless O(allow_kopia_expiry=true), because Kopia shares data
        between snapshots, so expiring by age deletes data that later backups still need.
    type: str
    default: ""
  allow_kopia_expiry:
    description:
      - Write expiry rules that cover C(<velero_prefix>/kopia/) anyway (a bucket without a Kopia repository there,
        or when you mean it).
    type: bool
    default: false
notes:
  - The R2 API token needs Admin Read & Write to create and delete buckets and to change lifecycle rules;
    Object Read & Write is enough for Velero itself.
  - Each rule sets at least one of O(lifecycle_rules[].expiration_days) and O(lifecycle_rules[].abort_multipart_days).
    Rules with other actions (transitions to Infrequent Access, expiry at a date) can be kept with
    O(purge_lifecycle_rules=false); they are shown with their raw S3 form under C(unmanaged).
seealso:
  - name: R2 S3 API compatibility
    description: What R2 implements of the S3 API.
    link: https://developers.cloudflare.com/r2/api/s3/api/
  - name: R2 object lifecycles
    description: How R2 applies lifecycle rules.
    link: https://developers.cloudflare.com/r2/buckets/object-lifecycles/
  - name: Backups to R2 with Velero
    description: The infra.k3s.node_agent role, which uses such a bucket as Velero's backup storage location.
    link: https://github.com/infra-k3s/infra.k3s/blob/main/docs/backups.md
"""

EXAMPLES = r"""
- name: A bucket for Velero (prefix k3s); Velero's TTL deletes old backups, R2 only aborts stale uploads
  infra.k3s.r2_bucket:
    account_id: "{{ r2_account_id }}"
    access_key_id: "{{ vault_r2_access_key_id }}"
    secret_access_key: "{{ vault_r2_secret_access_key }}"
    name: velero-backups
    velero_prefix: k3s
    lifecycle_rules:
      - id: abort-multipart
        abort_multipart_days: 7

- name: Keys from R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY, EU jurisdiction, rules left alone
  infra.k3s.r2_bucket:
    endpoint_url: "https://{{ r2_account_id }}.eu.r2.cloudflarestorage.com"
    name: velero-backups-eu

- name: Add one rule, keep the others
  infra.k3s.r2_bucket:
    account_id: "{{ r2_account_id }}"
    name: velero-backups
    purge_lifecycle_rules: false
    lifecycle_rules:
      - id: expire-tmp
        prefix: tmp/
        expiration_days: 1

- name: Delete a bucket and everything in it
  infra.k3s.r2_bucket:
    account_id: "{{ r2_account_id }}"
    name: scratch
    state: absent
    force: true
"""

RETURN = r"""
name:
  description: Name of the bucket.
  returned: always
  type: str
  sample: velero-backups
endpoint_url:
  description: The S3 endpoint used.
  returned: always
  type: str
  sample: https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com
created:
  description: Whether the bucket was created (in check mode, would be).
  returned: O(state=present)
  type: bool
  sample: false
lifecycle_rules:
  description:
    - The bucket's lifecycle rules as they now are (in check mode, as they would be), sorted by id.
    - Rules the module does not manage have only C(id) and C(unmanaged), their raw S3 form.
  returned: success
  type: list
  elements: dict
  sample:
    - id: expire-old-backups
      prefix: backups/
      expiration_days: 60
      abort_multipart_days: null
      enabled: true
deleted_objects:
  description: Number of objects deleted with the bucket (O(force=true)).
  returned: O(state=absent)
  type: int
  sample: 0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.infra.k3s.plugins.module_utils.r2_client import r2_argument_spec
from ansible_collections.infra.k3s.plugins.module_utils.r2_runners import execute, run_bucket


def argument_spec():
    return r2_argument_spec(
        name=dict(type="str", required=True, aliases=["bucket"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
        lifecycle_rules=dict(type="list", elements="dict", options=dict(
            id=dict(type="str", required=True),
            prefix=dict(type="str", default=""),
            expiration_days=dict(type="int"),
            abort_multipart_days=dict(type="int"),
            enabled=dict(type="bool", default=True),
        )),
        purge_lifecycle_rules=dict(type="bool", default=True),
        velero_prefix=dict(type="str", default=""),
        allow_kopia_expiry=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[["account_id", "endpoint_url"]],
        supports_check_mode=True,
    )
    execute(module, run_bucket)


if __name__ == "__main__":
    main()

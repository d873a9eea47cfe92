# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the infra.k3s Cloudflare R2 modules (spec: module_utils/r2_client.py R2_COMMON_ARGS)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  account_id:
    description:
      - Cloudflare account id (32 hexadecimal characters). The endpoint is then
        C(https://<account_id>.r2.cloudflarestorage.com).
      - One of O(account_id) and O(endpoint_url) is required; O(endpoint_url) wins when both are set.
    type: str
  endpoint_url:
    description:
      - S3 endpoint to use instead of the one derived from O(account_id), for example
        C(https://<account_id>.eu.r2.cloudflarestorage.com) for buckets in the EU jurisdiction,
        a mirror, or another S3-compatible store.
    type: str
  region:
    description:
      - Signing region. R2 takes V(auto).
      - Another S3-compatible store may need its own; a region other than V(auto) and V(us-east-1) is also
        sent as the bucket's C(LocationConstraint) when the bucket is created.
    type: str
    default: auto
  access_key_id:
    description:
      - Access Key ID of an R2 API token (R2 > Manage API tokens).
      - If not set, the value of E(R2_ACCESS_KEY_ID) is used, then E(AWS_ACCESS_KEY_ID).
      - Only this key pair is used; AWS profiles, E(AWS_SESSION_TOKEN) and E(AWS_ENDPOINT_URL) are ignored.
      - Never shown in output or error messages.
    type: str
    required: true
  secret_access_key:
    description:
      - Secret Access Key of the same R2 API token.
      - If not set, the value of E(R2_SECRET_ACCESS_KEY) is used, then E(AWS_SECRET_ACCESS_KEY).
      - Never shown in output or error messages.
    type: str
    required: true
  timeout:
    description:
      - Connect and read timeout of each request, in seconds. Failed requests are retried up to five times.
    type: int
    default: 60
requirements:
  - boto3 (on the host that runs the module)
"""

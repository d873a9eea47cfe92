# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the infra.k3s Cloudflare modules (spec: module_utils/cloudflare_client.py CLOUDFLARE_COMMON_ARGS)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - 'Cloudflare API token, sent as C(Authorization: Bearer <token>).'
      - Needs C(Zone:Read) to look a zone up by O(zone) name (not needed with O(zone_id)),
        and C(DNS:Edit) to change records (C(DNS:Read) is enough to read them).
      - If not set, the value of the E(CLOUDFLARE_API_TOKEN) environment variable is used.
      - Only this token is sent. E(CLOUDFLARE_EMAIL), E(CLOUDFLARE_API_KEY) and
        E(CLOUDFLARE_API_USER_SERVICE_KEY), which the SDK would otherwise prefer, are ignored.
    type: str
    required: true
  base_url:
    description:
      - Base URL of Cloudflare's API v4. Change it only to talk to a proxy or a test server.
    type: str
    default: https://api.cloudflare.com/client/v4
  timeout:
    description:
      - Timeout of each HTTP request, in seconds.
    type: float
    default: 30.0
  max_retries:
    description:
      - How many times a request is retried after HTTP 429 (rate limited), HTTP 5xx or a network error.
      - A C(Retry-After) header is honoured (up to 60 seconds; a longer wait fails the task at once),
        otherwise the wait doubles from one second, up to eight.
      - V(0) disables retries.
    type: int
    default: 3
requirements:
  - cloudflare >= 4.0, < 6 (the Cloudflare Python SDK, on the host that runs the module)
"""

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The infra.k3s.cloudflare_tunnel_token filter (documentation: cloudflare_tunnel_token.yml).

The logic and its unit tests live in module_utils/cloudflare_tunnel.py; it never raises, so no error message can
carry the token."""

from __future__ import annotations

from ansible_collections.infra.k3s.plugins.module_utils import cloudflare_tunnel


def cloudflare_tunnel_token(token):
    return cloudflare_tunnel.token_info(token)


class FilterModule(object):
    """infra.k3s.cloudflare_tunnel_token"""

    def filters(self):
        return {"cloudflare_tunnel_token": cloudflare_tunnel_token}

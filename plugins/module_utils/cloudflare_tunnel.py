# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What infra.k3s.ingress reads of a Cloudflare Tunnel token (plain data, unit-tested).

A tunnel token is standard base64 of a JSON object ``{"a": account tag, "s": secret, "t": tunnel UUID}``
(cloudflare/cloudflared 2026.8.2: connection/connection.go ``TunnelToken``; cmd/cloudflared/tunnel/subcommands.go
``ParseToken()``, base64.StdEncoding then json.Unmarshal into a uuid.UUID). The tunnel's UUID names the CNAME
target ``<UUID>.cfargotunnel.com``. Nothing here returns or repeats the token or its secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def token_info(token):
    """Return ``{"valid": bool, "tunnel_id": str, "reason": str}``; the reason never quotes the token."""
    def bad(reason):
        return {"valid": False, "tunnel_id": "", "reason": reason}

    if not isinstance(token, str) or not token.strip():
        return bad("the tunnel token is empty")
    text = token.strip()
    if any(c.isspace() for c in text):
        return bad("the tunnel token has white space inside (one line, as the dashboard shows it)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return bad("the tunnel token is not standard base64 (cloudflared ParseToken uses base64.StdEncoding)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return bad("the tunnel token does not decode to JSON")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k) for k in ("a", "s", "t")):
        return bad("the tunnel token lacks its account tag (a), secret (s) or tunnel id (t)")
    tunnel_id = data["t"].lower()
    if not _UUID.match(tunnel_id):
        return bad("the tunnel id (t) in the token is not a UUID")
    return {"valid": True, "tunnel_id": tunnel_id, "reason": ""}

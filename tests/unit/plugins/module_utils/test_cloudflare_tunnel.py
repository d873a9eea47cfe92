"""Unit tests of plugins/module_utils/cloudflare_tunnel.py: what the ingress role reads of a tunnel token."""
from __future__ import annotations

import base64
import json

import pytest

from support.module_utils import load_module_utils

cloudflare_tunnel = load_module_utils("cloudflare_tunnel")

TUNNEL_ID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
SECRET = base64.b64encode(b"tunnel-secret-bytes-0123456789ab").decode()


def token(**fields):
    data = {"a": "0123456789abcdef0123456789abcdef", "s": SECRET, "t": TUNNEL_ID}
    data.update(fields)
    return base64.b64encode(json.dumps({k: v for k, v in data.items() if v is not None}).encode()).decode()


def test_a_token_gives_its_tunnel_id():
    assert cloudflare_tunnel.token_info(token()) == {"valid": True, "tunnel_id": TUNNEL_ID, "reason": ""}
    assert cloudflare_tunnel.token_info(token(t=TUNNEL_ID.upper()))["tunnel_id"] == TUNNEL_ID
    assert cloudflare_tunnel.token_info(" " + token() + "\n")["valid"]  # as read from a vault file


@pytest.mark.parametrize("value,words", [
    ("", "empty"),
    (None, "empty"),
    ("abc def", "white space"),
    ("not*base64", "not standard base64"),
    (base64.b64encode(b"\xff\xfe").decode(), "JSON"),
    (base64.b64encode(b"[1, 2]").decode(), "lacks"),
    (token(s=None), "lacks"),
    (token(t="tunnel-1"), "not a UUID"),
])
def test_bad_tokens_are_named_without_repeating_them(value, words):
    info = cloudflare_tunnel.token_info(value)
    assert not info["valid"] and words in info["reason"] and info["tunnel_id"] == ""
    if value:
        assert value.strip() not in info["reason"] and SECRET not in info["reason"]

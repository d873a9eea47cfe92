"""The Cloudflare API stand-in (tests/standins/cloudflare/api.py) is strict where Cloudflare's schema is.

Each behaviour is checked with plain HTTP requests (httpx), the shapes the schema allows and the ones it
does not; the schema is cloudflare-python's generated types (src/cloudflare/types/dns/, cited beside
each behaviour in the server).
"""
from __future__ import annotations

import httpx
import pytest

from standins.cloudflare import DEFAULT_TOKEN, CloudflareAPIServer

ZONE = "example.com"
AUTH = {"Authorization": "Bearer " + DEFAULT_TOKEN}


@pytest.fixture(scope="module")
def server():
    with CloudflareAPIServer(zones=(ZONE,)) as srv:
        yield srv


@pytest.fixture
def api(server):
    zone_id = server.zone_id(ZONE)
    with server.lock:
        server.records[zone_id].clear()

    def call(method, path="", **kwargs):
        response = httpx.request(method, "%s/zones/%s/dns_records%s" % (server.base_url, zone_id, path), headers=AUTH,
                                 timeout=10, **kwargs)
        return response.status_code, response.json()

    return call


def test_batch_patch_items_need_name_ttl_and_type(api, server):
    record = server.add_record(ZONE, "www", "A", "192.0.2.1", ttl=300)
    for missing in ("name", "ttl", "type"):
        item = {"id": record["id"], "name": "www.example.com", "type": "A", "ttl": 300, "proxied": True}
        del item[missing]
        status, body = api("POST", "/batch", json={"patches": [item]})
        assert status == 400 and "%s is required" % missing in body["errors"][0]["message"], body
    status, body = api("PATCH", "/" + record["id"], json={"comment": "x"})
    assert status == 400, body
    assert server.get_records(ZONE) == [record]
    status, body = api("POST", "/batch", json={"patches": [{"id": record["id"], "name": "www.example.com", "type": "A",
                                                            "ttl": 300, "comment": "x"}]})
    assert status == 200 and body["result"]["patches"][0]["comment"] == "x" and body["result"]["patches"][0]["content"] == "192.0.2.1"


@pytest.mark.parametrize("rtype,name,content,data", [
    ("SRV", "_sip._tcp", "10 5 5060 sip.example.com", {"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.com"}),
    ("CAA", "@", '0 issue "letsencrypt.org"', {"flags": 0, "tag": "issue", "value": "letsencrypt.org"}),
])
def test_srv_and_caa_only_through_data(api, rtype, name, content, data):
    status, body = api("POST", json={"name": name, "type": rtype, "ttl": 1, "content": content})
    assert status == 400 and "through data" in body["errors"][0]["message"], body
    status, body = api("POST", "/batch", json={"posts": [{"name": name, "type": rtype, "ttl": 1, "content": content}]})
    assert status == 400, body
    status, body = api("POST", json={"name": name, "type": rtype, "ttl": 1, "data": data})
    assert status == 200 and body["result"]["data"] == data, body


@pytest.mark.parametrize("content", ['"a" "b"', '"v=spf1 " "-all"', "v=spf1 -all", '"one string"'])
def test_txt_is_stored_as_sent(api, content):
    status, body = api("POST", json={"name": "txt", "type": "TXT", "ttl": 1, "content": content})
    assert status == 200 and body["result"]["content"] == content, body


def test_txt_strings_over_255_bytes_are_split(api):
    status, body = api("POST", json={"name": "txt", "type": "TXT", "ttl": 1, "content": '"short" "%s"' % ("x" * 300)})
    assert status == 200 and body["result"]["content"] == '"short" "%s" "%s"' % ("x" * 255, "x" * 45), body


def test_settings_and_private_routing_are_stored_and_returned(api, server):
    status, body = api("POST", json={"name": "www", "type": "A", "ttl": 1, "content": "192.0.2.1", "proxied": True,
                                     "settings": {"ipv4_only": True}, "private_routing": True})
    assert status == 200, body
    record = body["result"]
    assert record["settings"] == {"ipv4_only": True} and record["private_routing"] is True
    (listed,) = api("GET", params={"name": "www.example.com"})[1]["result"]
    assert listed["settings"] == {"ipv4_only": True} and listed["private_routing"] is True
    # a PATCH keeps what it does not name; a PUT replaces the whole record
    status, body = api("POST", "/batch", json={"patches": [{"id": record["id"], "name": "www", "type": "A", "ttl": 1,
                                                            "comment": "c"}]})
    assert body["result"]["patches"][0]["settings"] == {"ipv4_only": True}, body
    status, body = api("POST", "/batch", json={"puts": [{"id": record["id"], "name": "www", "type": "A", "ttl": 1,
                                                         "content": "192.0.2.2"}]})
    put = body["result"]["puts"][0]
    assert put["settings"] == {} and "private_routing" not in put and put["comment"] is None, body
    # flatten_cname is a CNAME setting only; private_routing an A/AAAA field only
    status, body = api("POST", json={"name": "c", "type": "CNAME", "ttl": 1, "content": "x.example.net",
                                     "settings": {"flatten_cname": True}})
    assert status == 200 and body["result"]["settings"] == {"flatten_cname": True}, body
    assert api("POST", json={"name": "d", "type": "A", "ttl": 1, "content": "192.0.2.3",
                             "settings": {"flatten_cname": True}})[0] == 400
    assert api("POST", json={"name": "e", "type": "CNAME", "ttl": 1, "content": "x.example.net",
                             "private_routing": True})[0] == 400


@pytest.mark.parametrize("tag,ok", [("team:web", True), ("Owner_1-x:a b", True), ("nocolon", False),
                                    ("bad name:x", False), ("team:two\nlines", False)])
def test_tags_are_name_value(api, tag, ok):
    status, body = api("POST", json={"name": "t", "type": "A", "ttl": 1, "content": "192.0.2.1", "tags": [tag]})
    assert (status == 200) is ok, body

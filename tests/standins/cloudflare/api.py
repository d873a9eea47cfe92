"""A small Cloudflare API v4 server for tests: real HTTP on loopback, in a thread.

It speaks the parts of https://api.cloudflare.com/client/v4 that the infra.k3s Cloudflare
modules and the cloudflare Python SDK (4.x, 5.x) use, with Cloudflare's envelope
``{"success", "errors", "messages", "result", "result_info"}``:

- ``GET /zones`` (``name`` filter, ``page``/``per_page`` 5-50) and ``GET /zones/{zone_id}``;
- ``GET /zones/{zone_id}/dns_records`` with the filters the SDK sends (``name``, ``name.exact``,
  ``name.contains``, ``name.startswith``, ``name.endswith``, ``type``, ``content[.op]``, ``proxied``,
  ``match``, ``order``, ``direction``) and pagination (``page``, ``per_page`` 1-5,000,000, default 100);
- ``POST``/``GET``/``PUT``/``PATCH``/``DELETE`` of single records;
- ``POST /zones/{zone_id}/dns_records/batch``: deletes, patches, puts, posts, validated in that order
  against a copy of the zone and applied only if all of them are valid (one transaction). Like
  Cloudflare's edge, which propagates each record change on its own, the changes of a committed batch
  become visible one after the other (``op_delay`` seconds apart), so a delete-then-create of a name
  can be seen as a moment with no record;
- Cloudflare's normalisation: names in lower case without the trailing dot (relative names and ``@`` are
  completed with the zone), IPv6 compressed, CNAME/MX/NS targets in lower case; TXT content is kept as
  sent, except that a character-string longer than 255 bytes is split;
- strict where Cloudflare's schema is strict (cloudflare-python, the ``*RecordParam`` types under
  ``src/cloudflare/types/dns/`` and ``batch_patch_param.py``/``batch_put_param.py``: ``name``, ``ttl``
  and ``type`` are ``Required`` in every write, PATCH too; ``SRVRecordParam``/``CAARecordParam`` have
  ``data`` and no ``content``; ``settings`` per type; ``private_routing`` on A/AAAA only): see ``_build``;
- Cloudflare's errors: 81058 identical record, 81053/81054 CNAME conflicts, 81044 record not found,
  9005/9006 bad address, 9004 not proxiable, 9021 TTL, 7003/7000 unknown zone id, 1000 invalid token (401),
  10000 missing permission (403), 9109 zones without Zone:Read (403), 9103 unknown X-Auth-Key/Email,
  971 rate limited (429 with Retry-After).

Tokens carry permissions (``zone:read``, ``dns:read``, ``dns:edit``) and optionally the zones they
reach. Every request is logged (method, path, query, JSON body, which auth headers came, status),
so tests can count writes. Faults are injected with :meth:`CloudflareAPIServer.inject` (a status, a
lost answer after applying, a dropped connection) and :meth:`CloudflareAPIServer.rate_limit`
(429 + Retry-After, counting clients that come back before Retry-After has passed).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_PREFIX = "/client/v4"
DEFAULT_TOKEN = "cf-test-token"
ALL_PERMISSIONS = frozenset(["zone:read", "dns:read", "dns:edit"])
RECORD_TYPES = frozenset(["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS"])
PROXIABLE = frozenset(["A", "AAAA", "CNAME"])
CAA_TAGS = frozenset(["issue", "issuewild", "iodef"])
# Per-record settings (cloudflare-python types/dns/*_record_param.py, class Settings): every type has
# ipv4_only and ipv6_only; CNAMERecordParam's Settings adds flatten_cname.
SETTINGS = frozenset(["ipv4_only", "ipv6_only"])
SETTINGS_BY_TYPE = {"CNAME": SETTINGS | frozenset(["flatten_cname"])}
# private_routing is a field of ARecordParam and AAAARecordParam only (cloudflare 5.x).
PRIVATE_ROUTING_TYPES = frozenset(["A", "AAAA"])
# Types whose *RecordParam has `data` and no `content` (srv_record_param.py, caa_record_param.py).
DATA_ONLY = frozenset(["SRV", "CAA"])
# Tags are name:value; names are letters, digits, - and _; values, like comments, have no line breaks
# (developers.cloudflare.com/dns/manage-dns-records/reference/record-attributes/).
TAG_RE = re.compile(r"^[A-Za-z0-9_-]+:[^\r\n]*$")


class APIError(Exception):
    def __init__(self, status, code, message, extra_errors=None, headers=None):
        super().__init__(message)
        self.status = status
        self.errors = [{"code": code, "message": message}] + list(extra_errors or [])
        self.headers = headers or {}


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hostname(value):
    text = str(value or "").strip().rstrip(".").lower()
    if not text or not re.match(r"^[a-z0-9_*]([a-z0-9_.*-]*[a-z0-9_])?$", text) or ".." in text:
        return None
    return text


def _txt_strings(content):
    text = str(content)
    stripped = text.strip()
    if not stripped.startswith('"'):
        return None
    out, pos = [], 0
    while pos < len(stripped):
        if stripped[pos].isspace():
            pos += 1
            continue
        if stripped[pos] != '"':
            return None
        pos += 1
        buf = []
        while True:
            if pos >= len(stripped):
                return None
            char = stripped[pos]
            if char == "\\" and pos + 1 < len(stripped):
                buf.append(stripped[pos:pos + 2])
                pos += 2
                continue
            if char == '"':
                pos += 1
                break
            buf.append(char)
            pos += 1
        out.append("".join(buf))
    return out


def _split255(escaped):
    """Split escaped text into chunks of at most 255 bytes of unescaped data, not inside an escape."""
    chunks, current, size = [], "", 0
    pos = 0
    while pos < len(escaped):
        piece = escaped[pos:pos + 2] if escaped[pos] == "\\" else escaped[pos]
        piece_size = 1 if piece.startswith("\\") else len(piece.encode("utf-8"))
        if size + piece_size > 255 and current:
            chunks.append(current)
            current, size = "", 0
        current += piece
        size += piece_size
        pos += len(piece)
    chunks.append(current)
    return chunks


def canonical_txt(content):
    """The TXT content Cloudflare stores: what was sent, verbatim, unless a character-string is over 255 bytes.

    cloudflare-python ``types/dns/txt_record_param.py`` ``TXTRecordParam.content``: "The content must
    consist of quoted "character strings" (RFC 1035), each with a length of up to 255 bytes. Strings
    exceeding this allowed maximum length are automatically split." So ``"a" "b"`` stays two strings and
    unquoted short text stays unquoted; only a string over 255 bytes is split (and then all are quoted).
    """
    text = str(content)
    strings = _txt_strings(text)
    if strings is None:
        strings = [text.replace("\\", "\\\\").replace('"', '\\"')]
    parts = []
    for string in strings:
        parts.extend(_split255(string))
    if len(parts) == len(strings):
        return text  # nothing was over 255 bytes: kept as sent
    return " ".join('"%s"' % part for part in parts)


class CloudflareAPIServer(object):
    """Use as a context manager; ``base_url`` is what to give the SDK / the modules."""

    def __init__(self, zones=("example.com",), tokens=None, op_delay=0.0, batch_limit=200, ttl_min=60, per_page_max=5000000):
        self.lock = threading.RLock()
        self.zones = {}
        self.records = {}
        for zone in zones:
            self.add_zone(zone)
        self.tokens = {DEFAULT_TOKEN: {"permissions": set(ALL_PERMISSIONS), "zones": None}} if tokens is None else {
            token: {"permissions": set(spec.get("permissions", ALL_PERMISSIONS)), "zones": spec.get("zones")}
            for token, spec in tokens.items()}
        self.op_delay = op_delay
        self.batch_limit = batch_limit
        self.ttl_min = ttl_min
        self.per_page_max = per_page_max
        self.log = []
        self._faults = []
        self._throttle = {"remaining": 0, "retry_after": 0, "blocked_until": 0.0}
        self.early_retries = 0
        self._httpd = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self):
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="cloudflare-api", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base_url(self):
        return "http://127.0.0.1:%d%s" % (self.port, API_PREFIX)

    # -- state helpers for tests ---------------------------------------------------------

    def add_zone(self, name, plan="free"):
        zone_id = uuid.uuid5(uuid.NAMESPACE_DNS, name).hex
        with self.lock:
            self.zones[zone_id] = {
                "id": zone_id, "name": name, "status": "active", "paused": False, "type": "full",
                "development_mode": 0, "name_servers": ["ns1.example.net", "ns2.example.net"],
                "original_name_servers": None, "original_registrar": None, "original_dnshost": None,
                "created_on": _now(), "modified_on": _now(), "activated_on": _now(),
                "account": {"id": "0123456789abcdef0123456789abcdef", "name": "Test account"},
                "owner": {"id": None, "type": "user", "email": None},
                "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
                "plan": {"id": plan, "name": plan.title() + " Website", "legacy_id": plan},
                "meta": {"step": 4, "phishing_detected": False},
            }
            self.records[zone_id] = {}
        return zone_id

    def zone_id(self, name):
        for zone in self.zones.values():
            if zone["name"] == name:
                return zone["id"]
        raise KeyError(name)

    def add_record(self, zone, name, rtype, content=None, ttl=1, proxied=False, comment=None, tags=None, priority=None, data=None,
                   settings=None, private_routing=None):
        """Create a record directly (no request logged); returns it."""
        zone_id = zone if zone in self.zones else self.zone_id(zone)
        body = {"name": name, "type": rtype, "ttl": ttl, "proxied": proxied}
        for key, value in (("content", content), ("comment", comment), ("tags", tags), ("priority", priority), ("data", data),
                           ("settings", settings), ("private_routing", private_routing)):
            if value is not None:
                body[key] = value
        with self.lock:
            state = self.records[zone_id]
            record = self._build(zone_id, body, None, full=True)
            self._check_conflicts(zone_id, state, record)
            state[record["id"]] = record
            return copy.deepcopy(record)

    def get_records(self, zone, name=None, rtype=None):
        zone_id = zone if zone in self.zones else self.zone_id(zone)
        with self.lock:
            out = [copy.deepcopy(rec) for rec in self.records[zone_id].values()
                   if (name is None or rec["name"] == name) and (rtype is None or rec["type"] == rtype)]
        return sorted(out, key=lambda rec: (rec["name"], rec["type"], rec["content"]))

    def mark(self):
        """An index into the request log, to count requests made after it."""
        with self.lock:
            return len(self.log)

    def requests(self, since=0, method=None, path_contains=None):
        with self.lock:
            entries = list(self.log[since:])
        return [entry for entry in entries if (method is None or entry["method"] == method)
                and (path_contains is None or path_contains in entry["path"])]

    def writes(self, since=0):
        return [entry for entry in self.requests(since) if entry["method"] != "GET"]

    def inject(self, status=500, count=1, method=None, path_contains=None, retry_after=None, apply_first=False,
               drop=False, code=None, message=None):
        """The next `count` matching requests fail: with `status` (after being applied if apply_first),
        or by closing the connection without an answer (drop, after being applied if apply_first)."""
        with self.lock:
            self._faults.append({
                "status": status, "count": count, "method": method, "path_contains": path_contains,
                "retry_after": retry_after, "apply_first": apply_first, "drop": drop,
                "code": code if code is not None else (971 if status == 429 else 10001 if status >= 500 else 1000),
                "message": message or ("Please wait and consider throttling your request speed" if status == 429
                                       else "Internal server error" if status >= 500 else "Injected error"),
            })

    def rate_limit(self, count, retry_after=1):
        """Answer the next `count` requests 429 with Retry-After; a request that comes back before
        Retry-After has passed is answered 429 again and counted in early_retries."""
        with self.lock:
            self._throttle = {"remaining": count, "retry_after": retry_after, "blocked_until": 0.0}

    # -- request handling ----------------------------------------------------------------

    def _take_fault(self, method, path):
        with self.lock:
            for fault in self._faults:
                if fault["count"] <= 0:
                    continue
                if fault["method"] and fault["method"] != method:
                    continue
                if fault["path_contains"] and fault["path_contains"] not in path:
                    continue
                fault["count"] -= 1
                return dict(fault)
        return None

    def _check_throttle(self):
        with self.lock:
            throttle = self._throttle
            now = time.monotonic()
            if now < throttle["blocked_until"]:
                self.early_retries += 1
                raise APIError(429, 971, "Please wait and consider throttling your request speed",
                               headers={"Retry-After": str(int(max(1, throttle["retry_after"])))})
            if throttle["remaining"] > 0:
                throttle["remaining"] -= 1
                throttle["blocked_until"] = now + throttle["retry_after"]
                raise APIError(429, 971, "Please wait and consider throttling your request speed",
                               headers={"Retry-After": str(throttle["retry_after"])})

    def _authenticate(self, headers, needed, zone_id=None):
        if headers.get("X-Auth-Email") or headers.get("X-Auth-Key"):
            raise APIError(403, 9103, "Unknown X-Auth-Key or X-Auth-Email")
        auth = headers.get("Authorization")
        if not auth:
            raise APIError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise APIError(400, 6003, "Invalid request headers", [{"code": 6111, "message": "Invalid format for Authorization header"}])
        token = self.tokens.get(auth[7:].strip())
        if token is None:
            raise APIError(401, 1000, "Invalid API Token")
        if zone_id is not None:
            if zone_id not in self.zones or (token["zones"] is not None and zone_id not in token["zones"]):
                raise APIError(400, 7003, "Could not route to /zones/%s, perhaps your object identifier is invalid?" % zone_id,
                               [{"code": 7000, "message": "No route for that URI"}])
        if needed and needed not in token["permissions"]:
            if needed == "dns:read" and "dns:edit" in token["permissions"]:
                return token
            if needed == "zone:read":
                raise APIError(403, 9109, "Unauthorized to access requested resource")
            raise APIError(403, 10000, "Authentication error")
        return token

    def handle(self, method, raw_path, headers, body_bytes):
        """Returns (status, headers, body dict or None for a dropped connection)."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            body = json.loads(body_bytes) if body_bytes else None
        except ValueError:
            body = "<invalid json>"
        entry = {
            "method": method, "path": path, "query": {k: v[-1] for k, v in query.items()}, "body": body,
            "bearer": (headers.get("Authorization") or "")[7:] if (headers.get("Authorization") or "").startswith("Bearer ") else None,
            "x_auth_email": headers.get("X-Auth-Email"), "x_auth_key": headers.get("X-Auth-Key"),
            "sdk_version": headers.get("X-Stainless-Package-Version"),
            "time": time.time(), "status": None, "error_codes": [],
        }
        with self.lock:
            self.log.append(entry)
        status, extra_headers, payload = self._dispatch(method, path, query, headers, body)
        entry["status"] = status
        entry["error_codes"] = [err.get("code") for err in (payload or {}).get("errors") or []]
        return status, extra_headers, payload

    def _dispatch(self, method, path, query, headers, body):
        fault = None
        try:
            self._check_throttle()
            if not path.startswith(API_PREFIX + "/"):
                raise APIError(404, 7000, "No route for that URI")
            route = path[len(API_PREFIX):].rstrip("/")
            fault = self._take_fault(method, route)
            if fault and not fault["apply_first"]:
                if fault["drop"]:
                    return 0, {}, None
                raise APIError(fault["status"], fault["code"], fault["message"],
                               headers={"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else None)
            status, result, result_info = self._route(method, route, query, headers, body)
            if fault:
                if fault["drop"]:
                    return 0, {}, None
                raise APIError(fault["status"], fault["code"], fault["message"],
                               headers={"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else None)
            envelope = {"success": True, "errors": [], "messages": [], "result": result}
            if result_info is not None:
                envelope["result_info"] = result_info
            return status, {}, envelope
        except APIError as exc:
            return exc.status, exc.headers, {"success": False, "errors": exc.errors, "messages": [], "result": None}

    def _route(self, method, route, query, headers, body):
        segments = route.strip("/").split("/")
        if segments == ["zones"] and method == "GET":
            self._authenticate(headers, "zone:read")
            return self._list_zones(query, headers)
        if len(segments) >= 2 and segments[0] == "zones":
            zone_id = segments[1]
            rest = segments[2:]
            if not rest and method == "GET":
                self._authenticate(headers, "zone:read", zone_id)
                return 200, copy.deepcopy(self.zones[zone_id]), None
            if rest[:1] == ["dns_records"]:
                if len(rest) == 1 and method == "GET":
                    self._authenticate(headers, "dns:read", zone_id)
                    return self._list_records(zone_id, query)
                if len(rest) == 1 and method == "POST":
                    self._authenticate(headers, "dns:edit", zone_id)
                    return 200, self._write(zone_id, [("post", self._body(body))]), None
                if rest[1:] == ["batch"] and method == "POST":
                    self._authenticate(headers, "dns:edit", zone_id)
                    return 200, self._batch(zone_id, self._body(body)), None
                if len(rest) == 2:
                    record_id = rest[1]
                    if method == "GET":
                        self._authenticate(headers, "dns:read", zone_id)
                        with self.lock:
                            if record_id not in self.records[zone_id]:
                                raise APIError(404, 81044, "Record does not exist.")
                            return 200, copy.deepcopy(self.records[zone_id][record_id]), None
                    kind = {"PUT": "put", "PATCH": "patch", "DELETE": "delete"}.get(method)
                    if kind:
                        self._authenticate(headers, "dns:edit", zone_id)
                        op_body = dict(self._body(body) if kind != "delete" else {}, id=record_id)
                        result = self._write(zone_id, [(kind, op_body)], single=True)
                        return 200, ({"id": record_id} if kind == "delete" else result), None
        raise APIError(404, 7000, "No route for that URI")

    @staticmethod
    def _body(body):
        if body == "<invalid json>":
            raise APIError(400, 6007, "Malformed JSON in request body")
        if not isinstance(body, dict):
            raise APIError(400, 6007, "Malformed JSON in request body")
        return body

    # -- zones ---------------------------------------------------------------------------

    def _list_zones(self, query, headers):
        token = self.tokens.get((headers.get("Authorization") or "")[7:].strip())
        page, per_page = _paging(query, default=20, low=5, high=50)
        with self.lock:
            zones = [z for z in self.zones.values() if token["zones"] is None or z["id"] in token["zones"]]
        name = _q(query, "name")
        if name is not None:
            op, operand = name.split(":", 1) if ":" in name else ("equal", name)
            operand = operand.lower()
            tests = {
                "equal": lambda z: z["name"] == operand, "not_equal": lambda z: z["name"] != operand,
                "contains": lambda z: operand in z["name"], "starts_with": lambda z: z["name"].startswith(operand),
                "ends_with": lambda z: z["name"].endswith(operand),
            }
            if op not in tests:
                raise APIError(400, 1001, "Invalid zone name filter")
            zones = [z for z in zones if tests[op](z)]
        status = _q(query, "status")
        if status:
            zones = [z for z in zones if z["status"] == status]
        zones.sort(key=lambda z: z["name"], reverse=_q(query, "direction") == "desc")
        return 200, copy.deepcopy(zones[(page - 1) * per_page: page * per_page]), _result_info(page, per_page, len(zones))

    # -- records -------------------------------------------------------------------------

    def _list_records(self, zone_id, query):
        page, per_page = _paging(query, default=100, low=1, high=self.per_page_max)
        with self.lock:
            records = [copy.deepcopy(rec) for rec in self.records[zone_id].values()]
        filters = []
        for field in ("name", "content", "comment"):
            for key, value in query.items():
                if key == field or key.startswith(field + "."):
                    op = key.partition(".")[2] or "exact"
                    filters.append(_string_filter(field, op, value[-1]))
        rtype = _q(query, "type")
        if rtype:
            filters.append(lambda rec: rec["type"] == rtype.upper())
        proxied = _q(query, "proxied")
        if proxied in ("true", "false"):
            filters.append(lambda rec: bool(rec.get("proxied")) == (proxied == "true"))
        if filters:
            if _q(query, "match") == "any":
                records = [rec for rec in records if any(f(rec) for f in filters)]
            else:
                records = [rec for rec in records if all(f(rec) for f in filters)]
        order = _q(query, "order") or "type"
        if order not in ("type", "name", "content", "ttl", "proxied"):
            raise APIError(400, 1001, "Invalid order")
        records.sort(key=lambda rec: (rec.get(order), rec["name"], rec["type"], rec["content"], rec["id"]),
                     reverse=_q(query, "direction") == "desc")
        total = len(records)
        return 200, records[(page - 1) * per_page: page * per_page], _result_info(page, per_page, total)

    def _build(self, zone_id, body, existing, full):
        """A record from a request body: full (POST/PUT: the record is replaced whole, so what the body
        leaves out is gone) or merged into existing (PATCH)."""
        zone_name = self.zones[zone_id]["name"]
        record = copy.deepcopy(existing) if existing is not None else {}
        # name, ttl and type are Required in every write, PATCH included: cloudflare-python
        # types/dns/a_record_param.py ARecordParam (and every other *RecordParam) marks them
        # Required[...], and batch_patch_param.py / batch_put_param.py / record_edit_params.py build
        # on those (cloudflare 5.x; on the `next` branch of 4.3.1 already).
        for key in ("name", "ttl", "type"):
            if body.get(key) is None:
                raise APIError(400, 9000 if key != "ttl" else 9021, "DNS record %s is required" % key)
        if full:
            keep_id = record.get("id")
            keep_created = record.get("created_on")
            record = {"id": keep_id or uuid.uuid4().hex, "created_on": keep_created or _now()}
        rtype = str(body.get("type", record.get("type", ""))).upper()
        if rtype not in RECORD_TYPES:
            raise APIError(400, 9000, "Invalid DNS record type")
        if existing is not None and body.get("type") and rtype != existing["type"] and not full:
            raise APIError(400, 9000, "DNS record type cannot be changed with PATCH")
        record["type"] = rtype
        name = body.get("name", record.get("name"))
        host = "@" if name == "@" else _hostname(name)
        if host is None:
            raise APIError(400, 1004, "DNS name is invalid")
        if host == "@" or host == zone_name:
            host = zone_name
        elif not host.endswith("." + zone_name):
            host = host + "." + zone_name
        record["name"] = host
        ttl = body.get("ttl", record.get("ttl", 1))
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            raise APIError(400, 9021, "Invalid TTL. Must be between %d and 86400 seconds, or 1 for Automatic." % self.ttl_min)
        if ttl != 1 and not self.ttl_min <= ttl <= 86400:
            raise APIError(400, 9021, "Invalid TTL. Must be between %d and 86400 seconds, or 1 for Automatic." % self.ttl_min)
        proxied = bool(body.get("proxied", record.get("proxied", False)))
        if proxied and rtype not in PROXIABLE:
            raise APIError(400, 9004, "This record type cannot be proxied.")
        record["proxiable"] = rtype in PROXIABLE
        record["proxied"] = proxied
        record["ttl"] = 1 if proxied else ttl
        if "comment" in body or full:
            comment = body.get("comment")
            if comment is not None and len(str(comment)) > 100:
                raise APIError(400, 9102, "DNS record comment is too long (100 characters at most)")
            if (comment or None) != record.get("comment"):
                record["comment_modified_on"] = _now()
            record["comment"] = comment or None
            if not comment:
                record.pop("comment_modified_on", None)
        record.setdefault("comment", None)
        if "tags" in body or full:
            tags = body.get("tags") or []
            for tag in tags:
                if not isinstance(tag, str) or not TAG_RE.match(tag):
                    raise APIError(400, 1004, "DNS record tags must look like name:value")
            if sorted(tags) != sorted(record.get("tags") or []):
                record["tags_modified_on"] = _now()
            record["tags"] = list(tags)
            if not tags:
                record.pop("tags_modified_on", None)
        record.setdefault("tags", [])
        # settings: stored and returned as sent; a PUT without them leaves none (types/dns/*_record_param.py Settings).
        if "settings" in body or full:
            settings = body.get("settings") or {}
            allowed = SETTINGS_BY_TYPE.get(rtype, SETTINGS)
            if not isinstance(settings, dict) or any(key not in allowed or not isinstance(value, bool)
                                                     for key, value in settings.items()):
                raise APIError(400, 1004, "DNS record settings for %s may hold %s (booleans)" % (rtype, ", ".join(sorted(allowed))))
            record["settings"] = dict(settings)
        record["settings"] = record.get("settings") or {}
        if "private_routing" in body or full:
            private_routing = body.get("private_routing")
            if private_routing is not None and (rtype not in PRIVATE_ROUTING_TYPES or not isinstance(private_routing, bool)):
                raise APIError(400, 1004, "private_routing is a boolean of A and AAAA records")
            record.pop("private_routing", None)
            if private_routing is not None:
                record["private_routing"] = private_routing
        record["meta"] = record.get("meta") or {}
        if rtype in DATA_ONLY and body.get("content") is not None and body.get("data") is None:
            # SRVRecordParam and CAARecordParam have `data` and no `content` (content is only returned).
            raise APIError(400, 9101, "%s records are written through data, not content." % rtype)
        content = body.get("content", None if full else record.get("content"))
        data = body.get("data", None if full else record.get("data"))
        priority = body.get("priority", None if full else record.get("priority"))
        self._set_content(record, rtype, content, data, priority)
        record["modified_on"] = _now()
        return record

    @staticmethod
    def _set_content(record, rtype, content, data, priority):
        record.pop("data", None)
        record.pop("priority", None)
        if rtype in ("SRV", "CAA") and isinstance(data, dict) and data:
            pass
        elif content is None:
            raise APIError(400, 9000, "DNS record content is required")
        if rtype == "A":
            try:
                record["content"] = str(ipaddress.IPv4Address(str(content).strip()))
            except ValueError:
                raise APIError(400, 9005, "Content for A record must be a valid IPv4 address.")
        elif rtype == "AAAA":
            try:
                record["content"] = ipaddress.IPv6Address(str(content).strip()).compressed
            except ValueError:
                raise APIError(400, 9006, "Content for AAAA record must be a valid IPv6 address.")
        elif rtype in ("CNAME", "NS"):
            host = _hostname(content)
            if host is None:
                raise APIError(400, 9007, "Content for %s record is invalid." % rtype)
            record["content"] = host
        elif rtype == "TXT":
            if len(str(content)) > 4096:
                raise APIError(400, 9100, "Content for TXT record is too long.")
            record["content"] = canonical_txt(content)
        elif rtype == "MX":
            host = _hostname(content) if str(content).strip() != "." else "."
            if host is None:
                raise APIError(400, 9007, "Content for MX record is invalid.")
            if priority is None or not 0 <= int(priority) <= 65535:
                raise APIError(400, 9101, "MX record priority is required (0-65535).")
            record["content"] = host
            record["priority"] = int(priority)
        elif rtype == "SRV":
            if not isinstance(data, dict):
                raise APIError(400, 9101, "SRV record data is required.")
            try:
                prio, weight, port = (int(data[key]) for key in ("priority", "weight", "port"))
            except (KeyError, TypeError, ValueError):
                raise APIError(400, 9101, "SRV record data needs priority, weight, port and target.")
            target = _hostname(data.get("target"))
            if target is None or not all(0 <= n <= 65535 for n in (prio, weight, port)):
                raise APIError(400, 9101, "SRV record data is invalid.")
            record["data"] = {"priority": prio, "weight": weight, "port": port, "target": target}
            record["priority"] = prio
            # Cloudflare shows SRV content as weight, port and target (the priority is a field of its own).
            record["content"] = "%d\t%d\t%s" % (weight, port, target)
            if not re.match(r"^_[^.]+\._[^.]+\.", record["name"]):
                raise APIError(400, 9101, "SRV record name must look like _service._proto.name.")
        elif rtype == "CAA":
            if not isinstance(data, dict):
                raise APIError(400, 9101, "CAA record data is required.")
            try:
                flags = int(data.get("flags", 0))
            except (TypeError, ValueError):
                raise APIError(400, 9101, "CAA flags must be a number.")
            tag = str(data.get("tag") or "").lower()
            if tag not in CAA_TAGS or not 0 <= flags <= 255:
                raise APIError(400, 9101, "CAA record data is invalid.")
            value = str(data.get("value") or "")
            record["data"] = {"flags": flags, "tag": tag, "value": value}
            record["content"] = '%d %s "%s"' % (flags, tag, value)

    @staticmethod
    def _identity(record):
        return (record["name"], record["type"], record["content"], record.get("priority"))

    def _check_conflicts(self, zone_id, state, record):
        apex = self.zones[zone_id]["name"]
        for other in state.values():
            if other["id"] == record["id"] or other["name"] != record["name"]:
                continue
            if self._identity(other) == self._identity(record):
                raise APIError(400, 81058, "An identical record already exists.")
            if record["name"] == apex and not (record["type"] == other["type"] == "CNAME"):
                continue  # CNAME flattening: a CNAME at the apex can sit beside other types
            if record["type"] == "CNAME" or other["type"] == "CNAME":
                if record["type"] in PROXIABLE and other["type"] in PROXIABLE:
                    raise APIError(400, 81053, "An A, AAAA, or CNAME record with that host already exists.")
                raise APIError(400, 81054, "A CNAME record with that host already exists.")

    def _apply_op(self, zone_id, state, kind, body):
        if kind == "delete":
            record_id = body.get("id")
            if record_id not in state:
                raise APIError(404, 81044, "Record does not exist.")
            return state.pop(record_id)
        if kind in ("patch", "put"):
            record_id = body.get("id")
            if record_id not in state:
                raise APIError(404, 81044, "Record does not exist.")
            record = self._build(zone_id, body, state[record_id], full=(kind == "put"))
            record["id"] = record_id
        else:
            record = self._build(zone_id, body, None, full=True)
        self._check_conflicts(zone_id, state, record)
        state[record["id"]] = record
        return record

    def _write(self, zone_id, ops, single=True):
        with self.lock:
            work = copy.deepcopy(self.records[zone_id])
            results = [self._apply_op(zone_id, work, kind, body) for kind, body in ops]
            self.records[zone_id] = work
        return copy.deepcopy(results[0]) if single else results

    def _batch(self, zone_id, body):
        groups = []
        for key, kind in (("deletes", "delete"), ("patches", "patch"), ("puts", "put"), ("posts", "post")):
            items = body.get(key) or []
            if not isinstance(items, list):
                raise APIError(400, 1004, "%s must be a list" % key)
            groups.append((key, kind, items))
        total = sum(len(items) for _key, _kind, items in groups)
        if total == 0:
            raise APIError(400, 1004, "The batch is empty")
        if total > self.batch_limit:
            raise APIError(400, 1004, "A batch may hold at most %d changes on this plan (got %d)" % (self.batch_limit, total))
        with self.lock:
            work = copy.deepcopy(self.records[zone_id])
            result = {}
            applied = []
            for key, kind, items in groups:
                out = []
                for index, item in enumerate(items):
                    if not isinstance(item, dict):
                        raise APIError(400, 1004, "%s[%d] must be an object" % (key, index))
                    try:
                        before = copy.deepcopy(work.get(item.get("id"))) if kind != "post" else None
                        record = self._apply_op(zone_id, work, kind, item)
                    except APIError as exc:
                        exc.errors[0]["message"] = "%s[%d]: %s" % (key, index, exc.errors[0]["message"])
                        exc.status = 400
                        raise
                    out.append(copy.deepcopy(record))
                    applied.append((kind, before, copy.deepcopy(record)))
                result[key] = out
            # Committed. Each record change now reaches the edge on its own, in batch order.
            if not self.op_delay:
                self.records[zone_id] = work
                return result
        for kind, _before, record in applied:
            time.sleep(self.op_delay)
            with self.lock:
                live = self.records[zone_id]
                if kind == "delete":
                    live.pop(record["id"], None)
                else:
                    live[record["id"]] = copy.deepcopy(record)
        return result


def _q(query, key):
    values = query.get(key)
    return values[-1] if values else None


def _paging(query, default, low, high):
    try:
        page = int(float(_q(query, "page") or 1))
        per_page = int(float(_q(query, "per_page") or default))
    except ValueError:
        raise APIError(400, 1001, "Invalid page or per_page")
    if page < 1 or not low <= per_page <= high:
        raise APIError(400, 1001, "per_page must be between %d and %d, page at least 1" % (low, high))
    return page, per_page


def _result_info(page, per_page, total):
    pages = (total + per_page - 1) // per_page if total else 0
    count = max(0, min(per_page, total - (page - 1) * per_page))
    return {"page": page, "per_page": per_page, "count": count, "total_count": total, "total_pages": pages}


def _string_filter(field, op, operand):
    operand = operand.lower().rstrip(".") if field == "name" else operand.lower()

    def value(rec):
        return str(rec.get(field) or "").lower()

    ops = {
        "exact": lambda rec: value(rec) == operand,
        "contains": lambda rec: operand in value(rec),
        "startswith": lambda rec: value(rec).startswith(operand),
        "endswith": lambda rec: value(rec).endswith(operand),
        "absent": lambda rec: not rec.get(field),
        "present": lambda rec: bool(rec.get(field)),
    }
    if op not in ops:
        raise APIError(400, 1001, "Invalid %s filter %s" % (field, op))
    return ops[op]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None  # set by CloudflareAPIServer.start

    def log_message(self, *args):  # quiet
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.api.handle(self.command, self.path, self.headers, body)
        if payload is None:  # a lost answer: close without responding
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("CF-Ray", uuid.uuid4().hex[:16] + "-TST")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

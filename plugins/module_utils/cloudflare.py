# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the infra.k3s Cloudflare modules.

Everything the modules do lives here so that they stay thin: the shared argument spec
(deep-copied by each module), building the SDK client, one request wrapper that retries
429/5xx honouring Retry-After, error translation (naming the missing token permission),
normalisation of record names and values the way Cloudflare normalises them, the planner
that turns record sets into one batch, and the run() of each module.

Works with the ``cloudflare`` Python SDK 4.x and 5.x. Requests go through
``with_raw_response`` so both major versions return the same JSON envelope.
"""

from __future__ import annotations

import copy
import email.utils
import ipaddress
import re
import time

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import cloudflare
    HAS_CLOUDFLARE = True
    CLOUDFLARE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    cloudflare = None
    HAS_CLOUDFLARE = False
    CLOUDFLARE_IMPORT_ERROR = exc

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

# Options shared by every Cloudflare module (documented in doc_fragments/cloudflare.py).
# Modules deep-copy this: see cloudflare_argument_spec().
CLOUDFLARE_COMMON_ARGS = dict(
    api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
    base_url=dict(type="str", default=DEFAULT_BASE_URL),
    timeout=dict(type="float", default=30.0),
    max_retries=dict(type="int", default=3),
)

RECORD_TYPES = ["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS"]
PROXIABLE_TYPES = frozenset(["A", "AAAA", "CNAME"])
PRIVATE_ROUTING_TYPES = frozenset(["A", "AAAA"])
PRIORITY_TYPES = frozenset(["MX", "SRV"])
DATA_TYPES = frozenset(["SRV", "CAA"])
CAA_TAGS = frozenset(["issue", "issuewild", "iodef"])
TTL_AUTO = 1
TTL_MIN = 30  # Enterprise zones; other plans start at 60 and Cloudflare says so if lower.
TTL_MAX = 86400
# A TXT character-string holds at most 255 bytes; Cloudflare splits longer ones (cloudflare-python
# src/cloudflare/types/dns/txt_record_param.py, TXTRecordParam.content).
TXT_STRING_MAX = 255
# Tags are `name:value`; names are letters, digits, - and _ (not case-sensitive), values have no line
# breaks (developers.cloudflare.com/dns/manage-dns-records/reference/record-attributes/; the SDK types a
# tag as a plain str: types/dns/record_tags.py RecordTags).
TAG_RE = re.compile(r"^([A-Za-z0-9_-]+):([^\r\n]*)$")
# Changes Cloudflare takes in one batch: 200 on the Free plan, 3,500 on Pro, Business and Enterprise
# (developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/, "Availability and limits").
BATCH_LIMIT_FREE = 200
BATCH_LIMIT_PAID = 3500

# Cloudflare error codes the modules act on.
CODE_IDENTICAL_RECORD = 81058  # "An identical record already exists."
CODE_RECORD_NOT_FOUND = 81044  # "Record does not exist."
CODES_ZONE_NOT_ROUTABLE = frozenset([7003, 7000])

# The longest Retry-After honoured; a longer wait fails the task with a clear message.
MAX_RETRY_AFTER = 60.0
# Records per page when listing: a whole zone normally fits in one request.
LIST_PER_PAGE = 5000
# Up to this many distinct names are read with one filtered list each (one request per name); above it
# the zone is read whole, which is one request for zones of up to LIST_PER_PAGE records.
FILTERED_LIST_MAX_NAMES = 1

PERM_ZONE_READ = "Zone:Read"
PERM_DNS_READ = "DNS:Read"
PERM_DNS_EDIT = "DNS:Edit"


def cloudflare_argument_spec(**extra):
    """A fresh copy of the shared options, merged with a module's own."""
    spec = copy.deepcopy(CLOUDFLARE_COMMON_ARGS)
    spec.update(copy.deepcopy(extra))
    return spec


class CloudflareError(Exception):
    """A failure worth reporting to the user as it is (message is safe to show)."""

    def __init__(self, msg, status=None, codes=None, errors=None, outcome_unknown=False, attempts=1):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.codes = set(codes or [])
        self.errors = errors or []
        # True when an earlier attempt of the same request failed in a way that leaves open
        # whether Cloudflare applied it (5xx, timeout, dropped connection).
        self.outcome_unknown = outcome_unknown
        self.attempts = attempts


class InvalidInput(Exception):
    """Invalid module input, rejected before any request."""


# --------------------------------------------------------------------------------------
# Normalisation: compare what we ask for the way Cloudflare stores it.
# --------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^(\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$")


def _ascii_label(label):
    if not label:
        raise InvalidInput("empty label")
    try:
        label.encode("ascii")
        return label.lower()
    except UnicodeEncodeError:
        try:
            return label.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise InvalidInput("label %r cannot be encoded as IDNA: %s" % (label, exc)) from exc


def normalize_hostname(value, what="hostname"):
    """Lower case, no trailing dot, IDNA labels: how Cloudflare returns names and targets."""
    if value is None:
        raise InvalidInput("%s is missing" % what)
    text = str(value).strip()
    if text == ".":
        return "."
    text = text.rstrip(".")
    if not text:
        raise InvalidInput("%s is empty" % what)
    labels = [_ascii_label(label) for label in text.split(".")]
    for label in labels:
        if not _LABEL_RE.match(label):
            raise InvalidInput("%s %r has an invalid label %r" % (what, value, label))
    result = ".".join(labels)
    if len(result) > 253:
        raise InvalidInput("%s %r is longer than 253 characters" % (what, value))
    return result


def normalize_zone(zone):
    if zone is None:
        return None
    return normalize_hostname(zone, "zone")


def fqdn(name, zone):
    """Turn a record name (relative, @, or FQDN with or without the trailing dot) into the FQDN.

    With a zone name: '@' is the apex, a name equal to the zone or ending in '.<zone>' is taken
    as already complete, a name with a trailing dot must lie in the zone, anything else is
    relative to the zone. Without a zone name (only zone_id given) every name is an FQDN.
    """
    text = str(name).strip()
    if not text:
        raise InvalidInput("record name is empty")
    if zone is None:
        if text == "@":
            raise InvalidInput("name '@' needs the zone name: set zone (zone_id alone does not say which name is the apex)")
        return normalize_hostname(text, "record name")
    if text == "@":
        return zone
    absolute = text.endswith(".")
    norm = normalize_hostname(text, "record name")
    if norm == zone or norm.endswith("." + zone):
        return norm
    if absolute:
        raise InvalidInput("record name %r is not in zone %s" % (name, zone))
    return normalize_hostname(norm + "." + zone, "record name")


def relative_name(name, zone):
    if zone is None:
        return name
    if name == zone:
        return "@"
    if name.endswith("." + zone):
        return name[: -len(zone) - 1]
    return name


def _txt_unescape(text, pos):
    """Parse one quoted character-string starting after its opening quote."""
    out = bytearray()
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == '"':
            return bytes(out).decode("utf-8", "surrogateescape"), pos + 1
        if char == "\\" and pos + 1 < length:
            nxt = text[pos + 1]
            digits = text[pos + 1:pos + 4]
            if len(digits) == 3 and digits.isdigit():
                out.append(int(text[pos + 1:pos + 4]) & 0xFF)
                pos += 4
                continue
            out.extend(nxt.encode("utf-8", "surrogateescape"))
            pos += 2
            continue
        out.extend(char.encode("utf-8", "surrogateescape"))
        pos += 1
    raise ValueError("unterminated quoted string")


def txt_strings(content):
    """The character-strings of TXT content: '"a" "b"' -> ['a', 'b']; unquoted text is one string."""
    text = "" if content is None else str(content)
    stripped = text.strip()
    if not stripped.startswith('"'):
        return [text]
    strings = []
    pos = 0
    length = len(stripped)
    try:
        while pos < length:
            if stripped[pos].isspace():
                pos += 1
                continue
            if stripped[pos] == '"':
                value, pos = _txt_unescape(stripped, pos + 1)
                strings.append(value)
                continue
            # bare word between quoted strings (zone-file style)
            end = pos
            while end < length and not stripped[end].isspace() and stripped[end] != '"':
                end += 1
            strings.append(stripped[pos:end])
            pos = end
    except ValueError:
        return [text]
    return strings


def txt_value(content):
    """What a TXT record says once its strings are joined, as resolvers hand it to SPF/DKIM/ACME."""
    return "".join(txt_strings(content))


def _split_utf8(value, limit=255):
    chunks = []
    current = ""
    size = 0
    for char in value:
        char_size = len(char.encode("utf-8", "surrogateescape"))
        if size + char_size > limit and current:
            chunks.append(current)
            current, size = "", 0
        current += char
        size += char_size
    chunks.append(current)
    return chunks


def txt_wire_strings(content):
    """The character-strings a TXT record is served with: the strings as written ('"a" "b"' is two, text
    that does not start with a quote is one), each longer than 255 bytes split, as Cloudflare stores them
    (cloudflare-python types/dns/txt_record_param.py TXTRecordParam.content: quoted character-strings of up
    to 255 bytes, "Strings exceeding this allowed maximum length are automatically split")."""
    strings = []
    for string in txt_strings(content):
        strings.extend(_split_utf8(string, TXT_STRING_MAX))
    return strings


def _quote_txt(strings):
    return " ".join('"%s"' % string.replace("\\", "\\\\").replace('"', '\\"') for string in strings)


def txt_key(strings):
    """The comparison key of TXT strings: equal keys are equal records on the wire.

    One text that Cloudflare would split the same way (every string but the last exactly 255 bytes) is
    shown as that text; strings split anywhere else ('"v=spf1 " "-all"') are a different record from
    their joined text and are shown quoted. Plain keys never start with a quote and quoted ones always do.
    """
    joined = "".join(strings)
    if list(strings) == _split_utf8(joined, TXT_STRING_MAX) and not joined.startswith('"'):
        return joined
    return _quote_txt(strings)


def txt_content(value):
    """TXT content to send: the strings as the user wrote them, quoted, each split at 255 bytes."""
    return _quote_txt(txt_wire_strings(value))


def _int_field(text, what, low, high):
    try:
        number = int(str(text).strip())
    except (TypeError, ValueError) as exc:
        raise InvalidInput("%s %r is not a number" % (what, text)) from exc
    if not low <= number <= high:
        raise InvalidInput("%s %s is out of range %s-%s" % (what, number, low, high))
    return number


def _caa_parts(text):
    match = re.match(r'^\s*(\d+)\s+([A-Za-z0-9]+)\s+(.*?)\s*$', str(text))
    if not match:
        raise InvalidInput("CAA value %r is not 'flags tag value' (e.g. 0 issue \"letsencrypt.org\")" % (text,))
    flags = _int_field(match.group(1), "CAA flags", 0, 255)
    tag = match.group(2).lower()
    if tag not in CAA_TAGS:
        raise InvalidInput("CAA tag %r is not one of %s" % (tag, ", ".join(sorted(CAA_TAGS))))
    value = match.group(3)
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return flags, tag, value


def _caa_key(flags, tag, value):
    return '%d %s "%s"' % (int(flags), str(tag).lower(), value)


def _srv_key(priority, weight, port, target):
    return "%d %d %d %s" % (int(priority), int(weight), int(port), normalize_hostname(target, "SRV target"))


class DesiredRecord(object):
    """One value of a record set: its comparison key and what to send for it."""

    def __init__(self, key, content=None, data=None, priority=None):
        self.key = key
        self.content = content
        self.data = data
        self.priority = priority

    def payload(self):
        body = {}
        if self.data is not None:
            body["data"] = dict(self.data)
        else:
            body["content"] = self.content
        if self.priority is not None and self.data is None:
            body["priority"] = self.priority
        return body


def desired_record(rtype, value, priority=None):
    """Validate one value given by the user and return its DesiredRecord (raises InvalidInput)."""
    if value is None:
        raise InvalidInput("a %s value is empty" % rtype)
    text = str(value).strip()
    if rtype == "A":
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError as exc:
            raise InvalidInput("A record value %r is not an IPv4 address" % (value,)) from exc
        return DesiredRecord(str(addr), content=str(addr))
    if rtype == "AAAA":
        try:
            addr = ipaddress.IPv6Address(text)
        except ValueError as exc:
            raise InvalidInput("AAAA record value %r is not an IPv6 address" % (value,)) from exc
        return DesiredRecord(addr.compressed, content=addr.compressed)
    if rtype in ("CNAME", "NS"):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            raise InvalidInput("%s record value %r must be a hostname, not an IP address" % (rtype, value))
        host = normalize_hostname(text, "%s target" % rtype)
        return DesiredRecord(host, content=host)
    if rtype == "TXT":
        strings = txt_wire_strings(value)
        if sum(len(string.encode("utf-8", "surrogateescape")) for string in strings) > 4080:
            raise InvalidInput("TXT value is longer than Cloudflare's 4080 characters")
        # Multi-string values ('"a" "b"') are sent as written, not joined.
        return DesiredRecord(txt_key(strings), content=_quote_txt(strings))
    if rtype == "MX":
        fields = text.split()
        if len(fields) == 2:
            pref = _int_field(fields[0], "MX preference", 0, 65535)
            host = fields[1]
        elif len(fields) == 1:
            if priority is None:
                raise InvalidInput("MX value %r needs a preference: write '10 %s' or set priority" % (value, text))
            pref = _int_field(priority, "MX priority", 0, 65535)
            host = fields[0]
        else:
            raise InvalidInput("MX value %r is not '[preference] host'" % (value,))
        host = normalize_hostname(host, "MX target")
        return DesiredRecord("%d %s" % (pref, host), content=host, priority=pref)
    if rtype == "SRV":
        fields = text.split()
        if len(fields) == 4:
            prio = _int_field(fields[0], "SRV priority", 0, 65535)
            fields = fields[1:]
        elif len(fields) == 3:
            if priority is None:
                raise InvalidInput("SRV value %r needs a priority: write 'priority weight port target' or set priority" % (value,))
            prio = _int_field(priority, "SRV priority", 0, 65535)
        else:
            raise InvalidInput("SRV value %r is not '[priority] weight port target'" % (value,))
        weight = _int_field(fields[0], "SRV weight", 0, 65535)
        port = _int_field(fields[1], "SRV port", 0, 65535)
        target = normalize_hostname(fields[2], "SRV target")
        data = {"priority": prio, "weight": weight, "port": port, "target": target}
        return DesiredRecord(_srv_key(prio, weight, port, target), data=data)
    if rtype == "CAA":
        flags, tag, caa_value = _caa_parts(text)
        data = {"flags": flags, "tag": tag, "value": caa_value}
        return DesiredRecord(_caa_key(flags, tag, caa_value), data=data)
    raise InvalidInput("record type %r is not supported (one of %s)" % (rtype, ", ".join(RECORD_TYPES)))


def existing_key(record):
    """The comparison key of a record as Cloudflare returns it (same form as desired_record().key)."""
    rtype = record.get("type")
    content = record.get("content")
    data = record.get("data") or {}
    try:
        if rtype == "A":
            return str(ipaddress.IPv4Address(str(content).strip()))
        if rtype == "AAAA":
            return ipaddress.IPv6Address(str(content).strip()).compressed
        if rtype in ("CNAME", "NS"):
            return normalize_hostname(content)
        if rtype == "TXT":
            return txt_key(txt_wire_strings(content))
        if rtype == "MX":
            return "%d %s" % (int(record.get("priority") or 0), normalize_hostname(content))
        if rtype == "SRV":
            if data.get("target") is not None:
                return _srv_key(data.get("priority") or record.get("priority") or 0, data.get("weight") or 0,
                                data.get("port") or 0, data["target"])
            fields = str(content).split()
            if len(fields) == 3:
                fields = [record.get("priority") or 0] + fields
            return _srv_key(*fields[:4])
        if rtype == "CAA":
            if data.get("tag"):
                return _caa_key(data.get("flags") or 0, data["tag"], data.get("value") or "")
            return _caa_key(*_caa_parts(content))
    except (InvalidInput, ValueError, TypeError):
        pass
    return "" if content is None else str(content)


def _safe_hostname(name):
    if not name:
        return name
    try:
        return normalize_hostname(name)
    except InvalidInput:
        return str(name).lower().rstrip(".")


def record_view(record, zone=None):
    """A record as the modules show and compare it."""
    rtype = record.get("type")
    tags = record.get("tags") or []
    view = {
        "id": record.get("id"),
        "name": _safe_hostname(record.get("name")),
        "type": rtype,
        "value": existing_key(record),
        "content": record.get("content"),
        "ttl": record.get("ttl"),
        "proxied": bool(record.get("proxied")),
        "comment": record.get("comment") or None,
        "tags": sorted(tags),
        # Per-record settings (types/dns/*_record_param.py Settings: ipv4_only, ipv6_only, and
        # flatten_cname for CNAME): a PUT replaces the whole record, so they are carried over.
        "settings": dict(record.get("settings") or {}),
    }
    if rtype in PRIVATE_ROUTING_TYPES:
        # ARecordParam / AAAARecordParam.private_routing (cloudflare 5.x): None when Cloudflare does not say.
        view["private_routing"] = record.get("private_routing")
    if rtype in PRIORITY_TYPES:
        data = record.get("data") or {}
        view["priority"] = data.get("priority", record.get("priority")) if rtype == "SRV" else record.get("priority")
    if zone is not None and view["name"]:
        view["relative_name"] = relative_name(view["name"], zone)
    return view


# --------------------------------------------------------------------------------------
# Record sets and the plan
# --------------------------------------------------------------------------------------

SET_KEYS = ("name", "type", "values", "ttl", "proxied", "comment", "tags", "priority", "state", "exclusive")
INHERITED_KEYS = ("ttl", "proxied", "comment", "tags", "state", "exclusive")


class RecordSet(object):
    """(name, type) -> values, with the attributes every value of the set gets."""

    def __init__(self, name, rtype, values, ttl, proxied, comment, tags, state, exclusive, given_name=None):
        self.name = name
        self.type = rtype
        self.values = values  # list of DesiredRecord
        self.ttl = ttl
        self.proxied = proxied
        self.comment = comment
        self.tags = tags
        self.state = state
        self.exclusive = exclusive
        self.given_name = given_name or name

    @property
    def ident(self):
        return (self.name, self.type)

    def label(self):
        return "%s %s" % (self.name, self.type)


def build_record_sets(params, zone):
    """Validate the module input and turn it into RecordSets. Raises InvalidInput before any request."""
    defaults = dict((key, params.get(key)) for key in INHERITED_KEYS)
    if params.get("records") is not None:
        entries = params["records"]
        if not entries:
            raise InvalidInput("records is empty")
    else:
        entries = [dict((key, params.get(key)) for key in ("name", "type", "values", "priority"))]
    sets = []
    seen = {}
    for index, entry in enumerate(entries):
        where = "records[%d]" % index if params.get("records") is not None else "the record set"
        merged = dict(defaults)
        for key in SET_KEYS:
            if entry.get(key) is not None:
                merged[key] = entry[key]
        try:
            rset = _build_record_set(merged, zone)
        except InvalidInput as exc:
            raise InvalidInput("%s (%s %s): %s" % (where, entry.get("name"), entry.get("type"), exc)) from exc
        if rset.ident in seen:
            raise InvalidInput("%s and %s both describe %s: give each (name, type) once" % (seen[rset.ident], where, rset.label()))
        seen[rset.ident] = where
        sets.append(rset)
    _check_cname_exclusivity(sets, zone)
    return sets


def _build_record_set(spec, zone):
    rtype = str(spec.get("type") or "").upper()
    if rtype not in RECORD_TYPES:
        raise InvalidInput("type must be one of %s" % ", ".join(RECORD_TYPES))
    if spec.get("name") is None:
        raise InvalidInput("name is required")
    name = fqdn(spec["name"], zone)
    state = spec.get("state") or "present"
    exclusive = True if spec.get("exclusive") is None else bool(spec["exclusive"])
    raw_values = spec.get("values")
    if raw_values is None:
        raw_values = []
    if isinstance(raw_values, (str, bytes)):
        raw_values = [raw_values]
    if state == "present" and not raw_values:
        raise InvalidInput("values is required with state=present (use state=absent to remove the record set)")
    # ttl and proxied, like comment and tags, are left as they are on existing records when not set
    # (None); new records get 1 (automatic) and not proxied.
    ttl = spec.get("ttl")
    if ttl is not None:
        try:
            ttl = int(ttl)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("ttl %r is not a number" % (ttl,)) from exc
        if ttl != TTL_AUTO and not TTL_MIN <= ttl <= TTL_MAX:
            raise InvalidInput("ttl %d is out of range: use 1 (automatic) or %d-%d seconds" % (ttl, TTL_MIN, TTL_MAX))
    proxied = None if spec.get("proxied") is None else bool(spec["proxied"])
    if proxied and rtype not in PROXIABLE_TYPES:
        raise InvalidInput("only A, AAAA and CNAME records can be proxied")
    if proxied and ttl not in (None, TTL_AUTO):
        raise InvalidInput("proxied records always have automatic TTL: set ttl to 1 or leave it out (got %d)" % ttl)
    priority = spec.get("priority")
    if priority is not None and rtype not in PRIORITY_TYPES:
        raise InvalidInput("priority applies to MX and SRV records only")
    if rtype == "SRV":
        labels = name.split(".")
        if len(labels) < 3 or not labels[0].startswith("_") or not labels[1].startswith("_"):
            raise InvalidInput("an SRV name must look like _service._proto.name (got %s)" % name)
    tags = spec.get("tags")
    if tags is not None:
        tags = sorted(set(str(tag) for tag in tags))
        for tag in tags:
            if not TAG_RE.match(tag):
                raise InvalidInput("tag %r is not name:value (the name of letters, digits, - and _, the value on one line)" % (tag,))
    values = []
    keys = set()
    for value in raw_values:
        record = desired_record(rtype, value, priority)
        if record.key in keys:
            continue  # the same value twice (after normalisation) is one record
        keys.add(record.key)
        values.append(record)
    if rtype == "CNAME" and len(values) > 1:
        raise InvalidInput("a CNAME record set has exactly one value (got %d)" % len(values))
    return RecordSet(name, rtype, values, ttl, proxied, spec.get("comment"), tags, state, exclusive, spec["name"])


def _check_cname_exclusivity(sets, zone=None):
    """A CNAME must be alone at its name, except at the zone apex, where Cloudflare flattens it."""
    by_name = {}
    for rset in sets:
        if rset.state == "present" and rset.name != zone:
            by_name.setdefault(rset.name, set()).add(rset.type)
    for name, types in sorted(by_name.items()):
        if "CNAME" in types and len(types) > 1:
            others = ", ".join(sorted(types - set(["CNAME"])))
            raise InvalidInput("%s cannot have a CNAME beside other types (%s): a CNAME must be alone at its name" % (name, others))


def _same_comment(current, wanted):
    return (current or "") == (wanted or "")


class Plan(object):
    """The batch to send and what it does to each record set."""

    def __init__(self):
        self.deletes = []   # [{"id": ...}]
        self.patches = []   # [{"id": ..., fields}]
        self.puts = []      # [{"id": ..., full record}]
        self.posts = []     # [full record]
        self.created = []   # views (predicted)
        self.updated = []   # views (predicted, after)
        self.deleted = []   # views
        self.sets = []      # [(RecordSet, before views, after views)]
        self.conflicts = []

    @property
    def empty(self):
        return not (self.deletes or self.patches or self.puts or self.posts)

    def body(self):
        body = {}
        for key in ("deletes", "patches", "puts", "posts"):
            if getattr(self, key):
                body[key] = getattr(self, key)
        return body

    def counts(self):
        return dict((key, len(getattr(self, key))) for key in ("deletes", "patches", "puts", "posts"))


def _wanted_ttl_proxied(rset, current=None):
    """The TTL and proxied status a record of the set gets: as set; if not set, as the record has them
    (a new record: automatic TTL, not proxied). A proxied record's TTL is always automatic."""
    if rset.proxied is not None:
        proxied = rset.proxied
    else:
        proxied = bool((current or {}).get("proxied"))
    proxied = proxied and rset.type in PROXIABLE_TYPES
    if proxied:
        ttl = TTL_AUTO
    elif rset.ttl is not None:
        ttl = rset.ttl
    else:
        ttl = int((current or {}).get("ttl") or TTL_AUTO)
    return ttl, proxied


def _ttl_conflict(rset, current):
    """A TTL asked for a record that stays proxied (proxied not set): Cloudflare would keep it automatic."""
    if rset.ttl in (None, TTL_AUTO) or rset.proxied is not None or not (current or {}).get("proxied"):
        return None
    return ("%s: the record %s is proxied, so its TTL is automatic; set proxied: false to give it ttl %d, "
            "or leave ttl out" % (rset.label(), current.get("value"), rset.ttl))


def _post_body(rset, desired, carry=None):
    """A whole record (POST, or PUT over the record `carry`): the schema's Required name, ttl and type
    (types/dns/*_record_param.py), content or data, and what the user left unmanaged carried over."""
    carry = carry or {}
    ttl, proxied = _wanted_ttl_proxied(rset, carry or None)
    body = {"name": rset.name, "type": rset.type, "ttl": ttl}
    body.update(desired.payload())
    if rset.type in PROXIABLE_TYPES:
        body["proxied"] = proxied
    comment = rset.comment if rset.comment is not None else carry.get("comment")
    tags = rset.tags if rset.tags is not None else carry.get("tags")
    if comment:
        body["comment"] = comment
    if tags:
        body["tags"] = list(tags)
    # A PUT replaces the whole record: without these, Cloudflare would drop the record's settings
    # (Settings of each *RecordParam) and private_routing (ARecordParam / AAAARecordParam).
    if carry.get("settings"):
        body["settings"] = dict(carry["settings"])
    if rset.type in PRIVATE_ROUTING_TYPES and carry.get("private_routing") is not None:
        body["private_routing"] = bool(carry["private_routing"])
    return body


def _predicted(rset, desired, record_id=None, carry=None):
    carry = carry or {}
    comment = rset.comment if rset.comment is not None else carry.get("comment")
    tags = rset.tags if rset.tags is not None else carry.get("tags")
    ttl, proxied = _wanted_ttl_proxied(rset, carry or None)
    view = {
        "id": record_id,
        "name": rset.name,
        "type": rset.type,
        "value": desired.key,
        "content": desired.content if desired.data is None else desired.key,
        "ttl": ttl,
        "proxied": proxied,
        "comment": comment or None,
        "tags": sorted(tags or []),
        "settings": dict(carry.get("settings") or {}),
    }
    if rset.type in PRIVATE_ROUTING_TYPES:
        view["private_routing"] = carry.get("private_routing")
    if rset.type == "MX":
        view["priority"] = desired.priority
    elif rset.type == "SRV":
        view["priority"] = desired.data["priority"]
    return view


def _tag_keys(tags):
    """Tags as compared: tag names are not case-sensitive (record-attributes reference)."""
    keys = set()
    for tag in tags or []:
        name, sep, value = str(tag).partition(":")
        keys.add(name.lower() + sep + value)
    return sorted(keys)


def _attr_changes(rset, current):
    """Fields of an existing record (view) that differ from the record set's attributes."""
    changes = {}
    ttl, proxied = _wanted_ttl_proxied(rset, current)
    if int(current.get("ttl") or TTL_AUTO) != ttl:
        changes["ttl"] = ttl
    if rset.type in PROXIABLE_TYPES and bool(current.get("proxied")) != proxied:
        changes["proxied"] = proxied
    if rset.comment is not None and not _same_comment(current.get("comment"), rset.comment):
        changes["comment"] = rset.comment
    if rset.tags is not None and _tag_keys(current.get("tags")) != _tag_keys(rset.tags):
        changes["tags"] = list(rset.tags)
    return changes


def plan_changes(sets, existing_records, zone=None):
    """Compare record sets with the zone's records and plan one batch.

    existing_records: raw Cloudflare records (dicts) of the names concerned (or the whole zone).
    Unchanged values are left alone; attribute changes are PATCHes; a value that changes takes
    over a record that goes away (PUT, same id), so a name never goes without a record; only
    what is left over is deleted (DELETE) or created (POST). Cloudflare runs a batch as
    deletes, patches, puts, posts in one transaction.
    """
    plan = Plan()
    by_ident = {}
    by_name = {}
    for record in existing_records:
        view = record_view(record)
        by_ident.setdefault((view["name"], view["type"]), []).append(view)
        by_name.setdefault(view["name"], set()).add(view["type"])
    managed_types = {}
    for rset in sets:
        managed_types.setdefault(rset.name, {})[rset.type] = rset.state

    for rset in sets:
        current = sorted(by_ident.get(rset.ident, []), key=lambda view: (view["value"], view["id"] or ""))
        before = [dict(view) for view in current]
        after = []
        if rset.state == "absent":
            doomed_keys = set(rec.key for rec in rset.values)
            for view in current:
                if not rset.values or view["value"] in doomed_keys:
                    plan.deletes.append({"id": view["id"]})
                    plan.deleted.append(view)
                else:
                    after.append(view)
            plan.sets.append((rset, before, after))
            continue

        wanted = dict((rec.key, rec) for rec in rset.values)
        matched = {}
        leftovers = []
        for view in current:
            if view["value"] in wanted and view["value"] not in matched:
                matched[view["value"]] = view
            else:
                leftovers.append(view)
        missing = [rec for rec in rset.values if rec.key not in matched]
        missing.sort(key=lambda rec: rec.key)

        for key, view in sorted(matched.items()):
            conflict = _ttl_conflict(rset, view)
            if conflict:
                plan.conflicts.append(conflict)
            changes = _attr_changes(rset, view)
            if changes:
                # BatchPatchParam items need name, ttl and type (types/dns/batch_patch_param.py builds on
                # the *RecordParam types, where they are Required): the record's TTL as it will be.
                patch = {"id": view["id"], "name": rset.name, "type": rset.type, "ttl": _wanted_ttl_proxied(rset, view)[0]}
                patch.update(changes)
                plan.patches.append(patch)
                new_view = dict(view)
                new_view.update((k, v) for k, v in changes.items())
                new_view["comment"] = new_view.get("comment") or None
                new_view["tags"] = sorted(new_view.get("tags") or [])
                plan.updated.append(new_view)
                after.append(new_view)
            else:
                after.append(view)

        if rset.exclusive:
            # Re-use records that go away for values that are new: one PUT each, same id.
            while leftovers and missing:
                old = leftovers.pop(0)
                rec = missing.pop(0)
                conflict = _ttl_conflict(rset, old)
                if conflict:
                    plan.conflicts.append(conflict)
                put = {"id": old["id"]}
                put.update(_post_body(rset, rec, carry=old))
                plan.puts.append(put)
                new_view = _predicted(rset, rec, old["id"], old)
                plan.updated.append(new_view)
                after.append(new_view)
            for old in leftovers:
                plan.deletes.append({"id": old["id"]})
                plan.deleted.append(old)
        else:
            after.extend(leftovers)
        for rec in missing:
            plan.posts.append(_post_body(rset, rec))
            new_view = _predicted(rset, rec)
            plan.created.append(new_view)
            after.append(new_view)
        after.sort(key=lambda view: view["value"])
        plan.sets.append((rset, before, after))

    # CNAME must stay alone at its name, also against records this task does not manage
    # (except at the apex, where Cloudflare flattens the CNAME).
    for rset in sets:
        if rset.state != "present" or rset.name == zone:
            continue
        others = set()
        for rtype in by_name.get(rset.name, set()):
            if rtype == rset.type:
                continue
            if managed_types.get(rset.name, {}).get(rtype) == "absent":
                continue
            others.add(rtype)
        if rset.type == "CNAME" and others:
            plan.conflicts.append("%s: a CNAME cannot be added beside the existing %s record(s) there; "
                                  "manage them in the same task with state=absent to replace them" % (rset.name, ", ".join(sorted(others))))
        elif rset.type != "CNAME" and "CNAME" in others:
            plan.conflicts.append("%s: a CNAME record exists there, so %s records cannot be added beside it; "
                                  "manage the CNAME in the same task with state=absent to replace it" % (rset.name, rset.type))
    return plan


def _zone_line(view):
    extras = []
    if view.get("proxied"):
        extras.append("proxied")
    if view.get("comment"):
        extras.append("comment=%s" % view["comment"])
    if view.get("tags"):
        extras.append("tags=%s" % ",".join(view["tags"]))
    ttl = view.get("ttl")
    line = "%s. %s IN %s %s" % (view["name"], "auto" if ttl == TTL_AUTO else ttl, view["type"], view["value"])
    if extras:
        line += " ; " + " ".join(extras)
    return line + "\n"


def plan_diff(plan):
    """Ansible diff entries, one per record set that changes."""
    diffs = []
    for rset, before, after in plan.sets:
        before_text = "".join(_zone_line(view) for view in before)
        after_text = "".join(_zone_line(view) for view in after)
        if before_text != after_text:
            diffs.append({
                "before_header": "%s (%s)" % (rset.label(), "before"),
                "after_header": "%s (%s)" % (rset.label(), rset.state if rset.state == "absent" else "after"),
                "before": before_text,
                "after": after_text,
            })
    return diffs


# --------------------------------------------------------------------------------------
# Talking to Cloudflare
# --------------------------------------------------------------------------------------

def _retry_after_seconds(headers):
    if headers is None:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _error_details(body):
    codes, errors = [], []
    if isinstance(body, dict):
        items = body.get("errors") or []
    elif isinstance(body, list):
        items = body
    else:
        items = []
    for item in items:
        if isinstance(item, dict):
            code = item.get("code")
            message = item.get("message") or ""
            if code is not None:
                try:
                    codes.append(int(code))
                except (TypeError, ValueError):
                    pass
            errors.append({"code": code, "message": message})
            for chained in item.get("error_chain") or []:
                if isinstance(chained, dict):
                    errors.append({"code": chained.get("code"), "message": chained.get("message") or ""})
    return codes, errors


def _describe_errors(errors):
    return "; ".join("%s: %s" % (err.get("code"), err.get("message")) if err.get("code") is not None else str(err.get("message"))
                     for err in errors)


class CloudflareAPI(object):
    """The few calls the modules make, with retries and readable errors."""

    def __init__(self, api_token, base_url=DEFAULT_BASE_URL, timeout=30.0, max_retries=3, sleep=time.sleep, client=None):
        if not api_token:
            raise CloudflareError("api_token is empty: pass the Cloudflare API token (or set CLOUDFLARE_API_TOKEN)")
        self.max_retries = max(0, int(max_retries))
        self.sleep = sleep
        self.requests = 0
        self.client = client if client is not None else build_client(api_token, base_url, timeout)

    # -- the request wrapper --------------------------------------------------------

    def _call(self, what, permission, func, **kwargs):
        """Run one SDK call, retrying 429, 5xx and transport errors; return the decoded JSON body."""
        attempt = 0
        outcome_unknown = False
        while True:
            attempt += 1
            self.requests += 1
            try:
                raw = func(**kwargs)
            except cloudflare.APIStatusError as exc:
                status = exc.status_code
                retryable = status == 429 or status >= 500
                codes, errors = _error_details(getattr(exc, "body", None))
                wait = _retry_after_seconds(exc.response.headers) if exc.response is not None else None
                if retryable and attempt <= self.max_retries and (wait is None or wait <= MAX_RETRY_AFTER):
                    if status >= 500:
                        outcome_unknown = True
                    self.sleep(wait if wait is not None else min(8.0, 0.5 * (2 ** attempt)))
                    continue
                raise self._status_error(what, permission, status, codes, errors, wait, attempt, outcome_unknown)
            except cloudflare.APIConnectionError as exc:
                timeout = isinstance(exc, cloudflare.APITimeoutError)
                if attempt <= self.max_retries:
                    outcome_unknown = True
                    self.sleep(min(8.0, 0.5 * (2 ** attempt)))
                    continue
                raise CloudflareError(
                    "Cloudflare API %s while %s, after %d attempt(s): %s (base_url, network or timeout?)"
                    % ("timed out" if timeout else "could not be reached", what, attempt, exc.__class__.__name__),
                    outcome_unknown=outcome_unknown, attempts=attempt)
            try:
                body = raw.json()
            except ValueError:
                raise CloudflareError("Cloudflare answered with something that is not JSON while %s (HTTP %s)"
                                      % (what, raw.status_code), status=raw.status_code, attempts=attempt)
            if isinstance(body, dict) and body.get("success") is False:
                codes, errors = _error_details(body)
                raise self._status_error(what, permission, raw.status_code, codes, errors, None, attempt, outcome_unknown)
            return body

    def _status_error(self, what, permission, status, codes, errors, wait, attempts, outcome_unknown):
        detail = _describe_errors(errors) or "no error details"
        if status == 401:
            msg = ("Cloudflare rejected the API token (HTTP 401) while %s: it is invalid, expired or revoked (%s). "
                   "The token needs %s for this; cloudflare_dns needs Zone:Read (to look up the zone by name) and DNS:Edit."
                   % (what, detail, permission))
        elif status == 403:
            msg = ("The Cloudflare API token lacks the %s permission (HTTP 403) while %s (%s). "
                   "Give the token %s on this zone%s."
                   % (permission, what, detail, permission,
                      "" if permission != PERM_ZONE_READ else ", or pass zone_id to skip the zone lookup"))
        elif status == 429:
            msg = ("Cloudflare rate limited the requests (HTTP 429) while %s and still did after %d attempt(s)%s (%s). "
                   "Try again later, or raise max_retries."
                   % (what, attempts, "; it asked to wait %.0f s" % wait if wait is not None else "", detail))
        elif status >= 500:
            msg = ("Cloudflare answered HTTP %d while %s, after %d attempt(s) (%s). The API is having trouble; try again later."
                   % (status, what, attempts, detail))
        else:
            msg = "Cloudflare refused the request (HTTP %d) while %s: %s" % (status, what, detail)
        return CloudflareError(msg, status=status, codes=codes, errors=errors, outcome_unknown=outcome_unknown, attempts=attempts)

    # -- the calls ------------------------------------------------------------------

    def find_zone(self, zone_name):
        what = "looking up zone %s" % zone_name
        body = self._call(what, PERM_ZONE_READ, self.client.zones.with_raw_response.list, name=zone_name, per_page=50)
        matches = [zone for zone in (body or {}).get("result") or [] if _safe_hostname(zone.get("name")) == zone_name]
        # The same name can exist in several accounts (e.g. a pending copy): prefer the active zone.
        matches.sort(key=lambda zone: zone.get("status") != "active")
        if matches:
            return {"id": matches[0]["id"], "name": zone_name}
        raise CloudflareError(
            "Zone %s was not found among the zones this API token can read. Check the zone name, and that the token's "
            "zone resources include it with Zone:Read (or pass zone_id to skip the lookup)." % zone_name)

    def list_records(self, zone, name=None, rtype=None):
        """All records of the zone (optionally one name / type), following pagination."""
        kwargs = {"zone_id": zone["id"], "per_page": LIST_PER_PAGE}
        if name is not None:
            kwargs["name"] = _name_filter(name)
        if rtype is not None:
            kwargs["type"] = rtype
        what = "reading DNS records of zone %s" % (zone.get("name") or zone["id"])
        records = []
        page = 1
        while True:
            kwargs["page"] = page
            try:
                body = self._call(what, PERM_DNS_READ, self.client.dns.records.with_raw_response.list, **kwargs)
            except CloudflareError as exc:
                raise _zone_id_error(exc, zone)
            result = (body or {}).get("result") or []
            records.extend(result)
            info = (body or {}).get("result_info") or {}
            total_pages = info.get("total_pages")
            if total_pages is not None:
                if page >= int(total_pages):
                    break
            elif len(result) < LIST_PER_PAGE:
                break
            if not result:
                break
            page += 1
        return records

    def batch(self, zone, plan):
        what = "applying %s to zone %s in one batch" % (
            ", ".join("%d %s" % (count, key) for key, count in plan.counts().items() if count), zone.get("name") or zone["id"])
        try:
            body = self._call(what, PERM_DNS_EDIT, self.client.dns.records.with_raw_response.batch,
                              zone_id=zone["id"], **plan.body())
        except CloudflareError as exc:
            raise _zone_id_error(exc, zone)
        return (body or {}).get("result") or {}


def _zone_id_error(exc, zone):
    """Cloudflare answers an unknown zone id with 'Could not route to /zones/...' (7003/7000)."""
    if exc.codes & CODES_ZONE_NOT_ROUTABLE:
        return CloudflareError(
            "Zone id %s was not found, or this API token cannot see it (%s)" % (zone["id"], _describe_errors(exc.errors)),
            status=exc.status, codes=exc.codes, errors=exc.errors, outcome_unknown=exc.outcome_unknown)
    return exc


def _name_filter(name):
    """The SDK's list filter for an exact name: {'exact': name} where the SDK takes a Name filter (4.x and 5.x)."""
    try:
        from cloudflare.types.dns import record_list_params
        fields = getattr(record_list_params.Name, "__annotations__", {})
        if "exact" in fields:
            return {"exact": name}
    except (ImportError, AttributeError):
        pass
    return name


def build_client(api_token, base_url=DEFAULT_BASE_URL, timeout=30.0):
    """The SDK client with the token the user gave and nothing from the environment.

    The SDK reads CLOUDFLARE_EMAIL / CLOUDFLARE_API_KEY / CLOUDFLARE_API_USER_SERVICE_KEY even when
    None is passed, and prefers them to the token: they are cleared on the client. Retries are
    done by CloudflareAPI (max_retries=0 here) so that they are counted and Retry-After honoured.
    """
    if not HAS_CLOUDFLARE:
        raise CloudflareError(missing_required_lib("cloudflare"))
    client = cloudflare.Cloudflare(
        api_token=api_token,
        api_email=None,
        api_key=None,
        base_url=base_url or DEFAULT_BASE_URL,
        timeout=timeout,
        max_retries=0,
    )
    client.api_email = None
    client.api_key = None
    if hasattr(client, "user_service_key"):
        client.user_service_key = None
    if not hasattr(client.dns.records, "batch"):
        raise CloudflareError("The installed cloudflare SDK has no dns.records.batch: install cloudflare>=4,<6")
    return client


# --------------------------------------------------------------------------------------
# The modules' run()
# --------------------------------------------------------------------------------------

def _require_sdk(module):
    if not HAS_CLOUDFLARE:
        module.fail_json(msg=missing_required_lib("cloudflare"), exception=str(CLOUDFLARE_IMPORT_ERROR))


def _api(module, api_factory):
    params = module.params
    return api_factory(params["api_token"], base_url=params["base_url"], timeout=params["timeout"], max_retries=params["max_retries"])


def _zone(api, params):
    zone_name = normalize_zone(params.get("zone"))
    if params.get("zone_id"):
        return {"id": params["zone_id"], "name": zone_name}
    return api.find_zone(zone_name)


def _read_existing(api, zone, sets):
    names = sorted(set(rset.name for rset in sets))
    if len(names) <= FILTERED_LIST_MAX_NAMES:
        records = []
        for name in names:
            records.extend(api.list_records(zone, name=name))
        return records
    wanted = set(names)
    return [record for record in api.list_records(zone) if _safe_hostname(record.get("name")) in wanted]


def _result_records(plan, batch_result):
    """The managed record sets as they now are: unchanged records plus what the batch returned."""
    returned = {}
    for key in ("patches", "puts", "posts"):
        for record in batch_result.get(key) or []:
            view = record_view(record)
            returned[(view["name"], view["type"], view["value"])] = view
    records = []
    for rset, _before, after in plan.sets:
        for view in after:
            real = returned.get((view["name"], view["type"], view["value"]))
            records.append(real if real is not None else view)
    return records


def check_batch_size(max_batch_size):
    """max_batch_size: 1 up to Cloudflare's largest batch (3,500 changes, paid plans)."""
    if max_batch_size is None or not 1 <= int(max_batch_size) <= BATCH_LIMIT_PAID:
        raise InvalidInput("max_batch_size %r is out of range: Cloudflare takes at most %d changes in one batch on the "
                           "Free plan and %d on paid plans" % (max_batch_size, BATCH_LIMIT_FREE, BATCH_LIMIT_PAID))
    return int(max_batch_size)


def batch_too_large(plan, max_batch_size):
    """The refusal of a plan with more changes than one batch may hold, or None.

    Refused rather than split: split batches would not be one transaction, so a failure in a later
    batch would leave the earlier ones applied (e.g. a name's old records deleted, its new ones not created).
    """
    total = sum(plan.counts().values())
    if total <= max_batch_size:
        return None
    return ("This task needs %d changes (%s), more than max_batch_size (%d) allows in one batch; nothing was changed. "
            "Cloudflare takes at most %d changes in a batch on the Free plan and %d on Pro, Business and Enterprise: "
            "on a paid plan set max_batch_size (up to %d), otherwise split the record sets over several tasks "
            "(each task is one atomic batch)."
            % (total, ", ".join("%d %s" % (count, key) for key, count in plan.counts().items() if count), max_batch_size,
               BATCH_LIMIT_FREE, BATCH_LIMIT_PAID, BATCH_LIMIT_PAID))


def run_dns(module, api_factory=CloudflareAPI):
    """cloudflare_dns: make record sets as described, in one batch per run."""
    _require_sdk(module)
    params = module.params
    zone_name = normalize_zone(params.get("zone"))
    try:
        max_batch_size = check_batch_size(params.get("max_batch_size", BATCH_LIMIT_FREE))
        sets = build_record_sets(params, zone_name)
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sent to Cloudflare: %s" % exc)
    try:
        api = _api(module, api_factory)
        zone = _zone(api, params)
        existing = _read_existing(api, zone, sets)
        plan = plan_changes(sets, existing, zone.get("name"))
        if plan.conflicts:
            module.fail_json(msg="Cannot apply, nothing was changed: " + " | ".join(plan.conflicts), zone=zone)
        too_large = batch_too_large(plan, max_batch_size)
        if too_large:
            # Also in check mode: the same run without --check would fail here.
            module.fail_json(msg=too_large, zone=zone, batch=plan.counts())
        result = dict(changed=not plan.empty, zone=zone, batch=plan.counts(),
                      created=plan.created, updated=plan.updated, deleted=plan.deleted)
        if module._diff:
            result["diff"] = plan_diff(plan)
        if plan.empty or module.check_mode:
            result["records"] = _result_records(plan, {})
            module.exit_json(**result)
        try:
            batch_result = api.batch(zone, plan)
        except CloudflareError as exc:
            # An earlier attempt may have gone through before its answer was lost; a retry then
            # meets its own records ("identical record already exists") or deletions ("record does not exist").
            if not (exc.outcome_unknown and exc.codes & set([CODE_IDENTICAL_RECORD, CODE_RECORD_NOT_FOUND])):
                raise
            replan = plan_changes(sets, _read_existing(api, zone, sets), zone.get("name"))
            if not replan.empty:
                raise
            result["records"] = _result_records(replan, {})
            module.warn("Cloudflare's answer to the batch was lost and the retry found it already applied (%s); "
                        "the records were read back and match what was asked" % _describe_errors(exc.errors))
            module.exit_json(**result)
        result["records"] = _result_records(plan, batch_result)
        returned = {}
        for key in ("patches", "puts", "posts"):
            for record in batch_result.get(key) or []:
                view = record_view(record)
                returned[(view["name"], view["type"], view["value"])] = view
        for key in ("created", "updated"):
            result[key] = [returned.get((view["name"], view["type"], view["value"]), view) for view in result[key]]
        module.exit_json(**result)
    except CloudflareError as exc:
        module.fail_json(msg=exc.msg, status=exc.status, error_codes=sorted(exc.codes))


def run_dns_info(module, api_factory=CloudflareAPI):
    """cloudflare_dns_info: the zone's records as cloudflare_dns compares them."""
    _require_sdk(module)
    params = module.params
    zone_name = normalize_zone(params.get("zone"))
    name = None
    try:
        if params.get("name") is not None:
            name = fqdn(params["name"], zone_name)
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sent to Cloudflare: %s" % exc)
    try:
        api = _api(module, api_factory)
        zone = _zone(api, params)
        records = api.list_records(zone, name=name, rtype=params.get("type"))
        views = [record_view(record, zone.get("name")) for record in records]
        if name is not None:
            views = [view for view in views if view["name"] == name]
        if params.get("type"):
            views = [view for view in views if view["type"] == params["type"]]
        views.sort(key=lambda view: (view["name"] or "", view["type"] or "", view["value"]))
        module.exit_json(changed=False, zone=zone, records=views)
    except CloudflareError as exc:
        module.fail_json(msg=exc.msg, status=exc.status, error_codes=sorted(exc.codes))

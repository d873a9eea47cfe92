# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare DNS records as Cloudflare stores them: names, values and settings normalised so that
what a task asks for compares equal to what the API returns (and the views the modules return).

Pure functions, no requests; InvalidInput for input Cloudflare would refuse, raised before any request.
"""

from __future__ import annotations

import ipaddress
import re

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


def safe_hostname(name):
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
        "name": safe_hostname(record.get("name")),
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

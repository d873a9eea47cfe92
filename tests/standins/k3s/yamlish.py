"""A small YAML subset reader/writer (stdlib only; the lab images have no PyYAML).

Reads what K3s config files, kubeconfigs and simple manifests use: block maps and lists,
flow lists/maps on one line, plain/single/double-quoted scalars, `|`/`>` block scalars,
comments and `---` separated documents. JSON documents are accepted as they are.
Anchors, aliases, tags and multi-line flow collections are not supported.
"""
from __future__ import annotations

import json
import re

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


class YAMLError(ValueError):
    """The text is not in the supported YAML subset."""


def _strip_comment(text: str) -> str:
    quote = None
    for idx, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'" and (idx == 0 or text[idx - 1] in " \t[{,:"):
            quote = char
        elif char == "#" and (idx == 0 or text[idx - 1] in " \t"):
            return text[:idx].rstrip()
    return text.rstrip()


def _scalar(text: str):
    text = text.strip()
    if not text:
        return None
    if text[0] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise YAMLError(f"unterminated string: {text}")
        return _unescape(text[1:-1])
    if text[0] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise YAMLError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text[0] in "[{":
        value, rest = _flow(text, 0)
        if text[rest:].strip():
            raise YAMLError(f"trailing text after flow collection: {text}")
        return value
    if text in ("null", "Null", "NULL", "~"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


# YAML 1.2 double-quoted escapes (spec 5.7); \x, \u and \U take 2, 4 and 8 hex digits.
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
            "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def _unescape(body: str) -> str:
    def one(match):
        code = match.group(1)
        if code[0] in "xuU" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code not in _ESCAPES:
            raise YAMLError(f"unknown escape \\{code} in a double-quoted scalar")
        return _ESCAPES[code]
    return _ESCAPE.sub(one, body)


def _flow(text: str, pos: int):
    """Parse a flow collection or scalar starting at pos; returns (value, new_pos)."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    opener = text[pos]
    if opener in "[{":
        closer = "]" if opener == "[" else "}"
        items: list = []
        mapping: dict = {}
        pos += 1
        while True:
            while pos < len(text) and text[pos] in " ,":
                pos += 1
            if pos >= len(text):
                raise YAMLError(f"unterminated flow collection: {text}")
            if text[pos] == closer:
                return (items if opener == "[" else mapping), pos + 1
            if opener == "[":
                value, pos = _flow(text, pos)
                items.append(value)
            else:
                key, pos = _flow(text, pos)
                while pos < len(text) and text[pos] == " ":
                    pos += 1
                if pos < len(text) and text[pos] == ":":
                    value, pos = _flow(text, pos + 1)
                else:
                    value = None
                mapping[key] = value
    if opener in "\"'":
        end = pos + 1
        while end < len(text):
            if text[end] == "\\" and opener == '"':
                end += 2
                continue
            if text[end] == opener:
                if opener == "'" and text[end + 1:end + 2] == "'":
                    end += 2
                    continue
                break
            end += 1
        return _scalar(text[pos:end + 1]), end + 1
    end = pos
    while end < len(text) and text[end] not in ",]}" and not (text[end] == ":" and text[end + 1:end + 2] in (" ", "")):
        end += 1
    return _scalar(text[pos:end]), end


def _closed(text: str) -> bool:
    """Whether a quoted scalar that starts text also ends on it (a closing quote, not an escaped one).

    In a single-quoted scalar `''` is an escaped quote, so `'a == ''b''` is still open; in a
    double-quoted one a backslash escapes the next character (YAML 1.2, 7.3.1 and 7.3.2).
    """
    quote, idx = text[0], 1
    while idx < len(text):
        if quote == '"' and text[idx] == "\\":
            idx += 2
            continue
        if text[idx] == quote:
            if quote == "'" and text[idx + 1:idx + 2] == "'":
                idx += 2
                continue
            return idx == len(text) - 1
        idx += 1
    return False


def _split_key(text: str):
    """Split 'key: value' (outside quotes); returns (key, rest) or None."""
    quote = None
    for idx, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'" and idx == 0:
            quote = char
        elif char == ":" and (idx + 1 == len(text) or text[idx + 1] in " \t"):
            key = text[:idx].strip()
            return (_scalar(key) if key[:1] in "\"'" else key), text[idx + 1:].strip()
    return None


class _Parser:
    def __init__(self, text: str):
        self.raw = text.splitlines()
        self.pos = 0

    def _next(self):
        """Index of the next significant line from self.pos, with (indent, text)."""
        idx = self.pos
        while idx < len(self.raw):
            text = _strip_comment(self.raw[idx])
            if text.strip():
                if "\t" in text[:len(text) - len(text.lstrip())]:
                    raise YAMLError(f"tabs are not allowed for indentation (line {idx + 1})")
                return idx, len(text) - len(text.lstrip(" ")), text.strip()
            idx += 1
        return None

    def parse(self):
        """Parse the whole text as one document."""
        nxt = self._next()
        if nxt is None:
            return None
        value = self._block(nxt[1])
        rest = self._next()
        if rest is not None:
            raise YAMLError(f"unexpected content at line {rest[0] + 1}: {rest[2]}")
        return value

    def _block(self, indent: int, first: str | None = None):
        nxt = self._next()
        text = first if first is not None else nxt[2]
        if text == "-" or text.startswith("- "):
            return self._seq(indent, first)
        if _split_key(text) is not None:
            return self._map(indent, first)
        self.pos = nxt[0] + 1
        return _scalar(text)

    def _value(self, rest: str, indent: int, seq_ok: bool):
        """Value after 'key:' or '- ': inline, block scalar, or nested block."""
        if rest and rest[0] in "|>":
            return self._block_scalar(rest, indent)
        if rest:
            return _scalar(self._continued(rest, indent))
        nxt = self._next()
        if nxt is None:
            return None
        if nxt[1] > indent or (seq_ok and nxt[1] == indent and (nxt[2] == "-" or nxt[2].startswith("- "))):
            return self._block(nxt[1])
        return None

    def _continued(self, rest: str, indent: int) -> str:
        """Join the continuation lines of a multi-line plain or quoted scalar."""
        if rest[0] in "[{" or (rest[0] in "\"'" and _closed(rest)):
            return rest
        while True:
            nxt = self._next()
            if nxt is None or nxt[1] <= indent:
                return rest
            if rest[0] not in "\"'" and (nxt[2].startswith("- ") or _split_key(nxt[2]) is not None):
                return rest
            # Line folding: a line break between two lines is one space, unless a double-quoted scalar
            # escapes it with a trailing backslash (YAML 1.2, 7.3.1).
            escaped = rest[0] == '"' and (len(rest) - len(rest.rstrip("\\"))) % 2 == 1
            rest = rest[:-1] + nxt[2] if escaped else rest + " " + nxt[2]
            self.pos = nxt[0] + 1

    def _map(self, indent: int, first: str | None = None):
        result: dict = {}
        while True:
            if first is not None:
                text, first = first, None
            else:
                nxt = self._next()
                if nxt is None or nxt[1] < indent:
                    return result
                if nxt[1] > indent:
                    raise YAMLError(f"bad indentation at line {nxt[0] + 1}")
                text = nxt[2]
                if text.startswith("- ") or text == "-":
                    return result
                self.pos = nxt[0] + 1
            split = _split_key(text)
            if split is None:
                raise YAMLError(f"expected 'key: value', got: {text}")
            key, rest = split
            result[key] = self._value(rest, indent, seq_ok=True)

    def _seq(self, indent: int, first: str | None = None):
        result: list = []
        while True:
            if first is not None:
                text, first = first, None
            else:
                nxt = self._next()
                if nxt is None or nxt[1] != indent or not (nxt[2] == "-" or nxt[2].startswith("- ")):
                    return result
                self.pos = nxt[0] + 1
                text = nxt[2]
            rest = text[1:].strip()
            inner = indent + 1 + (len(text) - 1 - len(text[1:].lstrip()))
            if rest.startswith("- ") or rest == "-":
                result.append(self._seq(inner, rest))
            elif rest and rest[0] not in "\"'[{" and _split_key(rest) is not None:
                result.append(self._map(inner, rest))
            else:
                result.append(self._value(rest, indent, seq_ok=False))

    def _block_scalar(self, header: str, indent: int) -> str:
        folded = header[0] == ">"
        chomp = "-" if "-" in header else ("+" if "+" in header else "")
        lines = []
        block_indent = None
        idx = self.pos
        while idx < len(self.raw):
            line = self.raw[idx]
            if line.strip():
                width = len(line) - len(line.lstrip(" "))
                if block_indent is None:
                    if width <= indent:
                        break
                    block_indent = width
                if width < block_indent:
                    break
                lines.append(line[block_indent:])
            else:
                lines.append("")
            idx += 1
        self.pos = idx
        while lines and chomp != "+" and not lines[-1]:
            lines.pop()
        if folded:
            text = ""
            for line in lines:
                if not line:
                    text += "\n"
                elif text and not text.endswith("\n"):
                    text += " " + line
                else:
                    text += line
        else:
            text = "\n".join(lines)
        return text if chomp == "-" else text + "\n"


def load(text: str):
    """Parse one document (JSON or the YAML subset)."""
    docs = load_all(text)
    if len(docs) > 1:
        raise YAMLError("expected a single document")
    return docs[0] if docs else None


def load_all(text: str) -> list:
    """Parse all documents separated by '---' lines (empty documents are dropped)."""
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            return [json.loads(stripped)]
        except ValueError:
            pass
    docs, current = [], []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append("\n".join(current))
            current = [line[4:]] if line.startswith("--- ") else []
        elif line.rstrip() == "...":
            continue
        else:
            current.append(line)
    docs.append("\n".join(current))
    return [value for value in (_Parser(doc).parse() for doc in docs) if value is not None]


_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@+-]*$")


def _dump_scalar(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and not isinstance(_scalar(text), (bool, int, float)) and _scalar(text) is not None:
        return text
    return json.dumps(text)


def dump(value, indent: int = 0) -> str:
    """Serialise dicts/lists/scalars as block YAML (strings quoted when needed)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = ""
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                nested = indent if isinstance(item, list) else indent + 2
                out += f"{pad}{_dump_scalar(key)}:\n" + dump(item, nested)
            else:
                out += f"{pad}{_dump_scalar(key)}: {_dump_scalar(item) if not isinstance(item, (dict, list)) else json.dumps(item)}\n"
        return out
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = ""
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = dump(item, indent + 2)
                out += pad + "- " + body[indent + 2:]
            else:
                out += f"{pad}- {_dump_scalar(item) if not isinstance(item, (dict, list)) else json.dumps(item)}\n"
        return out
    return pad + _dump_scalar(value) + "\n"

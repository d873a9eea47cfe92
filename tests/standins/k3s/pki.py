"""Pure-Python ECDSA P-256 keys and X.509 certificates (stdlib only).

The lab images have python3 but neither the openssl CLI nor the cryptography package,
so the stand-in issues its own CA and serving certificates like K3s does (ECDSA P-256,
SHA-256) with this module. Certificates carry the extensions OpenSSL's X509_STRICT mode
(default in Python >= 3.13) insists on: critical basicConstraints, keyUsage, SKI and AKI.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets

# NIST P-256 domain parameters.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _jacobian_double(pt):
    x, y, z = pt
    if not y:
        return (0, 0, 0)
    ysq = y * y % P
    s = 4 * x * ysq % P
    m = (3 * x * x + A * pow(z, 4, P)) % P
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return (nx, ny, nz)


def _jacobian_add(p1, p2):
    if not p1[1]:
        return p2
    if not p2[1]:
        return p1
    u1 = p1[0] * p2[2] ** 2 % P
    u2 = p2[0] * p1[2] ** 2 % P
    s1 = p1[1] * p2[2] ** 3 % P
    s2 = p2[1] * p1[2] ** 3 % P
    if u1 == u2:
        if s1 != s2:
            return (0, 0, 1)
        return _jacobian_double(p1)
    h = u2 - u1
    r = s2 - s1
    h2 = h * h % P
    h3 = h * h2 % P
    u1h2 = u1 * h2 % P
    nx = (r * r - h3 - 2 * u1h2) % P
    ny = (r * (u1h2 - nx) - s1 * h3) % P
    nz = h * p1[2] * p2[2] % P
    return (nx, ny, nz)


def _mul(scalar: int, point=G):
    result = (0, 0, 1)
    addend = (point[0], point[1], 1)
    while scalar:
        if scalar & 1:
            result = _jacobian_add(result, addend)
        addend = _jacobian_double(addend)
        scalar >>= 1
    x, y, z = result
    zinv = pow(z, -1, P)
    return (x * zinv ** 2 % P, y * zinv ** 3 % P)


# --- DER ---------------------------------------------------------------------------

def _len(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return _tlv(0x02, raw)


def _oid(dotted: str) -> bytes:
    parts = [int(x) for x in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.insert(0, 0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(chunk)
    return _tlv(0x06, body)


def _bitstring(data: bytes) -> bytes:
    return _tlv(0x03, b"\x00" + data)


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _utf8(text: str) -> bytes:
    return _tlv(0x0C, text.encode())


def _time(when: datetime.datetime) -> bytes:
    if when.year < 2050:
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


def _name(common_name: str, organization: str | None = None) -> bytes:
    rdns = []
    if organization:
        rdns.append(_tlv(0x31, _seq(_oid("2.5.4.10"), _utf8(organization))))
    rdns.append(_tlv(0x31, _seq(_oid("2.5.4.3"), _utf8(common_name))))
    return _seq(*rdns)


OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


class Key:
    """An ECDSA P-256 private key."""

    def __init__(self, secret: int | None = None):
        self.secret = secret or (secrets.randbelow(N - 1) + 1)
        self.public = _mul(self.secret)

    def public_bytes(self) -> bytes:
        """Uncompressed SEC1 public point."""
        return b"\x04" + self.public[0].to_bytes(32, "big") + self.public[1].to_bytes(32, "big")

    def spki(self) -> bytes:
        """DER SubjectPublicKeyInfo."""
        return _seq(_seq(_oid(OID_EC_PUBLIC_KEY), _oid(OID_P256)), _bitstring(self.public_bytes()))

    def key_id(self) -> bytes:
        """SHA-1 of the public key (RFC 5280 method 1 key identifier)."""
        return hashlib.sha1(self.public_bytes()).digest()  # nosec - identifier, not security

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-SHA256 signature."""
        digest = int.from_bytes(hashlib.sha256(data).digest(), "big")
        while True:
            k = secrets.randbelow(N - 1) + 1
            r = _mul(k)[0] % N
            if not r:
                continue
            s = pow(k, -1, N) * (digest + r * self.secret) % N
            if s:
                return _seq(_int(r), _int(s))

    def pem(self) -> str:
        """SEC1 'EC PRIVATE KEY' PEM."""
        der = _seq(_int(1), _octets(self.secret.to_bytes(32, "big")),
                   _tlv(0xA0, _oid(OID_P256)), _tlv(0xA1, _bitstring(self.public_bytes())))
        return _pem("EC PRIVATE KEY", der)

    @classmethod
    def from_pem(cls, text: str) -> "Key":
        """Load a key written by pem()."""
        der = _unpem(text)
        # SEQUENCE { INTEGER 1, OCTET STRING(32) ... }: the secret follows the version INTEGER.
        idx = der.index(b"\x04\x20", 2)
        return cls(int.from_bytes(der[idx + 2:idx + 34], "big"))


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _unpem(text: str) -> bytes:
    body = [line for line in text.strip().splitlines() if not line.startswith("-----")]
    return base64.b64decode("".join(body))


def _ext(oid: str, value: bytes, critical: bool = False) -> bytes:
    parts = [_oid(oid)]
    if critical:
        parts.append(_tlv(0x01, b"\xff"))
    parts.append(_octets(value))
    return _seq(*parts)


def issue(key: Key, common_name: str, *, issuer_key: Key | None = None, issuer_name: str | None = None,
          ca: bool = False, dns: tuple = (), ips: tuple = (), client: bool = False, server: bool = False,
          organization: str | None = None, days: int = 3650) -> str:
    """Issue a certificate for key (self-signed when issuer_key is None); returns PEM."""
    signer = issuer_key or key
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    validity = _seq(_time(now - datetime.timedelta(hours=1)), _time(now + datetime.timedelta(days=days)))
    exts = [
        _ext("2.5.29.19", _seq(_tlv(0x01, b"\xff")) if ca else _seq(), critical=True),
        _ext("2.5.29.15", _tlv(0x03, b"\x02\xa4") if ca else _tlv(0x03, b"\x05\xa0"), critical=True),
        _ext("2.5.29.14", _octets(key.key_id())),
        _ext("2.5.29.35", _seq(_tlv(0x80, signer.key_id()))),
    ]
    usages = ([_oid("1.3.6.1.5.5.7.3.1")] if server else []) + ([_oid("1.3.6.1.5.5.7.3.2")] if client else [])
    if usages:
        exts.append(_ext("2.5.29.37", _seq(*usages)))
    names = [_tlv(0x82, name.encode()) for name in dict.fromkeys(dns) if name]
    names += [_tlv(0x87, ipaddress.ip_address(ip).packed) for ip in dict.fromkeys(ips) if ip]
    if names:
        exts.append(_ext("2.5.29.17", _seq(*names)))
    subject = _name(common_name, organization)
    issuer = _name(issuer_name or common_name) if issuer_key else subject
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(secrets.randbits(120) | (1 << 120)),
        _seq(_oid(OID_ECDSA_SHA256)),
        issuer,
        validity,
        subject,
        key.spki(),
        _tlv(0xA3, _seq(*exts)),
    )
    cert = _seq(tbs, _seq(_oid(OID_ECDSA_SHA256)), _bitstring(signer.sign(tbs)))
    return _pem("CERTIFICATE", cert)


def ca_hash(ca_pem: str | bytes) -> str:
    """The K10 token hash: sha256 hex of the CA certificate file bytes."""
    data = ca_pem.encode() if isinstance(ca_pem, str) else ca_pem
    return hashlib.sha256(data).hexdigest()

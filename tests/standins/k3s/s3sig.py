"""A minimal S3 client for the stand-in node agent (stdlib only: the node has no boto3).

Path-style requests signed with AWS Signature Version 4, as the AWS SDK that Velero's node agent
(through Kopia's S3 storage, kopia/kopia repo/blob/s3) uses against R2 or moto: the canonical request,
string to sign and signing key as in AWS's "Signature Version 4 signing process" documentation.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import urllib.parse


class S3Error(Exception):
    """An S3 error answer: .status and .body."""

    def __init__(self, status: int, body: bytes):
        super().__init__(f"S3 answered {status}: {body[:300]!r}")
        self.status, self.body = status, body


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Client:
    """GET/PUT/HEAD of objects in one bucket on an S3 endpoint (http or https)."""

    def __init__(self, url: str, bucket: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 verify: bool = True, timeout: float = 30.0):
        parsed = urllib.parse.urlsplit(url.rstrip("/"))
        self.scheme, self.netloc, self.base = parsed.scheme, parsed.netloc, parsed.path
        self.bucket, self.access_key, self.secret_key = bucket, access_key, secret_key
        self.region, self.verify, self.timeout = region or "us-east-1", verify, timeout

    def _request(self, method: str, key: str, body: bytes = b"") -> tuple:
        path = urllib.parse.quote(f"{self.base}/{self.bucket}/{key}", safe="/~")
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        headers = {"host": self.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key_bytes = _sign(_sign(_sign(_sign(f"AWS4{self.secret_key}".encode(), day), self.region), "s3"), "aws4_request")
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        if self.scheme == "https":
            import ssl  # pylint: disable=import-outside-toplevel
            context = ssl.create_default_context()
            if not self.verify:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            conn = http.client.HTTPSConnection(self.netloc, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(self.netloc, timeout=self.timeout)
        try:
            conn.request(method, path, body=body if method == "PUT" else None,
                         headers={**headers, "Content-Length": str(len(body))} if method == "PUT" else headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def put(self, key: str, data: bytes) -> None:
        """Upload one object."""
        status, body = self._request("PUT", key, data)
        if status != 200:
            raise S3Error(status, body)

    def get(self, key: str) -> bytes:
        """Download one object."""
        status, body = self._request("GET", key)
        if status != 200:
            raise S3Error(status, body)
        return body

    def exists(self, key: str) -> bool:
        """HEAD an object."""
        status, body = self._request("HEAD", key)
        if status == 404:
            return False
        if status != 200:
            raise S3Error(status, body)
        return True

"""A strict layer in front of moto's S3 server that refuses the lifecycle requests R2 refuses.

moto accepts whatever botocore sends. R2 does not: its S3 compatibility table
(https://developers.cloudflare.com/r2/api/s3/api/, "Implemented bucket-level operations") marks the
flexible-checksum headers (`x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm`) as not implemented on
PutBucketLifecycleConfiguration, and does not list DeleteBucketLifecycle at all. An unimplemented header is
answered `501 NotImplemented` with "Header '<name>' with value '<value>' not implemented" (the form R2 used for
`x-amz-tagging`, velero-io/velero#9931). Like S3, a lifecycle write needs an integrity header: without a
flexible checksum that is Content-MD5, and it must match the body (S3 API reference,
PutBucketLifecycleConfiguration; BadDigest / InvalidRequest are S3's error codes for these).

Everything else is passed to moto unchanged, the Host header included, so moto still checks the signature.
What it cannot show: R2's other differences (it only judges the lifecycle calls), and R2's default
multipart-abort rule on new buckets (moto adds none).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def _error(code: str, message: str) -> bytes:
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message></Error>"
            % (code, message)).encode()


def r2_refusal(method: str, query: dict, headers: dict, body: bytes):
    """(status, code, message) when R2 refuses this request, else None. headers: lower-case names."""
    if "lifecycle" not in query:
        return None
    if method == "DELETE":
        return 501, "NotImplemented", "DeleteBucketLifecycle not implemented"
    if method != "PUT":
        return None
    for name, value in sorted(headers.items()):
        if name.startswith("x-amz-checksum-") or name == "x-amz-sdk-checksum-algorithm":
            return 501, "NotImplemented", "Header '%s' with value '%s' not implemented" % (name, value)
    md5 = headers.get("content-md5")
    if not md5:
        return 400, "InvalidRequest", "Missing required header for this request: Content-MD5"
    if md5 != base64.b64encode(hashlib.md5(body).digest()).decode():  # nosec - S3's integrity check, not security
        return 400, "BadDigest", "The Content-MD5 you specified did not match what we received."
    return None


@dataclass
class StrictR2:
    """The layer: url to give the module, seen = [(method, query keys, lower-case headers)] of lifecycle calls."""
    upstream: str
    url: str = ""
    seen: list = field(default_factory=list)
    listen: tuple = ("127.0.0.1", 0)  # (address, port); port 0: a free one
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> "StrictR2":
        target = urllib.parse.urlsplit(self.upstream)
        layer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                return

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
                headers = {name.lower(): value for name, value in self.headers.items()}
                if "lifecycle" in query:
                    layer.seen.append((self.command, sorted(query), headers))
                refusal = r2_refusal(self.command, query, headers, body)
                if refusal:
                    status, code, message = refusal
                    payload = _error(code, message)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            conn.putheader(name, value)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for name, value in resp.getheaders():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = http.server.ThreadingHTTPServer(self.listen, Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = "http://%s:%d" % self._server.server_address[:2]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

"""The Cloudflare API stand-in (api.py next to this file) as a process, for the lab and Molecule.

    python -m standins.cloudflare --listen ADDR:PORT --zone ZONE [--zone ZONE2] --token-file FILE   (from tests/)

standins.cloudflare.api.CloudflareAPIServer serves on 127.0.0.1 and a random port, in a thread
of the test's own process; this binds the same server to ADDR:PORT, creates the zones, accepts the
token read from FILE (all permissions, every zone; never passed as an argument), prints
`ready http://ADDR:PORT/client/v4` on stdout, and serves until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from .api import ALL_PERMISSIONS, API_PREFIX, CloudflareAPIServer, _Handler


class BoundCloudflareAPIServer(CloudflareAPIServer):
    """CloudflareAPIServer on a chosen address and port."""

    def __init__(self, host: str, port: int, **kwargs):
        super().__init__(**kwargs)
        self.host, self.wanted_port = host, port

    def start(self):
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer((self.host, self.wanted_port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="cloudflare-api", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self):
        return "http://%s:%d%s" % (self.host, self.port, API_PREFIX)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDR:PORT")
    parser.add_argument("--zone", action="append", required=True, help="a zone to create (repeatable)")
    parser.add_argument("--token-file", required=True, help="file holding the API token to accept")
    parser.add_argument("--op-delay", type=float, default=0.0, help="seconds between the changes of a batch")
    args = parser.parse_args(argv)
    host, _sep, port = args.listen.rpartition(":")
    token = Path(args.token_file).read_text(encoding="utf-8").strip()
    if not host or not port.isdigit() or not token:
        parser.error("--listen must be ADDR:PORT and the token file must not be empty")
    server = BoundCloudflareAPIServer(host, int(port), zones=tuple(args.zone), op_delay=args.op_delay,
                                      tokens={token: {"permissions": set(ALL_PERMISSIONS), "zones": None}})
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *unused: stop.set())
    signal.signal(signal.SIGINT, lambda *unused: stop.set())
    print("ready %s" % server.base_url, flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

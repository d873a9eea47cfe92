"""An S3 server on loopback for tests (moto's ThreadedMotoServer) and helpers around it.

moto keeps its state per Python process: every server started in one process serves the same
buckets, so give each test its own bucket name.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

import boto3
from botocore.config import Config


def client_for(url: str, access_key: str, secret_key: str, region: str = "us-east-1", path_style: bool = True,
               verify=None):
    """A boto3 S3 client for an endpoint (path-style addressing by default, as R2 and moto want)."""
    client = boto3.client(
        "s3", endpoint_url=url, region_name=region or "us-east-1",
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, verify=verify,
        config=Config(s3={"addressing_style": "path" if path_style else "auto"}, retries={"max_attempts": 1},
                      connect_timeout=5, read_timeout=15),
    )
    # A fresh connection per request: on kept-alive connections to moto's server, Nagle + delayed ACK
    # add tens of milliseconds to every request.
    client.meta.events.register("before-send.s3", _close_connection)
    return client


def _close_connection(request, **unused):
    request.headers["Connection"] = "close"


def credentials_ini(access_key: str, secret_key: str, profile: str = "default") -> str:
    """The AWS credentials file Velero reads from the `cloud-credentials` Secret (key `cloud`)."""
    return f"[{profile}]\naws_access_key_id={access_key}\naws_secret_access_key={secret_key}\n"


def create_bucket(target, name: str) -> str:
    """Create a bucket (target: an S3Server or a boto3 client); returns the name. Existing buckets are fine."""
    s3client = target.client() if isinstance(target, S3Server) else target
    try:
        s3client.create_bucket(Bucket=name)
    except s3client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


@dataclass
class S3Server:
    """A running moto S3 server: .url, .access_key, .secret_key, .client(), .create_bucket(), .stop()."""

    url: str
    host: str
    port: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    _server: object = field(default=None, repr=False)  # moto.server.ThreadedMotoServer

    def client(self):
        """A boto3 S3 client for this server."""
        return client_for(self.url, self.access_key, self.secret_key, self.region)

    def create_bucket(self, name: str) -> str:
        """Create a bucket; returns its name."""
        return create_bucket(self, name)

    def credentials_ini(self) -> str:
        """Content for the `cloud` key of Velero's `cloud-credentials` Secret."""
        return credentials_ini(self.access_key, self.secret_key)

    def credentials_secret(self, namespace: str = "velero", name: str = "cloud-credentials", key: str = "cloud") -> dict:
        """A Secret manifest (stringData) holding this server's credentials like Velero expects."""
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                "type": "Opaque", "stringData": {key: self.credentials_ini()}}

    def bsl_manifest(self, bucket: str, name: str = "default", namespace: str = "velero", prefix: str | None = None,
                     default: bool = True, credential: dict | None = None) -> dict:
        """A BackupStorageLocation manifest pointing at this server (config like Cloudflare R2's)."""
        spec = {"provider": "aws", "default": default,
                "objectStorage": {"bucket": bucket, **({"prefix": prefix} if prefix else {})},
                "config": {"region": self.region, "s3ForcePathStyle": "true", "s3Url": self.url}}
        if credential:
            spec["credential"] = credential
        return {"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def start_s3_server(host: str = "127.0.0.1", port: int = 0, access_key: str | None = None,
                    secret_key: str | None = None, region: str = "us-east-1") -> S3Server:
    """Start moto's S3 server in a thread (port 0 picks a free port). moto accepts any credentials."""
    # Imported here: moto is heavy and the controller (which imports this module) never needs it.
    from moto.server import ThreadedMotoServer  # pylint: disable=import-outside-toplevel

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return S3Server(url=f"http://{url_host}:{bound_port}", host=bound_host, port=bound_port,
                    access_key=access_key or "STANDIN" + secrets.token_hex(6).upper(),
                    secret_key=secret_key or secrets.token_hex(20), region=region, _server=server)

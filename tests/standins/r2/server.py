"""moto's S3 server as the R2 stand-in's store, and the R2 stand-in the product tests use.

moto keeps its state per Python process: every server started in one process serves the same buckets
and IAM users, so give each test its own names.
"""
from __future__ import annotations

import json
import logging
import secrets
import urllib.request

from .strict import StrictR2


def start_moto(host: str = "127.0.0.1", port: int = 0):
    """moto's S3 server in a thread (port 0: a free port); returns (server, url). moto takes any key until
    IAM authentication is switched on (set_auth)."""
    # Imported here: moto is heavy.
    from moto.server import ThreadedMotoServer  # pylint: disable=import-outside-toplevel

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    shown = "[%s]" % bound_host if ":" in bound_host else bound_host
    return server, "http://%s:%s" % (shown, bound_port)


def set_auth(url: str, count):
    """moto's switch for IAM authentication (POST /moto-api/reset-auth): requests after the next `count` ones
    are checked (signature, access key); returns moto's answer (the previous count under
    PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT)."""
    req = urllib.request.Request(url + "/moto-api/reset-auth", data=str(count).encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # nosec - loopback test server
        return json.loads(resp.read())


class R2(object):
    """moto with signatures checked, an access key that may use S3, and StrictR2 in front (the url to give the
    module is .strict.url); .client is a boto3 client straight to moto, to look at the result."""

    def __init__(self):
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        self.server, self.url = start_moto()
        iam = boto3.client("iam", endpoint_url=self.url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        user = "r2-bucket-test-" + secrets.token_hex(4)  # moto's backends are per process: a name of our own
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.previous = set_auth(self.url, 0).get("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT", "inf")
        self.client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                                   aws_access_key_id=self.key_id, aws_secret_access_key=self.secret,
                                   config=Config(s3={"addressing_style": "path"}))
        self.strict = StrictR2(self.url).start()  # what the module talks to: R2's refusals in front of moto

    def stop(self):
        self.strict.stop()
        set_auth(self.url, self.previous)
        self.server.stop()

    def buckets(self):
        return sorted(b["Name"] for b in self.client.list_buckets().get("Buckets", []))

    def rules(self, bucket):
        try:
            return self.client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
                return []
            raise

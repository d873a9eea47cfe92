# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to Cloudflare R2: the shared options of every R2 module, R2Error (the family's one exception;
r2_runners.py turns it into fail_json at one place) and R2API, boto3 against
``https://<account_id>.r2.cloudflarestorage.com`` (region ``auto``) with error translation that
never shows a key.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    boto3 = botocore = Config = None
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

    class BotoCoreError(Exception):
        """Placeholder: boto3 is missing (run_bucket says so before any call)."""

    class ClientError(Exception):
        """Placeholder: boto3 is missing."""

    class EndpointConnectionError(BotoCoreError):
        """Placeholder: boto3 is missing."""

    class NoCredentialsError(BotoCoreError):
        """Placeholder: boto3 is missing."""

R2_ENDPOINT = "https://%s.r2.cloudflarestorage.com"
R2_REGION = "auto"

# Options shared by every R2 module (documented in doc_fragments/r2.py). Modules deep-copy this.
R2_COMMON_ARGS = dict(
    account_id=dict(type="str"),
    endpoint_url=dict(type="str"),
    region=dict(type="str", default=R2_REGION),
    access_key_id=dict(type="str", required=True, no_log=True,
                       fallback=(env_fallback, ["R2_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"])),
    secret_access_key=dict(type="str", required=True, no_log=True,
                           fallback=(env_fallback, ["R2_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"])),
    timeout=dict(type="int", default=60),
)

# Error codes that mean "these credentials are not good for this".
AUTH_CODES = frozenset(["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "InvalidClientTokenId",
                        "Unauthorized", "401", "ExpiredToken"])
DENIED_CODES = frozenset(["AccessDenied", "403", "Forbidden", "AllAccessDisabled"])
NO_LIFECYCLE_CODES = frozenset(["NoSuchLifecycleConfiguration", "NoSuchLifecycle"])
NOT_FOUND_CODES = frozenset(["NoSuchBucket", "404", "NotFound"])


def r2_argument_spec(**extra):
    """A fresh copy of the shared options, merged with a module's own."""
    spec = copy.deepcopy(R2_COMMON_ARGS)
    spec.update(copy.deepcopy(extra))
    return spec


class R2Error(Exception):
    """A failure worth reporting to the user as it is (the message never holds a key)."""

    def __init__(self, msg, code=None, status=None):
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.status = status

    def fail_fields(self):
        """The fields fail_json reports beside msg."""
        return dict(error_code=self.code, status=self.status)


class Refused(R2Error):
    """A refusal before any change, with its own result fields (none, or the module's result so far)."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result

    def fail_fields(self):
        return dict(self.result)


# --------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------

LAST_RULE_HELP = ("R2's S3 API has no listed way to do it (DeleteBucketLifecycle is not in R2's S3 compatibility "
                  "table, and PutBucketLifecycleConfiguration takes at least one rule); nothing was changed. Keep "
                  "one rule (for example abort_multipart_days: 7, as R2 gives new buckets), or remove the last one "
                  "in the Cloudflare dashboard or with `wrangler r2 bucket lifecycle remove`")

_FLEXIBLE_CHECKSUM_HEADER = re.compile(r"(?i)^x-amz-(checksum-[a-z0-9]+|sdk-checksum-algorithm)$")


def content_md5_only(params, **kwargs):
    """botocore event handler (before-call.s3.PutBucketLifecycleConfiguration): Content-MD5, no flexible checksum.

    botocore >= 1.36 gives this operation (httpChecksum requestChecksumRequired in its S3 model) a CRC32
    `x-amz-checksum-crc32` header and `x-amz-sdk-checksum-algorithm` and no Content-MD5, even with
    request_checksum_calculation="when_required": botocore/httpchecksum.py resolve_request_checksum_algorithm
    picks the default algorithm for operations that require a checksum, and apply_request_checksum (called by
    client._make_api_call after the before-call event) writes the headers from the context. R2 marks those
    headers not implemented on PutBucketLifecycleConfiguration (https://developers.cloudflare.com/r2/api/s3/api/).
    So: drop the flexible-checksum context and headers and send the body's MD5, as S3 clients did before 1.36.
    """
    del kwargs
    checksum = (params.get("context") or {}).get("checksum")
    if isinstance(checksum, dict):
        checksum.pop("request_algorithm", None)
        checksum.pop("request_algorithm_header", None)
    headers = params["headers"]
    for name in [name for name in headers if _FLEXIBLE_CHECKSUM_HEADER.match(name)]:
        del headers[name]
    body = params.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        digest = hashlib.md5(body, usedforsecurity=False).digest()  # nosec - S3's integrity header, not security
    except TypeError:  # Python < 3.9
        digest = hashlib.md5(body).digest()  # nosec
    headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def _scrub(text, secrets):
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


class R2API(object):
    """The S3 calls the modules make, with errors turned into R2Error (keys never in a message)."""

    def __init__(self, endpoint_url, access_key_id, secret_access_key, region=R2_REGION, timeout=60):
        if not HAS_BOTO3:
            raise R2Error(missing_required_lib("boto3"))
        self.endpoint_url = endpoint_url
        self._secrets = (access_key_id, secret_access_key)
        options = dict(signature_version="s3v4", s3={"addressing_style": "path"},
                       connect_timeout=timeout, read_timeout=timeout,
                       retries={"max_attempts": 5, "mode": "standard"})
        # botocore >= 1.36 adds CRC checksums to every upload unless told otherwise; send them
        # only where the S3 API requires one, as R2 and older S3-compatible stores expect.
        try:
            config = Config(request_checksum_calculation="when_required",
                            response_checksum_validation="when_required", **options)
        except TypeError:
            config = Config(**options)
        # A session of its own: explicit keys and endpoint, no profile whatever AWS_PROFILE
        # says, so nothing from profiles, the environment's session token or AWS_ENDPOINT_URL.
        core = botocore.session.Session()
        core.get_component("config_store").set_config_variable("profile", None)
        session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                        aws_session_token=None, region_name=region, botocore_session=core)
        self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.client.meta.events.register("before-call.s3.PutBucketLifecycleConfiguration", content_md5_only)
        self.region = region

    def _error(self, exc, what):
        if isinstance(exc, ClientError):
            err = exc.response.get("Error") or {}
            code = str(err.get("Code") or "")
            status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            detail = _scrub(err.get("Message") or code or "no details", self._secrets)
            bad_key = code == "InvalidArgument" and re.search(r"(?i)credential|access key", err.get("Message") or "")
            if code in AUTH_CODES or status == 401 or bad_key:
                msg = ("%s refused the credentials while %s (%s: %s). Check access_key_id and secret_access_key: "
                       "an R2 API token's Access Key ID and Secret Access Key, for this account's endpoint."
                       % (self.endpoint_url, what, code or status, detail))
            elif code in DENIED_CODES or status == 403:
                msg = ("%s denied access while %s (%s: %s). The R2 API token needs Object Read & Write on the bucket, "
                       "and Admin Read & Write to create or delete buckets and change lifecycle rules."
                       % (self.endpoint_url, what, code or status, detail))
            else:
                msg = "%s answered %s while %s: %s" % (self.endpoint_url, code or status, what, detail)
            return R2Error(msg, code=code, status=status)
        if isinstance(exc, EndpointConnectionError):
            return R2Error("Could not connect to %s while %s (account_id, endpoint_url or network?)" % (self.endpoint_url, what))
        if isinstance(exc, NoCredentialsError):
            return R2Error("No credentials: set access_key_id and secret_access_key (or R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY)")
        return R2Error("Request to %s failed while %s: %s" % (self.endpoint_url, what, _scrub(exc, self._secrets)))

    def _call(self, what, method, **kwargs):
        try:
            return getattr(self.client, method)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, what) from exc

    @staticmethod
    def _code(exc):
        return str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or "")

    def bucket_exists(self, name):
        what = "looking for bucket %s" % name
        try:
            self.client.head_bucket(Bucket=name)
            return True
        except ClientError as exc:
            if self._code(exc) in NOT_FOUND_CODES:
                return False
            if self._code(exc) not in DENIED_CODES:
                raise self._error(exc, what) from exc
        except BotoCoreError as exc:
            raise self._error(exc, what) from exc
        # HEAD answers carry no body, so a 403 does not say whether the keys are wrong or only lack
        # rights on this bucket: a listing's error does.
        try:
            self.client.list_objects_v2(Bucket=name, MaxKeys=1)
            return True
        except ClientError as exc:
            if self._code(exc) in NOT_FOUND_CODES:
                return False
            raise self._error(exc, what) from exc
        except BotoCoreError as exc:
            raise self._error(exc, what) from exc

    def create_bucket(self, name):
        kwargs = dict(Bucket=name)
        if self.region not in (R2_REGION, "us-east-1"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if self._code(exc) == "BucketAlreadyOwnedByYou":
                return
            if self._code(exc) == "BucketAlreadyExists":
                raise R2Error("Bucket %s already exists and belongs to someone else" % name, code="BucketAlreadyExists") from exc
            raise self._error(exc, "creating bucket %s" % name) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "creating bucket %s" % name) from exc

    def get_lifecycle(self, name):
        what = "reading the lifecycle rules of bucket %s" % name
        try:
            return self.client.get_bucket_lifecycle_configuration(Bucket=name).get("Rules") or []
        except ClientError as exc:
            if self._code(exc) in NO_LIFECYCLE_CODES:
                return []
            raise self._error(exc, what) from exc
        except BotoCoreError as exc:
            raise self._error(exc, what) from exc

    def put_lifecycle(self, name, rules):
        """Write the bucket's rules: PutBucketLifecycleConfiguration with every rule that remains.

        Never DeleteBucketLifecycle, which R2's S3 compatibility table does not list; removing rules is a Put
        with the others. A Put needs at least one rule (S3's LifecycleConfiguration), so run_bucket refuses to
        remove the last one before anything is sent.
        """
        if not rules:
            raise R2Error("Refusing to remove the last lifecycle rule of bucket %s: %s" % (name, LAST_RULE_HELP))
        self._call("writing the lifecycle rules of bucket %s" % name, "put_bucket_lifecycle_configuration",
                   Bucket=name, LifecycleConfiguration={"Rules": rules})

    def first_objects(self, name, count=1):
        body = self._call("listing bucket %s" % name, "list_objects_v2", Bucket=name, MaxKeys=count)
        return [item["Key"] for item in body.get("Contents") or []]

    def empty_bucket(self, name):
        """Delete every object and abort every multipart upload; returns the number of objects deleted."""
        deleted = 0
        while True:
            keys = self.first_objects(name, 1000)
            if not keys:
                break
            body = self._call("deleting objects of bucket %s" % name, "delete_objects", Bucket=name,
                              Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
            if body.get("Errors"):
                first = body["Errors"][0]
                raise R2Error("Could not delete object %s of bucket %s: %s %s (and %d more errors)"
                              % (first.get("Key"), name, first.get("Code"), first.get("Message"), len(body["Errors"]) - 1))
            deleted += len(keys)
        uploads = self._call("listing multipart uploads of bucket %s" % name, "list_multipart_uploads", Bucket=name)
        for upload in uploads.get("Uploads") or []:
            self._call("aborting a multipart upload in bucket %s" % name, "abort_multipart_upload",
                       Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        return deleted

    def delete_bucket(self, name):
        self._call("deleting bucket %s" % name, "delete_bucket", Bucket=name)

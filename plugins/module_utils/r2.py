# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the infra.k3s Cloudflare R2 modules.

R2 speaks the S3 API, so the modules use boto3 against
``https://<account_id>.r2.cloudflarestorage.com`` (region ``auto``). Everything lives here so
that the modules stay thin: the shared argument spec (deep-copied by each module), the client,
error translation that never shows a key, lifecycle rule normalisation and diffing, and run().
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

_ACCOUNT_RE = re.compile(r"^[0-9a-f]{32}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

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


class InvalidInput(Exception):
    """Invalid module input, rejected before any request."""


# Velero keeps Kopia's repository under <BSL prefix>/kopia/<repository name>/ (vmware-tanzu/velero,
# pkg/persistence/object_store_layout.go NewObjectStoreLayout: subdir "kopia"; pkg/repository/provider/
# unified_repo.go getStorageVariables: prefix/<backend>/<repo name>/). Kopia shares pack files between
# snapshots, so objects there are still needed by later backups however old they are: age-based expiry
# deletes data that newer backups reference. Velero's own TTL (GC controller, then Kopia maintenance) is
# what removes data no backup needs.
def kopia_prefix(velero_prefix):
    """Where Velero keeps Kopia's repositories in the bucket, for a BSL prefix ('' for the bucket root)."""
    velero_prefix = (velero_prefix or "").strip("/")
    return (velero_prefix + "/kopia/") if velero_prefix else "kopia/"


def check_kopia_safe(wanted, velero_prefix, allow):
    """Refuse (InvalidInput) an enabled expiry rule whose prefix covers or lies inside the Kopia repository."""
    if allow:
        return
    kopia = kopia_prefix(velero_prefix)
    for rule_id in sorted(wanted):
        rule = wanted[rule_id]
        if not rule["enabled"] or rule.get("expiration_days") is None:
            continue
        prefix = rule["prefix"]
        if kopia.startswith(prefix) or prefix.startswith(kopia):
            raise InvalidInput(
                "lifecycle rule %r (prefix %r, expiration_days %d) would expire objects under %s, Velero's Kopia "
                "repository: Kopia shares data between snapshots, so age-based expiry deletes data that later backups "
                "still need while they keep showing Completed. Velero's TTL already deletes old backups. Limit the rule "
                "to %sbackups/, or set velero_prefix to where Velero really stores its data in this bucket, or "
                "allow_kopia_expiry=true if you mean it"
                % (rule_id, prefix, rule["expiration_days"], kopia, kopia[:-len("kopia/")]))


def endpoint_of(params):
    """The S3 endpoint: endpoint_url if given, else the account's R2 endpoint."""
    if params.get("endpoint_url"):
        url = params["endpoint_url"].rstrip("/")
        if not re.match(r"^https?://[^/\s]+", url):
            raise InvalidInput("endpoint_url %r is not an http(s) URL" % params["endpoint_url"])
        return url
    account = (params.get("account_id") or "").strip().lower()
    if not account:
        raise InvalidInput("one of account_id and endpoint_url is required")
    if not _ACCOUNT_RE.match(account):
        raise InvalidInput("account_id %r is not a Cloudflare account id (32 hexadecimal characters)" % params["account_id"])
    return R2_ENDPOINT % account


def check_bucket_name(name):
    """R2 bucket names: 3 to 63 lower case letters, digits and hyphens, not starting or ending with a hyphen."""
    if not name or not _BUCKET_RE.match(name):
        raise InvalidInput("bucket name %r is invalid: R2 takes 3 to 63 lower case letters, digits and hyphens, "
                           "beginning and ending with a letter or digit" % (name,))
    return name


# --------------------------------------------------------------------------------------
# Lifecycle rules: one normal form for what the user asks and what the store returns.
# --------------------------------------------------------------------------------------

def desired_rules(rules):
    """Normal form of the user's lifecycle_rules: {id: rule} (raises InvalidInput)."""
    out = {}
    for index, rule in enumerate(rules or []):
        rule_id = str(rule.get("id") or "").strip()
        if not rule_id:
            raise InvalidInput("lifecycle_rules[%d] has no id" % index)
        if rule_id in out:
            raise InvalidInput("lifecycle rule id %r is given twice" % rule_id)
        if len(rule_id) > 255:
            raise InvalidInput("lifecycle rule id %r is longer than 255 characters" % rule_id)
        expiration = rule.get("expiration_days")
        abort = rule.get("abort_multipart_days")
        if expiration is None and abort is None:
            raise InvalidInput("lifecycle rule %r needs expiration_days or abort_multipart_days" % rule_id)
        for key, value in (("expiration_days", expiration), ("abort_multipart_days", abort)):
            if value is not None and int(value) < 1:
                raise InvalidInput("lifecycle rule %r: %s must be 1 or more, not %s" % (rule_id, key, value))
        out[rule_id] = dict(id=rule_id, prefix=rule.get("prefix") or "",
                            expiration_days=None if expiration is None else int(expiration),
                            abort_multipart_days=None if abort is None else int(abort),
                            enabled=bool(rule.get("enabled", True)))
    return out


_KNOWN_RULE_KEYS = frozenset(["ID", "Filter", "Prefix", "Status", "Expiration", "AbortIncompleteMultipartUpload"])


def existing_rule(raw):
    """Normal form of a rule as S3 returns it, or None when it uses something the module does not manage."""
    if set(raw) - _KNOWN_RULE_KEYS:
        return None
    flt = raw.get("Filter")
    if flt is None:
        prefix = raw.get("Prefix") or ""
    elif set(flt) <= set(["Prefix"]):
        prefix = flt.get("Prefix") or ""
    else:
        return None
    expiration = raw.get("Expiration") or {}
    if set(expiration) - set(["Days"]):
        return None
    abort = raw.get("AbortIncompleteMultipartUpload") or {}
    return dict(id=raw.get("ID") or "", prefix=prefix,
                expiration_days=expiration.get("Days"),
                abort_multipart_days=abort.get("DaysAfterInitiation"),
                enabled=raw.get("Status") == "Enabled")


def rule_view(raw):
    """What the module shows of a stored rule: its normal form, or the raw rule for ones it does not manage."""
    norm = existing_rule(raw)
    return norm if norm is not None else dict(id=raw.get("ID") or "", unmanaged=copy.deepcopy(raw))


def rule_payload(rule):
    """S3 form of a normalised rule."""
    body = {"ID": rule["id"], "Filter": {"Prefix": rule["prefix"]}, "Status": "Enabled" if rule["enabled"] else "Disabled"}
    if rule.get("expiration_days") is not None:
        body["Expiration"] = {"Days": rule["expiration_days"]}
    if rule.get("abort_multipart_days") is not None:
        body["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule["abort_multipart_days"]}
    return body


def plan_lifecycle(current_raw, wanted, purge):
    """The rules the bucket should end with, as (changed, after_views, after_payload).

    wanted is {id: normal rule}. With purge, rules not in wanted go; otherwise they stay as they are.
    Rule order does not matter to S3, so it is compared by id.
    """
    after_payload = []
    for raw in current_raw:
        rule_id = raw.get("ID") or ""
        if rule_id in wanted:
            continue
        if not purge:
            after_payload.append(copy.deepcopy(raw))
    for rule_id in sorted(wanted):
        after_payload.append(rule_payload(wanted[rule_id]))
    before = sorted((rule_view(raw) for raw in current_raw), key=lambda r: r["id"])
    after = sorted((rule_view(raw) for raw in after_payload), key=lambda r: r["id"])
    return before != after, before, after, after_payload


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


# --------------------------------------------------------------------------------------
# r2_bucket
# --------------------------------------------------------------------------------------

def _state_view(name, exists, rules):
    return dict(name=name, exists=exists, lifecycle_rules=rules if exists else [])


def run_bucket(module, api_factory=R2API):
    """r2_bucket: the bucket exists (with these lifecycle rules) or not."""
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=str(BOTO3_IMPORT_ERROR))
    params = module.params
    try:
        name = check_bucket_name(params["name"])
        endpoint = endpoint_of(params)
        manage_rules = params.get("lifecycle_rules") is not None
        wanted = desired_rules(params.get("lifecycle_rules")) if manage_rules else {}
        check_kopia_safe(wanted, params.get("velero_prefix"), params.get("allow_kopia_expiry"))
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sent: %s" % exc)
    if not params.get("access_key_id") or not params.get("secret_access_key"):
        module.fail_json(msg="access_key_id and secret_access_key are required (set them, or R2_ACCESS_KEY_ID and "
                             "R2_SECRET_ACCESS_KEY in the environment); nothing was sent")
    result = dict(changed=False, name=name, endpoint_url=endpoint)
    try:
        api = api_factory(endpoint, params["access_key_id"], params["secret_access_key"],
                          region=params["region"], timeout=params["timeout"])
        exists = api.bucket_exists(name)
        current = api.get_lifecycle(name) if exists else []
        before = _state_view(name, exists, sorted((rule_view(r) for r in current), key=lambda r: r["id"]))

        if params["state"] == "absent":
            result["lifecycle_rules"] = []
            result["deleted_objects"] = 0
            if exists:
                objects = api.first_objects(name, 1)
                if objects and not params["force"]:
                    module.fail_json(msg="Bucket %s is not empty (it holds %s, maybe more); nothing was deleted. "
                                         "Set force=true to delete its objects with it." % (name, objects[0]), **result)
                result["changed"] = True
                if not module.check_mode:
                    result["deleted_objects"] = api.empty_bucket(name) if objects else 0
                    api.delete_bucket(name)
            if module._diff:
                result["diff"] = dict(before=before, after=_state_view(name, False, []))
            module.exit_json(**result)

        changed_rules, unused_before, after_rules, payload = plan_lifecycle(current, wanted, params["purge_lifecycle_rules"]) \
            if manage_rules else (False, None, before["lifecycle_rules"], None)
        # No rule would remain: R2 lists no call that removes the last one (put_lifecycle). A new R2 bucket comes
        # with a rule of its own, so an empty list with purge cannot end with no rules there either.
        if manage_rules and not payload and (changed_rules or (not exists and params["purge_lifecycle_rules"])):
            module.fail_json(msg="Refusing to remove every lifecycle rule of bucket %s: %s" % (name, LAST_RULE_HELP), **result)
        result["changed"] = not exists or changed_rules
        result["created"] = not exists
        result["lifecycle_rules"] = after_rules
        if module._diff:
            result["diff"] = dict(before=before, after=_state_view(name, True, after_rules))
        if module.check_mode:
            module.exit_json(**result)
        if not exists:
            api.create_bucket(name)
            # A new R2 bucket may come with a default rule (abort multipart uploads after 7 days):
            # read again so that the rules are compared with what is really there.
            if manage_rules:
                current = api.get_lifecycle(name)
                changed_rules, unused_before, after_rules, payload = plan_lifecycle(current, wanted, params["purge_lifecycle_rules"])
                result["lifecycle_rules"] = after_rules
            else:
                result["lifecycle_rules"] = sorted((rule_view(r) for r in api.get_lifecycle(name)), key=lambda r: r["id"])
        if manage_rules and changed_rules:
            api.put_lifecycle(name, payload)
        module.exit_json(**result)
    except R2Error as exc:
        module.fail_json(msg=exc.msg, error_code=exc.code, status=exc.status)

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What r2_bucket asks for, checked and normalised before any request: bucket names and endpoints as
R2 takes them, lifecycle rules in one normal form for the input and what the store returns (and the
plan between them), and the refusal of expiry over Velero's Kopia repository. Pure functions.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.infra.k3s.plugins.module_utils.r2_client import (
    R2_ENDPOINT,
)

_ACCOUNT_RE = re.compile(r"^[0-9a-f]{32}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


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

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to Cloudflare: the shared options of every Cloudflare module, the SDK client and its one request wrapper.

- CLOUDFLARE_COMMON_ARGS (documented in doc_fragments/cloudflare.py), deep-copied by each module,
- CloudflareError, the one exception of the Cloudflare modules (cloudflare_runners.py turns it into
  fail_json at one place),
- CloudflareAPI: the few calls the modules make, retrying 429/5xx honouring Retry-After, and error
  translation naming the missing token permission.

Works with the ``cloudflare`` Python SDK 4.x and 5.x. Requests go through
``with_raw_response`` so both major versions return the same JSON envelope.
"""

from __future__ import annotations

import copy
import email.utils
import time

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import safe_hostname


try:
    import cloudflare
    HAS_CLOUDFLARE = True
    CLOUDFLARE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    cloudflare = None
    HAS_CLOUDFLARE = False
    CLOUDFLARE_IMPORT_ERROR = exc

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

# Options shared by every Cloudflare module (documented in doc_fragments/cloudflare.py).
# Modules deep-copy this: see cloudflare_argument_spec().
CLOUDFLARE_COMMON_ARGS = dict(
    api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
    base_url=dict(type="str", default=DEFAULT_BASE_URL),
    timeout=dict(type="float", default=30.0),
    max_retries=dict(type="int", default=3),
)


# Cloudflare error codes the modules act on.
CODE_IDENTICAL_RECORD = 81058  # "An identical record already exists."
CODE_RECORD_NOT_FOUND = 81044  # "Record does not exist."
CODES_ZONE_NOT_ROUTABLE = frozenset([7003, 7000])

# The longest Retry-After honoured; a longer wait fails the task with a clear message.
MAX_RETRY_AFTER = 60.0
# Records per page when listing: a whole zone normally fits in one request.
LIST_PER_PAGE = 5000

PERM_ZONE_READ = "Zone:Read"
PERM_DNS_READ = "DNS:Read"
PERM_DNS_EDIT = "DNS:Edit"


def cloudflare_argument_spec(**extra):
    """A fresh copy of the shared options, merged with a module's own."""
    spec = copy.deepcopy(CLOUDFLARE_COMMON_ARGS)
    spec.update(copy.deepcopy(extra))
    return spec


class CloudflareError(Exception):
    """A failure worth reporting to the user as it is (message is safe to show)."""

    def __init__(self, msg, status=None, codes=None, errors=None, outcome_unknown=False, attempts=1):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.codes = set(codes or [])
        self.errors = errors or []
        # True when an earlier attempt of the same request failed in a way that leaves open
        # whether Cloudflare applied it (5xx, timeout, dropped connection).
        self.outcome_unknown = outcome_unknown
        self.attempts = attempts

    def fail_fields(self):
        """The fields fail_json reports beside msg."""
        return dict(status=self.status, error_codes=sorted(self.codes))


class Refused(CloudflareError):
    """A refusal before any change (conflicting record sets, a batch too large), with its own result fields."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = result

    def fail_fields(self):
        return dict(self.result)


# --------------------------------------------------------------------------------------
# Talking to Cloudflare
# --------------------------------------------------------------------------------------

def _retry_after_seconds(headers):
    if headers is None:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _error_details(body):
    codes, errors = [], []
    if isinstance(body, dict):
        items = body.get("errors") or []
    elif isinstance(body, list):
        items = body
    else:
        items = []
    for item in items:
        if isinstance(item, dict):
            code = item.get("code")
            message = item.get("message") or ""
            if code is not None:
                try:
                    codes.append(int(code))
                except (TypeError, ValueError):
                    pass
            errors.append({"code": code, "message": message})
            for chained in item.get("error_chain") or []:
                if isinstance(chained, dict):
                    errors.append({"code": chained.get("code"), "message": chained.get("message") or ""})
    return codes, errors


def describe_errors(errors):
    return "; ".join("%s: %s" % (err.get("code"), err.get("message")) if err.get("code") is not None else str(err.get("message"))
                     for err in errors)


class CloudflareAPI(object):
    """The few calls the modules make, with retries and readable errors."""

    def __init__(self, api_token, base_url=DEFAULT_BASE_URL, timeout=30.0, max_retries=3, sleep=time.sleep, client=None):
        if not api_token:
            raise CloudflareError("api_token is empty: pass the Cloudflare API token (or set CLOUDFLARE_API_TOKEN)")
        self.max_retries = max(0, int(max_retries))
        self.sleep = sleep
        self.requests = 0
        self.client = client if client is not None else build_client(api_token, base_url, timeout)

    # -- the request wrapper --------------------------------------------------------

    def _call(self, what, permission, func, **kwargs):
        """Run one SDK call, retrying 429, 5xx and transport errors; return the decoded JSON body."""
        attempt = 0
        outcome_unknown = False
        while True:
            attempt += 1
            self.requests += 1
            try:
                raw = func(**kwargs)
            except cloudflare.APIStatusError as exc:
                status = exc.status_code
                retryable = status == 429 or status >= 500
                codes, errors = _error_details(getattr(exc, "body", None))
                wait = _retry_after_seconds(exc.response.headers) if exc.response is not None else None
                if retryable and attempt <= self.max_retries and (wait is None or wait <= MAX_RETRY_AFTER):
                    if status >= 500:
                        outcome_unknown = True
                    self.sleep(wait if wait is not None else min(8.0, 0.5 * (2 ** attempt)))
                    continue
                raise self._status_error(what, permission, status, codes, errors, wait, attempt, outcome_unknown)
            except cloudflare.APIConnectionError as exc:
                timeout = isinstance(exc, cloudflare.APITimeoutError)
                if attempt <= self.max_retries:
                    outcome_unknown = True
                    self.sleep(min(8.0, 0.5 * (2 ** attempt)))
                    continue
                raise CloudflareError(
                    "Cloudflare API %s while %s, after %d attempt(s): %s (base_url, network or timeout?)"
                    % ("timed out" if timeout else "could not be reached", what, attempt, exc.__class__.__name__),
                    outcome_unknown=outcome_unknown, attempts=attempt)
            try:
                body = raw.json()
            except ValueError:
                raise CloudflareError("Cloudflare answered with something that is not JSON while %s (HTTP %s)"
                                      % (what, raw.status_code), status=raw.status_code, attempts=attempt)
            if isinstance(body, dict) and body.get("success") is False:
                codes, errors = _error_details(body)
                raise self._status_error(what, permission, raw.status_code, codes, errors, None, attempt, outcome_unknown)
            return body

    def _status_error(self, what, permission, status, codes, errors, wait, attempts, outcome_unknown):
        detail = describe_errors(errors) or "no error details"
        if status == 401:
            msg = ("Cloudflare rejected the API token (HTTP 401) while %s: it is invalid, expired or revoked (%s). "
                   "The token needs %s for this; cloudflare_dns needs Zone:Read (to look up the zone by name) and DNS:Edit."
                   % (what, detail, permission))
        elif status == 403:
            msg = ("The Cloudflare API token lacks the %s permission (HTTP 403) while %s (%s). "
                   "Give the token %s on this zone%s."
                   % (permission, what, detail, permission,
                      "" if permission != PERM_ZONE_READ else ", or pass zone_id to skip the zone lookup"))
        elif status == 429:
            msg = ("Cloudflare rate limited the requests (HTTP 429) while %s and still did after %d attempt(s)%s (%s). "
                   "Try again later, or raise max_retries."
                   % (what, attempts, "; it asked to wait %.0f s" % wait if wait is not None else "", detail))
        elif status >= 500:
            msg = ("Cloudflare answered HTTP %d while %s, after %d attempt(s) (%s). The API is having trouble; try again later."
                   % (status, what, attempts, detail))
        else:
            msg = "Cloudflare refused the request (HTTP %d) while %s: %s" % (status, what, detail)
        return CloudflareError(msg, status=status, codes=codes, errors=errors, outcome_unknown=outcome_unknown, attempts=attempts)

    # -- the calls ------------------------------------------------------------------

    def find_zone(self, zone_name):
        what = "looking up zone %s" % zone_name
        body = self._call(what, PERM_ZONE_READ, self.client.zones.with_raw_response.list, name=zone_name, per_page=50)
        matches = [zone for zone in (body or {}).get("result") or [] if safe_hostname(zone.get("name")) == zone_name]
        # The same name can exist in several accounts (e.g. a pending copy): prefer the active zone.
        matches.sort(key=lambda zone: zone.get("status") != "active")
        if matches:
            return {"id": matches[0]["id"], "name": zone_name}
        raise CloudflareError(
            "Zone %s was not found among the zones this API token can read. Check the zone name, and that the token's "
            "zone resources include it with Zone:Read (or pass zone_id to skip the lookup)." % zone_name)

    def list_records(self, zone, name=None, rtype=None):
        """All records of the zone (optionally one name / type), following pagination."""
        kwargs = {"zone_id": zone["id"], "per_page": LIST_PER_PAGE}
        if name is not None:
            kwargs["name"] = _name_filter(name)
        if rtype is not None:
            kwargs["type"] = rtype
        what = "reading DNS records of zone %s" % (zone.get("name") or zone["id"])
        records = []
        page = 1
        while True:
            kwargs["page"] = page
            try:
                body = self._call(what, PERM_DNS_READ, self.client.dns.records.with_raw_response.list, **kwargs)
            except CloudflareError as exc:
                raise _zone_id_error(exc, zone)
            result = (body or {}).get("result") or []
            records.extend(result)
            info = (body or {}).get("result_info") or {}
            total_pages = info.get("total_pages")
            if total_pages is not None:
                if page >= int(total_pages):
                    break
            elif len(result) < LIST_PER_PAGE:
                break
            if not result:
                break
            page += 1
        return records

    def batch(self, zone, plan):
        what = "applying %s to zone %s in one batch" % (
            ", ".join("%d %s" % (count, key) for key, count in plan.counts().items() if count), zone.get("name") or zone["id"])
        try:
            body = self._call(what, PERM_DNS_EDIT, self.client.dns.records.with_raw_response.batch,
                              zone_id=zone["id"], **plan.body())
        except CloudflareError as exc:
            raise _zone_id_error(exc, zone)
        return (body or {}).get("result") or {}


def _zone_id_error(exc, zone):
    """Cloudflare answers an unknown zone id with 'Could not route to /zones/...' (7003/7000)."""
    if exc.codes & CODES_ZONE_NOT_ROUTABLE:
        return CloudflareError(
            "Zone id %s was not found, or this API token cannot see it (%s)" % (zone["id"], describe_errors(exc.errors)),
            status=exc.status, codes=exc.codes, errors=exc.errors, outcome_unknown=exc.outcome_unknown)
    return exc


def _name_filter(name):
    """The SDK's list filter for an exact name: {'exact': name} where the SDK takes a Name filter (4.x and 5.x)."""
    try:
        from cloudflare.types.dns import record_list_params
        fields = getattr(record_list_params.Name, "__annotations__", {})
        if "exact" in fields:
            return {"exact": name}
    except (ImportError, AttributeError):
        pass
    return name


def build_client(api_token, base_url=DEFAULT_BASE_URL, timeout=30.0):
    """The SDK client with the token the user gave and nothing from the environment.

    The SDK reads CLOUDFLARE_EMAIL / CLOUDFLARE_API_KEY / CLOUDFLARE_API_USER_SERVICE_KEY even when
    None is passed, and prefers them to the token: they are cleared on the client. Retries are
    done by CloudflareAPI (max_retries=0 here) so that they are counted and Retry-After honoured.
    """
    if not HAS_CLOUDFLARE:
        raise CloudflareError(missing_required_lib("cloudflare"))
    client = cloudflare.Cloudflare(
        api_token=api_token,
        api_email=None,
        api_key=None,
        base_url=base_url or DEFAULT_BASE_URL,
        timeout=timeout,
        max_retries=0,
    )
    client.api_email = None
    client.api_key = None
    if hasattr(client, "user_service_key"):
        client.user_service_key = None
    if not hasattr(client.dns.records, "batch"):
        raise CloudflareError("The installed cloudflare SDK has no dns.records.batch: install cloudflare>=4,<6")
    return client

# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run() of each Cloudflare module: cloudflare_dns and cloudflare_dns_info.

Each runner returns the module's result or raises: CloudflareError (cloudflare_client.py) for a
failure, InvalidInput (cloudflare_records.py) for input refused before any request. execute() is the
one place that turns them into fail_json and calls exit_json.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_client import (
    CLOUDFLARE_IMPORT_ERROR,
    CODE_IDENTICAL_RECORD,
    CODE_RECORD_NOT_FOUND,
    HAS_CLOUDFLARE,
    CloudflareAPI,
    CloudflareError,
    Refused,
    describe_errors,
)
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_plan import (
    BATCH_LIMIT_FREE,
    batch_too_large,
    build_record_sets,
    check_batch_size,
    plan_changes,
    plan_diff,
)
from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import (
    fqdn,
    InvalidInput,
    normalize_zone,
    record_view,
    safe_hostname,
)


# Up to this many distinct names are read with one filtered list each (one request per name); above it
# the zone is read whole, which is one request for zones of up to LIST_PER_PAGE records.
FILTERED_LIST_MAX_NAMES = 1


# --------------------------------------------------------------------------------------
# The modules' run()
# --------------------------------------------------------------------------------------
def _api(module, api_factory):
    params = module.params
    return api_factory(params["api_token"], base_url=params["base_url"], timeout=params["timeout"], max_retries=params["max_retries"])


def _zone(api, params):
    zone_name = normalize_zone(params.get("zone"))
    if params.get("zone_id"):
        return {"id": params["zone_id"], "name": zone_name}
    return api.find_zone(zone_name)


def _read_existing(api, zone, sets):
    names = sorted(set(rset.name for rset in sets))
    if len(names) <= FILTERED_LIST_MAX_NAMES:
        records = []
        for name in names:
            records.extend(api.list_records(zone, name=name))
        return records
    wanted = set(names)
    return [record for record in api.list_records(zone) if safe_hostname(record.get("name")) in wanted]


def _result_records(plan, batch_result):
    """The managed record sets as they now are: unchanged records plus what the batch returned."""
    returned = {}
    for key in ("patches", "puts", "posts"):
        for record in batch_result.get(key) or []:
            view = record_view(record)
            returned[(view["name"], view["type"], view["value"])] = view
    records = []
    for rset, _before, after in plan.sets:
        for view in after:
            real = returned.get((view["name"], view["type"], view["value"]))
            records.append(real if real is not None else view)
    return records


def run_dns(module, api_factory=CloudflareAPI):
    """cloudflare_dns: make record sets as described, in one batch per run; the module's result."""
    params = module.params
    zone_name = normalize_zone(params.get("zone"))
    max_batch_size = check_batch_size(params.get("max_batch_size", BATCH_LIMIT_FREE))
    sets = build_record_sets(params, zone_name)
    api = _api(module, api_factory)
    zone = _zone(api, params)
    existing = _read_existing(api, zone, sets)
    plan = plan_changes(sets, existing, zone.get("name"))
    if plan.conflicts:
        raise Refused("Cannot apply, nothing was changed: " + " | ".join(plan.conflicts), zone=zone)
    too_large = batch_too_large(plan, max_batch_size)
    if too_large:
        # Also in check mode: the same run without --check would fail here.
        raise Refused(too_large, zone=zone, batch=plan.counts())
    result = dict(changed=not plan.empty, zone=zone, batch=plan.counts(),
                  created=plan.created, updated=plan.updated, deleted=plan.deleted)
    if module._diff:
        result["diff"] = plan_diff(plan)
    if plan.empty or module.check_mode:
        result["records"] = _result_records(plan, {})
        return result
    try:
        batch_result = api.batch(zone, plan)
    except CloudflareError as exc:
        # An earlier attempt may have gone through before its answer was lost; a retry then
        # meets its own records ("identical record already exists") or deletions ("record does not exist").
        if not (exc.outcome_unknown and exc.codes & set([CODE_IDENTICAL_RECORD, CODE_RECORD_NOT_FOUND])):
            raise
        replan = plan_changes(sets, _read_existing(api, zone, sets), zone.get("name"))
        if not replan.empty:
            raise
        result["records"] = _result_records(replan, {})
        module.warn("Cloudflare's answer to the batch was lost and the retry found it already applied (%s); "
                    "the records were read back and match what was asked" % describe_errors(exc.errors))
        return result
    result["records"] = _result_records(plan, batch_result)
    returned = {}
    for key in ("patches", "puts", "posts"):
        for record in batch_result.get(key) or []:
            view = record_view(record)
            returned[(view["name"], view["type"], view["value"])] = view
    for key in ("created", "updated"):
        result[key] = [returned.get((view["name"], view["type"], view["value"]), view) for view in result[key]]
    return result


def run_dns_info(module, api_factory=CloudflareAPI):
    """cloudflare_dns_info: the zone's records as cloudflare_dns compares them; the module's result."""
    params = module.params
    zone_name = normalize_zone(params.get("zone"))
    name = None
    if params.get("name") is not None:
        name = fqdn(params["name"], zone_name)
    api = _api(module, api_factory)
    zone = _zone(api, params)
    records = api.list_records(zone, name=name, rtype=params.get("type"))
    views = [record_view(record, zone.get("name")) for record in records]
    if name is not None:
        views = [view for view in views if view["name"] == name]
    if params.get("type"):
        views = [view for view in views if view["type"] == params["type"]]
    views.sort(key=lambda view: (view["name"] or "", view["type"] or "", view["value"]))
    return dict(changed=False, zone=zone, records=views)


# --------------------------------------------------------------------------------------
# Entry point of every Cloudflare module
# --------------------------------------------------------------------------------------

def execute(module, runner, api_factory=CloudflareAPI):
    """Run one module's runner(module, api_factory) and exit: the one place its failures become fail_json."""
    if not HAS_CLOUDFLARE:
        module.fail_json(msg=missing_required_lib("cloudflare"), exception=str(CLOUDFLARE_IMPORT_ERROR))
    try:
        result = runner(module, api_factory)
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sent to Cloudflare: %s" % exc)
    except CloudflareError as exc:
        module.fail_json(msg=exc.msg, **exc.fail_fields())
    module.exit_json(**result)

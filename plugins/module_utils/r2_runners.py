# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run() of r2_bucket and execute(), the one place where the R2 modules' failures (R2Error,
InvalidInput) become fail_json.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.infra.k3s.plugins.module_utils.r2_client import (
    BOTO3_IMPORT_ERROR,
    HAS_BOTO3,
    LAST_RULE_HELP,
    R2API,
    R2Error,
    Refused,
)
from ansible_collections.infra.k3s.plugins.module_utils.r2_rules import (
    check_bucket_name,
    check_kopia_safe,
    desired_rules,
    endpoint_of,
    InvalidInput,
    plan_lifecycle,
    rule_view,
)


# --------------------------------------------------------------------------------------
# r2_bucket
# --------------------------------------------------------------------------------------

def _state_view(name, exists, rules):
    return dict(name=name, exists=exists, lifecycle_rules=rules if exists else [])


def run_bucket(module, api_factory=R2API):
    """r2_bucket: the bucket exists (with these lifecycle rules) or not; the module's result."""
    params = module.params
    name = check_bucket_name(params["name"])
    endpoint = endpoint_of(params)
    manage_rules = params.get("lifecycle_rules") is not None
    wanted = desired_rules(params.get("lifecycle_rules")) if manage_rules else {}
    check_kopia_safe(wanted, params.get("velero_prefix"), params.get("allow_kopia_expiry"))
    if not params.get("access_key_id") or not params.get("secret_access_key"):
        raise Refused("access_key_id and secret_access_key are required (set them, or R2_ACCESS_KEY_ID and "
                      "R2_SECRET_ACCESS_KEY in the environment); nothing was sent")
    result = dict(changed=False, name=name, endpoint_url=endpoint)
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
                raise Refused("Bucket %s is not empty (it holds %s, maybe more); nothing was deleted. "
                              "Set force=true to delete its objects with it." % (name, objects[0]), **result)
            result["changed"] = True
            if not module.check_mode:
                result["deleted_objects"] = api.empty_bucket(name) if objects else 0
                api.delete_bucket(name)
        if module._diff:
            result["diff"] = dict(before=before, after=_state_view(name, False, []))
        return result

    changed_rules, unused_before, after_rules, payload = plan_lifecycle(current, wanted, params["purge_lifecycle_rules"]) \
        if manage_rules else (False, None, before["lifecycle_rules"], None)
    # No rule would remain: R2 lists no call that removes the last one (put_lifecycle). A new R2 bucket comes
    # with a rule of its own, so an empty list with purge cannot end with no rules there either.
    if manage_rules and not payload and (changed_rules or (not exists and params["purge_lifecycle_rules"])):
        raise Refused("Refusing to remove every lifecycle rule of bucket %s: %s" % (name, LAST_RULE_HELP), **result)
    result["changed"] = not exists or changed_rules
    result["created"] = not exists
    result["lifecycle_rules"] = after_rules
    if module._diff:
        result["diff"] = dict(before=before, after=_state_view(name, True, after_rules))
    if module.check_mode:
        return result
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
    return result


# --------------------------------------------------------------------------------------
# Entry point of every R2 module
# --------------------------------------------------------------------------------------

def execute(module, runner, api_factory=R2API):
    """Run one module's runner(module, api_factory) and exit: the one place its failures become fail_json."""
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=str(BOTO3_IMPORT_ERROR))
    try:
        result = runner(module, api_factory)
    except InvalidInput as exc:
        module.fail_json(msg="Invalid input, nothing was sent: %s" % exc)
    except R2Error as exc:
        module.fail_json(msg=exc.msg, **exc.fail_fields())
    module.exit_json(**result)

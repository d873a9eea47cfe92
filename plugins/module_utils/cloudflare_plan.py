# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloudflare_dns planner: record sets built from the module's input, compared with the records the
zone has, turned into one batch of changes (and its Ansible diff). Pure functions, no requests.
"""

from __future__ import annotations

from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import (
    desired_record,
    fqdn,
    InvalidInput,
    PRIORITY_TYPES,
    PRIVATE_ROUTING_TYPES,
    PROXIABLE_TYPES,
    RECORD_TYPES,
    record_view,
    TAG_RE,
    TTL_AUTO,
    TTL_MAX,
    TTL_MIN,
)


# Changes Cloudflare takes in one batch: 200 on the Free plan, 3,500 on Pro, Business and Enterprise
# (developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes/, "Availability and limits").
BATCH_LIMIT_FREE = 200
BATCH_LIMIT_PAID = 3500


# --------------------------------------------------------------------------------------
# Record sets and the plan
# --------------------------------------------------------------------------------------

SET_KEYS = ("name", "type", "values", "ttl", "proxied", "comment", "tags", "priority", "state", "exclusive")
INHERITED_KEYS = ("ttl", "proxied", "comment", "tags", "state", "exclusive")


class RecordSet(object):
    """(name, type) -> values, with the attributes every value of the set gets."""

    def __init__(self, name, rtype, values, ttl, proxied, comment, tags, state, exclusive, given_name=None):
        self.name = name
        self.type = rtype
        self.values = values  # list of DesiredRecord
        self.ttl = ttl
        self.proxied = proxied
        self.comment = comment
        self.tags = tags
        self.state = state
        self.exclusive = exclusive
        self.given_name = given_name or name

    @property
    def ident(self):
        return (self.name, self.type)

    def label(self):
        return "%s %s" % (self.name, self.type)


def build_record_sets(params, zone):
    """Validate the module input and turn it into RecordSets. Raises InvalidInput before any request."""
    defaults = dict((key, params.get(key)) for key in INHERITED_KEYS)
    if params.get("records") is not None:
        entries = params["records"]
        if not entries:
            raise InvalidInput("records is empty")
    else:
        entries = [dict((key, params.get(key)) for key in ("name", "type", "values", "priority"))]
    sets = []
    seen = {}
    for index, entry in enumerate(entries):
        where = "records[%d]" % index if params.get("records") is not None else "the record set"
        merged = dict(defaults)
        for key in SET_KEYS:
            if entry.get(key) is not None:
                merged[key] = entry[key]
        try:
            rset = _build_record_set(merged, zone)
        except InvalidInput as exc:
            raise InvalidInput("%s (%s %s): %s" % (where, entry.get("name"), entry.get("type"), exc)) from exc
        if rset.ident in seen:
            raise InvalidInput("%s and %s both describe %s: give each (name, type) once" % (seen[rset.ident], where, rset.label()))
        seen[rset.ident] = where
        sets.append(rset)
    _check_cname_exclusivity(sets, zone)
    return sets


def _build_record_set(spec, zone):
    rtype = str(spec.get("type") or "").upper()
    if rtype not in RECORD_TYPES:
        raise InvalidInput("type must be one of %s" % ", ".join(RECORD_TYPES))
    if spec.get("name") is None:
        raise InvalidInput("name is required")
    name = fqdn(spec["name"], zone)
    state = spec.get("state") or "present"
    exclusive = True if spec.get("exclusive") is None else bool(spec["exclusive"])
    raw_values = spec.get("values")
    if raw_values is None:
        raw_values = []
    if isinstance(raw_values, (str, bytes)):
        raw_values = [raw_values]
    if state == "present" and not raw_values:
        raise InvalidInput("values is required with state=present (use state=absent to remove the record set)")
    # ttl and proxied, like comment and tags, are left as they are on existing records when not set
    # (None); new records get 1 (automatic) and not proxied.
    ttl = spec.get("ttl")
    if ttl is not None:
        try:
            ttl = int(ttl)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("ttl %r is not a number" % (ttl,)) from exc
        if ttl != TTL_AUTO and not TTL_MIN <= ttl <= TTL_MAX:
            raise InvalidInput("ttl %d is out of range: use 1 (automatic) or %d-%d seconds" % (ttl, TTL_MIN, TTL_MAX))
    proxied = None if spec.get("proxied") is None else bool(spec["proxied"])
    if proxied and rtype not in PROXIABLE_TYPES:
        raise InvalidInput("only A, AAAA and CNAME records can be proxied")
    if proxied and ttl not in (None, TTL_AUTO):
        raise InvalidInput("proxied records always have automatic TTL: set ttl to 1 or leave it out (got %d)" % ttl)
    priority = spec.get("priority")
    if priority is not None and rtype not in PRIORITY_TYPES:
        raise InvalidInput("priority applies to MX and SRV records only")
    if rtype == "SRV":
        labels = name.split(".")
        if len(labels) < 3 or not labels[0].startswith("_") or not labels[1].startswith("_"):
            raise InvalidInput("an SRV name must look like _service._proto.name (got %s)" % name)
    tags = spec.get("tags")
    if tags is not None:
        tags = sorted(set(str(tag) for tag in tags))
        for tag in tags:
            if not TAG_RE.match(tag):
                raise InvalidInput("tag %r is not name:value (the name of letters, digits, - and _, the value on one line)" % (tag,))
    values = []
    keys = set()
    for value in raw_values:
        record = desired_record(rtype, value, priority)
        if record.key in keys:
            continue  # the same value twice (after normalisation) is one record
        keys.add(record.key)
        values.append(record)
    if rtype == "CNAME" and len(values) > 1:
        raise InvalidInput("a CNAME record set has exactly one value (got %d)" % len(values))
    return RecordSet(name, rtype, values, ttl, proxied, spec.get("comment"), tags, state, exclusive, spec["name"])


def _check_cname_exclusivity(sets, zone=None):
    """A CNAME must be alone at its name, except at the zone apex, where Cloudflare flattens it."""
    by_name = {}
    for rset in sets:
        if rset.state == "present" and rset.name != zone:
            by_name.setdefault(rset.name, set()).add(rset.type)
    for name, types in sorted(by_name.items()):
        if "CNAME" in types and len(types) > 1:
            others = ", ".join(sorted(types - set(["CNAME"])))
            raise InvalidInput("%s cannot have a CNAME beside other types (%s): a CNAME must be alone at its name" % (name, others))


def _same_comment(current, wanted):
    return (current or "") == (wanted or "")


class Plan(object):
    """The batch to send and what it does to each record set."""

    def __init__(self):
        self.deletes = []   # [{"id": ...}]
        self.patches = []   # [{"id": ..., fields}]
        self.puts = []      # [{"id": ..., full record}]
        self.posts = []     # [full record]
        self.created = []   # views (predicted)
        self.updated = []   # views (predicted, after)
        self.deleted = []   # views
        self.sets = []      # [(RecordSet, before views, after views)]
        self.conflicts = []

    @property
    def empty(self):
        return not (self.deletes or self.patches or self.puts or self.posts)

    def body(self):
        body = {}
        for key in ("deletes", "patches", "puts", "posts"):
            if getattr(self, key):
                body[key] = getattr(self, key)
        return body

    def counts(self):
        return dict((key, len(getattr(self, key))) for key in ("deletes", "patches", "puts", "posts"))


def _wanted_ttl_proxied(rset, current=None):
    """The TTL and proxied status a record of the set gets: as set; if not set, as the record has them
    (a new record: automatic TTL, not proxied). A proxied record's TTL is always automatic."""
    if rset.proxied is not None:
        proxied = rset.proxied
    else:
        proxied = bool((current or {}).get("proxied"))
    proxied = proxied and rset.type in PROXIABLE_TYPES
    if proxied:
        ttl = TTL_AUTO
    elif rset.ttl is not None:
        ttl = rset.ttl
    else:
        ttl = int((current or {}).get("ttl") or TTL_AUTO)
    return ttl, proxied


def _ttl_conflict(rset, current):
    """A TTL asked for a record that stays proxied (proxied not set): Cloudflare would keep it automatic."""
    if rset.ttl in (None, TTL_AUTO) or rset.proxied is not None or not (current or {}).get("proxied"):
        return None
    return ("%s: the record %s is proxied, so its TTL is automatic; set proxied: false to give it ttl %d, "
            "or leave ttl out" % (rset.label(), current.get("value"), rset.ttl))


def _post_body(rset, desired, carry=None):
    """A whole record (POST, or PUT over the record `carry`): the schema's Required name, ttl and type
    (types/dns/*_record_param.py), content or data, and what the user left unmanaged carried over."""
    carry = carry or {}
    ttl, proxied = _wanted_ttl_proxied(rset, carry or None)
    body = {"name": rset.name, "type": rset.type, "ttl": ttl}
    body.update(desired.payload())
    if rset.type in PROXIABLE_TYPES:
        body["proxied"] = proxied
    comment = rset.comment if rset.comment is not None else carry.get("comment")
    tags = rset.tags if rset.tags is not None else carry.get("tags")
    if comment:
        body["comment"] = comment
    if tags:
        body["tags"] = list(tags)
    # A PUT replaces the whole record: without these, Cloudflare would drop the record's settings
    # (Settings of each *RecordParam) and private_routing (ARecordParam / AAAARecordParam).
    if carry.get("settings"):
        body["settings"] = dict(carry["settings"])
    if rset.type in PRIVATE_ROUTING_TYPES and carry.get("private_routing") is not None:
        body["private_routing"] = bool(carry["private_routing"])
    return body


def _predicted(rset, desired, record_id=None, carry=None):
    carry = carry or {}
    comment = rset.comment if rset.comment is not None else carry.get("comment")
    tags = rset.tags if rset.tags is not None else carry.get("tags")
    ttl, proxied = _wanted_ttl_proxied(rset, carry or None)
    view = {
        "id": record_id,
        "name": rset.name,
        "type": rset.type,
        "value": desired.key,
        "content": desired.content if desired.data is None else desired.key,
        "ttl": ttl,
        "proxied": proxied,
        "comment": comment or None,
        "tags": sorted(tags or []),
        "settings": dict(carry.get("settings") or {}),
    }
    if rset.type in PRIVATE_ROUTING_TYPES:
        view["private_routing"] = carry.get("private_routing")
    if rset.type == "MX":
        view["priority"] = desired.priority
    elif rset.type == "SRV":
        view["priority"] = desired.data["priority"]
    return view


def _tag_keys(tags):
    """Tags as compared: tag names are not case-sensitive (record-attributes reference)."""
    keys = set()
    for tag in tags or []:
        name, sep, value = str(tag).partition(":")
        keys.add(name.lower() + sep + value)
    return sorted(keys)


def _attr_changes(rset, current):
    """Fields of an existing record (view) that differ from the record set's attributes."""
    changes = {}
    ttl, proxied = _wanted_ttl_proxied(rset, current)
    if int(current.get("ttl") or TTL_AUTO) != ttl:
        changes["ttl"] = ttl
    if rset.type in PROXIABLE_TYPES and bool(current.get("proxied")) != proxied:
        changes["proxied"] = proxied
    if rset.comment is not None and not _same_comment(current.get("comment"), rset.comment):
        changes["comment"] = rset.comment
    if rset.tags is not None and _tag_keys(current.get("tags")) != _tag_keys(rset.tags):
        changes["tags"] = list(rset.tags)
    return changes


def plan_changes(sets, existing_records, zone=None):
    """Compare record sets with the zone's records and plan one batch.

    existing_records: raw Cloudflare records (dicts) of the names concerned (or the whole zone).
    Unchanged values are left alone; attribute changes are PATCHes; a value that changes takes
    over a record that goes away (PUT, same id), so a name never goes without a record; only
    what is left over is deleted (DELETE) or created (POST). Cloudflare runs a batch as
    deletes, patches, puts, posts in one transaction.
    """
    plan = Plan()
    by_ident = {}
    by_name = {}
    for record in existing_records:
        view = record_view(record)
        by_ident.setdefault((view["name"], view["type"]), []).append(view)
        by_name.setdefault(view["name"], set()).add(view["type"])
    managed_types = {}
    for rset in sets:
        managed_types.setdefault(rset.name, {})[rset.type] = rset.state

    for rset in sets:
        current = sorted(by_ident.get(rset.ident, []), key=lambda view: (view["value"], view["id"] or ""))
        before = [dict(view) for view in current]
        after = []
        if rset.state == "absent":
            doomed_keys = set(rec.key for rec in rset.values)
            for view in current:
                if not rset.values or view["value"] in doomed_keys:
                    plan.deletes.append({"id": view["id"]})
                    plan.deleted.append(view)
                else:
                    after.append(view)
            plan.sets.append((rset, before, after))
            continue

        wanted = dict((rec.key, rec) for rec in rset.values)
        matched = {}
        leftovers = []
        for view in current:
            if view["value"] in wanted and view["value"] not in matched:
                matched[view["value"]] = view
            else:
                leftovers.append(view)
        missing = [rec for rec in rset.values if rec.key not in matched]
        missing.sort(key=lambda rec: rec.key)

        for key, view in sorted(matched.items()):
            conflict = _ttl_conflict(rset, view)
            if conflict:
                plan.conflicts.append(conflict)
            changes = _attr_changes(rset, view)
            if changes:
                # BatchPatchParam items need name, ttl and type (types/dns/batch_patch_param.py builds on
                # the *RecordParam types, where they are Required): the record's TTL as it will be.
                patch = {"id": view["id"], "name": rset.name, "type": rset.type, "ttl": _wanted_ttl_proxied(rset, view)[0]}
                patch.update(changes)
                plan.patches.append(patch)
                new_view = dict(view)
                new_view.update((k, v) for k, v in changes.items())
                new_view["comment"] = new_view.get("comment") or None
                new_view["tags"] = sorted(new_view.get("tags") or [])
                plan.updated.append(new_view)
                after.append(new_view)
            else:
                after.append(view)

        if rset.exclusive:
            # Re-use records that go away for values that are new: one PUT each, same id.
            while leftovers and missing:
                old = leftovers.pop(0)
                rec = missing.pop(0)
                conflict = _ttl_conflict(rset, old)
                if conflict:
                    plan.conflicts.append(conflict)
                put = {"id": old["id"]}
                put.update(_post_body(rset, rec, carry=old))
                plan.puts.append(put)
                new_view = _predicted(rset, rec, old["id"], old)
                plan.updated.append(new_view)
                after.append(new_view)
            for old in leftovers:
                plan.deletes.append({"id": old["id"]})
                plan.deleted.append(old)
        else:
            after.extend(leftovers)
        for rec in missing:
            plan.posts.append(_post_body(rset, rec))
            new_view = _predicted(rset, rec)
            plan.created.append(new_view)
            after.append(new_view)
        after.sort(key=lambda view: view["value"])
        plan.sets.append((rset, before, after))

    # CNAME must stay alone at its name, also against records this task does not manage
    # (except at the apex, where Cloudflare flattens the CNAME).
    for rset in sets:
        if rset.state != "present" or rset.name == zone:
            continue
        others = set()
        for rtype in by_name.get(rset.name, set()):
            if rtype == rset.type:
                continue
            if managed_types.get(rset.name, {}).get(rtype) == "absent":
                continue
            others.add(rtype)
        if rset.type == "CNAME" and others:
            plan.conflicts.append("%s: a CNAME cannot be added beside the existing %s record(s) there; "
                                  "manage them in the same task with state=absent to replace them" % (rset.name, ", ".join(sorted(others))))
        elif rset.type != "CNAME" and "CNAME" in others:
            plan.conflicts.append("%s: a CNAME record exists there, so %s records cannot be added beside it; "
                                  "manage the CNAME in the same task with state=absent to replace it" % (rset.name, rset.type))
    return plan


def _zone_line(view):
    extras = []
    if view.get("proxied"):
        extras.append("proxied")
    if view.get("comment"):
        extras.append("comment=%s" % view["comment"])
    if view.get("tags"):
        extras.append("tags=%s" % ",".join(view["tags"]))
    ttl = view.get("ttl")
    line = "%s. %s IN %s %s" % (view["name"], "auto" if ttl == TTL_AUTO else ttl, view["type"], view["value"])
    if extras:
        line += " ; " + " ".join(extras)
    return line + "\n"


def plan_diff(plan):
    """Ansible diff entries, one per record set that changes."""
    diffs = []
    for rset, before, after in plan.sets:
        before_text = "".join(_zone_line(view) for view in before)
        after_text = "".join(_zone_line(view) for view in after)
        if before_text != after_text:
            diffs.append({
                "before_header": "%s (%s)" % (rset.label(), "before"),
                "after_header": "%s (%s)" % (rset.label(), rset.state if rset.state == "absent" else "after"),
                "before": before_text,
                "after": after_text,
            })
    return diffs


def check_batch_size(max_batch_size):
    """max_batch_size: 1 up to Cloudflare's largest batch (3,500 changes, paid plans)."""
    if max_batch_size is None or not 1 <= int(max_batch_size) <= BATCH_LIMIT_PAID:
        raise InvalidInput("max_batch_size %r is out of range: Cloudflare takes at most %d changes in one batch on the "
                           "Free plan and %d on paid plans" % (max_batch_size, BATCH_LIMIT_FREE, BATCH_LIMIT_PAID))
    return int(max_batch_size)


def batch_too_large(plan, max_batch_size):
    """The refusal of a plan with more changes than one batch may hold, or None.

    Refused rather than split: split batches would not be one transaction, so a failure in a later
    batch would leave the earlier ones applied (e.g. a name's old records deleted, its new ones not created).
    """
    total = sum(plan.counts().values())
    if total <= max_batch_size:
        return None
    return ("This task needs %d changes (%s), more than max_batch_size (%d) allows in one batch; nothing was changed. "
            "Cloudflare takes at most %d changes in a batch on the Free plan and %d on Pro, Business and Enterprise: "
            "on a paid plan set max_batch_size (up to %d), otherwise split the record sets over several tasks "
            "(each task is one atomic batch)."
            % (total, ", ".join("%d %s" % (count, key) for key, count in plan.counts().items() if count), max_batch_size,
               BATCH_LIMIT_FREE, BATCH_LIMIT_PAID, BATCH_LIMIT_PAID))

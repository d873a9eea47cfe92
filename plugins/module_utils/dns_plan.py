# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record sets ``infra.k3s.dns`` publishes, from the inventory (plain data, unit-tested).

One record set per (name, type), A and AAAA of every name; an AAAA set of a name none of whose hosts has
a public_ipv6 is removed (``state: absent``), in the ``records`` form of infra.k3s.cloudflare_dns:
- ``<node name>`` per node of the cluster (``dns_name``, else the inventory name up to the first dot, under
  ``node_suffix``); an excluded node's own names are left alone, or deleted when asked;
- ``<api_name>``: every server left after the exclusions;
- ``<wildcard>``: the nodes left that have ``dns_ingress``; every node left only while no node of the
  cluster has it. Once some node has it and all of those are excluded (a failed ingress node), the wildcard
  is left as it is: no other node is known to serve 80/443 (issue 15, item 7).
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.infra.k3s.plugins.module_utils.cloudflare_records import InvalidInput, fqdn, normalize_hostname


class DnsPlanError(ValueError):
    """The inventory cannot give the record sets asked for."""


def _flag(value):
    # As Ansible's `truthy` test with convert_bool=True (ansible/plugins/test/core.py truthy): "yes"/"on"/"1"
    # are true, values boolean() cannot read keep Python's truth.
    if value is None:
        return False
    try:
        return boolean(value)
    except TypeError:
        return bool(value)


def _unique(values):
    out = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return out


def _shared(name, hosts, facts):
    v4 = _unique(facts[h].get("public_ip") for h in hosts)
    v6 = _unique(facts[h].get("public_ipv6") for h in hosts)
    return [{"name": name, "type": "A", "values": v4, "state": "present" if v4 else "absent"},
            {"name": name, "type": "AAAA", "values": v6, "state": "present" if v6 else "absent"}]


def ingress_flagged(facts, cluster):
    """The hosts of the cluster whose ``dns_ingress`` is true, in the cluster's order (the wildcard's hosts while
    any is left; infra.k3s.dr reads the same list to know when a failed node was the last of them)."""
    return [h for h in cluster or [] if _flag((facts.get(h) or {}).get("dns_ingress"))]


def record_sets(facts, cluster, masters=(), exclude=(), api_name="k3s", wildcard="*.apps", node_records=True,
                node_suffix="", delete_excluded_node_records=False, extra=()):
    """Return ``records``, ``ingress_hosts`` (where the wildcard points), ``ingress_flagged`` (every node with
    dns_ingress) and ``wildcard_left`` (true when the wildcard is left as it is).

    ``facts`` maps each host of ``cluster`` to its ``public_ip``, ``public_ipv6``, ``dns_ingress`` and ``dns_name``.
    Raises DnsPlanError on an inventory the records cannot be made from (the role's check reads the same rules)."""
    cluster = list(cluster or [])
    exclude = list(exclude or [])
    missing = [h for h in cluster if h not in facts]
    if missing:
        raise DnsPlanError("no facts for %s" % ", ".join(missing))
    active = [h for h in cluster if h not in exclude]
    servers = [h for h in masters or [] if h in active]
    no_ip = [h for h in active if not facts[h].get("public_ip")]
    if not cluster:
        raise DnsPlanError("the inventory has no host in the group k3s_cluster, so there is nothing to publish: give the "
                           "inventory with -i (ansible-inventory -i INVENTORY --graph k3s_cluster lists the group)")
    if not active:
        raise DnsPlanError("no host of k3s_cluster is left after dns_exclude_hosts (%s)" % ", ".join(exclude))
    if no_ip:
        raise DnsPlanError("hosts without public_ip: %s" % ", ".join(no_ip))
    if api_name and not servers:
        raise DnsPlanError("no server of k3s_masters is left after dns_exclude_hosts (%s) for the API name %s"
                           % (", ".join(exclude), api_name))

    flagged_all = ingress_flagged(facts, cluster)
    flagged = [h for h in active if h in flagged_all]
    ingress = flagged if flagged else ([] if flagged_all else active)

    records = []
    if node_records:
        for host in cluster:
            fact = facts[host]
            name = fact.get("dns_name") or (host.split(".")[0] + ("." + node_suffix if node_suffix else ""))
            if host in active:
                records.append({"name": name, "type": "A", "values": [fact["public_ip"]]})
                if fact.get("public_ipv6"):
                    records.append({"name": name, "type": "AAAA", "values": [fact["public_ipv6"]]})
                else:
                    records.append({"name": name, "type": "AAAA", "state": "absent"})
            elif delete_excluded_node_records:
                records.extend([{"name": name, "type": "A", "state": "absent"},
                                {"name": name, "type": "AAAA", "state": "absent"}])
    if api_name:
        records.extend(_shared(api_name, servers, facts))
    if wildcard and ingress:
        records.extend(_shared(wildcard, ingress, facts))
    return {"records": records + list(extra or []), "ingress_hosts": ingress, "ingress_flagged": flagged_all,
            "wildcard_left": bool(wildcard) and not ingress}


def _owned_name(name, zone):
    """The FQDN external-dns must leave to dns.yml for one of its record names: a wildcard's parent (``*.apps`` ->
    ``apps.<zone>``, which covers the wildcard itself and every name under it), else the name."""
    text = str(name).strip()
    if text.startswith("*."):
        text = text[2:]
    elif text == "*":
        text = "@"
    return fqdn(text, zone)


def external_dns_split(zone, facts, cluster, masters=(), api_name="k3s", wildcard="*.apps", node_records=True,
                       node_suffix="", extra=(), more=()):
    """The ``excludeDomains`` of external-dns that keep it off every name ``dns.yml`` publishes (issue 18).

    external-dns v0.21.0 matches an exclusion against the name itself and every name under it
    (kubernetes-sigs/external-dns endpoint/domain_filter.go, ``Match()`` and ``matchFilter()``), on the records it
    wants and on the records it reads (plan/plan.go ``filterRecordsForPlan``): an excluded name is invisible to it.
    The names are those of ``record_sets`` for every node of the cluster (none excluded: a node taken off by
    dns_exclude_hosts keeps its name in the zone), plus ``more`` (the tunnel's hostnames, kept by the ingress role).

    An exclusion cannot name the apex alone (it would cover the whole zone), so a record set dns.yml keeps at the
    apex (in ``extra``) is returned in ``apex_shared`` instead: external-dns's TXT ownership keeps it off those
    records (plan/plan.go: it creates on a name only where every record is its own). A wildcard at the apex (``*``)
    leaves nothing to external-dns and is refused. Returns ``exclude_domains`` (sorted FQDNs), ``domain_filters``
    (the zone), ``apex_shared`` and ``clashes`` (the names of ``more`` that dns.yml's names cover: a tunnel hostname
    equal to a node or API name, or under the wildcard's parent, which the caller refuses) and ``more`` (the names of
    ``more`` as FQDNs)."""
    try:
        zone = normalize_hostname(zone, "zone")
    except InvalidInput as exc:
        raise DnsPlanError(str(exc)) from exc
    if wildcard and str(wildcard).strip() in ("*", "*.@", "*." + zone, "*." + zone + "."):
        raise DnsPlanError("the ingress wildcard %s covers the whole zone %s: external-dns would have no name left to "
                           "publish; use a wildcard under a label (*.apps) or leave external-dns off" % (wildcard, zone))
    plan = record_sets(facts, cluster, masters=masters, exclude=(), api_name=api_name, wildcard=wildcard,
                       node_records=node_records, node_suffix=node_suffix, extra=extra)
    excluded, apex = [], []
    try:
        owned = [_owned_name(r["name"], zone) for r in plan["records"] if r.get("name") is not None]
        others = [_owned_name(name, zone) for name in more or ()]
    except (InvalidInput, KeyError, TypeError) as exc:
        raise DnsPlanError("a record name cannot be read: %s" % exc) from exc
    for name in owned + others:
        target = apex if name == zone else excluded
        if name not in target:
            target.append(name)
    # a name of ``more`` that dns.yml's names already cover (the same name, or one under it) would be written by both
    clashes = [name for name in others if any(name == own or name.endswith("." + own) for own in owned if own != zone)]
    return {"exclude_domains": sorted(excluded), "domain_filters": [zone], "apex_shared": apex,
            "clashes": _unique(clashes), "more": _unique(others)}

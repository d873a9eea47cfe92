"""The split between infra.k3s.dns and external-dns (issue 18): every name dns.yml publishes is excluded from
external-dns, and a route's hostname outside them is not.

external-dns's own domain filter is implemented here from its source, to judge the role's values the way
external-dns v0.21.0 does: kubernetes-sigs/external-dns endpoint/domain_filter.go, ``Match()`` (include filters
match, exclude filters do not; an empty include list matches everything, an empty exclude list nothing),
``matchFilter()`` (a filter with a leading dot matches by suffix; otherwise the name itself, or any name ending in
``.<filter>``), ``prepareFilters()``/``normalizeDomain()`` (filters and names trimmed, one trailing dot dropped,
lower-cased by idna.MapForLookup in internal/idna/idna.go). Regex filters are not used by the role.
"""
from __future__ import annotations

import pytest

from support.module_utils import load_module_utils

dns_plan = load_module_utils("dns_plan")

ZONE = "example.com"
FACTS = {
    "master1": {"public_ip": "192.0.2.11", "public_ipv6": "2001:db8::11"},
    "master2.example.net": {"public_ip": "192.0.2.12"},
    "worker1": {"public_ip": "192.0.2.21", "dns_ingress": True},
    "worker2": {"public_ip": "192.0.2.22", "dns_ingress": "yes", "dns_name": "edge2"},
}
CLUSTER = list(FACTS)
MASTERS = ["master1", "master2.example.net"]


def _normalize(domain: str) -> str:
    # normalizeDomain(): strings.TrimSuffix(domain, ".") then idna ToUnicode with MapForLookup (lower case for ASCII)
    domain = domain[:-1] if domain.endswith(".") else domain
    return domain.lower()


def _prepare(filters) -> list:
    # prepareFilters(): TrimSpace, normalizeDomain, empty ones dropped
    return [f for f in (_normalize(x.strip()) for x in filters) if f]


def match_filter(filters, domain: str, emptyval: bool) -> bool:
    if not filters:
        return emptyval
    stripped = _normalize(domain)
    for flt in filters:
        if flt == "":
            continue
        if flt.startswith(".") and stripped.endswith(flt):
            return True
        if stripped.count(".") == flt.count(".") and stripped == flt:
            return True
        if stripped.endswith("." + flt):
            return True
    return False


def external_dns_matches(domain_filters, exclude_domains, domain: str) -> bool:
    """DomainFilter.Match() of NewDomainFilterWithExclusions(domainFilters, excludeDomains)."""
    return match_filter(_prepare(domain_filters), domain, True) and not match_filter(_prepare(exclude_domains), domain, False)


def fqdns(records):
    """What dns.yml publishes, as FQDNs (cloudflare_dns reads a record name relative to the zone)."""
    out = []
    for rec in records:
        name = rec["name"]
        out.append(ZONE if name == "@" else name if name.endswith("." + ZONE) else name + "." + ZONE)
    return out


def test_the_port_follows_matchfilter():
    # the branches of matchFilter(), so the port cannot pass by matching everything or nothing
    assert match_filter([], "a.example.com", True) and not match_filter([], "a.example.com", False)
    assert match_filter(["example.com"], "example.com.", False)  # the name itself, trailing dot dropped
    assert match_filter(["example.com"], "A.Example.COM", False)  # lower-cased
    assert not match_filter(["k3s.example.com"], "k3s2.example.com", False)  # a label boundary, not a string suffix
    assert match_filter([".example.com"], "www.example.com", False) and not match_filter([".example.com"], "example.com", False)
    assert not match_filter(["example.com"], "example.net", False)


@pytest.mark.parametrize("kwargs", [
    {},
    {"node_suffix": "nodes"},
    {"api_name": "", "wildcard": "*.svc.apps"},
    {"node_records": False, "extra": [{"name": "mail", "type": "MX", "values": ["10 mx.example.net"]},
                                      {"name": "status.example.com", "type": "CNAME", "values": ["x.example.net"]}]},
], ids=["defaults", "node-suffix", "deeper-wildcard-no-api", "extra-records"])
def test_every_dns_yml_name_is_excluded_and_routes_are_not(kwargs):
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS, **kwargs)
    plan_kwargs = dict(kwargs)
    published = fqdns(dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, **plan_kwargs)["records"])
    assert published
    wildcard = plan_kwargs.get("wildcard", "*.apps")
    for name in published:
        assert not external_dns_matches(split["domain_filters"], split["exclude_domains"], name), (name, split)
        if name.startswith("*."):
            # names the wildcard answers are left to it too: no per-route record beside the wildcard
            below = "shop" + name[1:]
            assert not external_dns_matches(split["domain_filters"], split["exclude_domains"], below), below
    # a route's hostname outside dns.yml's names is published by external-dns
    for route in ("www.example.com", "example.com", "shop.example.com", "k3s2.example.com",
                  "apps2.example.com", "deep.www.example.com"):
        assert external_dns_matches(split["domain_filters"], split["exclude_domains"], route), (route, split)
    # and nothing outside the zone
    assert not external_dns_matches(split["domain_filters"], split["exclude_domains"], "www.example.net")
    assert split["apex_shared"] == []
    assert wildcard[2:] + "." + ZONE in split["exclude_domains"]


def test_defaults_give_the_names_of_the_research():
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS)
    assert split == {"domain_filters": [ZONE], "apex_shared": [], "clashes": [], "more": [],
                     "exclude_domains": ["apps.example.com", "edge2.example.com", "k3s.example.com", "master1.example.com",
                                         "master2.example.com", "worker1.example.com"]}


def test_a_node_taken_off_by_dns_exclude_hosts_keeps_its_name_excluded():
    # dns.yml leaves an excluded node's name in the zone; the split is computed without exclusions
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS)
    assert "worker1.example.com" in split["exclude_domains"]


def test_tunnel_hostnames_are_excluded_too():
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS, more=["blog", "Shop.Example.com."])
    for name in ("blog.example.com", "shop.example.com"):
        assert not external_dns_matches(split["domain_filters"], split["exclude_domains"], name)
    assert external_dns_matches(split["domain_filters"], split["exclude_domains"], "www.example.com")
    assert split["clashes"] == [] and split["more"] == ["blog.example.com", "shop.example.com"]


def test_tunnel_hostnames_that_dns_yml_covers_are_named():
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS,
                                        more=["k3s", "shop.apps", "master1.example.com", "k3s2", "example.com"])
    assert split["clashes"] == ["k3s.example.com", "shop.apps.example.com", "master1.example.com"]
    assert split["apex_shared"] == [ZONE]


def test_an_apex_record_cannot_be_excluded_alone():
    extra = [{"name": "@", "type": "MX", "values": ["10 mx.example.net"]}]
    split = dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS, extra=extra)
    assert split["apex_shared"] == [ZONE]
    assert ZONE not in split["exclude_domains"]
    # excluding the apex would have taken every name of the zone from external-dns
    assert not external_dns_matches([ZONE], [ZONE], "www.example.com")
    assert external_dns_matches(split["domain_filters"], split["exclude_domains"], "www.example.com")


@pytest.mark.parametrize("wildcard", ["*", "*.example.com"])
def test_a_wildcard_over_the_whole_zone_is_refused(wildcard):
    with pytest.raises(dns_plan.DnsPlanError, match="covers the whole zone"):
        dns_plan.external_dns_split(ZONE, FACTS, CLUSTER, masters=MASTERS, wildcard=wildcard)


@pytest.mark.parametrize("zone,extra,words", [
    ("", [], "zone"),
    (ZONE, [{"name": "bad name", "type": "A", "values": ["192.0.2.1"]}], "cannot be read"),
])
def test_bad_input_is_refused(zone, extra, words):
    with pytest.raises(dns_plan.DnsPlanError, match=words):
        dns_plan.external_dns_split(zone, FACTS, CLUSTER, masters=MASTERS, extra=extra)

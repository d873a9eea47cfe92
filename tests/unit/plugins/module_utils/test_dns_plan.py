"""Unit tests of plugins/module_utils/dns_plan.py: the record sets infra.k3s.dns publishes from the inventory."""
from __future__ import annotations

import pytest

from support.module_utils import load_module_utils

dns_plan = load_module_utils("dns_plan")

FACTS = {
    "master1": {"public_ip": "192.0.2.11", "public_ipv6": "2001:db8::11"},
    "master2.example.net": {"public_ip": "192.0.2.12"},
    "worker1": {"public_ip": "192.0.2.21", "dns_ingress": "yes"},
    "worker2": {"public_ip": "192.0.2.22", "public_ipv6": "2001:db8::22", "dns_ingress": True, "dns_name": "edge2"},
    "worker3": {"public_ip": "192.0.2.23", "dns_ingress": "no"},
}
CLUSTER = list(FACTS)
MASTERS = ["master1", "master2.example.net"]


def by_key(plan):
    return {(r["name"], r["type"]): r for r in plan["records"]}


def test_nodes_api_and_wildcard_from_the_inventory():
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS)
    recs = by_key(plan)
    assert recs[("master1", "A")]["values"] == ["192.0.2.11"]
    assert recs[("master1", "AAAA")]["values"] == ["2001:db8::11"]
    assert recs[("master2", "AAAA")] == {"name": "master2", "type": "AAAA", "state": "absent"}  # name up to the first dot
    assert ("edge2", "A") in recs and ("worker2", "A") not in recs  # dns_name
    assert recs[("k3s", "A")] == {"name": "k3s", "type": "A", "values": ["192.0.2.11", "192.0.2.12"], "state": "present"}
    assert recs[("k3s", "AAAA")]["values"] == ["2001:db8::11"]
    # dns_ingress read as Ansible's truthy(convert_bool=True): "yes" and True are in, "no" is out.
    assert plan["ingress_hosts"] == ["worker1", "worker2"] and plan["ingress_flagged"] == ["worker1", "worker2"]
    assert recs[("*.apps", "A")]["values"] == ["192.0.2.21", "192.0.2.22"]
    assert recs[("*.apps", "AAAA")]["values"] == ["2001:db8::22"]
    assert plan["wildcard_left"] is False


def test_every_node_carries_the_wildcard_only_while_none_has_dns_ingress():
    facts = {h: {k: v for k, v in f.items() if k != "dns_ingress"} for h, f in FACTS.items()}
    plan = dns_plan.record_sets(facts, CLUSTER, masters=MASTERS)
    assert plan["ingress_hosts"] == CLUSTER
    # Once the only ingress nodes are excluded, the wildcard is left as it is (no other node is known to serve 80/443).
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, exclude=["worker1", "worker2"])
    assert plan["wildcard_left"] is True and plan["ingress_hosts"] == []
    assert not [r for r in plan["records"] if r["name"] == "*.apps"]


def test_excluded_hosts_leave_the_shared_names_and_keep_or_lose_their_own():
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, exclude=["master1", "worker2"])
    recs = by_key(plan)
    assert recs[("k3s", "A")]["values"] == ["192.0.2.12"]
    assert recs[("k3s", "AAAA")] == {"name": "k3s", "type": "AAAA", "values": [], "state": "absent"}
    assert ("master1", "A") not in recs  # left as it is
    assert recs[("*.apps", "A")]["values"] == ["192.0.2.21"]
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, exclude=["master1"], delete_excluded_node_records=True)
    recs = by_key(plan)
    assert recs[("master1", "A")] == {"name": "master1", "type": "A", "state": "absent"}
    assert recs[("master1", "AAAA")] == {"name": "master1", "type": "AAAA", "state": "absent"}


def test_options_suffix_no_node_records_no_api_no_wildcard_and_extra():
    extra = [{"name": "grafana", "type": "CNAME", "values": ["k3s.example.com"]}]
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, node_suffix="nodes", extra=extra)
    assert ("master1.nodes", "A") in by_key(plan) and plan["records"][-1] == extra[0]
    plan = dns_plan.record_sets(FACTS, CLUSTER, masters=MASTERS, node_records=False, api_name="", wildcard="")
    assert plan["records"] == [] and plan["wildcard_left"] is False


@pytest.mark.parametrize("kwargs, message", [
    ({"exclude": CLUSTER}, "no host of k3s_cluster is left"),
    ({"exclude": MASTERS}, "no server of k3s_masters is left"),
    ({"facts": dict(FACTS, worker3={"public_ip": ""})}, "hosts without public_ip: worker3"),
    ({"facts": {"master1": FACTS["master1"]}}, "no facts for master2.example.net"),
])
def test_an_inventory_the_records_cannot_be_made_from_is_refused(kwargs, message):
    facts = kwargs.pop("facts", FACTS)
    with pytest.raises(dns_plan.DnsPlanError, match=message):
        dns_plan.record_sets(facts, CLUSTER, masters=MASTERS, **kwargs)


def test_excluded_host_without_public_ip_is_not_an_error():
    facts = dict(FACTS, worker3={})
    plan = dns_plan.record_sets(facts, CLUSTER, masters=MASTERS, exclude=["worker3"])
    assert ("worker3", "A") not in by_key(plan)


def test_an_empty_cluster_group_is_named_as_such():
    """No host in k3s_cluster (no -i, or a group misspelt) is said as that, not as hosts excluded by dns_exclude_hosts."""
    with pytest.raises(dns_plan.DnsPlanError, match="the inventory has no host in the group k3s_cluster") as caught:
        dns_plan.record_sets({}, [], masters=[])
    assert "dns_exclude_hosts" not in str(caught.value)

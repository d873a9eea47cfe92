"""Unit tests of plugins/module_utils/ingress_plan.py: the ingress nodes of infra.k3s.ingress and their addresses."""
from __future__ import annotations

import pytest

from support.module_utils import load_module_utils

ingress_plan = load_module_utils("ingress_plan")

TAILNET = ["100.64.0.0/10", "fd7a:115c:a1e0::/48"]


def facts(**flags):
    out = {
        "cp1": {"public_ip": "192.0.2.11", "external_ip": "192.0.2.11"},
        "w1": {"public_ip": "192.0.2.21", "external_ip": "192.0.2.21,2001:db8::21"},
        "w2": {"public_ip": "192.0.2.22", "external_ip": "192.0.2.22"},
    }
    for host, value in flags.items():
        out[host].update(value)
    return out


def test_flagged_hosts_are_the_ingress_nodes():
    plan = ingress_plan.ingress_nodes(facts(w1={"dns_ingress": "yes"}, w2={"dns_ingress": False}), ["cp1", "w1", "w2"], TAILNET)
    assert plan == {"hosts": ["w1"], "addresses": ["192.0.2.21", "2001:db8::21"], "problems": []}


def test_every_host_while_none_is_flagged():
    plan = ingress_plan.ingress_nodes(facts(), ["cp1", "w1", "w2"], TAILNET)
    assert plan["hosts"] == ["cp1", "w1", "w2"]
    assert plan["addresses"] == ["192.0.2.11", "192.0.2.21", "2001:db8::21", "192.0.2.22"]


@pytest.mark.parametrize("external, problem", [
    ("", "w1: no k3s_node_external_ip"),
    ("100.101.102.103", "w1: k3s_node_external_ip 100.101.102.103 is in the tailnet range 100.64.0.0/10"),
    ("192.0.2.21,fd7a:115c:a1e0::5", "w1: k3s_node_external_ip fd7a:115c:a1e0::5 is in the tailnet range fd7a:115c:a1e0::/48"),
    ("127.0.0.1", "w1: k3s_node_external_ip 127.0.0.1 is not an address other hosts can reach"),
    ("w1.example.com", "w1: k3s_node_external_ip w1.example.com is not an IP address"),
])
def test_bad_external_ip_of_an_ingress_node(external, problem):
    plan = ingress_plan.ingress_nodes(facts(w1={"dns_ingress": True, "external_ip": external}), ["cp1", "w1", "w2"], TAILNET)
    assert plan["hosts"] == ["w1"]
    assert [p for p in plan["problems"] if p.startswith(problem)], plan["problems"]


def test_a_bad_external_ip_of_another_node_does_not_matter():
    plan = ingress_plan.ingress_nodes(facts(w1={"dns_ingress": True}, w2={"external_ip": "100.64.0.2"}), ["cp1", "w1", "w2"], TAILNET)
    assert plan["problems"] == []


def test_external_ip_as_a_list():
    plan = ingress_plan.ingress_nodes(facts(w2={"dns_ingress": True, "external_ip": ["192.0.2.22", "2001:db8::22"]}),
                                      ["cp1", "w1", "w2"], TAILNET)
    assert plan["addresses"] == ["192.0.2.22", "2001:db8::22"]


def test_no_public_ip_is_refused_by_the_dns_rule():
    with pytest.raises(ingress_plan.IngressPlanError, match="hosts without public_ip: w2"):
        ingress_plan.ingress_nodes(facts(w2={"public_ip": ""}), ["cp1", "w1", "w2"], TAILNET)

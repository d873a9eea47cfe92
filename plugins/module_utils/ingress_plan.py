# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ingress nodes of ``infra.k3s.ingress`` and what is wrong with them (plain data, unit-tested).

The ingress nodes are the hosts the ingress wildcard of ``infra.k3s.dns`` points at: the hosts of the cluster
with ``dns_ingress``, every host while none has it (``dns_plan.record_sets``, the one copy of that rule).

Each must have an external IP that ServiceLB can publish. k3s-io/k3s ``pkg/cloudprovider/servicelb.go``
``podIPs()`` returns the ExternalIPs of the nodes running svclb pods when at least one of them has one,
otherwise their InternalIPs (here the Tailscale IP, ``k3s_node_ip``); Traefik copies that list into every
Gateway's ``status.addresses`` (traefik/traefik v3.6.12 ``pkg/provider/kubernetes/gateway/kubernetes.go``
``gatewayAddresses()``). So an ingress node without ``k3s_node_external_ip``, or with one inside the tailnet
ranges, would publish an address the Internet cannot reach.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.infra.k3s.plugins.module_utils.dns_plan import DnsPlanError, record_sets


class IngressPlanError(ValueError):
    """The inventory cannot give the ingress nodes."""


def _addresses(value):
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = str(value or "").split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _problem(host, address, ranges):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "%s: k3s_node_external_ip %s is not an IP address" % (host, address)
    for net in ranges:
        if ip.version == net.version and ip in net:
            return "%s: k3s_node_external_ip %s is in the tailnet range %s, not a public address" % (host, address, net)
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return "%s: k3s_node_external_ip %s is not an address other hosts can reach" % (host, address)
    return None


def ingress_nodes(facts, cluster, tailnet_ranges=()):
    """Return ``hosts`` (the ingress nodes, in inventory order), ``addresses`` (their external IPs, the
    Gateway's expected status addresses) and ``problems`` (one sentence per bad ingress node; empty when fine).

    ``facts`` maps each host of ``cluster`` to ``public_ip``, ``public_ipv6``, ``dns_ingress``, ``dns_name`` and
    ``external_ip`` (``k3s_node_external_ip``: a string, comma-separated, or a list)."""
    try:
        ranges = [ipaddress.ip_network(str(item), strict=False) for item in tailnet_ranges or []]
    except ValueError as exc:
        raise IngressPlanError("bad tailnet range: %s" % exc) from exc
    try:
        plan = record_sets(facts, cluster, api_name="", wildcard="*", node_records=False)
    except DnsPlanError as exc:
        raise IngressPlanError(str(exc)) from exc
    hosts = plan["ingress_hosts"]
    problems = []
    addresses = []
    for host in hosts:
        external = _addresses(facts[host].get("external_ip"))
        if not external:
            problems.append("%s: no k3s_node_external_ip (ServiceLB would publish its internal, tailnet address)" % host)
        for address in external:
            problem = _problem(host, address, ranges)
            if problem:
                problems.append(problem)
            elif address not in addresses:
                addresses.append(address)
    return {"hosts": hosts, "addresses": addresses, "problems": problems}

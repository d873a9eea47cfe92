"""Unit tests of plugins/module_utils/tailscale.py: the decision table, command lines and facts."""
from __future__ import annotations

import json

import pytest

from support.module_utils import load_module_utils
from support.paths import CONTRACTS as ALL_CONTRACTS

CONTRACTS = ALL_CONTRACTS / "tailscale"
ts = load_module_utils("tailscale")

# What `tailscale debug prefs` prints for a node that has never logged in (Linux defaults).
FRESH_PREFS = {
    "ControlURL": "https://controlplane.tailscale.com", "RouteAll": False, "ExitNodeID": "", "CorpDNS": True,
    "RunSSH": False, "WantRunning": False, "LoggedOut": True, "ShieldsUp": False, "AdvertiseTags": None,
    "Hostname": "", "AdvertiseRoutes": None, "NoSNAT": False, "NetfilterMode": 2, "OperatorUser": "",
}


def params(**kwargs):
    base = dict(hostname="cp1", tags=["tag:k3s-master"], ssh=False, accept_routes=False, accept_dns=False,
                shields_up=False, advertise_routes=[], operator="", login_server="https://hs.example.com",
                extra_args=[], timeout=60)
    base.update(kwargs)
    return base


def joined_prefs(**kwargs):
    prefs = dict(FRESH_PREFS, WantRunning=True, LoggedOut=False, Hostname="cp1", AdvertiseTags=["tag:k3s-master"],
                 CorpDNS=False, ControlURL="https://hs.example.com")
    prefs.update(kwargs)
    return prefs


@pytest.fixture(scope="module")
def status():
    return json.loads((CONTRACTS / "status.json").read_text())


def test_fresh_node_logs_in(status):
    action, diff = ts.plan({"BackendState": "NeedsLogin", "HaveNodeKey": False}, FRESH_PREFS, params())
    assert action == "login"
    assert "AdvertiseTags" in diff and "ControlURL" in diff


def test_joined_node_with_same_settings_does_nothing(status):
    assert ts.plan(status, joined_prefs(), params()) == ("none", [])


def test_tag_order_and_trailing_slash_do_not_matter(status):
    prefs = joined_prefs(AdvertiseTags=["tag:b", "tag:a"], ControlURL="https://hs.example.com/")
    assert ts.plan(status, prefs, params(tags=["tag:a", "tag:b"]))[0] == "none"


@pytest.mark.parametrize("change, field", [
    (dict(ssh=True), "RunSSH"),
    (dict(hostname="cp-1"), "Hostname"),
    (dict(accept_routes=True), "RouteAll"),
    (dict(accept_dns=True), "CorpDNS"),
    (dict(advertise_routes=["10.0.0.0/24"]), "AdvertiseRoutes"),
])
def test_settable_change_uses_set(status, change, field):
    assert ts.plan(status, joined_prefs(), params(**change)) == ("set", [field])


def test_removed_flag_is_a_set_back_to_default(status):
    # The node runs with --ssh; the inputs no longer ask for it.
    assert ts.plan(status, joined_prefs(RunSSH=True), params()) == ("set", ["RunSSH"])


@pytest.mark.parametrize("change, field", [
    (dict(tags=["tag:k3s-worker"]), "AdvertiseTags"),
    (dict(login_server=""), "ControlURL"),
])
def test_tags_or_login_server_reauthenticate(status, change, field):
    action, diff = ts.plan(status, joined_prefs(RunSSH=True), params(**change))
    assert action == "reauth"
    assert field in diff and "RunSSH" in diff


def test_stopped_node_is_started_without_a_key(status):
    stopped = dict(status, BackendState="Stopped")
    assert ts.plan(stopped, joined_prefs(WantRunning=False), params())[0] == "start"
    argv = ts.command("start", params())
    assert not any(arg.startswith("--auth-key") for arg in argv)


def test_logged_out_prefs_mean_login_even_if_state_says_running(status):
    assert ts.plan(status, joined_prefs(LoggedOut=True), params())[0] == "login"


def test_login_command_carries_every_flag_and_the_key_only_as_a_file():
    argv = ts.command("login", params(ssh=True), binary="/usr/bin/tailscale", key_path="/run/k/authkey")
    assert argv[:3] == ["/usr/bin/tailscale", "up", "--reset"]
    assert "--auth-key=file:/run/k/authkey" in argv
    assert "--advertise-tags=tag:k3s-master" in argv and "--ssh=true" in argv and "--accept-dns=false" in argv
    assert "--login-server=https://hs.example.com" in argv and "--hostname=cp1" in argv
    assert "--timeout=60s" in argv and "--force-reauth" not in argv


def test_reauth_command_forces_reauth_and_needs_a_key():
    assert "--force-reauth" in ts.command("reauth", params(), key_path="/k")
    with pytest.raises(ts.TailscaleError, match="auth key"):
        ts.command("reauth", params())


def test_set_command_has_no_tags_login_server_or_key():
    argv = ts.command("set", params(), socket="/run/ts.sock")
    assert argv[:3] == ["tailscale", "--socket=/run/ts.sock", "set"]
    assert not [arg for arg in argv if arg.startswith(("--advertise-tags", "--login-server", "--auth-key", "--reset"))]
    assert "--advertise-routes=" in argv and "--ssh=false" in argv


def test_extra_args_go_to_up_only():
    assert "--advertise-exit-node" in ts.command("login", params(extra_args=["--advertise-exit-node"]), key_path="/k")
    assert "--advertise-exit-node" not in ts.command("set", params(extra_args=["--advertise-exit-node"]))


@pytest.mark.parametrize("bad, message", [
    (dict(tags=["k3s-master"]), "tag 'k3s-master' is not valid"),
    (dict(tags=["tag:K3s"]), "is not valid"),
    (dict(hostname="cp_1"), "not a valid DNS label"),
    (dict(advertise_routes=["10.0.0.1/24"]), "not a network"),
    (dict(login_server="hs.example.com"), "must be an http"),
    (dict(extra_args=["--auth-key=tskey-auth-x"]), "must not carry the auth key"),
    (dict(extra_args=["--ssh"]), "managed by its own option"),
    (dict(extra_args=["advertise-exit-node"]), "is not a flag"),
])
def test_validate_rejects_bad_input(bad, message):
    errors = ts.validate(params(**bad))
    assert any(message in error for error in errors), errors


def test_validate_accepts_good_input():
    assert ts.validate(params(advertise_routes=["10.0.0.0/24", "fd00::/64"], extra_args=["--advertise-exit-node"])) == []


def test_oauth_client_secret_gets_node_attributes():
    assert ts.key_with_attributes("tskey-client-kX-s", False, True) == "tskey-client-kX-s?ephemeral=false&preauthorized=true"
    assert ts.key_with_attributes("tskey-client-kX-s?ephemeral=true", False, True) == "tskey-client-kX-s?ephemeral=true"
    assert ts.key_with_attributes("tskey-auth-kX-s", True, False) == "tskey-auth-kX-s"


def test_facts_from_the_contract_status(status):
    facts = ts.facts(status)
    assert facts == {"ip": "100.101.1.10", "ipv6": "fd7a:115c:a1e0::a01", "fqdn": "k3s-master-1.tail1234.ts.net",
                     "hostname": "k3s-master-1", "node_id": "nAbC123CNTRL", "tags": ["tag:k3s-master"],
                     "backend_state": "Running"}


def test_facts_parse_addresses_not_positions():
    facts = ts.facts({"TailscaleIPs": ["fd7a:115c:a1e0::5", "100.70.0.5"], "Self": {"DNSName": "n.ts.net."}})
    assert facts["ip"] == "100.70.0.5" and facts["ipv6"] == "fd7a:115c:a1e0::5" and facts["fqdn"] == "n.ts.net"
    assert facts["tags"] == []


def test_facts_of_an_ipv6_only_node():
    facts = ts.facts({"TailscaleIPs": ["fd7a:115c:a1e0::9"], "Self": {}})
    assert facts["ip"] is None and facts["ipv6"] == "fd7a:115c:a1e0::9" and facts["fqdn"] is None

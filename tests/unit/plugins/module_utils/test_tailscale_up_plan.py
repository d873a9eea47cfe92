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
    # The contract's node key expires on a fixed date; the plan reads it against today's clock.
    data = json.loads((CONTRACTS / "status.json").read_text())
    data["Self"]["KeyExpiry"] = "2999-01-01T00:00:00Z"
    return data


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
    assert "--snat-subnet-routes=false" in ts.command("login", params(extra_args=["--snat-subnet-routes=false"]), key_path="/k")
    assert "--snat-subnet-routes=false" not in ts.command("set", params(extra_args=["--snat-subnet-routes=false"]))


@pytest.mark.parametrize("bad, message", [
    (dict(tags=["k3s-master"]), "tag 'k3s-master' is not valid"),
    (dict(tags=["tag:3s"]), "is not valid"),
    (dict(tags=["tag:"]), "is not valid"),
    (dict(tags=["tag:k3s_master"]), "is not valid"),
    (dict(advertise_routes=["0.0.0.0/0"]), "use advertise_exit_node"),
    (dict(extra_args=["--advertise-exit-node"]), "managed by its own option"),
    (dict(extra_args=["--shields-up"]), "managed by its own option"),
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
    assert ts.validate(params(advertise_routes=["10.0.0.0/24", "fd00::/64"], extra_args=["--snat-subnet-routes=false"])) == []


# -- tailcfg/tailcfg.go CheckTag: a letter after "tag:", upper case allowed -------------
@pytest.mark.parametrize("tag", ["tag:K3s", "tag:k3s-Master-1", "tag:a"])
def test_tags_follow_upstream_check_tag(tag):
    assert ts.validate(params(tags=[tag])) == []


# -- item 1: --accept-risk=lose-ssh wherever upstream's CLI would ask -------------------
def test_reauth_accepts_the_lose_ssh_risk():
    argv = ts.command("reauth", params(), key_path="/k", differences=["AdvertiseTags"])
    assert "--accept-risk=lose-ssh" in argv and "--force-reauth" in argv


@pytest.mark.parametrize("action", ["set", "start", "login"])
def test_an_ssh_change_accepts_the_lose_ssh_risk(action):
    assert "--accept-risk=lose-ssh" in ts.command(action, params(), key_path="/k", differences=["RunSSH"])


def test_no_risk_accepted_when_ssh_stays():
    assert "--accept-risk=lose-ssh" not in ts.command("set", params(), differences=["Hostname"])
    assert "--accept-risk=lose-ssh" not in ts.command("login", params(), key_path="/k", differences=["Hostname"])


# -- item 2: NoState with a node key is a daemon still starting; HaveNodeKey absent is false
def test_a_restarted_daemon_in_nostate_is_settling_not_logged_out():
    assert ts.settling({"BackendState": "NoState", "HaveNodeKey": True})
    assert not ts.settling({"BackendState": "NoState"})
    assert not ts.settling({"BackendState": "Running", "HaveNodeKey": True})


def test_missing_have_node_key_means_false(status):
    without = {key: value for key, value in status.items() if key != "HaveNodeKey"}
    assert ts.plan(without, joined_prefs(), params())[0] == "login"


# -- item 3: a stopped node whose key expired logs in with the key -----------------------
def expired_status(status, state="Stopped", expiry="2020-01-01T00:00:00Z"):
    return dict(status, BackendState=state, Self=dict(status["Self"], KeyExpiry=expiry))


def test_stopped_node_with_an_expired_key_logs_in_with_the_key(status):
    action, unused = ts.plan(expired_status(status), joined_prefs(WantRunning=False), params())
    assert action == "login"
    assert "--auth-key=file:/k" in ts.command(action, params(), key_path="/k")


@pytest.mark.parametrize("expiry", ["2999-01-01T00:00:00.123456789Z", "0001-01-01T00:00:00Z", None])
def test_stopped_node_with_a_valid_or_no_expiry_starts_without_a_key(status, expiry):
    state = expired_status(status, expiry=expiry)
    if expiry is None:
        del state["Self"]["KeyExpiry"]
    assert ts.plan(state, joined_prefs(WantRunning=False), params())[0] == "start"


def test_go_times_with_nanoseconds_and_offsets():
    assert ts.key_expired({"Self": {"KeyExpiry": "2020-01-01T00:00:00.999999999+02:00"}})
    assert not ts.key_expired({"Self": {"KeyExpiry": "2999-01-01T00:00:00Z"}})


# -- item 5: exit node, normalised CIDRs, login server synonyms ------------------------
def test_exit_node_routes_are_left_out_of_the_route_comparison(status):
    prefs = joined_prefs(AdvertiseRoutes=["10.0.0.0/24", "0.0.0.0/0", "::/0"])
    assert ts.plan(status, prefs, params(advertise_routes=["10.0.0.0/24"], advertise_exit_node=True)) == ("none", [])
    assert ts.plan(status, prefs, params(advertise_routes=["10.0.0.0/24"])) == ("set", ["AdvertiseExitNode"])
    argv = ts.command("set", params(advertise_routes=["10.0.0.0/24"], advertise_exit_node=True))
    assert "--advertise-exit-node=true" in argv and "--advertise-routes=10.0.0.0/24" in argv


def test_routes_are_compared_as_networks(status):
    prefs = joined_prefs(AdvertiseRoutes=["fd00::/64", "10.0.0.0/24"])
    assert ts.plan(status, prefs, params(advertise_routes=["10.0.0.0/24", "fd00:0:0:0::0/64"])) == ("none", [])


@pytest.mark.parametrize("wanted", ["https://login.tailscale.com", "https://login.tailscale.com/", "", "https://controlplane.tailscale.com"])
def test_login_server_synonyms_equal_the_default(status, wanted):
    prefs = joined_prefs(ControlURL="https://controlplane.tailscale.com")
    assert ts.plan(status, prefs, params(login_server=wanted)) == ("none", [])
    prefs = joined_prefs(ControlURL="https://login.tailscale.com")
    assert ts.plan(status, prefs, params(login_server=wanted)) == ("none", [])


# -- item 6: drift of tags and MagicDNS name is reported -------------------------------
def test_no_drift_when_the_tailnet_matches(status):
    assert ts.drift(status, params(hostname="k3s-master-1")) == []


def test_tags_changed_on_the_tailnet_are_reported(status):
    drifted = dict(status, Self=dict(status["Self"], Tags=["tag:k3s-master", "tag:admin-added"]))
    warnings = ts.drift(drifted, params(hostname="k3s-master-1"))
    assert len(warnings) == 1 and "tag:admin-added" in warnings[0] and "admin console" in warnings[0]


def test_a_renamed_node_is_reported(status):
    renamed = dict(status, Self=dict(status["Self"], DNSName="k3s-master-1-1.tail1234.ts.net."))
    warnings = ts.drift(renamed, params(hostname="k3s-master-1"))
    assert len(warnings) == 1 and "k3s-master-1-1" in warnings[0] and "stale device" in warnings[0]


def test_no_rename_drift_while_the_hostname_is_being_changed(status):
    assert ts.drift(status, params(hostname="cp9"), "set", ["Hostname"]) == []


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

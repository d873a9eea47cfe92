# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding what ``tailscale`` must do from the daemon's real state.

Pure functions, no I/O: the module reads ``tailscale status --json`` and
``tailscale debug prefs``, and these functions compare them with what is wanted,
choose one action and build its command line (never with the auth key in it).
"""

from __future__ import annotations

import ipaddress
import re

DEFAULT_CONTROL_URL = "https://controlplane.tailscale.com"

# Settings the role manages: parameter -> (Prefs field, CLI flag, default, changed by `tailscale set`).
MANAGED = (
    ("hostname", "Hostname", "hostname", "", True),
    ("ssh", "RunSSH", "ssh", False, True),
    ("accept_routes", "RouteAll", "accept-routes", False, True),
    ("accept_dns", "CorpDNS", "accept-dns", True, True),
    ("shields_up", "ShieldsUp", "shields-up", False, True),
    ("advertise_routes", "AdvertiseRoutes", "advertise-routes", None, True),
    ("operator", "OperatorUser", "operator", "", True),
    ("tags", "AdvertiseTags", "advertise-tags", None, False),
    ("login_server", "ControlURL", "login-server", DEFAULT_CONTROL_URL, False),
)

LOGGED_IN_STATES = ("Running", "Starting", "Stopped", "NeedsMachineAuth")
TAG_RE = re.compile(r"^tag:[a-z0-9][a-z0-9-]*$")
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class TailscaleError(Exception):
    """A problem the module reports with fail_json."""


def _norm_list(value):
    if not value:
        return None
    return sorted(str(item) for item in value)


def normalize(field, value):
    """Prefs values in one comparable form (lists sorted, None for empty lists, URLs without trailing slash)."""
    if field in ("AdvertiseTags", "AdvertiseRoutes"):
        return _norm_list(value)
    if field == "ControlURL":
        return (value or DEFAULT_CONTROL_URL).rstrip("/")
    if field in ("Hostname", "OperatorUser"):
        return value or ""
    return bool(value)


def validate(params):
    """Reject bad input before anything runs. Returns a list of messages."""
    errors = []
    for tag in params.get("tags") or []:
        if not TAG_RE.match(tag):
            errors.append("tag %r is not valid: tags look like tag:k3s-server (lowercase letters, digits, dashes)" % tag)
    hostname = params.get("hostname") or ""
    if hostname and not HOSTNAME_RE.match(hostname):
        errors.append("hostname %r is not a valid DNS label (letters, digits and dashes, at most 63)" % hostname)
    for route in params.get("advertise_routes") or []:
        try:
            ipaddress.ip_network(route, strict=True)
        except ValueError:
            errors.append("advertise_routes: %r is not a network in CIDR form" % route)
    login_server = params.get("login_server") or ""
    if login_server and not re.match(r"^https?://[^/\s]+", login_server):
        errors.append("login_server %r must be an http:// or https:// URL" % login_server)
    for arg in params.get("extra_args") or []:
        if not arg.startswith("--"):
            errors.append("extra_args: %r is not a flag (flags start with --)" % arg)
        name = arg[2:].split("=", 1)[0]
        if name in ("auth-key", "authkey"):
            errors.append("extra_args must not carry the auth key; use the authkey option (it is passed from a file)")
        elif name in [flag for unused, unused_field, flag, unused_default, unused_settable in MANAGED] + ["reset", "force-reauth", "timeout"]:
            errors.append("extra_args: --%s is managed by its own option" % name)
    return errors


def wanted_prefs(params):
    """The Prefs fields the node should have, normalized."""
    wanted = {}
    for param, field, unused_flag, default, unused_settable in MANAGED:
        value = params.get(param)
        wanted[field] = normalize(field, default if value is None else value)
    return wanted


def current_prefs(prefs):
    """The managed Prefs fields as the daemon reports them, normalized."""
    return {field: normalize(field, prefs.get(field)) for unused, field, unused_flag, unused_default, unused_settable in MANAGED}


def logged_in(status, prefs):
    """Whether the node holds a valid login (it may be stopped or awaiting approval)."""
    return (status.get("BackendState") in LOGGED_IN_STATES and not prefs.get("LoggedOut", False)
            and status.get("HaveNodeKey", True))


def plan(status, prefs, params):
    """Choose the action: none, login, reauth, set or start. Returns (action, differences)."""
    wanted = wanted_prefs(params)
    have = current_prefs(prefs)
    differences = sorted(field for field in wanted if wanted[field] != have[field])
    if not logged_in(status, prefs):
        return "login", differences
    auth_fields = {field for unused, field, unused_flag, unused_default, settable in MANAGED if not settable}
    if auth_fields.intersection(differences):
        return "reauth", differences
    if status.get("BackendState") == "Stopped" or not prefs.get("WantRunning", True):
        return "start", differences
    if differences:
        return "set", differences
    return "none", differences


def _flag(flag, value):
    if isinstance(value, bool):
        return "--%s=%s" % (flag, "true" if value else "false")
    if isinstance(value, list):
        return "--%s=%s" % (flag, ",".join(value))
    if value is None:
        return "--%s=" % flag
    return "--%s=%s" % (flag, value)


def command(action, params, binary="tailscale", socket=None, key_path=None):
    """The argv for an action. The key, when needed, is only referred to as file:<key_path>."""
    wanted = wanted_prefs(params)
    argv = [binary]
    if socket:
        argv.append("--socket=%s" % socket)
    if action == "set":
        argv.append("set")
        for unused, field, flag, unused_default, settable in MANAGED:
            if settable:
                argv.append(_flag(flag, wanted[field]))
        return argv
    argv += ["up", "--reset"]
    for unused, field, flag, unused_default, unused_settable in MANAGED:
        argv.append(_flag(flag, wanted[field]))
    if action in ("login", "reauth"):
        if not key_path:
            raise TailscaleError("an auth key is needed to %s" % ("log in" if action == "login" else "re-authenticate"))
        argv.append("--auth-key=file:%s" % key_path)
    if action == "reauth":
        argv.append("--force-reauth")
    argv.append("--timeout=%ss" % int(params.get("timeout") or 0))
    argv += list(params.get("extra_args") or [])
    return argv


def key_with_attributes(key, ephemeral, preauthorized):
    """OAuth client secrets become auth keys with attributes; other keys are left as they are."""
    if key.startswith("tskey-client-") and "?" not in key:
        return "%s?ephemeral=%s&preauthorized=%s" % (key, str(bool(ephemeral)).lower(), str(bool(preauthorized)).lower())
    return key


def split_addresses(addresses):
    """The first IPv4 and the first IPv6 address of a list, whatever their order (None when absent).

    Shared by the tailscale_up module and the infra.k3s.tailscale inventory plugin.
    """
    ipv4 = ipv6 = None
    for item in addresses or []:
        text = str(item).split("/", 1)[0].strip()
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            continue
        if addr.version == 4 and ipv4 is None:
            ipv4 = str(addr)
        elif addr.version == 6 and ipv6 is None:
            ipv6 = addr.compressed
    return ipv4, ipv6


def facts(status):
    """Facts of the node from `tailscale status --json`: addresses are parsed, not taken by position."""
    node = status.get("Self") or {}
    ipv4, ipv6 = split_addresses(status.get("TailscaleIPs") or node.get("TailscaleIPs"))
    return {
        "ip": ipv4,
        "ipv6": ipv6,
        "fqdn": (node.get("DNSName") or "").rstrip(".") or None,
        "hostname": node.get("HostName"),
        "node_id": node.get("ID"),
        "tags": sorted(node.get("Tags") or []),
        "backend_state": status.get("BackendState"),
    }

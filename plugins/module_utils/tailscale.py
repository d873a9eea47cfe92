# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding what ``tailscale`` must do from the daemon's real state.

Pure functions, no I/O: the module reads ``tailscale status --json`` and
``tailscale debug prefs``, and these functions compare them with what is wanted,
choose one action and build its command line (never with the auth key in it).
"""

from __future__ import annotations

import datetime
import ipaddress
import re

DEFAULT_CONTROL_URL = "https://controlplane.tailscale.com"
# ipn/prefs.go IsLoginServerSynonym: both URLs are Tailscale's own control plane, and upstream's
# `tailscale up` (cmd/tailscale/cli/up.go, updatePrefs) does not count a change between them.
LOGIN_SERVER_SYNONYMS = ("https://login.tailscale.com", "https://controlplane.tailscale.com")
# cmd/tailscale/cli/up.go (prefsFromUpArgs, netutil.CalcAdvertiseRoutes): --advertise-exit-node
# adds both default routes to Prefs.AdvertiseRoutes; they are compared as AdvertiseExitNode instead.
EXIT_ROUTES = ("0.0.0.0/0", "::/0")
# cmd/tailscale/cli/risks.go: the risk type that `up --force-reauth` and SSH toggles ask about.
ACCEPT_RISK = "--accept-risk=lose-ssh"

# Settings the role manages: parameter -> (Prefs field, CLI flag, default, changed by `tailscale set`).
MANAGED = (
    ("hostname", "Hostname", "hostname", "", True),
    ("ssh", "RunSSH", "ssh", False, True),
    ("accept_routes", "RouteAll", "accept-routes", False, True),
    ("accept_dns", "CorpDNS", "accept-dns", True, True),
    ("shields_up", "ShieldsUp", "shields-up", False, True),
    ("advertise_routes", "AdvertiseRoutes", "advertise-routes", None, True),
    ("advertise_exit_node", "AdvertiseExitNode", "advertise-exit-node", False, True),
    ("operator", "OperatorUser", "operator", "", True),
    ("tags", "AdvertiseTags", "advertise-tags", None, False),
    ("login_server", "ControlURL", "login-server", DEFAULT_CONTROL_URL, False),
)

LOGGED_IN_STATES = ("Running", "Starting", "Stopped", "NeedsMachineAuth")
# tailcfg/tailcfg.go CheckTag: "tag:" then a letter, then letters, digits or dashes (upper case allowed).
TAG_RE = re.compile(r"^tag:[A-Za-z][A-Za-z0-9-]*$")
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class TailscaleError(Exception):
    """A problem the module reports with fail_json."""


def _norm_list(value):
    if not value:
        return None
    return sorted(str(item) for item in value)


def _norm_routes(value):
    """CIDRs in ipaddress's canonical text, sorted, without the exit node's default routes."""
    routes = set()
    for item in value or []:
        try:
            text = str(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            text = str(item)
        if text not in EXIT_ROUTES:
            routes.add(text)
    return sorted(routes) or None


def normalize(field, value):
    """Prefs values in one comparable form (lists sorted, None for empty lists, URLs without trailing slash)."""
    if field == "AdvertiseTags":
        return _norm_list(value)
    if field == "AdvertiseRoutes":
        return _norm_routes(value)
    if field == "ControlURL":
        url = (value or DEFAULT_CONTROL_URL).rstrip("/")
        return DEFAULT_CONTROL_URL if url in LOGIN_SERVER_SYNONYMS else url
    if field in ("Hostname", "OperatorUser"):
        return value or ""
    return bool(value)


def validate(params):
    """Reject bad input before anything runs. Returns a list of messages."""
    errors = []
    for tag in params.get("tags") or []:
        if not TAG_RE.match(tag):
            errors.append("tag %r is not valid: a tag is tag: followed by a letter, then letters, digits or dashes"
                          " (tailcfg.CheckTag), like tag:k3s-server" % tag)
    hostname = params.get("hostname") or ""
    if hostname and not HOSTNAME_RE.match(hostname):
        errors.append("hostname %r is not a valid DNS label (letters, digits and dashes, at most 63)" % hostname)
    for route in params.get("advertise_routes") or []:
        try:
            network = ipaddress.ip_network(route, strict=True)
        except ValueError:
            errors.append("advertise_routes: %r is not a network in CIDR form (without host bits)" % route)
            continue
        if network.prefixlen == 0:
            errors.append("advertise_routes: %r is a default route; use advertise_exit_node to offer an exit node" % route)
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
    routes = prefs.get("AdvertiseRoutes") or []
    derived = dict(prefs, AdvertiseExitNode=all(route in routes for route in EXIT_ROUTES))
    return {field: normalize(field, derived.get(field)) for unused, field, unused_flag, unused_default, unused_settable in MANAGED}


def parse_go_time(text):
    """A time as Go's encoding/json writes time.Time (RFC 3339, nanoseconds allowed); None for empty or zero."""
    if not text or str(text).startswith("0001-01-01"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", str(text))
    if not match:
        return None
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    return datetime.datetime.fromisoformat(match.group(1) + zone)


def key_expired(status, now=None):
    """Whether Self.KeyExpiry (ipn/ipnstate/ipnstate.go PeerStatus.KeyExpiry, omitted when none) is in the past."""
    expiry = parse_go_time((status.get("Self") or {}).get("KeyExpiry"))
    if expiry is None:
        return False
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return expiry <= now


def settling(status):
    """Whether a daemon that holds a node key has not yet decided its state.

    ipn/ipnlocal/local.go nextStateLocked: a started daemon stays in NoState until its first
    network map ("UIs should print Loading..."). HaveNodeKey is `json:",omitempty"` in
    ipn/ipnstate/ipnstate.go, so a missing field means false.
    """
    return status.get("BackendState") == "NoState" and bool(status.get("HaveNodeKey", False))


def logged_in(status, prefs):
    """Whether the node holds a valid login (it may be stopped or awaiting approval)."""
    return (status.get("BackendState") in LOGGED_IN_STATES and not prefs.get("LoggedOut", False)
            and bool(status.get("HaveNodeKey", False)))


def plan(status, prefs, params):
    """Choose the action: none, login, reauth, set or start. Returns (action, differences)."""
    wanted = wanted_prefs(params)
    have = current_prefs(prefs)
    differences = sorted(field for field in wanted if wanted[field] != have[field])
    auth_fields = {field for unused, field, unused_flag, unused_default, settable in MANAGED if not settable}
    if not logged_in(status, prefs):
        return "login", differences
    if auth_fields.intersection(differences):
        return "reauth", differences
    # An expired node key (control/controlclient/direct.go doLogin: "Old key expired -> regen=true")
    # needs a new login: with an auth key it registers a new node key, without one `tailscale up`
    # waits for an interactive login.
    if key_expired(status):
        return "login", differences
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


def needs_accept_risk(action, differences):
    """Whether the command would make the CLI ask before it cuts an SSH session over the tailnet.

    cmd/tailscale/cli/up.go (updatePrefs): `up --force-reauth` and, through presentSSHToggleRisk,
    any change of --ssh in `up` or cmd/tailscale/cli/set.go (runSet) call presentRiskToUser
    (cmd/tailscale/cli/risks.go) when isSSHOverTailscale() (cmd/tailscale/cli/ssh.go); without a
    TTY util/prompt/prompt.go YesNo answers no and the command fails "aborted, no changes made".
    """
    return action == "reauth" or "RunSSH" in (differences or ())


def command(action, params, binary="tailscale", socket=None, key_path=None, differences=()):
    """The argv for an action. The key, when needed, is only referred to as file:<key_path>."""
    wanted = wanted_prefs(params)
    argv = [binary]
    if socket:
        argv.append("--socket=%s" % socket)
    risk = [ACCEPT_RISK] if needs_accept_risk(action, differences) else []
    if action == "set":
        argv.append("set")
        for unused, field, flag, unused_default, settable in MANAGED:
            if settable:
                argv.append(_flag(flag, wanted[field]))
        return argv + risk
    argv += ["up", "--reset"]
    for unused, field, flag, unused_default, unused_settable in MANAGED:
        argv.append(_flag(flag, wanted[field]))
    if action in ("login", "reauth"):
        if not key_path:
            raise TailscaleError("an auth key is needed to %s" % ("log in" if action == "login" else "re-authenticate"))
        argv.append("--auth-key=file:%s" % key_path)
    if action == "reauth":
        argv.append("--force-reauth")
    argv += risk
    argv.append("--timeout=%ss" % int(params.get("timeout") or 0))
    argv += list(params.get("extra_args") or [])
    return argv


def drift(status, params, action="none", differences=()):
    """Warnings about what the node has on the tailnet but its prefs do not show.

    Self.Tags are the tags control granted (changed in the admin console or by a tagged auth key),
    not the AdvertiseTags the node asked for; the MagicDNS label (first label of Self.DNSName) is
    the name control gave the node, which gets a suffix like cp1-1 when another device holds cp1.
    """
    node = status.get("Self") or {}
    if status.get("BackendState") != "Running":
        return []
    warnings = []
    wanted_tags = sorted(params.get("tags") or [])
    have_tags = sorted(node.get("Tags") or [])
    # A login or re-authentication asks control for the tags again; what it grants shows on the next run.
    if have_tags != wanted_tags and action not in ("login", "reauth"):
        warnings.append(
            "the node's tags on the tailnet are %s but %s are wanted: they were changed in the admin console "
            "or granted by a tagged auth key. Set them in the admin console (Machines, Edit ACL tags), or use an "
            "auth key that may grant the wanted tags and run `tailscale up --force-reauth` with it"
            % (have_tags or "none", wanted_tags or "none"))
    hostname = (params.get("hostname") or "").lower()
    label = (node.get("DNSName") or "").split(".", 1)[0].lower()
    if hostname and label and label != hostname and action != "login" and "Hostname" not in differences:
        warnings.append(
            "the node's MagicDNS name is %s, not %s: control gave it another name, usually because another "
            "device already holds %s. Remove or rename that stale device in the admin console, then rename this "
            "one to %s there (Machines, Edit machine name); the infra.k3s.tailscale inventory plugin names "
            "hosts by this label" % (label, hostname, hostname, hostname))
    return warnings


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

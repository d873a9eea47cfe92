# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: tailscale
short_description: Hosts of a Tailscale (or headscale) tailnet
version_added: 0.1.0
author:
  - infra.k3s maintainers (@infra-k3s)
description:
  - Makes one host per device of a tailnet, named by the first label of its MagicDNS name
    (V(k3s-master-1) for C(k3s-master-1.tail1234.ts.net)). MagicDNS names are unique in a tailnet,
    unlike the OS host names devices report.
  - Reads the devices from the Tailscale API v2 (O(backend=api)) or from C(tailscale status --json)
    run on the controller (O(backend=local), which also works with a headscale control server).
  - Leaves out devices that are not authorized, whose node key has expired, that are shared in from
    another tailnet, Mullvad exit nodes (C(*.mullvad.ts.net)), Funnel ingress nodes (named
    C(funnel-ingress-node) or C(*.funnel.ts.net)), and, unless O(include_offline=true), offline devices.
  - Makes a group per tag (C(tag:k3s-master) gives C(tag_k3s_master)), per OS (C(os_linux)), and the
    groups of O(tag_groups).
  - Values read from Tailscale are set as plain strings, which ansible-core 2.19 treats as untrusted (an inventory
    plugin's data is not trusted as templates by default), so a device named C({{ ... }}) is never templated, neither
    in host names and host variables nor in O(compose) and O(keyed_groups).
  - The configuration file name must end in C(tailscale.yml) or C(tailscale.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks this as a configuration of this plugin.
    type: str
    required: true
    choices: [infra.k3s.tailscale]
  backend:
    description:
      - V(api) lists the devices with the Tailscale API v2 (C(GET /api/v2/tailnet/{tailnet}/devices)).
      - V(local) runs C(tailscale status --json) on the controller, which must be on the tailnet.
        Use it for headscale, whose API is not Tailscale's.
    type: str
    choices: [api, local]
    default: api
  api_url:
    description: Base URL of the Tailscale API (O(backend=api)).
    type: str
    default: https://api.tailscale.com
    env:
      - name: TAILSCALE_API_URL
  tailnet:
    description:
      - Tailnet to list (O(backend=api)), for example V(example.com). V(-) is the default tailnet of the key.
    type: str
    default: '-'
    env:
      - name: TAILSCALE_TAILNET
  api_key:
    description:
      - Tailscale API access token (C(tskey-api-...)), sent as a Bearer token (O(backend=api)).
      - Takes precedence over O(oauth_client_id) and O(oauth_client_secret) when both are set.
      - May be a template, for example a lookup of a vaulted variable.
    type: str
    env:
      - name: TAILSCALE_API_KEY
  oauth_client_id:
    description:
      - Id of a Tailscale OAuth client with the C(devices:core:read) scope, used with O(oauth_client_secret)
        when O(api_key) is not set (O(backend=api)).
      - The client credentials are exchanged at C(POST /api/v2/oauth/token) for an access token that is
        kept in memory until it expires, and fetched again after a 401.
    type: str
    env:
      - name: TAILSCALE_OAUTH_CLIENT_ID
  oauth_client_secret:
    description:
      - Secret of the OAuth client O(oauth_client_id). May be a template.
    type: str
    env:
      - name: TAILSCALE_OAUTH_CLIENT_SECRET
  timeout:
    description: Seconds to wait for an API answer, or for C(tailscale status) to finish.
    type: float
    default: 30
  max_retries:
    description:
      - How many times an API request is retried after HTTP 429 (waiting as C(Retry-After) says, up to 60 s)
        or HTTP 5xx (waiting 1, 2, 4, ... s, at most 30 s). Network failures are not retried.
    type: int
    default: 5
  validate_certs:
    description: Whether the TLS certificate of O(api_url) is checked.
    type: bool
    default: true
  tailscale_binary:
    description: The C(tailscale) CLI run by O(backend=local), a name looked up in E(PATH) or a path.
    type: str
    default: tailscale
  socket:
    description:
      - Path of the tailscaled socket, passed as C(--socket=) to O(tailscale_binary) (O(backend=local)).
      - Not set, the CLI's default is used.
    type: path
  ansible_host_source:
    description:
      - What C(ansible_host) is set to.
      - V(ipv4) the device's Tailscale IPv4 address; a device without one gets its IPv6 address.
      - V(ipv6) the device's Tailscale IPv6 address; a device without one gets its IPv4 address.
      - V(fqdn) the MagicDNS name (needs MagicDNS on the controller).
      - V(hostname) the host name the device reports.
    type: str
    choices: [ipv4, ipv6, fqdn, hostname]
    default: ipv4
  include_offline:
    description: Whether devices that are not connected to the control server are included.
    type: bool
    default: false
  include_tags:
    description: When not empty, only devices with at least one of these tags (C(tag:name)) are included.
    type: list
    elements: str
    default: []
  exclude_tags:
    description: Devices with any of these tags are left out (this wins over O(include_tags)).
    type: list
    elements: str
    default: []
  tag_groups:
    description:
      - Groups made from tags, a mapping of group name to a list of tags; a device with any of the
        tags is put in the group.
      - 'For example C({k3s_masters: [tag:k3s-master], k3s_workers: [tag:k3s-worker]}).'
    type: dict
    default: {}
notes:
  - Host names come from the MagicDNS name, falling back to the host name the device reports when the
    name is empty. When two devices have the same first label (possible with O(backend=local) and
    headscale, or devices of different MagicDNS domains), the first listed is kept and a warning names both.
  - Hosts get the variables C(tailscale_ip) (IPv4), C(tailscale_ipv6), C(tailscale_fqdn),
    C(tailscale_hostname), C(tailscale_os), C(tailscale_tags), C(tailscale_online), C(tailscale_node_id),
    C(tailscale_last_seen) (null while connected), C(tailscale_client_version) (null for peers with
    O(backend=local)), C(tailscale_authorized), and C(ansible_host).
  - Group names from tags and OS are lower case, with characters other than letters, digits and C(_)
    replaced by C(_).
  - With O(backend=local), the controller itself (C(Self)) is a host too.
  - The API key, OAuth client secret and access tokens never appear in messages or in the inventory cache.
seealso:
  - name: Tailscale API
    description: The device list endpoint.
    link: https://tailscale.com/api#tag/devices/GET/tailnet/{tailnet}/devices
"""

EXAMPLES = r"""
# k3s.tailscale.yml: the K3s nodes of the tailnet, grouped by tag, cached for 10 minutes.
# The API key comes from TAILSCALE_API_KEY.
plugin: infra.k3s.tailscale
include_tags: [tag:k3s-master, tag:k3s-worker]
tag_groups:
  k3s_masters: [tag:k3s-master]
  k3s_workers: [tag:k3s-worker]
groups:
  k3s_cluster: "'tag:k3s-master' in tailscale_tags or 'tag:k3s-worker' in tailscale_tags"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible/tailscale
cache_timeout: 600

---
# oauth.tailscale.yml: an OAuth client (TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET)
# and a named tailnet, with the MagicDNS name as ansible_host.
plugin: infra.k3s.tailscale
tailnet: example.com
ansible_host_source: fqdn
keyed_groups:
  - key: tailscale_os
    prefix: platform

---
# local.tailscale.yml: what `tailscale status --json` on the controller shows (works with headscale).
plugin: infra.k3s.tailscale
backend: local
socket: /run/tailscale/tailscaled.sock
include_offline: true
compose:
  ansible_user: "'admin'"
"""

import datetime
import email.utils
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import open_url
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.infra.k3s.plugins.module_utils.tailscale import split_addresses


DEFAULT_API_URL = "https://api.tailscale.com"
USER_AGENT = "infra.k3s-tailscale-inventory"
# The longest Retry-After honoured; a longer one fails with a message saying so.
MAX_RETRY_AFTER = 60.0
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
# An access token is fetched again this long before it expires (or at a tenth of its life if shorter).
TOKEN_MARGIN = 60.0
CACHE_FORMAT = 1
MASK = "********"

# OAuth access tokens by (token URL, client id, digest of the secret): kept for the life of the
# process, so that a refresh of the inventory or a second source does not ask for a new one.
_TOKENS = {}

_GROUP_CHARS = re.compile(r"[^a-z0-9_]")


def _sleep(seconds):
    time.sleep(seconds)


def _monotonic():
    return time.monotonic()


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class TailscaleError(Exception):
    """A failure to report to the user as it is (never carries a secret)."""


def parse_time(value):
    """An RFC 3339 time of Tailscale as an aware datetime; None when empty or Go's zero time."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Go writes up to nine fractional digits; Python reads six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    if parsed.year <= 1:
        return None
    return parsed


def group_suffix(text):
    return _GROUP_CHARS.sub("_", str(text).lower())


def tag_group_name(tag):
    """tag:k3s-master -> tag_k3s_master."""
    text = str(tag)
    if text.startswith("tag:"):
        text = text[4:]
    return "tag_" + group_suffix(text)


def _label(fqdn, hostname):
    if fqdn:
        return fqdn.split(".", 1)[0]
    return (hostname or "").strip().lower().replace(" ", "-")


def _device(fqdn, hostname, addresses, os_name, tags, online, node_id, last_seen, client_version,
            authorized, expired, key_expiry, shared):
    """One device in the form the plugin caches and filters, whatever the backend."""
    fqdn = (fqdn or "").rstrip(".")
    ipv4, ipv6 = split_addresses(addresses)
    last = parse_time(last_seen)
    return {
        "name": _label(fqdn, hostname),
        "fqdn": fqdn or None,
        "hostname": hostname or None,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "os": os_name or None,
        "tags": [str(tag) for tag in (tags or [])],
        "online": bool(online),
        "node_id": node_id or None,
        "last_seen": last_seen if last is not None else None,
        "client_version": client_version or None,
        "authorized": bool(authorized),
        "expired": bool(expired),
        "key_expiry": key_expiry or None,
        "shared": bool(shared),
    }


def device_from_api(item):
    """A device of GET /api/v2/tailnet/{tailnet}/devices."""
    key_expiry = None if item.get("keyExpiryDisabled") else item.get("expires")
    return _device(
        fqdn=item.get("name"), hostname=item.get("hostname"), addresses=item.get("addresses"),
        os_name=item.get("os"), tags=item.get("tags"), online=item.get("connectedToControl"),
        node_id=item.get("nodeId") or item.get("id"), last_seen=item.get("lastSeen"),
        client_version=item.get("clientVersion"), authorized=item.get("authorized", False),
        expired=False, key_expiry=key_expiry, shared=item.get("isExternal"))


def devices_from_status(status):
    """Self and the peers of `tailscale status --json` (ipnstate.Status)."""
    if not isinstance(status, dict):
        raise TailscaleError("tailscale status --json did not print a JSON object")
    state = status.get("BackendState")
    if state not in (None, "Running", "Starting"):
        hint = {"NeedsLogin": "log in with tailscale up", "NeedsMachineAuth": "approve this device in the admin console",
                "Stopped": "start it with tailscale up"}.get(state, "check tailscaled")
        raise TailscaleError("tailscale on the controller is not running (BackendState %s): %s" % (state, hint))
    entries = []
    if isinstance(status.get("Self"), dict):
        entries.append((status["Self"], status.get("Version"), state != "NeedsMachineAuth"))
    peers = status.get("Peer") or {}
    if isinstance(peers, dict):
        entries.extend((peer, None, True) for peer in peers.values() if isinstance(peer, dict))
    devices = []
    for peer, version, authorized in entries:
        devices.append(_device(
            fqdn=peer.get("DNSName"), hostname=peer.get("HostName"), addresses=peer.get("TailscaleIPs"),
            os_name=peer.get("OS"), tags=peer.get("Tags"), online=peer.get("Online"), node_id=peer.get("ID"),
            last_seen=peer.get("LastSeen"), client_version=version, authorized=authorized,
            expired=peer.get("Expired"), key_expiry=None, shared=peer.get("ShareeNode")))
    return devices


def exclusion(device, now=None):
    """Why a device never makes a host (None when it may), whatever the options say."""
    fqdn = (device.get("fqdn") or "").lower()
    if not device.get("authorized"):
        return "not authorized"
    expiry = parse_time(device.get("key_expiry"))
    if device.get("expired") or (expiry is not None and expiry <= (now or _now())):
        return "node key expired"
    if device.get("shared"):
        return "shared in from another tailnet"
    if fqdn.endswith(".mullvad.ts.net"):
        return "Mullvad exit node"
    if (fqdn.endswith(".funnel.ts.net") or (device.get("hostname") or "").lower() == "funnel-ingress-node"
            or (device.get("name") or "").lower().startswith("funnel-ingress-node")):
        return "Funnel ingress node"
    if not device.get("name"):
        return "no name"
    return None


class TailscaleAPI(object):
    """The device list of Tailscale's API v2, with retries and OAuth access tokens."""

    def __init__(self, api_url=DEFAULT_API_URL, tailnet="-", api_key=None, client_id=None, client_secret=None,
                 timeout=30.0, max_retries=5, validate_certs=True):
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.tailnet = tailnet or "-"
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.validate_certs = validate_certs
        self.requests = 0
        if not api_key and not (client_id and client_secret):
            if client_id or client_secret:
                raise TailscaleError("oauth_client_id and oauth_client_secret must both be set (or set api_key)")
            raise TailscaleError("backend api needs api_key (or TAILSCALE_API_KEY), or oauth_client_id and "
                                 "oauth_client_secret (or TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET)")

    # ---- secrets --------------------------------------------------------------------------------

    def _token_key(self):
        digest = hashlib.sha256(to_text(self.client_secret).encode("utf-8")).hexdigest()
        return (self.api_url, self.client_id, digest)

    def secrets(self):
        found = [self.api_key, self.client_secret]
        if self.client_id and self.client_secret:
            token = _TOKENS.get(self._token_key())
            if token:
                found.append(token[0])
        return [str(item) for item in found if item]

    def scrub(self, text):
        text = to_text(text, errors="surrogate_or_replace")
        for secret in sorted(self.secrets(), key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
        return text

    # ---- HTTP -----------------------------------------------------------------------------------

    def _access_token(self):
        if self.api_key:
            return str(self.api_key)
        token = _TOKENS.get(self._token_key())
        if token and _monotonic() < token[1]:
            return token[0]
        answer = self._call("POST", self.api_url + "/api/v2/oauth/token", what="the OAuth token request", authenticate=False,
                            data=urlencode({"client_id": self.client_id, "client_secret": self.client_secret,
                                            "grant_type": "client_credentials"}),
                            content_type="application/x-www-form-urlencoded")
        value = answer.get("access_token") if isinstance(answer, dict) else None
        if not value:
            raise TailscaleError("Tailscale's OAuth token endpoint answered without an access_token")
        try:
            lifetime = float(answer.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        _TOKENS[self._token_key()] = (str(value), _monotonic() + lifetime - min(TOKEN_MARGIN, lifetime / 10.0))
        return str(value)

    def _forget_token(self):
        _TOKENS.pop(self._token_key(), None)

    def _delay(self, err, attempt):
        backoff = min(BACKOFF_BASE * (2 ** attempt), BACKOFF_MAX)
        if err.code != 429:
            return backoff
        header = err.headers.get("Retry-After") if err.headers is not None else None
        if header is None:
            return backoff
        header = header.strip()
        try:
            wait = float(header)
        except ValueError:
            when = email.utils.parsedate_to_datetime(header) if header else None
            if when is None:
                return backoff
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            wait = (when - _now()).total_seconds()
        return max(0.0, wait)

    def _explain(self, status, body, what):
        detail = ""
        try:
            payload = json.loads(body)
            if isinstance(payload, dict) and payload.get("message"):
                detail = str(payload["message"])
        except ValueError:
            detail = to_text(body, errors="surrogate_or_replace").strip()
        detail = self.scrub(detail[:300])
        said = " (Tailscale said: %s)" % detail if detail else ""
        if what == "the OAuth token request" and status in (400, 401, 403):
            return ("Tailscale rejected the OAuth client credentials: HTTP %d%s; check oauth_client_id and "
                    "oauth_client_secret" % (status, said))
        if status == 401:
            source = "api_key (TAILSCALE_API_KEY)" if self.api_key else "the OAuth client"
            return ("Tailscale rejected the credentials of %s: HTTP 401%s; check %s, it may be wrong, expired or revoked"
                    % (what, said, source))
        if status == 403:
            return ("Tailscale refused %s: HTTP 403%s; the API key or OAuth client needs the devices:core:read scope "
                    "on tailnet %r" % (what, said, self.tailnet))
        if status == 404:
            return ("Tailscale has no tailnet %r at %s: HTTP 404%s; check tailnet (TAILSCALE_TAILNET), or use '-' "
                    "for the default tailnet of the key" % (self.tailnet, self.api_url, said))
        return "Tailscale API error on %s: HTTP %d%s" % (what, status, said)

    def _call(self, method, url, what, authenticate=True, data=None, content_type=None):
        attempt = 0
        refreshed = False
        while True:
            headers = {"Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            if authenticate:
                headers["Authorization"] = "Bearer " + self._access_token()
            self.requests += 1
            try:
                response = open_url(url, data=data, method=method, headers=headers, timeout=self.timeout,
                                    validate_certs=self.validate_certs, http_agent=USER_AGENT, use_netrc=False,
                                    unredirected_headers=["Authorization"], follow_redirects="safe")
                body = response.read()
            except HTTPError as err:
                try:
                    body = err.read()
                except (OSError, http.client.HTTPException):
                    body = b""
                if err.code == 401 and authenticate and not self.api_key and not refreshed:
                    # The access token may have been revoked or expired early: get a new one, once.
                    refreshed = True
                    self._forget_token()
                    continue
                if (err.code == 429 or err.code >= 500) and attempt < self.max_retries:
                    wait = self._delay(err, attempt)
                    if wait > MAX_RETRY_AFTER:
                        raise TailscaleError("Tailscale asked to wait %.0f s before retrying %s (HTTP 429), longer than "
                                             "%.0f s; try again later" % (wait, what, MAX_RETRY_AFTER)) from None
                    attempt += 1
                    _sleep(wait)
                    continue
                message = self._explain(err.code, body, what)
                if err.code == 429 or err.code >= 500:
                    message += " after %d attempts" % (attempt + 1)
                raise TailscaleError(message) from None
            except (URLError, OSError, socket.timeout, http.client.HTTPException) as err:
                reason = getattr(err, "reason", None) or err
                raise TailscaleError("Could not reach the Tailscale API at %s for %s: %s"
                                     % (self.api_url, what, self.scrub(to_native(reason)))) from None
            try:
                return json.loads(body)
            except ValueError:
                raise TailscaleError("The answer of the Tailscale API to %s is not JSON" % what) from None

    def devices(self):
        url = "%s/api/v2/tailnet/%s/devices" % (self.api_url, quote(str(self.tailnet), safe=""))
        answer = self._call("GET", url, what="the device list of tailnet %r" % self.tailnet)
        items = answer.get("devices") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise TailscaleError("The device list of the Tailscale API has no 'devices' list")
        return [device_from_api(item) for item in items if isinstance(item, dict)]


def local_status(binary="tailscale", socket_path=None, timeout=30.0):
    """Run `tailscale status --json` and return its devices."""
    path = binary if os.sep in str(binary) else shutil.which(binary)
    if not path or not os.path.exists(path):
        raise TailscaleError("The tailscale CLI %r was not found on the controller: install Tailscale, or set "
                             "tailscale_binary to its path" % (binary,))
    command = [path]
    if socket_path:
        command.append("--socket=%s" % socket_path)
    command.extend(["status", "--json"])
    try:
        proc = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TailscaleError("%s did not finish within %s s" % (" ".join(command), timeout)) from None
    except OSError as exc:
        raise TailscaleError("Could not run %s: %s" % (" ".join(command), to_native(exc))) from None
    if proc.returncode != 0:
        error = to_text(proc.stderr, errors="surrogate_or_replace").strip()[-500:]
        raise TailscaleError("%s failed (rc=%d): %s" % (" ".join(command), proc.returncode, error or "no message"))
    try:
        status = json.loads(proc.stdout)
    except ValueError:
        raise TailscaleError("%s did not print JSON" % " ".join(command)) from None
    return devices_from_status(status)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Hosts of a tailnet, from the Tailscale API v2 or `tailscale status --json`."""

    NAME = "infra.k3s.tailscale"

    def verify_file(self, path):
        if super(InventoryModule, self).verify_file(path):
            return path.endswith(("tailscale.yml", "tailscale.yaml"))
        return False

    def _secret_option(self, name):
        value = self.get_option(name)
        if value and self.templar.is_template(value):
            value = self.templar.template(value)
        return value or None

    def _source(self):
        """What the cached data depends on (no secret), to miss the cache when it changes."""
        if self.get_option("backend") == "local":
            return "local %s %s" % (self.get_option("tailscale_binary"), self.get_option("socket") or "")
        return "api %s %s %s" % ((self.get_option("api_url") or DEFAULT_API_URL).rstrip("/"),
                                 self.get_option("tailnet"), self.get_option("oauth_client_id") or "key")

    def _fetch(self):
        if self.get_option("backend") == "local":
            return local_status(self.get_option("tailscale_binary"), self.get_option("socket"), self.get_option("timeout"))
        api = TailscaleAPI(api_url=self.get_option("api_url"), tailnet=self.get_option("tailnet"),
                           api_key=self._secret_option("api_key"), client_id=self.get_option("oauth_client_id"),
                           client_secret=self._secret_option("oauth_client_secret"), timeout=self.get_option("timeout"),
                           max_retries=self.get_option("max_retries"), validate_certs=self.get_option("validate_certs"))
        try:
            return api.devices()
        except TailscaleError as exc:
            raise TailscaleError(api.scrub(exc)) from None

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        devices = None
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                update_cache = True
            else:
                if (isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT
                        and cached.get("source") == self._source() and isinstance(cached.get("devices"), list)):
                    devices = cached["devices"]
                else:
                    update_cache = True
        if devices is None:
            try:
                devices = self._fetch()
            except TailscaleError as exc:
                raise AnsibleParserError("infra.k3s.tailscale: %s" % exc) from None
        if update_cache:
            self._cache[cache_key] = {"format": CACHE_FORMAT, "source": self._source(), "devices": devices}
        self._populate(devices)

    def _tag_groups(self):
        groups = {}
        for name, tags in (self.get_option("tag_groups") or {}).items():
            if isinstance(tags, str):
                tags = [tags]
            if not isinstance(tags, (list, tuple)):
                raise AnsibleParserError("infra.k3s.tailscale: tag_groups.%s must be a list of tags" % name)
            groups[str(name)] = set(str(tag) for tag in tags)
        return groups

    def _wanted(self, device, include_tags, exclude_tags, include_offline):
        reason = exclusion(device)
        if reason is None and not include_offline and not device.get("online"):
            reason = "offline"
        tags = set(device.get("tags") or [])
        if reason is None and exclude_tags & tags:
            reason = "has an excluded tag"
        if reason is None and include_tags and not include_tags & tags:
            reason = "has none of include_tags"
        if reason:
            self.display.vvv("infra.k3s.tailscale: left out %s (%s): %s"
                             % (device.get("fqdn") or device.get("hostname"), device.get("node_id"), reason))
        return reason is None

    def _ansible_host(self, device):
        source = self.get_option("ansible_host_source")
        if source == "ipv6":
            return device.get("ipv6") or device.get("ipv4")
        if source == "fqdn":
            return device.get("fqdn")
        if source == "hostname":
            return device.get("hostname")
        return device.get("ipv4") or device.get("ipv6")

    def _populate(self, devices):
        strict = self.get_option("strict")
        tag_groups = self._tag_groups()
        include_tags = set(self.get_option("include_tags") or [])
        exclude_tags = set(self.get_option("exclude_tags") or [])
        include_offline = self.get_option("include_offline")
        kept = {}
        for device in devices:
            if not self._wanted(device, include_tags, exclude_tags, include_offline):
                continue
            name = device["name"]
            if name in kept:
                first = kept[name]
                self.display.warning(
                    "infra.k3s.tailscale: devices %s (%s) and %s (%s) both make the host %s; kept the first, left out "
                    "the second" % (first.get("fqdn") or first.get("hostname"), first.get("node_id"),
                                    device.get("fqdn") or device.get("hostname"), device.get("node_id"), name))
                continue
            kept[name] = device
            self._add(name, device, tag_groups, strict)

    def _add(self, name, device, tag_groups, strict):
        host = self.inventory.add_host(name)
        tags = list(device.get("tags") or [])
        hostvars = {
            "tailscale_ip": device.get("ipv4"),
            "tailscale_ipv6": device.get("ipv6"),
            "tailscale_fqdn": device.get("fqdn"),
            "tailscale_hostname": device.get("hostname"),
            "tailscale_os": device.get("os"),
            "tailscale_tags": tags,
            "tailscale_online": bool(device.get("online")),
            "tailscale_node_id": device.get("node_id"),
            "tailscale_last_seen": device.get("last_seen"),
            "tailscale_client_version": device.get("client_version"),
            "tailscale_authorized": bool(device.get("authorized")),
        }
        address = self._ansible_host(device)
        if address:
            hostvars["ansible_host"] = address
        # Plain values: ansible-core (2.19+) does not trust an inventory plugin's data as templates
        # (BaseInventoryPlugin.trusted_by_default is False), so no wrap_var (deprecated) is needed.
        for key, value in hostvars.items():
            self.inventory.set_variable(host, key, value)
        for tag in tags:
            self.inventory.add_child(self.inventory.add_group(tag_group_name(tag)), host)
        if device.get("os"):
            self.inventory.add_child(self.inventory.add_group("os_" + group_suffix(device["os"])), host)
        for group, group_tags in tag_groups.items():
            if group_tags.intersection(tags):
                self.inventory.add_child(self.inventory.add_group(group), host)
        variables = self.inventory.get_host(host).get_vars()
        self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)

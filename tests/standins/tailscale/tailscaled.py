#!/usr/bin/env python
"""Lab stand-in for Tailscale's node daemon, tailscaled (test code; never shipped).

It logs in to the lab's control service (control.py next to this file, see README.md),
polls the peer map every 2 s and mirrors it onto a VXLAN device (the "tun"), and serves
the CLI (tailscale.py) over HTTP on a unix socket. Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

VERSION = "1.88.3"  # stamped by build-repo.sh
COMMIT = "5ba1de1ab0c0"  # stamped by build-repo.sh
GO_VERSION = "go1.25.1"
DEFAULT_CONTROL_URL = "https://controlplane.tailscale.com"
DEFAULT_STATE = "/var/lib/tailscale/tailscaled.state"
DEFAULT_SOCKET = "/run/tailscale/tailscaled.sock"
POLL_INTERVAL = 2.0
# ipn/ipnlocal/local.go nextStateLocked: a started daemon with a node key and WantRunning stays in NoState
# ("Our first time connecting to control ... UIs should print Loading...") until its first network map.
# The stand-in holds that state this long after each start, so callers must wait for it to settle.
NOSTATE_SECONDS = 3.0
ZERO_TIME = "0001-01-01T00:00:00Z"
TRANSIENT_STATUSES = (408, 429, 500, 502, 503, 504)


def default_prefs() -> dict:
    """ipn.Prefs as a fresh Linux tailscaled has them (JSON field names of ipn/prefs.go)."""
    return {
        "ControlURL": DEFAULT_CONTROL_URL,
        "RouteAll": False,
        "ExitNodeID": "",
        "ExitNodeIP": "",
        "InternalExitNodePrior": "",
        "ExitNodeAllowLANAccess": False,
        "CorpDNS": True,
        "RunSSH": False,
        "RunWebClient": False,
        "WantRunning": False,
        "LoggedOut": False,
        "ShieldsUp": False,
        "AdvertiseTags": None,
        "Hostname": "",
        "NotepadURLs": False,
        "AdvertiseRoutes": None,
        "AdvertiseServices": None,
        "NoSNAT": False,
        "NoStatefulFiltering": True,
        "NetfilterMode": 2,
        "OperatorUser": "",
        "AutoUpdate": {"Check": True, "Apply": None},
        "AppConnector": {"Advertise": False},
        "PostureChecking": False,
        "NetfilterKind": "",
        "DriveShares": None,
        "AllowSingleHosts": True,
    }


def go_time(value: str | None) -> str:
    """An ISO 8601 time as Go's time.Time marshals it (UTC, Z)."""
    if not value:
        return ZERO_TIME
    return value.replace("+00:00", "Z")


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run an iproute2 command (ip/bridge) quietly."""
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class ControlError(Exception):
    """A control request failed: permanent (status 4xx with an error) or transient (network, 5xx, 429)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Whether retrying later may help."""
        return self.status is None or self.status in TRANSIENT_STATUSES


class Overlay(object):
    """The VXLAN device that carries the tailnet: addresses, per-peer routes and FDB entries."""

    def __init__(self, name: str, port: int):
        self.name = name
        self.port = port
        self.config: tuple | None = None  # (vni, local, addresses)
        self.peers: dict = {}  # endpoint key -> (endpoint, addresses)

    def exists(self) -> bool:
        """Whether the device is there."""
        return run_ip("ip", "link", "show", "dev", self.name, check=False).returncode == 0

    def down(self) -> None:
        """Remove the device (and with it its addresses, routes and FDB entries)."""
        if self.exists():
            run_ip("ip", "link", "del", "dev", self.name, check=False)
        self.config = None
        self.peers = {}

    def ensure(self, vni: int, local: str, addresses: list) -> None:
        """Create or re-create the device for this node."""
        config = (vni, local, tuple(addresses))
        if self.config == config and self.exists():
            return
        self.down()
        # Upstream's tailscale0 is a layer-3 TUN device (wgengine/netstack, net/tstun): peers keep no
        # link-layer address of it that a restart could invalidate. A VXLAN device has a MAC that peers
        # cache in their neighbour tables (REACHABLE for up to ~45 s); a fresh random MAC after each
        # restart of tailscaled would blackhole traffic to the node until those entries expire. So the
        # MAC is derived from the node's IPv4 address and stays the same across restarts.
        mac = self.stable_mac(addresses)
        run_ip("ip", "link", "add", self.name, *(("address", mac) if mac else ()), "type", "vxlan", "id", str(vni),
               "dstport", str(self.port), "local", local)
        run_ip("ip", "link", "set", "dev", self.name, "up")
        for addr in addresses:
            ip = ipaddress.ip_address(addr)
            if ip.version == 4:
                run_ip("ip", "addr", "add", f"{addr}/32", "dev", self.name)
            else:
                run_ip("ip", "-6", "addr", "add", f"{addr}/128", "dev", self.name, "nodad")
        self.config = config

    @staticmethod
    def stable_mac(addresses: list) -> str:
        """A locally administered unicast MAC from the first IPv4 address ("" without one)."""
        for addr in addresses:
            ip = ipaddress.ip_address(addr)
            if ip.version == 4:
                return "02:54:" + ":".join(f"{byte:02x}" for byte in ip.packed)
        return ""

    def set_peers(self, peers: list) -> None:
        """Reconcile per-peer routes and FDB entries with [(endpoint, [addresses])]."""
        wanted = {}
        for endpoint, addresses in peers:
            if endpoint:
                wanted[(endpoint, tuple(addresses))] = (endpoint, list(addresses))
        for key in list(self.peers):
            if key not in wanted:
                endpoint, addresses = self.peers.pop(key)
                self._peer(endpoint, addresses, add=False)
        for key, (endpoint, addresses) in wanted.items():
            if key not in self.peers:
                self._peer(endpoint, addresses, add=True)
                self.peers[key] = (endpoint, addresses)

    def _peer(self, endpoint: str, addresses: list, add: bool) -> None:
        verb = "replace" if add else "del"
        for addr in addresses:
            ip = ipaddress.ip_address(addr)
            prefix = f"{addr}/32" if ip.version == 4 else f"{addr}/128"
            run_ip("ip", f"-{ip.version}", "route", verb, prefix, "dev", self.name, check=False)
        fdb = ["bridge", "fdb", "append" if add else "del", "00:00:00:00:00:00", "dev", self.name, "dst", endpoint]
        result = run_ip(*fdb, check=False)
        if add and result.returncode != 0 and "exists" not in result.stderr:
            log(f"bridge fdb append for {endpoint} failed: {result.stderr.strip()}")


def log(message: str) -> None:
    """Log to stderr (the journal under systemd). Never called with secrets."""
    print(f"tailscaled: {message}", file=sys.stderr, flush=True)


class Daemon(object):  # pylint: disable=too-many-public-methods
    """Backend state machine: prefs, login, map polling and the overlay."""

    def __init__(self, state_path: str, tun: str, port: int):
        self.state_path = state_path
        self.overlay = Overlay(tun, port)
        self.lock = threading.RLock()
        self.kick = threading.Event()
        self.stopping = threading.Event()
        self.backend_state = "NoState"
        self.auth_url = ""
        self.error = None  # (seq, message) of the last failed login
        self.seq = 0
        self.login_req = None  # {"auth_key", "force_reauth", "seq"}; the key lives only here, in memory
        self.pending_update = False
        self.peers: list = []
        self.vxlan_id = None
        self.endpoint = ""
        # Intervals on the monotonic clock: upstream tailscaled (tailscale/tailscale, written in Go) times its
        # map poll with Go timers, which run on the monotonic clock (golang/go src/time/time.go, "Monotonic
        # Clocks"), so a step of the wall clock does not stop it.
        self.last_map = 0.0
        self.settle_until = time.monotonic() + NOSTATE_SECONDS
        self.have_netmap = False  # since this start
        self.state = {"machine_key": "", "node_key": "", "prefs": default_prefs(), "node": None,
                      "vxlan_id": None, "logged_in": False}
        self.load()

    # -- persistence --------------------------------------------------------------------
    def load(self) -> None:
        """Read the state file (or start fresh)."""
        try:
            with open(self.state_path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except FileNotFoundError:
            saved = {}
        prefs = default_prefs()
        prefs.update(saved.get("prefs") or {})
        self.state.update(saved)
        self.state["prefs"] = prefs
        if not self.state.get("machine_key"):
            self.state["machine_key"] = "mkey:" + secrets.token_hex(32)
        self.vxlan_id = self.state.get("vxlan_id")
        if self.logged_in():
            if prefs["WantRunning"]:
                # local.go nextStateLocked: no netmap yet and state NoState -> NoState (not Starting).
                self.backend_state = "NoState"
                self.login_req = {"auth_key": None, "force_reauth": False, "seq": 0}
            else:
                self.backend_state = "Stopped"
        else:
            self.backend_state = "NeedsLogin"
        self.save()

    def save(self) -> None:
        """Write the state file atomically, mode 0600."""
        directory = os.path.dirname(os.path.abspath(self.state_path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = f"{self.state_path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_path)

    def logged_in(self) -> bool:
        """Whether there is a node key from a successful login."""
        return bool(self.state.get("logged_in") and self.state.get("node_key"))

    def key_expired(self) -> bool:
        """Whether control's node record says the node key expired (control/controlclient/direct.go doLogin)."""
        expiry = (self.state.get("node") or {}).get("key_expiry")
        if not expiry or str(expiry).startswith("0001-"):
            return False
        try:
            when = datetime.datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
        except ValueError:
            return False
        return when <= datetime.datetime.now(datetime.timezone.utc)

    @property
    def prefs(self) -> dict:
        """Current prefs (live dict)."""
        return self.state["prefs"]

    def hostname(self) -> str:
        """The name this node asks for."""
        return self.prefs.get("Hostname") or socket.gethostname().split(".")[0]

    # -- control ------------------------------------------------------------------------
    def control(self, path: str, body: dict) -> dict:
        """POST JSON to the control service; raises ControlError."""
        url = self.prefs["ControlURL"].rstrip("/") + path
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read() or b"{}").get("error") or f"HTTP {exc.code}"
            except ValueError:
                message = f"HTTP {exc.code}"
            raise ControlError(message, exc.code) from None
        except (OSError, ValueError) as exc:
            raise ControlError(f"control unreachable: {exc}") from None

    def find_endpoint(self) -> str:
        """The underlay address: src of the route to the control host."""
        host = urllib.parse.urlsplit(self.prefs["ControlURL"]).hostname or "127.0.0.1"
        try:
            addr = socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
        except OSError:
            return ""
        result = run_ip("ip", "-j", "route", "get", addr, check=False)
        try:
            routes = json.loads(result.stdout or "[]")
        except ValueError:
            return ""
        return routes[0].get("prefsrc", "") if routes else ""

    def do_login(self, req: dict) -> None:
        """Register with control (auth key only in the request body)."""
        with self.lock:
            # control/controlclient/direct.go doLogin: an expired old key means regen=true (a new node key,
            # which only an auth key or an interactive login can register).
            expired = self.logged_in() and self.key_expired()
            if expired and not req["auth_key"]:
                if self.login_req is req:
                    self.login_req = None
                self.backend_state = "NeedsLogin"
                self.auth_url = self.prefs["ControlURL"].rstrip("/") + "/a/" + secrets.token_hex(6)
                self.overlay.down()
                log("node key expired; run 'tailscale up' to authenticate")
                return
            node_key = self.state["node_key"] if self.logged_in() and not req["force_reauth"] and not expired else ""
            new_key = not node_key
            if new_key:
                node_key = "nodekey:" + secrets.token_hex(32)
            self.endpoint = self.find_endpoint()
            body = {"machine_key": self.state["machine_key"], "node_key": node_key, "hostname": self.hostname(),
                    "os": "linux", "advertise_tags": list(self.prefs.get("AdvertiseTags") or []),
                    "endpoint": self.endpoint, "version": VERSION, "force_reauth": bool(req["force_reauth"])}
            if req["auth_key"] and new_key:
                body["auth_key"] = req["auth_key"]
        try:
            reply = self.control("/machine/register", body)
        except ControlError as exc:
            with self.lock:
                if exc.transient:
                    log(f"register: {exc} (will retry)")
                    return
                if self.login_req is req:
                    self.login_req = None
                self.error = (req["seq"], str(exc))
                if new_key:
                    self.backend_state = "NeedsLogin"
                log(f"register failed: {exc}")
            return
        with self.lock:
            if self.login_req is req:
                self.login_req = None
            self.state.update(node_key=node_key, logged_in=True, node=reply.get("node"),
                              vxlan_id=reply.get("vxlan_id"))
            self.vxlan_id = reply.get("vxlan_id")
            self.prefs["LoggedOut"] = False
            self.auth_url = ""
            self.apply_node()
            self.save()
        self.do_map()

    def apply_node(self) -> None:
        """BackendState from the node as control returned it."""
        node = self.state.get("node") or {}
        if not self.prefs["WantRunning"]:
            self.backend_state = "Stopped"
        elif self.key_expired():
            # ipn/ipnlocal/local.go nextStateLocked: keyExpired -> NeedsLogin ("The node key expired, need to relogin").
            self.backend_state = "NeedsLogin"
        elif node.get("authorized"):
            self.backend_state = "Running"
        else:
            self.backend_state = "NeedsMachineAuth"

    def do_map(self) -> None:
        """One map poll (the heartbeat), then reconcile the overlay."""
        with self.lock:
            if not self.endpoint:
                self.endpoint = self.find_endpoint()
            body = {"node_key": self.state["node_key"], "endpoint": self.endpoint, "hostname": self.hostname()}
        try:
            reply = self.control("/machine/map", body)
        except ControlError as exc:
            with self.lock:
                if exc.status == 401:
                    log(f"map: {exc}; logged out by control")
                    self.state.update(node_key="", logged_in=False, node=None)
                    self.peers = []
                    self.backend_state = "NeedsLogin"
                    self.overlay.down()
                    self.save()
                else:
                    log(f"map: {exc}")
            return
        with self.lock:
            if not self.logged_in() or body["node_key"] != self.state["node_key"]:
                return
            self.state["node"] = reply.get("node") or self.state.get("node")
            self.peers = reply.get("peers") or []
            self.last_map = time.monotonic()
            self.have_netmap = True
            self.apply_node()
            self.reconcile()
            self.save()

    def reconcile(self) -> None:
        """Make the overlay match the backend state and peer list."""
        node = self.state.get("node") or {}
        if self.backend_state != "Running" or self.vxlan_id is None or not self.endpoint:
            self.overlay.down()
            return
        try:
            self.overlay.ensure(int(self.vxlan_id), self.endpoint, node.get("addresses") or [])
            self.overlay.set_peers([(peer.get("endpoint"), peer.get("addresses") or []) for peer in self.peers
                                    if peer.get("endpoint") and peer.get("endpoint") != self.endpoint])
        except subprocess.CalledProcessError as exc:
            log(f"overlay: {' '.join(exc.cmd)}: {exc.stderr.strip()}")

    def do_update(self) -> None:
        """Push the hostname to control (tailscale set --hostname)."""
        with self.lock:
            self.pending_update = False
            body = {"node_key": self.state["node_key"], "hostname": self.hostname()}
        try:
            reply = self.control("/machine/update", body)
        except ControlError as exc:
            log(f"update: {exc}")
            with self.lock:
                self.pending_update = exc.transient
            return
        with self.lock:
            if reply.get("node"):
                self.state["node"] = reply["node"]
                self.save()

    def engine(self) -> None:
        """Background loop: pending logins, updates and the 2 s map poll."""
        while not self.stopping.is_set():
            self.kick.wait(POLL_INTERVAL)
            self.kick.clear()
            if self.stopping.is_set():
                break
            try:
                self.step()
            except Exception as exc:  # pylint: disable=broad-except
                log(f"engine: {exc!r}")

    def step(self) -> None:
        """One engine iteration."""
        with self.lock:
            req = self.login_req
            running = self.logged_in() and self.prefs["WantRunning"]
            update = self.pending_update and self.logged_in()
        if req is not None:
            if self.backend_state == "NoState" and time.monotonic() < self.settle_until:
                return  # the first network map has not come yet (see NOSTATE_SECONDS)
            self.do_login(req)
            return
        if update:
            self.do_update()
        if running:
            if time.monotonic() - self.last_map >= POLL_INTERVAL * 0.9:
                self.do_map()
        else:
            with self.lock:
                self.overlay.down()

    # -- LocalAPI -----------------------------------------------------------------------
    def up(self, prefs: dict, auth_key: str | None, force_reauth: bool) -> dict:
        """Start: new prefs, then a login (with the auth key, re-using the node key, or interactive)."""
        with self.lock:
            old_control = self.prefs.get("ControlURL")
            new = default_prefs()
            new.update({k: v for k, v in prefs.items() if k in new})
            new["WantRunning"] = True
            new["LoggedOut"] = False
            self.state["prefs"] = new
            if old_control != new["ControlURL"] and self.logged_in():
                self.state.update(node_key="", logged_in=False, node=None)
                self.overlay.down()
            self.seq += 1
            self.error = None
            self.auth_url = ""
            if auth_key or self.logged_in() and not force_reauth:
                self.login_req = {"auth_key": auth_key or None, "force_reauth": force_reauth, "seq": self.seq}
                self.backend_state = "Starting"
            else:
                self.login_req = None
                self.auth_url = new["ControlURL"].rstrip("/") + "/a/" + secrets.token_hex(6)
                self.backend_state = "NeedsLogin"
            self.save()
            self.kick.set()
            return {"seq": self.seq}

    def edit(self, changes: dict) -> dict:
        """EditPrefs: apply the given fields."""
        with self.lock:
            old = dict(self.prefs)
            for key, value in changes.items():
                if key in self.prefs and key not in ("LoggedOut",):
                    self.prefs[key] = value
            if self.prefs["Hostname"] != old["Hostname"] and self.logged_in():
                self.pending_update = True
            if self.prefs["WantRunning"] != old["WantRunning"]:
                if not self.prefs["WantRunning"]:
                    self.backend_state = "Stopped" if self.logged_in() else "NeedsLogin"
                    self.peers = []
                    self.overlay.down()
                elif self.logged_in():
                    self.backend_state = "Starting"
                    self.login_req = {"auth_key": None, "force_reauth": False, "seq": self.seq}
                else:
                    self.backend_state = "NeedsLogin"
            self.save()
            self.kick.set()
            return self.prefs

    def logout(self) -> None:
        """Log out at control and locally (the machine key stays)."""
        with self.lock:
            node_key = self.state.get("node_key")
            was = self.logged_in()
        if was:
            try:
                self.control("/machine/logout", {"node_key": node_key})
            except ControlError as exc:
                log(f"logout: {exc}")
        with self.lock:
            self.state.update(node_key="", logged_in=False, node=None)
            self.prefs["LoggedOut"] = True
            self.prefs["WantRunning"] = False
            self.login_req = None
            self.peers = []
            self.auth_url = ""
            self.backend_state = "NeedsLogin"
            self.overlay.down()
            self.save()

    def backend(self) -> dict:
        """What the CLI waits on."""
        with self.lock:
            error = self.error
            return {"BackendState": self.backend_state, "AuthURL": self.auth_url,
                    "NodeKey": self.state.get("node_key") if self.logged_in() else "",
                    "Error": error[1] if error else "", "ErrorSeq": error[0] if error else 0,
                    "Seq": self.seq}

    def debug_prefs(self) -> dict:
        """ipn.Prefs as LocalAPI returns it: Persist ("Config") with private keys stripped."""
        with self.lock:
            prefs = dict(self.prefs)
            node = self.state.get("node") or {}
            zero = "0" * 64
            prefs["Config"] = {
                "PrivateNodeKey": f"privkey:{zero}",
                "OldPrivateNodeKey": f"privkey:{zero}",
                "UserProfile": self.user_profile(node) if self.logged_in() else {"ID": 0, "LoginName": "", "DisplayName": ""},
                "NetworkLockKey": f"nlpriv:{zero}",
                "NodeID": node.get("stable_id") or node.get("id") or "" if self.logged_in() else "",
            }
            return prefs

    @staticmethod
    def user_profile(node: dict) -> dict:
        """A tailcfg.UserProfile for the node's user (numeric ID from the name)."""
        user = node.get("user") or ("tagged-devices" if node.get("tags") else "")
        return {"ID": zlib.crc32(user.encode()) % 1000000 if user else 0, "LoginName": user,
                "DisplayName": user.split("@")[0] if user else ""}

    def peer_status(self, node: dict, self_node: bool) -> dict:
        """An ipnstate.PeerStatus."""
        status = {
            "ID": node.get("id", ""),
            "PublicKey": node.get("node_key") or "",
            "HostName": node.get("hostname") or node.get("name", "").split(".")[0],
            "DNSName": f"{node['name']}." if node.get("name") else "",
            "OS": node.get("os") or "linux",
            "UserID": self.user_profile(node)["ID"],
            "TailscaleIPs": list(node.get("addresses") or []),
            "Tags": list(node.get("tags") or []),
            "Online": bool(node.get("online")),
            "Active": False,
            "ExitNode": False,
            "ExitNodeOption": False,
            "Created": go_time(node.get("created")),
            "LastSeen": go_time(node.get("last_seen")),
            "KeyExpiry": go_time(node.get("key_expiry")),
        }
        if self_node:
            status["PublicKey"] = self.state.get("node_key") or ""
            status["Online"] = self.backend_state == "Running" and time.monotonic() - self.last_map < 10
            status["LastSeen"] = ZERO_TIME
        else:
            status["PublicKey"] = self.peer_key(node)
        if not status["Tags"]:
            del status["Tags"]
        return status

    @staticmethod
    def peer_key(node: dict) -> str:
        """The node key a peer is listed under."""
        key = node.get("node_key") or node.get("id", "")
        return key if key.startswith("nodekey:") else f"nodekey:{key}"

    def status(self, peers: bool = True) -> dict:
        """ipnstate.Status, with the field names of `tailscale status --json`."""
        with self.lock:
            node = self.state.get("node") or {} if self.logged_in() else {}
            ips = list(node.get("addresses") or []) if self.backend_state in ("Running", "Stopped") else []
            suffix = node.get("name", "").partition(".")[2]
            self_status = self.peer_status(node, True) if node else {
                "ID": "", "PublicKey": "", "HostName": self.hostname(), "DNSName": "", "OS": "linux", "UserID": 0,
                "TailscaleIPs": [], "Online": False, "Active": False, "ExitNode": False, "ExitNodeOption": False,
                "Created": ZERO_TIME, "LastSeen": ZERO_TIME, "KeyExpiry": ZERO_TIME}
            self_status["TailscaleIPs"] = ips
            if not self.have_netmap:
                # ipn/ipnlocal/local.go updateStatusLocked: Self's node fields (KeyExpiry among them) come from
                # the network map; a daemon that has had none since it started reports no KeyExpiry.
                self_status.pop("KeyExpiry", None)
            users = {}
            if node:
                profile = self.user_profile(node)
                users[str(profile["ID"])] = profile
            peer_map = {}
            if peers and self.backend_state == "Running":
                for peer in self.peers:
                    peer_map[self.peer_key(peer)] = self.peer_status(peer, False)
                    profile = self.user_profile(peer)
                    users[str(profile["ID"])] = profile
            user = node.get("user") or ""
            result = {
                "Version": f"{VERSION}-t{COMMIT[:9]}",
                "TUN": True,
                "BackendState": self.backend_state,
                "HaveNodeKey": bool(self.state.get("node_key")),  # omitted below when false
                "AuthURL": self.auth_url,
                "TailscaleIPs": ips or None,
                "Self": self_status,
                "MagicDNSSuffix": suffix,
                "CurrentTailnet": {"Name": user.partition("@")[2] or suffix, "MagicDNSSuffix": suffix,
                                   "MagicDNSEnabled": True} if node else None,
                "Peer": peer_map or None,
                "User": users or None,
            }
            if not peers:
                result["Peer"] = None
            if not result["HaveNodeKey"]:
                del result["HaveNodeKey"]  # ipn/ipnstate/ipnstate.go: HaveNodeKey bool `json:",omitempty"`
            return result

    def shutdown(self) -> None:
        """SIGTERM: stop the engine; state and device stay (ExecStopPost runs --cleanup)."""
        self.stopping.set()
        self.kick.set()


class Handler(http.server.BaseHTTPRequestHandler):
    """LocalAPI over the unix socket (our own small JSON API, see tailscale.py)."""

    daemon: Daemon = None  # set on the class by serve()
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Requests are not logged (bodies may hold an auth key)."""

    def reply(self, code: int, body) -> None:
        """Send a JSON response."""
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> dict:
        """The request's JSON body."""
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_GET(self):  # pylint: disable=invalid-name
        """Read-only endpoints."""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/localapi/v0/status":
            self.reply(200, self.daemon.status(peers=query.get("peers", ["true"])[0] != "false"))
        elif url.path == "/localapi/v0/prefs":
            self.reply(200, self.daemon.debug_prefs())
        elif url.path == "/localapi/v0/backend":
            self.reply(200, self.daemon.backend())
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):  # pylint: disable=invalid-name
        """Changing endpoints."""
        try:
            body = self.body()
        except ValueError:
            self.reply(400, {"error": "bad JSON"})
            return
        if self.path == "/localapi/v0/start":
            self.reply(200, self.daemon.up(body.get("Prefs") or {}, body.get("AuthKey") or None,
                                           bool(body.get("ForceReauth"))))
        elif self.path == "/localapi/v0/edit":
            self.reply(200, self.daemon.edit(body.get("Prefs") or {}))
        elif self.path == "/localapi/v0/logout":
            self.daemon.logout()
            self.reply(200, {})
        else:
            self.reply(404, {"error": "not found"})


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Threaded HTTP server on a unix socket."""

    daemon_threads = True


def serve(args) -> int:
    """Run the daemon until SIGTERM/SIGINT."""
    daemon = Daemon(args.state, args.tun, args.port)
    sock_dir = os.path.dirname(os.path.abspath(args.socket))
    os.makedirs(sock_dir, exist_ok=True)
    if sock_dir == os.path.dirname(DEFAULT_SOCKET):
        os.chmod(sock_dir, 0o755)
    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    Handler.daemon = daemon
    server = UnixServer(args.socket, Handler)
    os.chmod(args.socket, 0o666)

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        daemon.shutdown()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engine = threading.Thread(target=daemon.engine, name="engine", daemon=True)
    engine.start()
    daemon.kick.set()
    log(f"{VERSION} listening on {args.socket}, tun {args.tun}, port {args.port}, state {args.state}")
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    engine.join(timeout=5)
    try:
        os.unlink(args.socket)
    except OSError:
        pass
    log("stopped")
    return 0


def version_text() -> str:
    """Output of --version (as `tailscale version`)."""
    return f"{VERSION}\n  tailscale commit: {COMMIT}\n  other commit: {COMMIT}\n  go version: {GO_VERSION}"


def main(argv=None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="tailscaled", description="Tailscale node agent (lab stand-in)")
    parser.add_argument("--state", default=DEFAULT_STATE)
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--port", type=int, default=41641)
    parser.add_argument("--tun", default="tailscale0")
    parser.add_argument("--cleanup", action="store_true")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--statedir", default="")
    parser.add_argument("--verbose", default="0")
    args = parser.parse_args([a.replace("-", "--", 1) if a.startswith("-") and not a.startswith("--") else a
                              for a in (sys.argv[1:] if argv is None else argv)])
    if args.version:
        print(version_text())
        return 0
    if args.port == 0:
        args.port = 41641
    if args.cleanup:
        Overlay(args.tun, args.port).down()
        return 0
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Lab stand-in for Tailscale's CLI, tailscale (test code; never shipped).

Implements the subset of `tailscale` the collection uses (up, set, down, logout, ip, status,
debug prefs, version) with Tailscale's flag syntax (Go's flag package), messages and exit
codes, talking to the stand-in tailscaled over its unix socket. Python 3 standard library only.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import shlex
import socket
import sys
import time

VERSION = "1.88.3"  # stamped by build-repo.sh
COMMIT = "5ba1de1ab0c0"  # stamped by build-repo.sh
GO_VERSION = "go1.25.1"
DEFAULT_SOCKET = "/run/tailscale/tailscaled.sock"
DEFAULT_CONTROL_URL = "https://controlplane.tailscale.com"
NOT_RUNNING = "failed to connect to local tailscaled; it doesn't appear to be running (sudo systemctl start tailscaled ?)"
UP_TIMEOUT = 'timeout waiting for Tailscale service to enter a Running state; check health with "tailscale status"'
ACCIDENTAL_UP_PREFIX = ("Error: changing settings via 'tailscale up' requires mentioning all\n"
                        "non-default flags. To proceed, either re-run your command with --reset or\n"
                        "use the command below to explicitly mention the current value of\n"
                        "all non-default settings:\n\n"
                        "\ttailscale up")
NETFILTER_MODES = {"off": 0, "nodivert": 1, "on": 2}
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Flags of "up" that are not settings (never need re-mentioning).
PREFLESS = {"auth-key", "force-reauth", "reset", "qr", "qr-format", "json", "timeout", "accept-risk"}


class Exit(Exception):
    """Stop with this message (to stderr unless empty) and exit code."""

    def __init__(self, message: str = "", code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


def sanitize(text: str) -> str:
    """Replace the secret part of tskey-... strings with X (as the real CLI does in flag errors)."""
    return re.sub(r"tskey-([A-Za-z0-9-]+)", lambda m: "tskey-" + "X" * len(m.group(1)), text)


# -- Go flag package semantics --------------------------------------------------------
def parse_go_bool(value: str) -> bool:
    """strconv.ParseBool."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


def parse_duration(text: str) -> float:
    """time.ParseDuration, in seconds ("0", "30s", "1m30s", "1.5h", "-2m")."""
    orig = text
    if not text:
        raise ValueError(f'time: invalid duration "{orig}"')
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    pattern = re.compile(r"(\d+\.?\d*|\.\d+)([a-z\u00b5\u03bc]+)")
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if not match:
            raise ValueError(f'time: invalid duration "{orig}"')
        unit = match.group(2)
        if unit not in DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(match.group(1)) * DURATION_UNITS[unit]
        pos = match.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """time.Duration.String for whole-ish values (0s, 30s, 2m0s, 1h0m0s)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:g}s"
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{sign}{int(minutes)}m{sec_text}"
    return f"{sign}{sec_text}"


class Flag(object):
    """One flag: kind is bool, string or duration."""

    def __init__(self, name: str, kind: str, default, usage: str = ""):
        self.name = name
        self.kind = kind
        self.default = default
        self.usage = usage

    def convert(self, text: str):
        """Parse a value of this flag's kind."""
        if self.kind == "bool":
            return parse_go_bool(text)
        if self.kind == "duration":
            try:
                return parse_duration(text)
            except ValueError:
                raise ValueError("parse error") from None
        return text

    def text(self, value) -> str:
        """flag.Value.String()."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "duration":
            return format_duration(value)
        return value


class FlagSet(object):
    """Go's flag.FlagSet (ExitOnError): -x and --x, -x=v, bools only take =v, first non-flag stops."""

    def __init__(self, name: str, usage: str, flags: list):
        self.name = name
        self.usage_line = usage
        self.flags = {f.name: f for f in flags}
        self.values = {f.name: f.default for f in flags}
        self.visited: dict = {}

    def usage(self) -> str:
        """Usage text (to stderr)."""
        lines = ["USAGE", f"  {self.usage_line}", "", "FLAGS"]
        for name in sorted(self.flags):
            flag = self.flags[name]
            lines.append(f"  --{name}, --{name}=false" if flag.kind == "bool" else f"  --{name} {flag.kind}")
            lines.append(f"    \t{flag.usage}")
        return "\n".join(lines)

    def fail(self, message: str):
        """Report a flag error like Go's ExitOnError flag sets: message, usage, exit 2."""
        raise Exit(sanitize(f"{message}\n{self.usage()}"), 2)

    def parse(self, args: list) -> list:
        """Parse; returns the remaining (non-flag) arguments."""
        args = list(args)
        while args:
            arg = args[0]
            if len(arg) < 2 or arg[0] != "-":
                break
            if arg == "--":
                args.pop(0)
                break
            args.pop(0)
            name = arg[2:] if arg.startswith("--") else arg[1:]
            if not name or name[0] == "-" or name[0] == "=":
                self.fail(f"bad flag syntax: {arg}")
            has_value = "=" in name
            name, value = name.split("=", 1) if has_value else (name, None)
            if name in ("h", "help") and name not in self.flags:
                raise Exit(self.usage(), 0)
            flag = self.flags.get(name)
            if flag is None:
                self.fail(f"flag provided but not defined: -{name}")
            if flag.kind == "bool" and not has_value:
                value = "true"
            elif not has_value:
                if not args:
                    self.fail(f"flag needs an argument: -{name}")
                value = args.pop(0)
            if name in self.visited:
                self.fail(f'invalid value "{value}" for flag -{name}: flag provided multiple times')
            try:
                converted = flag.convert(value)
            except ValueError as exc:
                if flag.kind == "bool":
                    self.fail(f'invalid boolean value "{value}" for -{name}: {exc}')
                self.fail(f'invalid value "{value}" for flag -{name}: {exc}')
            self.values[name] = converted
            self.visited[name] = value
        return args

    def is_set(self, name: str) -> bool:
        """Whether the flag was given."""
        return name in self.visited

    def __getitem__(self, name: str):
        return self.values[name]


def up_flags() -> FlagSet:
    """The flags of `tailscale up` on Linux."""
    return FlagSet("up", "tailscale up [flags]", [
        Flag("qr", "bool", False, "show QR code for login URLs"),
        Flag("qr-format", "string", "auto", "QR code formatting"),
        Flag("auth-key", "string", "", 'node authorization key; if it begins with "file:", then it\'s a path to a file containing the authkey'),
        Flag("login-server", "string", DEFAULT_CONTROL_URL, "base URL of control server"),
        Flag("accept-routes", "bool", False, "accept routes advertised by other Tailscale nodes"),
        Flag("accept-dns", "bool", True, "accept DNS configuration from the admin panel"),
        Flag("exit-node", "string", "", "Tailscale exit node (IP or base name) for internet traffic"),
        Flag("exit-node-allow-lan-access", "bool", False, "Allow direct access to the local network when routing traffic via an exit node"),
        Flag("shields-up", "bool", False, "don't allow incoming connections"),
        Flag("ssh", "bool", False, "run an SSH server, permitting access per tailnet admin's declared policy"),
        Flag("advertise-tags", "string", "", 'comma-separated ACL tags to request; each must start with "tag:"'),
        Flag("hostname", "string", "", "hostname to use instead of the one provided by the OS"),
        Flag("advertise-routes", "string", "", "routes to advertise to other nodes (comma-separated)"),
        Flag("advertise-connector", "bool", False, "advertise this node as an app connector"),
        Flag("advertise-exit-node", "bool", False, "offer to be an exit node for internet traffic for the tailnet"),
        Flag("report-posture", "bool", False, "allow management plane to gather device posture information"),
        Flag("operator", "string", "", "Unix username to allow to operate on tailscaled without sudo"),
        Flag("snat-subnet-routes", "bool", True, "source NAT traffic to local routes advertised with --advertise-routes"),
        Flag("stateful-filtering", "bool", False, "apply stateful filtering to forwarded packets"),
        Flag("netfilter-mode", "string", "on", "netfilter mode (one of on, nodivert, off)"),
        Flag("timeout", "duration", 0.0, "maximum amount of time to wait for tailscaled to enter a Running state; default (0s) blocks forever"),
        Flag("json", "bool", False, "output in JSON format (WARNING: format subject to change)"),
        Flag("reset", "bool", False, "reset unspecified settings to their default values"),
        Flag("force-reauth", "bool", False, "force reauthentication"),
        Flag("accept-risk", "string", "", "accept risk and skip confirmation for risk types"),
    ])


def set_flags() -> FlagSet:
    """The flags of `tailscale set` on Linux (no --advertise-tags, --login-server, --auth-key)."""
    return FlagSet("set", "tailscale set [flags]", [
        Flag("nickname", "string", "", "nickname for the current account"),
        Flag("accept-routes", "bool", False, "accept routes advertised by other Tailscale nodes"),
        Flag("accept-dns", "bool", True, "accept DNS configuration from the admin panel"),
        Flag("exit-node", "string", "", "Tailscale exit node (IP or base name) for internet traffic"),
        Flag("exit-node-allow-lan-access", "bool", False, "Allow direct access to the local network when routing traffic via an exit node"),
        Flag("shields-up", "bool", False, "don't allow incoming connections"),
        Flag("ssh", "bool", False, "run an SSH server, permitting access per tailnet admin's declared policy"),
        Flag("hostname", "string", "", "hostname to use instead of the one provided by the OS"),
        Flag("advertise-routes", "string", "", "routes to advertise to other nodes (comma-separated)"),
        Flag("advertise-exit-node", "bool", False, "offer to be an exit node for internet traffic for the tailnet"),
        Flag("advertise-connector", "bool", False, "offer to be an app connector"),
        Flag("update-check", "bool", True, "notify about available Tailscale updates"),
        Flag("auto-update", "bool", False, "automatically update to the latest available version"),
        Flag("report-posture", "bool", False, "allow management plane to gather device posture information"),
        Flag("webclient", "bool", False, "expose the web interface for managing this node over Tailscale at port 5252"),
        Flag("operator", "string", "", "Unix username to allow to operate on tailscaled without sudo"),
        Flag("snat-subnet-routes", "bool", True, "source NAT traffic to local routes advertised with --advertise-routes"),
        Flag("stateful-filtering", "bool", False, "apply stateful filtering to forwarded packets"),
        Flag("netfilter-mode", "string", "on", "netfilter mode (one of on, nodivert, off)"),
        Flag("accept-risk", "string", "", "accept risk and skip confirmation for risk types"),
    ])


# -- prefs <-> flags ------------------------------------------------------------------
def calc_routes(routes: str, exit_node: bool) -> list | None:
    """netutil.CalcAdvertiseRoutes: validated, normalised CIDRs (None when empty)."""
    result = []
    for item in [r.strip() for r in routes.split(",") if r.strip()]:
        try:
            net = ipaddress.ip_network(item, strict=True)
        except ValueError:
            raise Exit(f'"{item}" is not a valid IP address or CIDR prefix') from None
        if net.prefixlen == 0:
            raise Exit(f"{item} advertised without its IPv{'6' if net.version == 4 else '4'} counterpart, please also advertise "
                       f"{'::/0' if net.version == 4 else '0.0.0.0/0'}")
        result.append(str(net))
    if exit_node:
        result += ["0.0.0.0/0", "::/0"]
    return result or None


def check_hostname(name: str) -> None:
    """dnsname.ValidHostname (roughly)."""
    for label in name.split("."):
        if not label or len(label) > 63:
            raise Exit(f"{label!r} is not a valid DNS label: must be between 1 and 63 characters long")
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?", label):
            raise Exit(f'"{label}" is not a valid DNS label: must start and end with a letter or number and contain only letters, numbers and dashes')


def check_tags(text: str) -> list | None:
    """Split and check --advertise-tags like tailcfg.CheckTag."""
    if not text:
        return None
    tags = text.split(",")
    for tag in tags:
        if not tag.startswith("tag:"):
            raise Exit(f"tag: \"{tag}\": tags must start with 'tag:'")
        if not re.fullmatch(r"tag:[A-Za-z][A-Za-z0-9-]*", tag):
            raise Exit(f'tag: "{tag}": tag names can only contain numbers, letters, or dashes')
    return tags


def netfilter_mode(text: str) -> int:
    """--netfilter-mode value to preftype.NetfilterMode."""
    if text not in NETFILTER_MODES:
        raise Exit(f'invalid value --netfilter-mode="{text}"')
    return NETFILTER_MODES[text]


def prefs_from_up(fs: FlagSet) -> dict:
    """prefsFromUpArgs: the complete prefs `tailscale up` asks for."""
    if fs["exit-node"]:
        raise Exit("--exit-node is not supported by the lab stand-in")
    if fs["exit-node-allow-lan-access"]:
        raise Exit("--exit-node-allow-lan-access can only be used with --exit-node")
    routes = calc_routes(fs["advertise-routes"], fs["advertise-exit-node"])
    tags = check_tags(fs["advertise-tags"])
    if fs["hostname"]:
        check_hostname(fs["hostname"])
    return {
        "ControlURL": fs["login-server"], "WantRunning": True, "RouteAll": fs["accept-routes"],
        "ExitNodeAllowLANAccess": fs["exit-node-allow-lan-access"], "CorpDNS": fs["accept-dns"],
        "ShieldsUp": fs["shields-up"], "RunSSH": fs["ssh"], "AdvertiseRoutes": routes, "AdvertiseTags": tags,
        "Hostname": fs["hostname"], "OperatorUser": fs["operator"],
        "AppConnector": {"Advertise": fs["advertise-connector"]}, "PostureChecking": fs["report-posture"],
        "NoSNAT": not fs["snat-subnet-routes"], "NoStatefulFiltering": not fs["stateful-filtering"],
        "NetfilterMode": netfilter_mode(fs["netfilter-mode"]),
    }


def prefs_to_flags(prefs: dict) -> dict:
    """prefsToFlags: the `up` flag values that reproduce prefs."""
    routes = prefs.get("AdvertiseRoutes") or []
    exit_routes = {"0.0.0.0/0", "::/0"}
    mode = {v: k for k, v in NETFILTER_MODES.items()}.get(prefs.get("NetfilterMode", 2), "on")
    return {
        "ssh": bool(prefs.get("RunSSH")),
        "login-server": prefs.get("ControlURL") or "",
        "accept-routes": bool(prefs.get("RouteAll")),
        "accept-dns": bool(prefs.get("CorpDNS")),
        "shields-up": bool(prefs.get("ShieldsUp")),
        "exit-node": prefs.get("ExitNodeIP") or "",
        "exit-node-allow-lan-access": bool(prefs.get("ExitNodeAllowLANAccess")),
        "advertise-tags": ",".join(prefs.get("AdvertiseTags") or []),
        "hostname": prefs.get("Hostname") or "",
        "operator": prefs.get("OperatorUser") or "",
        "advertise-routes": ",".join(r for r in routes if r not in exit_routes),
        "advertise-exit-node": exit_routes.issubset(routes),
        "advertise-connector": bool((prefs.get("AppConnector") or {}).get("Advertise")),
        "snat-subnet-routes": not prefs.get("NoSNAT"),
        "stateful-filtering": prefs.get("NoStatefulFiltering") is False,
        "netfilter-mode": mode,
        "report-posture": bool(prefs.get("PostureChecking")),
    }


def fmt_flag_value(name: str, value) -> str:
    """fmtFlagValueArg."""
    if value is True:
        return f"--{name}"
    if value == "":
        return f"--{name}="
    if value is False:
        value = "false"
    return f"--{name}={shlex.quote(str(value))}"


def accidental_reverts(fs: FlagSet, new: dict, cur: dict, backend_state: str) -> tuple:
    """checkForAccidentalSettingReverts: returns (simple_up, error message or None)."""
    if not cur.get("ControlURL"):
        return False, None
    logged_in = bool(((cur.get("Config") or {}).get("UserProfile") or {}).get("LoginName"))
    if not fs.visited and logged_in and backend_state != "NeedsLogin":
        return True, None
    flags_cur, flags_new = prefs_to_flags(cur), prefs_to_flags(new)
    missing = []
    for name, val_cur in flags_cur.items():
        if fs.is_set(name) or val_cur == flags_new[name]:
            continue
        if name == "stateful-filtering" and val_cur is True and flags_new[name] is False:
            continue
        missing.append(fmt_flag_value(name, val_cur))
    if not missing:
        return False, None
    explicit = []
    for name in sorted(fs.visited):
        flag = fs.flags[name]
        value = fs[name]
        if flag.kind == "bool":
            explicit.append(f"--{name}" if value else f"--{name}=false")
        elif name == "auth-key" and not value.startswith("file:"):
            explicit.append(sanitize(fmt_flag_value(name, value)))
        else:
            explicit.append(fmt_flag_value(name, flag.text(value)))
    return False, ACCIDENTAL_UP_PREFIX + "".join(f" {a}" for a in explicit + sorted(missing)) + "\n\n"


# -- risks over a tailnet SSH session -------------------------------------------------
RISK_LOSE_SSH = "lose-ssh"
ABORTED = "aborted, no changes made"  # cmd/tailscale/cli/risks.go errAborted
# net/tsaddr/tsaddr.go IsTailscaleIP: IsTailscaleIPv4 (CGNATRange minus ChromeOSVMRange) or TailscaleULARange.
CGNAT_RANGE = ipaddress.ip_network("100.64.0.0/10")
CHROMEOS_VM_RANGE = ipaddress.ip_network("100.115.92.0/23")
TAILSCALE_ULA_RANGE = ipaddress.ip_network("fd7a:115c:a1e0::/48")


def ssh_client_env() -> str:
    """cmd/tailscale/cli/ssh_unix.go getSSHClientEnvVar: $SSH_CLIENT, or under sudo that of the login session.

    Without SUDO_USER the process's own SSH_CLIENT; with it, SSH_CLIENT from the environment of the
    session leader (unix.Getsid(os.Getpid()), /proc/<sid>/environ), "" when it cannot be read.
    """
    if not os.environ.get("SUDO_USER"):
        return os.environ.get("SSH_CLIENT", "")
    try:
        sid = os.getsid(os.getpid())
        with open(f"/proc/{sid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        return ""
    for entry in environ.split(b"\0"):
        if entry.startswith(b"SSH_CLIENT="):
            return entry[len(b"SSH_CLIENT="):].decode(errors="replace")
    return ""


def is_tailscale_ip(text: str) -> bool:
    """net/tsaddr/tsaddr.go IsTailscaleIP (IPv4-mapped IPv6 unmapped first)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.version == 4:
        return addr in CGNAT_RANGE and addr not in CHROMEOS_VM_RANGE
    return addr in TAILSCALE_ULA_RANGE


def ssh_over_tailscale() -> bool:
    """cmd/tailscale/cli/ssh.go isSSHOverTailscale: SSH_CLIENT's first field is a Tailscale IP."""
    client = ssh_client_env()
    address, sep, unused = client.partition(" ")
    return bool(sep) and is_tailscale_ip(address)


def yes_no(message: str, default: bool) -> bool:
    """util/prompt/prompt.go YesNo: without a TTY on both stdin and stdout, the default answer."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return default
    sys.stdout.write(message + (" [Y/n] " if default else " [y/N] "))
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes", "sure"):
        return True
    return default if answer == "" else False


def risk_accepted(risk: str, accepted: str) -> bool:
    """cmd/tailscale/cli/risks.go isRiskAccepted: risk, or "all", in the comma-separated --accept-risk."""
    return any(item in (risk, "all") for item in accepted.split(","))


def present_risk(risk: str, message: str, accepted: str) -> None:
    """cmd/tailscale/cli/risks.go presentRiskToUser: the message and a prompt, or Exit(aborted)."""
    if risk_accepted(risk, accepted):
        return
    print(message)
    print(f"To skip this warning, use --accept-risk={risk}")
    sys.stdout.flush()
    if yes_no("Continue?", False):
        return
    raise Exit(ABORTED)


def present_ssh_toggle_risk(want_ssh: bool, have_ssh: bool, accepted: str) -> None:
    """cmd/tailscale/cli/up.go presentSSHToggleRisk (also called by set.go runSet)."""
    if not ssh_over_tailscale() or want_ssh == have_ssh:
        return
    if want_ssh:
        present_risk(RISK_LOSE_SSH, "You are connected over Tailscale; this action will reroute SSH traffic to Tailscale SSH "
                     "and will result in your session disconnecting.", accepted)
    else:
        present_risk(RISK_LOSE_SSH, "You are connected using Tailscale SSH; this action will result in your session "
                     "disconnecting.", accepted)


# -- LocalAPI client ------------------------------------------------------------------
class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the tailscaled unix socket."""

    def __init__(self, path: str, timeout: float = 30):
        super().__init__("local-tailscaled.sock", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class LocalClient(object):
    """Calls to tailscaled."""

    def __init__(self, path: str):
        self.path = path

    def call(self, method: str, endpoint: str, body: dict | None = None):
        """One request; Exit with Tailscale's message when tailscaled is not there."""
        conn = UnixHTTPConnection(self.path)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/localapi/v0/" + endpoint, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            response = conn.getresponse()
            payload = json.loads(response.read() or b"null")
        except (FileNotFoundError, ConnectionRefusedError):
            raise Exit(NOT_RUNNING) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise Exit(f"failed to connect to local tailscaled: {exc}") from None
        finally:
            conn.close()
        if response.status != 200:
            raise Exit((payload or {}).get("error") or f"tailscaled: HTTP {response.status}")
        return payload

    def status(self, peers: bool = True) -> dict:
        """GET status."""
        return self.call("GET", "status" + ("" if peers else "?peers=false"))

    def prefs(self) -> dict:
        """GET prefs."""
        return self.call("GET", "prefs")

    def backend(self) -> dict:
        """GET backend state (for waiting)."""
        return self.call("GET", "backend")

    def edit(self, prefs: dict) -> dict:
        """EditPrefs."""
        return self.call("POST", "edit", {"Prefs": prefs})


# -- commands -------------------------------------------------------------------------
def read_auth_key(value: str) -> str:
    """The key itself, or the trimmed content of file:PATH."""
    if value.startswith("file:"):
        path = value[5:]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise Exit(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    return value


def print_json(obj, indent="  ") -> None:
    """Go's json.MarshalIndent output."""
    print(json.dumps(obj, indent=indent, ensure_ascii=False))


def cmd_up(client: LocalClient, args: list) -> int:
    """tailscale up."""
    fs = up_flags()
    rest = fs.parse(args)
    if rest:
        raise Exit(f"too many non-flag arguments: {rest!r}".replace("'", '"'))
    status = client.status(peers=False)
    orig_node_key = status["Self"].get("PublicKey", "")
    new = prefs_from_up(fs)
    cur = client.prefs()
    backend_state = status["BackendState"]
    simple_up = False
    if not fs["reset"]:
        user = os.environ.get("USER", "")
        if not new["OperatorUser"] and cur.get("OperatorUser") == user and user and not fs.is_set("operator"):
            new["OperatorUser"] = cur["OperatorUser"]
        simple_up, error = accidental_reverts(fs, new, cur, backend_state)
        if error:
            raise Exit(error.rstrip("\n") + "\n\n")
    control_changed = cur.get("ControlURL") != new["ControlURL"]
    if control_changed and backend_state == "Running" and not fs["force-reauth"]:
        raise Exit("can't change --login-server without --force-reauth")
    # cmd/tailscale/cli/up.go updatePrefs: after these checks, an SSH toggle and then --force-reauth over a
    # tailnet SSH session ask before going on (presentSSHToggleRisk, presentRiskToUser).
    present_ssh_toggle_risk(new["RunSSH"], bool(cur.get("RunSSH")), fs["accept-risk"])
    if fs["force-reauth"] and ssh_over_tailscale():
        present_risk(RISK_LOSE_SSH, "You are connected over Tailscale; this action may result in your SSH session "
                     "disconnecting.", fs["accept-risk"])
    tags_changed = (cur.get("AdvertiseTags") or None) != new["AdvertiseTags"]
    if tags_changed and status.get("HaveNodeKey", False) and backend_state != "NeedsLogin" and not fs["force-reauth"]:
        raise Exit("can't change --advertise-tags without --force-reauth (changing tags requires re-authentication)")
    if backend_state == "Running" and not fs["force-reauth"] and not fs["auth-key"] and not control_changed and not tags_changed:
        changes = dict(new)
        if not fs["reset"]:
            mentioned = {name for name in fs.visited if name not in PREFLESS}
            flag_prefs = {"ssh": "RunSSH", "accept-routes": "RouteAll", "accept-dns": "CorpDNS", "shields-up": "ShieldsUp",
                          "hostname": "Hostname", "operator": "OperatorUser", "advertise-routes": "AdvertiseRoutes",
                          "advertise-exit-node": "AdvertiseRoutes", "advertise-connector": "AppConnector",
                          "snat-subnet-routes": "NoSNAT", "stateful-filtering": "NoStatefulFiltering",
                          "netfilter-mode": "NetfilterMode", "report-posture": "PostureChecking",
                          "exit-node-allow-lan-access": "ExitNodeAllowLANAccess"}
            keep = {flag_prefs[n] for n in mentioned if n in flag_prefs}
            changes = {k: v for k, v in new.items() if k in keep}
            changes["WantRunning"] = True
        client.edit(changes)
        if fs["json"]:
            print_json({"BackendState": "Running"})
        return 0
    seq = None
    if simple_up:
        client.edit({"WantRunning": True})
    else:
        auth_key = read_auth_key(fs["auth-key"]) if fs["auth-key"] else ""
        reply = client.call("POST", "start", {"Prefs": new, "AuthKey": auth_key, "ForceReauth": fs["force-reauth"]})
        seq = reply.get("seq")
        del auth_key
    return wait_running(client, fs, seq, orig_node_key, new["ControlURL"])


def wait_running(client: LocalClient, fs: FlagSet, seq, orig_node_key: str, control_url: str) -> int:
    """Watch the backend until Running (printing auth/approval URLs), an error, or --timeout."""
    deadline = time.monotonic() + fs["timeout"] if fs["timeout"] > 0 else None
    printed = False
    last_url = ""
    while True:
        backend = client.backend()
        if seq is not None and backend.get("Error") and backend.get("ErrorSeq") == seq:
            raise Exit(f"backend error: {backend['Error']}\n")
        state = backend["BackendState"]
        if state == "NeedsMachineAuth":
            url = control_url.rstrip("/") + "/admin/machines"
            if url != last_url:
                printed = True
                last_url = url
                if fs["json"]:
                    print_json({"BackendState": "NeedsMachineAuth"})
                else:
                    sys.stderr.write(f"\nTo approve your machine, visit (as admin):\n\n\t{url}\n\n")
                    sys.stderr.flush()
        key_changed = not fs["force-reauth"] or (backend.get("NodeKey") and backend["NodeKey"] != orig_node_key)
        if state == "Running" and key_changed:
            if fs["json"]:
                print_json({"BackendState": "Running"})
            elif printed:
                sys.stderr.write("Success.\n")
            return 0
        url = backend.get("AuthURL")
        if url and url != last_url and not fs["auth-key"]:
            printed = True
            last_url = url
            if fs["json"]:
                print_json({"AuthURL": url, "BackendState": state}, indent="\t")
            else:
                sys.stderr.write(f"\nTo authenticate, visit:\n\n\t{url}\n\n")
            sys.stdout.flush()
            sys.stderr.flush()
        if deadline is not None and time.monotonic() >= deadline:
            raise Exit(UP_TIMEOUT)
        time.sleep(0.2)


def cmd_set(client: LocalClient, args: list) -> int:
    """tailscale set: change only the settings mentioned."""
    fs = set_flags()
    rest = fs.parse(args)
    if rest:
        raise Exit(f"too many non-flag arguments: {rest!r}".replace("'", '"'))
    if not fs.visited or set(fs.visited) == {"accept-risk"}:
        raise Exit(fs.usage(), 0)
    client.status(peers=False)
    cur = client.prefs()
    changes: dict = {}
    mapping = {"accept-routes": "RouteAll", "accept-dns": "CorpDNS", "shields-up": "ShieldsUp", "ssh": "RunSSH",
               "hostname": "Hostname", "operator": "OperatorUser", "report-posture": "PostureChecking",
               "webclient": "RunWebClient", "exit-node-allow-lan-access": "ExitNodeAllowLANAccess"}
    for name, pref in mapping.items():
        if fs.is_set(name):
            changes[pref] = fs[name]
    if fs.is_set("hostname") and fs["hostname"]:
        check_hostname(fs["hostname"])
    if fs.is_set("exit-node") and fs["exit-node"]:
        raise Exit("--exit-node is not supported by the lab stand-in")
    if fs.is_set("snat-subnet-routes"):
        changes["NoSNAT"] = not fs["snat-subnet-routes"]
    if fs.is_set("stateful-filtering"):
        changes["NoStatefulFiltering"] = not fs["stateful-filtering"]
    if fs.is_set("netfilter-mode"):
        changes["NetfilterMode"] = netfilter_mode(fs["netfilter-mode"])
    if fs.is_set("advertise-connector"):
        changes["AppConnector"] = {"Advertise": fs["advertise-connector"]}
    if fs.is_set("ssh"):
        # cmd/tailscale/cli/set.go runSet: presentSSHToggleRisk when --ssh is given.
        present_ssh_toggle_risk(fs["ssh"], bool(cur.get("RunSSH")), fs["accept-risk"])
    if fs.is_set("update-check") or fs.is_set("auto-update"):
        auto = dict(cur.get("AutoUpdate") or {})
        if fs.is_set("update-check"):
            auto["Check"] = fs["update-check"]
        if fs.is_set("auto-update"):
            auto["Apply"] = fs["auto-update"]
        changes["AutoUpdate"] = auto
    if fs.is_set("advertise-routes") or fs.is_set("advertise-exit-node"):
        cur_routes = cur.get("AdvertiseRoutes") or []
        cur_exit = {"0.0.0.0/0", "::/0"}.issubset(cur_routes)
        routes_text = fs["advertise-routes"] if fs.is_set("advertise-routes") else ",".join(
            r for r in cur_routes if r not in ("0.0.0.0/0", "::/0"))
        exit_node = fs["advertise-exit-node"] if fs.is_set("advertise-exit-node") else cur_exit
        changes["AdvertiseRoutes"] = calc_routes(routes_text, exit_node)
    client.edit(changes)
    return 0


def cmd_down(client: LocalClient, args: list) -> int:
    """tailscale down."""
    fs = FlagSet("down", "tailscale down", [
        Flag("accept-risk", "string", "", "accept risk"), Flag("reason", "string", "", "reason for the disconnect")])
    if fs.parse(args):
        raise Exit("too many non-flag arguments")
    if ssh_over_tailscale():  # cmd/tailscale/cli/down.go runDown
        present_risk(RISK_LOSE_SSH, "You are connected over Tailscale; this action will disable Tailscale and result in "
                     "your session disconnecting.", fs["accept-risk"])
    status = client.status(peers=False)
    if status["BackendState"] == "Stopped":
        sys.stderr.write("Tailscale was already stopped.\n")
        return 0
    client.edit({"WantRunning": False})
    return 0


def cmd_logout(client: LocalClient, args: list) -> int:
    """tailscale logout."""
    fs = FlagSet("logout", "tailscale logout [flags]", [Flag("reason", "string", "", "reason for the logout")])
    if fs.parse(args):
        raise Exit("too many non-flag arguments")
    client.call("POST", "logout", {})
    return 0


def cmd_ip(client: LocalClient, args: list) -> int:
    """tailscale ip [-1] [-4] [-6] [peer]."""
    fs = FlagSet("ip", "tailscale ip [-1] [-4] [-6] [peer hostname or ip address]", [
        Flag("1", "bool", False, "only print one IP address"), Flag("4", "bool", False, "only print IPv4 address"),
        Flag("6", "bool", False, "only print IPv6 address")])
    rest = fs.parse(args)
    if len(rest) > 1:
        raise Exit("too many arguments, expected at most one peer")
    if sum(1 for n in ("1", "4", "6") if fs[n]) > 1:
        raise Exit("tailscale ip -1, -4, and -6 are mutually exclusive")
    want4, want6 = fs["4"], fs["6"]
    if not want4 and not want6:
        want4 = want6 = True
    status = client.status()
    ips = status.get("TailscaleIPs") or []
    if rest:
        wanted = rest[0]
        found = None
        for peer in [status["Self"]] + list((status.get("Peer") or {}).values()):
            names = {peer.get("HostName"), peer.get("DNSName", "").rstrip("."), peer.get("DNSName", "").split(".")[0]}
            if wanted in peer.get("TailscaleIPs") or wanted in names:
                found = peer
                break
        if found is None:
            raise Exit(f"no peer found with IP {wanted}" if re.match(r"^[0-9a-fA-F:.]+$", wanted) else
                       f"unknown hostname: {wanted}")
        ips = found.get("TailscaleIPs") or []
    if not ips:
        raise Exit(f"no current Tailscale IPs; state: {status['BackendState']}")
    if fs["1"]:
        ips = ips[:1]
    printed = False
    for addr in ips:
        version = ipaddress.ip_address(addr).version
        if version == 4 and want4 or version == 6 and want6:
            print(addr)
            printed = True
    if not printed:
        raise Exit("no Tailscale IPv4 address" if fs["4"] else "no Tailscale IPv6 address")
    return 0


def cmd_status(client: LocalClient, args: list) -> int:
    """tailscale status [--json] [--peers=false]."""
    fs = FlagSet("status", "tailscale status [--active] [--web] [--json]", [
        Flag("json", "bool", False, "output in JSON format"), Flag("peers", "bool", True, "show status of peers"),
        Flag("self", "bool", True, "show status of local machine"), Flag("active", "bool", False, "filter output to only peers with active sessions"),
        Flag("browser", "bool", True, "unused"), Flag("web", "bool", False, "unused"), Flag("listen", "string", "127.0.0.1:8384", "unused")])
    if fs.parse(args):
        raise Exit("unexpected non-flag arguments to 'tailscale status'")
    status = client.status(peers=fs["peers"])
    if fs["json"]:
        print_json(status)
        return 0
    state = status["BackendState"]
    if state == "Stopped":
        print("Tailscale is stopped.")
        return 1
    if state == "NeedsLogin":
        print("Logged out.")
        if status.get("AuthURL"):
            print(f"\nLog in at: {status['AuthURL']}")
        return 1
    if state == "NeedsMachineAuth":
        print("Machine is not yet approved by tailnet admin.")
        return 1
    if state != "Running":
        print(f"unexpected state: {state}")
        return 1
    users = status.get("User") or {}

    def line(peer: dict, is_self: bool) -> str:
        ips = peer.get("TailscaleIPs") or ["-"]
        owner = "tagged-devices" if peer.get("Tags") else (users.get(str(peer.get("UserID")), {}).get("LoginName") or "-")
        if "@" in owner:
            owner = owner.split("@")[0] + "@"
        state_text = "-" if is_self or peer.get("Online") else "offline"
        return f"{ips[0]:<16} {peer.get('DNSName', '').split('.')[0] or peer.get('HostName'):<20} {owner:<16} {peer.get('OS', 'linux'):<7} {state_text}"

    if fs["self"]:
        print(line(status["Self"], True))
    for peer in sorted((status.get("Peer") or {}).values(), key=lambda p: p.get("DNSName", "")):
        print(line(peer, False))
    return 0


def cmd_debug(client: LocalClient, args: list) -> int:
    """tailscale debug prefs."""
    if not args:
        raise Exit("tailscale debug: missing subcommand: prefs")
    if args[0] != "prefs":
        raise Exit(f"tailscale debug: unknown subcommand: {args[0]}")
    fs = FlagSet("prefs", "tailscale debug prefs", [Flag("pretty", "bool", False, "If true, pretty-print output")])
    fs.parse(args[1:])
    prefs = client.prefs()
    print_json(prefs, indent="\t")
    return 0


def version_text() -> str:
    """`tailscale version` output."""
    return (f"{VERSION}\n  tailscale commit: {COMMIT}\n  long version: {VERSION}-t{COMMIT[:9]}\n"
            f"  go version: {GO_VERSION}")


def cmd_version(client: LocalClient, args: list) -> int:  # pylint: disable=unused-argument
    """tailscale version."""
    fs = FlagSet("version", "tailscale version [flags]", [Flag("daemon", "bool", False, "also print local node's daemon version"),
                                                          Flag("json", "bool", False, "output in JSON format"),
                                                          Flag("upstream", "bool", False, "fetch and print the latest upstream release version")])
    fs.parse(args)
    if fs["json"]:
        print_json({"majorMinorPatch": VERSION, "short": VERSION, "long": f"{VERSION}-t{COMMIT[:9]}",
                    "gitCommit": COMMIT, "cap": 125})
        return 0
    print(version_text())
    if fs["daemon"]:
        print(f"  daemon: {client.status(peers=False)['Version']}")
    return 0


COMMANDS = {"up": cmd_up, "set": cmd_set, "down": cmd_down, "logout": cmd_logout, "ip": cmd_ip,
            "status": cmd_status, "debug": cmd_debug, "version": cmd_version}


def clean_up_args(args: list) -> list:
    """CleanUpArgs: --authkey is --auth-key."""
    out = []
    for arg in args:
        if arg in ("--authkey", "-authkey"):
            arg = "--auth-key"
        elif arg.startswith(("--authkey=", "-authkey=")):
            arg = "--auth-key=" + arg.split("=", 1)[1]
        out.append(arg)
    return out


def run(argv: list) -> int:
    """Parse global flags and dispatch."""
    args = clean_up_args(argv)
    if len(args) == 1 and args[0] in ("-V", "--version"):
        args = ["version"]
    root = FlagSet("tailscale", "tailscale [flags] <subcommand> [command flags]",
                   [Flag("socket", "string", DEFAULT_SOCKET, "path to tailscaled socket")])
    rest = root.parse(args)
    if not rest:
        raise Exit(root.usage() + "\n\nSUBCOMMANDS\n  " + "\n  ".join(COMMANDS), 0)
    command = COMMANDS.get(rest[0])
    if command is None:
        raise Exit(f"tailscale: unknown subcommand: {rest[0]}")
    return command(LocalClient(root["socket"]), rest[1:])


def main() -> int:
    """Entry point: errors go to stderr, exit 1 (flag errors exit 2, like Go)."""
    try:
        return run(sys.argv[1:])
    except Exit as exc:
        if exc.message:
            sys.stderr.write(exc.message if exc.message.endswith("\n") else exc.message + "\n")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

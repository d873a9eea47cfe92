# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What tailscale_up does on the node: the local tailscale CLI (Node), waiting for the daemon (waiter.py's
Waiter: out of NoState after a restart, then Running with an address), running the one action
tailscale.py planned (the auth key only in a 0600 file), and run()/execute(), the one place where
TailscaleError becomes fail_json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from ansible_collections.infra.k3s.plugins.module_utils.tailscale import (
    TailscaleError,
    command,
    current_prefs,
    drift,
    facts,
    key_with_attributes,
    plan,
    settling,
    validate,
    wanted_prefs,
)
from ansible_collections.infra.k3s.plugins.module_utils.waiter import Waiter, WaitTimeout

NOT_RUNNING = "doesn't appear to be running"
START_TIMEOUT = 30


class Node:
    """The local tailscale CLI."""

    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path(module.params["binary"]) if "/" not in module.params["binary"] else module.params["binary"]
        self.socket = module.params["socket"]

    def _base(self):
        argv = [self.binary]
        if self.socket:
            argv.append("--socket=%s" % self.socket)
        return argv

    def read_json(self, *args):
        rc, out, err = self.module.run_command(self._base() + list(args))
        if rc != 0:
            text = (err or out).strip()
            if NOT_RUNNING in text or "failed to connect" in text:
                raise TailscaleError("tailscaled is not running or its socket cannot be reached: %s" % text)
            raise TailscaleError("tailscale %s failed (rc=%s): %s" % (" ".join(args), rc, text))
        try:
            return json.loads(out)
        except ValueError as exc:
            raise TailscaleError("tailscale %s did not print JSON: %s" % (" ".join(args), exc))

    def status(self):
        return self.read_json("status", "--json", "--peers=false")

    def prefs(self):
        return self.read_json("debug", "prefs")


def run_action(module, node, action, differences):
    params = module.params
    key_dir = None
    try:
        key_path = None
        if action in ("login", "reauth"):
            if not params["authkey"]:
                raise TailscaleError(
                    "the node must %s but no auth key was given (tailscale_authkey)"
                    % ("log in" if action == "login" else "re-authenticate to change its tags or login server"))
            key_dir = tempfile.mkdtemp(prefix="infra-k3s-tailscale-")
            os.chmod(key_dir, 0o700)
            key_path = os.path.join(key_dir, "authkey")
            descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(key_with_attributes(params["authkey"], params["ephemeral"], params["preauthorized"]))
        if action == "start" and params["authkey"]:
            # Not the whole timeout: a node whose key expired unseen waits in NeedsLogin until it ends (see run()).
            params = dict(params, timeout=min(params["timeout"], START_TIMEOUT))
        argv = command(action, params, binary=node.binary, socket=node.socket, key_path=key_path, differences=differences)
        rc, out, err = module.run_command(argv)
        if rc != 0:
            raise TailscaleError("tailscale %s failed (rc=%s): %s" % (argv[1 if not node.socket else 2], rc, (err or out).strip()))
    finally:
        if key_dir:
            shutil.rmtree(key_dir, ignore_errors=True)


def wait_running(module, node):
    """The status once the daemon is Running with an address (polled every second, at most timeout seconds)."""
    timeout = module.params["timeout"]
    # clock and sleeper looked up now, not when waiter.py was imported (tests replace time's functions).
    waiter = Waiter(node.status, lambda status: status.get("BackendState") == "Running" and bool(facts(status)["ip"]),
                    max(timeout, 1), sleep=1, clock=time.monotonic, sleeper=time.sleep)
    try:
        return waiter.wait("Tailscale to be Running with an address")
    except WaitTimeout as exc:
        state = (exc.last or {}).get("BackendState")
    if state == "NeedsMachineAuth":
        raise TailscaleError("the node waits for device approval in the tailnet's admin console; "
                             "use a pre-authorized auth key (or preauthorized=true for OAuth client secrets)")
    raise TailscaleError("timed out after %ss waiting for Tailscale to be Running with an address (state: %s)" % (timeout, state))


def wait_settled(module, node, status):
    """Wait while a started daemon that holds a node key is in NoState (ipn/ipnlocal/local.go nextStateLocked)."""
    timeout = module.params["timeout"]
    first = [status]

    def fetch():
        return first.pop() if first else node.status()

    waiter = Waiter(fetch, lambda current: not settling(current), max(timeout, 1), sleep=0.5, clock=time.monotonic, sleeper=time.sleep)
    try:
        return waiter.wait("tailscaled to leave NoState")
    except WaitTimeout:
        raise TailscaleError("tailscaled holds a node key but stayed in NoState for %ss: it has not received its "
                             "first network map from the control server; check that the node reaches it" % timeout)


def run(module):
    params = module.params
    errors = validate(params)
    if errors:
        raise TailscaleError("; ".join(errors))
    node = Node(module)
    if not node.binary or not os.path.exists(node.binary):
        if module.check_mode:
            return dict(changed=True, action="install", differences=[], tailscale={})
        raise TailscaleError("the tailscale command was not found (%s); install the tailscale package first" % params["binary"])
    status = wait_settled(module, node, node.status())
    prefs = node.prefs()
    action, differences = plan(status, prefs, params)
    warnings = drift(status, params, action, differences)
    for warning in warnings:
        module.warn("Tailscale drift: " + warning)
    result = dict(changed=action != "none", action=action, differences=differences, drift=warnings,
                  tailscale=facts(status))
    if module._diff and action != "none":
        before = current_prefs(prefs)
        before["LoggedIn"] = action != "login"
        after = wanted_prefs(params)
        after["LoggedIn"] = True
        result["diff"] = dict(before=before, after=after)
    if action == "reauth":
        module.warn("tailscale on this node re-authenticates to change %s; SSH sessions over the tailnet may drop"
                    % ", ".join(field for field in differences if field in ("AdvertiseTags", "ControlURL")))
    if module.check_mode:
        return result
    if action != "none":
        try:
            run_action(module, node, action, differences)
        except TailscaleError:
            # Self.KeyExpiry is known only with a network map (ipn/ipnlocal/local.go updateStatusLocked): a node
            # stopped since tailscaled started shows none, and `up` without a key then finds the key expired and
            # waits for an interactive login (NeedsLogin). With an auth key at hand, log in with it.
            if action != "start" or not params["authkey"] or node.status().get("BackendState") != "NeedsLogin":
                raise
            module.warn("tailscale on this node needed a new login (its node key had expired); logging in with the auth key")
            action = "login"
            result["action"] = action
            run_action(module, node, action, differences)
    if action != "none" or status.get("BackendState") != "Running" or not facts(status)["ip"]:
        status = wait_running(module, node)
        result["tailscale"] = facts(status)
    return result


def execute(module):
    """Run tailscale_up and exit: the one place its failures (TailscaleError) become fail_json."""
    try:
        result = run(module)
    except TailscaleError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)

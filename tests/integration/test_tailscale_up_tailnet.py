"""infra.k3s.tailscale_up's run() against the stand-in tailnet (tests/standins/tailscale/netns.py: control.py
and two stand-in tailscaled nodes in network namespaces; root needed), with run_command running the stand-in CLI:
accept-risk over a tailnet SSH session, a restarted daemon's NoState, an expired node key.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from standins.tailscale.netns import (KEY, OVER_TAILNET, PYTHON, STANDIN, debug_prefs, run, status,
                                      tailnet_fixture, ts, wait_for)
from support.module_utils import load_module_utils


tailnet = tailnet_fixture  # the module-scoped tailnet of netns.py


class CliModule(object):
    """What tailscale_up's run() uses of AnsibleModule, with run_command running the real stand-in CLI."""

    def __init__(self, binary, sock, env, **params):
        self.params = dict(authkey=None, ephemeral=False, preauthorized=True, hostname="", tags=[], ssh=False,
                           accept_routes=False, accept_dns=True, shields_up=False, advertise_routes=[],
                           advertise_exit_node=False, operator="", login_server="", extra_args=[], timeout=20,
                           binary=str(binary), socket=str(sock))
        self.params.update(params)
        self.check_mode = False
        self._diff = False
        self.env = env
        self.commands = []
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def run_command(self, argv):
        self.commands.append(list(argv))
        result = run(*argv, check=False, env=self.env, stdin=subprocess.DEVNULL)
        return result.returncode, result.stdout, result.stderr


@pytest.fixture(name="tailscale_up")
def fixture_tailscale_up(tmp_path):
    """(runner, cli): tailscale_up's run() (module_utils/tailscale_runners.py) and an executable wrapper of the stand-in CLI."""

    cli = tmp_path / "tailscale"
    cli.write_text(f'#!/bin/sh\nexec {PYTHON} {STANDIN / "tailscale.py"} "$@"\n')
    cli.chmod(0o755)
    return load_module_utils("tailscale_runners"), cli


def test_module_over_the_tailnet_passes_accept_risk(tailnet, tailscale_up):
    module, cli = tailscale_up
    env = dict(os.environ, SSH_CLIENT=OVER_TAILNET)
    fake = CliModule(cli, tailnet.sock_a, env, hostname="node-a", login_server=tailnet.url, ssh=True)
    assert module.run(fake)["action"] == "set"
    assert debug_prefs(tailnet.sock_a)["RunSSH"] is True
    fake = CliModule(cli, tailnet.sock_a, env, hostname="node-a", login_server=tailnet.url, ssh=False)
    assert module.run(fake)["action"] == "set"
    assert debug_prefs(tailnet.sock_a)["RunSSH"] is False


def test_restarted_daemon_reports_nostate_and_the_module_waits(tailnet, tailscale_up):
    module, cli = tailscale_up
    key = status(tailnet.sock_b)["Self"]["PublicKey"]
    assert tailnet.stop("b") == 0
    tailnet.sock_b = tailnet.daemon("b", tailnet.ns_b)
    got = status(tailnet.sock_b)
    assert got["BackendState"] == "NoState" and got["HaveNodeKey"] is True and got["TailscaleIPs"] is None
    fake = CliModule(cli, tailnet.sock_b, dict(os.environ), hostname="node-b", login_server=tailnet.url,
                     authkey=KEY)
    result = module.run(fake)
    assert result["action"] == "none" and not result["changed"], result
    assert not [argv for argv in fake.commands if "up" in argv or "set" in argv]
    got = status(tailnet.sock_b)
    assert got["BackendState"] == "Running" and got["Self"]["PublicKey"] == key


def expire_and_stop(tailnet, sock) -> str:
    """Expire node b's key through the control server, then `tailscale down`; returns its old public key."""
    wait_for(lambda: status(sock)["BackendState"] == "Running", what="node b Running")
    old_key = status(sock)["Self"]["PublicKey"]
    tailnet.control_post("/lab/expire", {"id": status(sock)["Self"]["ID"]})
    wait_for(lambda: status(sock)["BackendState"] == "NeedsLogin", what="NeedsLogin once the key expired")
    assert ts(sock, "down").returncode == 0
    return old_key


def test_stopped_node_with_an_expired_key_logs_in_with_the_key(tailnet, tailscale_up):
    module, cli = tailscale_up
    sock = tailnet.sock_b
    old_key = expire_and_stop(tailnet, sock)
    got = status(sock)
    assert got["BackendState"] == "Stopped" and got["HaveNodeKey"] is True
    # `up` without a key waits for an interactive login, as upstream's does
    result = ts(sock, "up", "--reset", f"--login-server={tailnet.url}", "--hostname=node-b", "--timeout=2s")
    assert result.returncode == 1 and "To authenticate, visit:" in result.stderr
    assert ts(sock, "down").returncode == 0
    assert status(sock)["BackendState"] == "Stopped"
    fake = CliModule(cli, sock, dict(os.environ), hostname="node-b", login_server=tailnet.url, authkey=KEY)
    result = module.run(fake)
    assert result["action"] == "login" and result["tailscale"]["backend_state"] == "Running", result
    got = status(sock)
    assert got["Self"]["KeyExpiry"] > "2026" and not load_module_utils("tailscale").key_expired(got)
    assert got["BackendState"] == "Running" and got["Self"]["PublicKey"] != old_key


def test_node_stopped_since_a_restart_with_an_expired_key_logs_in_with_the_key(tailnet, tailscale_up):
    module, cli = tailscale_up
    sock = tailnet.sock_b
    old_key = expire_and_stop(tailnet, sock)
    assert tailnet.stop("b") == 0
    tailnet.sock_b = sock = tailnet.daemon("b", tailnet.ns_b)
    got = status(sock)
    # no network map since the start: no KeyExpiry to tell the key expired (ipn/ipnlocal/local.go)
    assert got["BackendState"] == "Stopped" and got["HaveNodeKey"] is True and "KeyExpiry" not in got["Self"]
    fake = CliModule(cli, sock, dict(os.environ), hostname="node-b", login_server=tailnet.url, authkey=KEY)
    result = module.run(fake)
    assert result["action"] == "login" and result["tailscale"]["backend_state"] == "Running", result
    assert status(sock)["Self"]["PublicKey"] != old_key

"""The K3s stages refuse bad input before any node changes: run infra.k3s.k3s_cluster with --check
against this machine (local connections), so even a wrong pass would change nothing."""
from __future__ import annotations

import hashlib
import os
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

VERSION = "v1.31.4+k3s1"
TOKENS = {"k3s_token": "server-token-0123456789abcdef", "k3s_agent_token": "agent-token-0123456789abcdef"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def mirror(tmp_path):
    """A release mirror on loopback whose binary does not match its sha256sum file (a tampered download)."""
    release = tmp_path / "mirror" / VERSION
    release.mkdir(parents=True)
    (release / "k3s").write_bytes(b"#!/bin/sh\necho tampered\n")
    (release / "sha256sum-amd64.txt").write_text(f"{hashlib.sha256(b'the real binary').hexdigest()}  k3s\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path / "mirror")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_cluster(run_ansible, tmp_path, masters, variables):
    hosts = {"ansible_connection": "local", "tailscale_ip": "100.64.0.1"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {name: dict(hosts) for name in masters}},
        "k3s_workers": {"hosts": {"agent1": dict(hosts)}},
    }, "vars": {**TOKENS, "k3s_download_dir": str(tmp_path / "cache"), **variables}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "infra.k3s.k3s_cluster", cwd=tmp_path)
    return result.returncode, result.stdout + result.stderr


def assert_refused(returncode, output, message):
    assert returncode == 2, output
    assert message in output, output
    # Only the checking play ran: no K3s play started, no host changed.
    assert "PLAY [K3s on the first server]" not in output, output
    for changed in re.findall(r"\S+\s+: ok=\d+\s+changed=(\d+)", output):
        assert changed == "0", output


def test_missing_version(run_ansible, tmp_path):
    assert_refused(*run_cluster(run_ansible, tmp_path, ["server1"], {}), "k3s_version (required, like v1.31.4+k3s1)")


def test_even_number_of_servers(run_ansible, tmp_path):
    assert_refused(*run_cluster(run_ansible, tmp_path, ["server1", "server2"], {"k3s_version": VERSION}),
                   "an odd number of servers")


def test_server_token_missing_is_refused_without_showing_tokens(run_ansible, tmp_path):
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, "k3s_token": ""})
    assert_refused(returncode, output, "k3s_token (servers) and k3s_agent_token (every node) must be set")
    assert TOKENS["k3s_agent_token"] not in output


def test_checksum_mismatch(run_ansible, tmp_path, mirror):
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, "k3s_release_url": mirror})
    assert_refused(returncode, output, "did not match")
    assert "nothing was installed" in output
    assert not (tmp_path / "cache" / VERSION / "k3s").exists()


def test_unreachable_mirror(run_ansible, tmp_path):
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"],
                                     {"k3s_version": VERSION, "k3s_release_url": "http://127.0.0.1:9/releases"})
    assert_refused(returncode, output, "could not be used from http://127.0.0.1:9/releases/v1.31.4%2Bk3s1")
    assert "Check k3s_version and k3s_release_url" in output


def test_limit_leaving_out_the_first_server(run_ansible, tmp_path):
    """--limit without the first server (upgrade.yml or k3s_cluster.yml on one node): the first server is asked
    for its Tailscale IP itself; when it cannot answer, the run stops naming it."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tailscale").write_text('#!/bin/sh\n[ "$1 $2" = "ip -4" ] && echo 100.64.0.7\n')
    (fake / "tailscale").chmod(0o755)
    local = {"ansible_connection": "local", "ansible_become_method": "su"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"server1": dict(local)}},
        "k3s_workers": {"hosts": {"agent1": dict(local, tailscale_ip="100.64.0.1")}},
    }, "vars": {**TOKENS, "k3s_version": VERSION}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "preflight", "hosts": "k3s_cluster", "gather_facts": False,
        "tasks": [{"name": "preflight", "ansible.builtin.include_role": {"name": "infra.k3s.k3s", "tasks_from": "preflight"}},
                  {"name": "show", "ansible.builtin.debug": {"msg": "FIRST={{ hostvars['server1'].k3s_node_ip }}"}}]}]))
    path = os.environ["PATH"]
    result = run_ansible("ansible-playbook", "-i", "hosts.yml", "play.yml", "--limit", "agent1",
                         extra_env={"PATH": f"{fake}:{path}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FIRST=100.64.0.7" in result.stdout
    (fake / "tailscale").write_text("#!/bin/sh\nexit 1\n")
    result = run_ansible("ansible-playbook", "-i", "hosts.yml", "play.yml", "--limit", "agent1",
                         extra_env={"PATH": f"{fake}:{path}"}, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "The first server server1 has no k3s_node_ip" in result.stdout + result.stderr

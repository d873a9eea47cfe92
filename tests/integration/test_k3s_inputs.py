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

VERSION = "v1.36.4+k3s1"
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


def run_cluster(run_ansible, tmp_path, masters, variables, *args):
    hosts = {"ansible_connection": "local", "tailscale_ip": "100.64.0.1"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {name: dict(hosts) for name in masters}},
        "k3s_workers": {"hosts": {"agent1": dict(hosts)}},
    }, "vars": {**TOKENS, "k3s_download_dir": str(tmp_path / "cache"), **variables}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "infra.k3s.k3s_cluster", *args, cwd=tmp_path)
    return result.returncode, result.stdout + result.stderr


def assert_refused(returncode, output, message):
    assert returncode == 2, output
    assert message in output, output
    # Only the checking play ran: no K3s play started, no host changed.
    assert "PLAY [K3s on the first server]" not in output, output
    for changed in re.findall(r"\S+\s+: ok=\d+\s+changed=(\d+)", output):
        assert changed == "0", output


def test_missing_version(run_ansible, tmp_path):
    assert_refused(*run_cluster(run_ansible, tmp_path, ["server1"], {}), "k3s_version (required, like v1.36.4+k3s1)")


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
    assert_refused(returncode, output, "could not be used from http://127.0.0.1:9/releases/v1.36.4%2Bk3s1")
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


# Versions: what a node runs is read from its K3s binary (`k3s --version`) and, for the nodes outside
# the run, from the first server's API (`k3s kubectl get nodes`). Here both are a fake `k3s` the
# role is pointed at (its __k3s_installed_binary), answering as the real one does: k3s-io/k3s
# pkg/cli/cmds/root.go (`k3s version <version> (<commit>)`), kubectl's jsonpath output.
UNREACHABLE = {"k3s_release_url": "http://127.0.0.1:9/releases"}


def fake_k3s(tmp_path, binary_version, api_nodes=""):
    fake = tmp_path / "k3s"
    fake.write_text("#!/bin/sh\n"
                    f'if [ "$1" = --version ]; then echo "k3s version {binary_version} (1a2b3c4d)"; echo "go version go1.26.7"; exit 0; fi\n'
                    f'if [ "$1 $2 $3" = "kubectl get nodes" ]; then printf "{api_nodes}"; exit 0; fi\n'
                    "exit 1\n")
    fake.chmod(0o755)
    return ["-e", f"__k3s_installed_binary={fake}"]


@pytest.mark.parametrize("running", ["v1.36.5+k3s1", "v1.36.4+k3s2", "v1.37.0+k3s1"])
def test_downgrade_is_refused(run_ansible, tmp_path, running):
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, **UNREACHABLE},
                                     *fake_k3s(tmp_path, running))
    assert_refused(returncode, output, f"K3s {VERSION} is older than what server1 runs {running}")
    assert "that is a downgrade" in output
    assert "could not be used from" not in output  # refused before the download


def test_skipping_a_minor_is_refused(run_ansible, tmp_path):
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, **UNREACHABLE},
                                     *fake_k3s(tmp_path, "v1.34.9+k3s1"))
    assert_refused(returncode, output, f"K3s {VERSION} is more than one minor above what server1 runs v1.34.9+k3s1")
    assert "Upgrade to the newest v1.35 release first" in output


def test_a_node_outside_limit_counts(run_ansible, tmp_path):
    """--limit agent1: server1 is not in the run; the first server's API says agent9 still runs v1.34."""
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, **UNREACHABLE},
                                     *fake_k3s(tmp_path, "v1.35.8+k3s1", "server1=v1.35.8+k3s1\\nagent9=v1.34.9+k3s1\\n"),
                                     "--limit", "agent1")
    assert_refused(returncode, output, "more than one minor above what agent9 runs v1.34.9+k3s1")
    assert "server1 runs" not in output


@pytest.mark.parametrize("running", ["v1.35.8+k3s1", "v1.36.4+k3s1", "v1.36.3+k3s2", "v1.36.0-rc1+k3s1"])
def test_one_minor_up_or_the_same_is_let_through(run_ansible, tmp_path, running):
    """The version check passes; the run goes on to the download (which this mirror refuses)."""
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"], {"k3s_version": VERSION, **UNREACHABLE},
                                     *fake_k3s(tmp_path, running, f"server1={running}\\nagent1={running}\\n"))
    assert_refused(returncode, output, "could not be used from http://127.0.0.1:9/releases")
    assert "that is a downgrade" not in output and "is more than one minor above" not in output


# Air gap: the release's files as downloaded, in one directory; each node gets its architecture's.
def airgap_dir(tmp_path, images_listed_right=True):
    release = tmp_path / "airgap"
    release.mkdir()
    for arch, binary in (("amd64", "k3s"), ("arm64", "k3s-arm64"), ("arm", "k3s-armhf")):
        content, images = f"#!/bin/sh\necho {binary}\n".encode(), f"images of {arch}".encode()
        (release / binary).write_bytes(content)
        (release / f"k3s-airgap-images-{arch}.tar.zst").write_bytes(images)
        listed = hashlib.sha256(images if images_listed_right else b"other images").hexdigest()
        (release / f"sha256sum-{arch}.txt").write_text(
            f"{listed}  k3s-airgap-images-{arch}.tar.zst\n{hashlib.sha256(content).hexdigest()}  {binary}\n")
    return release


def test_airgap_images_with_a_wrong_checksum_are_refused(run_ansible, tmp_path):
    release = airgap_dir(tmp_path, images_listed_right=False)
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"],
                                     {"k3s_version": VERSION, "k3s_airgap": True, "k3s_airgap_dir": str(release)})
    assert_refused(returncode, output, f"{release}/k3s-airgap-images-amd64.tar.zst must exist and be listed with their sha256")
    assert "nothing was installed" in output


def test_airgap_binary_with_a_wrong_checksum_is_refused(run_ansible, tmp_path):
    release = airgap_dir(tmp_path)
    (release / "k3s").write_text("#!/bin/sh\necho tampered\n")
    returncode, output = run_cluster(run_ansible, tmp_path, ["server1"],
                                     {"k3s_version": VERSION, "k3s_airgap": True, "k3s_airgap_dir": str(release)})
    assert_refused(returncode, output, f"amd64: {release}/k3s (the release's k3s)")


def test_airgap_one_binary_for_several_architectures_is_refused(run_ansible, tmp_path):
    release = airgap_dir(tmp_path)
    returncode, output = run_ansible_arch(run_ansible, tmp_path, {"k3s_airgap": True, "k3s_airgap_binary": str(release / "k3s"),
                                                                  "k3s_airgap_checksums": str(release / "sha256sum-amd64.txt")})
    assert returncode == 2, output
    assert "k3s_airgap_binary holds the binary of one architecture but the nodes are arm, arm64" in output


def run_ansible_arch(run_ansible, tmp_path, variables):
    """The K3s stage's checks, then the files each node would get: server1 is armv7l, agent1 aarch64."""
    local = {"ansible_connection": "local", "tailscale_ip": "100.64.0.1"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"server1": dict(local, arch="armv7l")}},
        "k3s_workers": {"hosts": {"agent1": dict(local, arch="aarch64")}},
    }, "vars": {**TOKENS, "k3s_version": VERSION, **variables}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "arch", "hosts": "k3s_cluster", "gather_facts": False, "any_errors_fatal": True,
        "tasks": [{"name": "arch", "ansible.builtin.set_fact": {"ansible_facts": {"architecture": "{{ arch }}"}}},
                  {"name": "prepare", "ansible.builtin.include_role": {"name": "infra.k3s.k3s", "tasks_from": "prepare",
                                                                       "public": True}},
                  {"name": "show", "ansible.builtin.debug": {
                      "msg": "{{ inventory_hostname }} GETS {{ __k3s_airgap_binary }} AND {{ __k3s_airgap_images }}"}}]}]))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "play.yml", cwd=tmp_path)
    return result.returncode, result.stdout + result.stderr


def test_airgap_each_node_gets_its_architecture(run_ansible, tmp_path):
    release = airgap_dir(tmp_path)
    returncode, output = run_ansible_arch(run_ansible, tmp_path, {"k3s_airgap": True, "k3s_airgap_dir": str(release)})
    assert returncode == 0, output
    assert f"server1 GETS {release}/k3s-armhf AND {release}/k3s-airgap-images-arm.tar.zst" in output
    assert f"agent1 GETS {release}/k3s-arm64 AND {release}/k3s-airgap-images-arm64.tar.zst" in output
    # A missing architecture in the directory stops the run before any node gets anything.
    (release / "k3s-armhf").unlink()
    returncode, output = run_ansible_arch(run_ansible, tmp_path, {"k3s_airgap": True, "k3s_airgap_dir": str(release)})
    assert returncode == 2, output
    assert f"arm: {release}/k3s-armhf (the release's k3s-armhf)" in output
    assert "GETS" not in output


def run_recovery(run_ansible, tmp_path, *args):
    """infra.k3s.node_recovery with --check against this machine, on a cluster of server1 and agent1."""
    hosts = {"ansible_connection": "local", "tailscale_ip": "100.64.0.1"}
    inventory = {"k3s_cluster": {"children": {
        "k3s_masters": {"hosts": {"server1": dict(hosts)}},
        "k3s_workers": {"hosts": {"agent1": dict(hosts)}},
    }, "vars": {**TOKENS, "k3s_version": VERSION, "k3s_download_dir": str(tmp_path / "cache")}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = run_ansible("ansible-playbook", "--check", "-i", "hosts.yml", "infra.k3s.node_recovery", *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "PLAY [Read each node's state and reset it when asked]" not in output, output
    return output


def test_recovery_without_limit_is_refused(run_ansible, tmp_path):
    assert "works on the nodes you name with --limit" in run_recovery(run_ansible, tmp_path)


def test_recovery_reset_of_the_first_server_is_refused(run_ansible, tmp_path):
    output = run_recovery(run_ansible, tmp_path, "--limit", "server1,agent1", "-e", "k3s_recovery_mode=reset")
    assert "would delete the datastore of server1, the first server" in output


def test_recovery_unknown_mode_is_refused(run_ansible, tmp_path):
    output = run_recovery(run_ansible, tmp_path, "--limit", "agent1", "-e", "k3s_recovery_mode=rebuild")
    assert "k3s_recovery_mode" in output and "rejoin, reset" in output

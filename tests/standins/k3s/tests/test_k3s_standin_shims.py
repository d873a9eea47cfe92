"""The stand-in's containerd shims (tests/standins/k3s/shims.py) and how reset.yml removes them.

The stand-in shims run here for real, as the current user in a temporary data directory (network
namespaces and iptables need root and are left to the Molecule scenario k3s). reset.yml's own
shell scripts are taken from roles/k3s/tasks/reset.yml and run against them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from standins.k3s import shims
from support.paths import PROJECT_ROOT
from support.poll import wait_for

RESET = PROJECT_ROOT / "roles" / "k3s" / "tasks" / "reset.yml"


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def ppid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True).stdout
    return [int(p) for p, pp in (line.split() for line in out.splitlines()) if int(pp) == pid]


def reset_script(name_start: str) -> str:
    """The shell script of the reset.yml task whose name starts with name_start."""
    tasks = yaml.safe_load(RESET.read_text(encoding="utf-8"))
    matches = [t for t in tasks if t.get("name", "").startswith(name_start)]
    assert matches, f"no task '{name_start}...' in {RESET}"
    return matches[0]["ansible.builtin.shell"]["cmd"]


@pytest.fixture(name="pod")
def pod_fixture(tmp_path):
    """A shim started like containerd starts it, with the pod `sh -c 'sleep infinity & wait'` under it."""
    data_dir = tmp_path / "k3s"
    bin_dir = shims.install(data_dir)
    sandbox_id = "a" * 64
    shim = shims.start(bin_dir, sandbox_id, shims.POD, task_root=tmp_path / "tasks")
    init = int((tmp_path / "tasks" / sandbox_id / "init.pid").read_text(encoding="utf-8"))
    assert wait_for(lambda: children(init), 10), "the pod's sh did not start its sleep"
    tree = [shim, init, *children(init)]
    yield {"data_dir": data_dir, "bin_dir": bin_dir, "id": sandbox_id, "shim": shim, "init": init,
           "tree": tree, "task_root": tmp_path / "tasks"}
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_install_lays_out_the_data_dir_like_k3s(tmp_path):
    data_dir = tmp_path / "k3s"
    bin_dir = shims.install(data_dir)
    assert bin_dir.parent.parent == data_dir / "data"
    assert (data_dir / "data" / "current").resolve() == bin_dir.parent
    assert os.access(bin_dir / shims.SHIM, os.X_OK)
    assert shims.install(data_dir) == bin_dir  # a second start changes nothing


def test_shim_runs_detached_with_containerds_arguments(pod):
    shim = pod["shim"]
    argv = Path(f"/proc/{shim}/cmdline").read_bytes().decode().split("\0")[:-1]
    # The interpreter runs the shim program; from the program's path on, the real shim's arguments.
    assert argv[argv.index(str(pod["bin_dir"] / shims.SHIM)):] == [
        str(pod["bin_dir"] / shims.SHIM), "-namespace", "k8s.io", "-id", pod["id"], "-address", shims.ADDRESS]
    assert Path(f"/proc/{shim}/comm").read_text(encoding="utf-8").strip() == "containerd-shim"
    assert ppid(shim) != os.getpid(), "the shim must not stay a child of whoever started it"
    assert os.getsid(shim) == shim, "the shim runs in its own session"
    assert ppid(pod["init"]) == shim
    assert shims.running(pod["task_root"]) == [pod["id"]]


def test_killing_only_the_shim_leaves_the_pod_running(pod):
    """Why reset.yml must kill the tree: the pod's processes outlive their shim, as with runc."""
    os.kill(pod["shim"], signal.SIGKILL)
    assert wait_for(lambda: not alive(pod["shim"]), 10)
    time.sleep(0.5)
    assert all(alive(pid) for pid in pod["tree"][1:])
    assert shims.running(pod["task_root"]) == []


def test_reset_kills_every_process_under_every_shim(pod, tmp_path):
    bystander = subprocess.Popen(["sleep", "300"])  # pylint: disable=consider-using-with
    try:
        script = reset_script("Kill every containerd shim and every process beneath it")
        done = subprocess.run(["/bin/bash", "-c", script], env={**os.environ, "K3S_DATA_DIR": str(pod["data_dir"])},
                              capture_output=True, text=True, check=True, timeout=30)
        assert sorted(int(p) for p in done.stdout.split()) == sorted(pod["tree"])
        assert wait_for(lambda: not any(alive(pid) for pid in pod["tree"]), 10)
        assert bystander.poll() is None, "a process not under a shim was killed"
        again = subprocess.run(["/bin/bash", "-c", script], env={**os.environ, "K3S_DATA_DIR": str(pod["data_dir"])},
                               capture_output=True, text=True, check=True, timeout=30)
        assert again.stdout == ""  # nothing left: the task reports no change
    finally:
        bystander.kill()
        bystander.wait()
    del tmp_path


# As flannel writes them, in its own chains and (older flannel) straight into POSTROUTING.
RULES = """# Generated by iptables-save v1.8.10 on Fri Dec  4 22:00:00 2026
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:FLANNEL-FWD - [0:0]
:KUBE-FIREWALL - [0:0]
:ufw-user-input - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -j ufw-user-input
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A ufw-user-input -i tailscale0 -p udp -m udp --dport 8472 -j ACCEPT
-A ufw-user-input -s 10.42.0.0/16 -i flannel.1 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "Flanneld masq" -j FLANNEL-POSTRTG
-A POSTROUTING -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A POSTROUTING -s 192.168.0.0/16 -o eth0 -j MASQUERADE
COMMIT
# Completed on Fri Dec  4 22:00:00 2026
"""
# k3s-killall.sh's patterns, except for UFW's own chains, which stay whole.
KEPT = [line for line in RULES.splitlines()
        if line.startswith(("-A ufw-", ":ufw-"))
        or ("KUBE-" not in line and "CNI-" not in line and "flannel" not in line.lower())]


def fake_iptables(directory: Path, tool: str, log: Path) -> None:
    """<tool>-save prints RULES; <tool>-restore records what it was given and by which copy it ran."""
    directory.mkdir(parents=True, exist_ok=True)
    save = directory / f"{tool}-save"
    save.write_text(f"#!/bin/sh\ncat <<'EOF'\n{RULES}EOF\n", encoding="utf-8")
    restore = directory / f"{tool}-restore"
    restore.write_text(f"#!/bin/sh\necho \"$0\" >>'{log}'\ncat >>'{log}'\n", encoding="utf-8")
    save.chmod(0o755)
    restore.chmod(0o755)


def run_iptables_task(data_dir: Path, path: str) -> subprocess.CompletedProcess:
    script = reset_script("Remove the iptables rules and chains K3s made")
    return subprocess.run(["/bin/bash", "-c", script], env={"PATH": path, "K3S_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, check=True, timeout=30)


@pytest.fixture(name="tools")
def tools_fixture(tmp_path):
    """A PATH with only what the script and the fakes need besides iptables (awk, cat)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("awk", "cat"):
        (tools / name).symlink_to(subprocess.run(["bash", "-c", f"command -v {name}"], capture_output=True,
                                                 text=True, check=True).stdout.strip())
    return tools


def test_reset_falls_back_to_k3s_bundled_iptables(tmp_path, tools):
    data_dir = tmp_path / "k3s"
    aux = shims.install(data_dir) / "aux"
    for tool in shims.AUX_TOOLS:  # not the host's: these are fakes
        (aux / tool).unlink(missing_ok=True)
    log = tmp_path / "restored"
    fake_iptables(aux, "iptables", log)
    done = run_iptables_task(data_dir, str(tools))
    assert log.read_text(encoding="utf-8").splitlines() == [str(aux / "iptables-restore"), *KEPT]
    assert "cleaned iptables" in done.stdout


def test_reset_prefers_the_hosts_iptables_and_matches_like_upstream(tmp_path, tools):
    data_dir = tmp_path / "k3s"
    aux = shims.install(data_dir) / "aux"
    for tool in shims.AUX_TOOLS:
        (aux / tool).unlink(missing_ok=True)
    bundled_log, host_log = tmp_path / "bundled", tmp_path / "host"
    fake_iptables(aux, "iptables", bundled_log)
    fake_iptables(tools, "iptables", host_log)
    run_iptables_task(data_dir, str(tools))
    restored = host_log.read_text(encoding="utf-8").splitlines()
    assert restored == [str(tools / "iptables-restore"), *KEPT]
    assert "-A ufw-user-input -i tailscale0 -p udp -m udp --dport 8472 -j ACCEPT" in restored
    assert "-A ufw-user-input -s 10.42.0.0/16 -i flannel.1 -j ACCEPT" in restored
    assert not any("flannel" in line.lower() for line in restored if not line.startswith("-A ufw-"))
    assert "-A POSTROUTING -s 192.168.0.0/16 -o eth0 -j MASQUERADE" in restored
    assert not bundled_log.exists()


def test_reset_never_restores_a_ruleset_it_could_not_filter(tmp_path, tools):
    log = tmp_path / "host"
    fake_iptables(tools, "iptables", log)
    (tools / "awk").unlink()
    script = reset_script("Remove the iptables rules and chains K3s made")
    done = subprocess.run(["/bin/bash", "-c", script], env={"PATH": str(tools), "K3S_DATA_DIR": str(tmp_path)},
                          capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode != 0 and not log.exists()


def test_reset_leaves_rules_without_k3s_alone(tmp_path, tools):
    data_dir = tmp_path / "k3s"
    log = tmp_path / "host"
    tools_rules = tools / "iptables-save"
    fake_iptables(tools, "iptables", log)
    tools_rules.write_text("#!/bin/sh\ncat <<'EOF'\n" + "\n".join(KEPT) + "\nEOF\n", encoding="utf-8")
    done = run_iptables_task(data_dir, str(tools))
    assert done.stdout == "" and not log.exists()

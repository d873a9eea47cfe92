"""Run one play of a role's test with ansible-playbook, as the role tests do.

The variables go in a new file vars-<n>.json with mode 0600 (the vault's stand-in), never on the command line, so
that a test can look for a secret in every process's arguments; the tests that look for it in files skip those.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def local_server(name: str = "localhost", **hostvars) -> dict:
    """An inventory whose one server (k3s_masters in k3s_cluster) is this machine, with connection local."""
    return {"k3s_cluster": {"children": {"k3s_masters": {"hosts": {name: dict(LOCAL, **hostvars)}}}}}


def run_play(run_ansible, tmp_path: Path, play: dict, variables: dict, inventory=None, check=False, verbosity=0):
    """ansible-playbook on [play] with the variables from a 0600 file; inventory: a dict (written as hosts.json) or
    an inventory string such as "localhost,". Returns the completed process."""
    vars_file = tmp_path / ("vars-%d.json" % (len(list(tmp_path.glob("vars-*.json"))) + 1))
    vars_file.write_text(json.dumps(variables), encoding="utf-8")
    vars_file.chmod(0o600)
    if isinstance(inventory, dict):
        (tmp_path / "hosts.json").write_text(json.dumps(inventory), encoding="utf-8")
        inventory = str(tmp_path / "hosts.json")
    (tmp_path / "play.yml").write_text(json.dumps([play]), encoding="utf-8")
    args = (["-i", inventory] if inventory else []) + [str(tmp_path / "play.yml"), "-e", "@" + str(vars_file)]
    if check:
        args.append("--check")
    if verbosity:
        args.append("-" + "v" * verbosity)
    return run_ansible("ansible-playbook", *args)


def role_runner(run_ansible, tmp_path: Path, role: str, inventory: dict):
    """A converge function (variables, check=False, verbosity=0) running the role on k3s_masters of inventory."""
    play = {"name": role, "hosts": "k3s_masters", "gather_facts": False, "roles": [{"role": role}]}

    def _run(variables: dict, check=False, verbosity=0):
        return run_play(run_ansible, tmp_path, play, variables, inventory, check=check, verbosity=verbosity)

    return _run


def k3s_paths(server, prefix: str) -> dict:
    """A role's <prefix>_k3s_bin, _kubeconfig and _manifest_dir pointed at a stand-in K3s (support/k3s_process.py)."""
    return {prefix + "_k3s_bin": str(server.bin), prefix + "_kubeconfig": str(server.kubeconfig),
            prefix + "_manifest_dir": str(server.manifests)}

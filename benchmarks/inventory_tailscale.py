"""Benchmark the inventory plugin infra.k3s.tailscale on a 5,000-device tailnet.

Serves a generated tailnet from the Tailscale API stand-in of the unit tests
(APIServer in tests/standins/tailscale/control.py, real HTTP on 127.0.0.1) and times
`ansible-inventory --list` (the venv's) on:

  static   a YAML inventory of the same hosts, groups and hostvars (the baseline)
  cold     the plugin with an empty jsonfile cache (one API request per run)
  cached   the plugin with a filled jsonfile cache (no API request)

and prints the median wall time of --runs runs of each and its ratio to static. It asserts
nothing about timings.

  .venv/bin/python benchmarks/inventory_tailscale.py [--devices 5000] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from standins.tailscale.control import API_KEY, APIServer, api_device  # noqa: E402

TAG_GROUPS = {"k3s_masters": ["tag:k3s-master"], "k3s_workers": ["tag:k3s-worker"]}


def tailnet(count):
    devices = []
    for i in range(count):
        tag = "tag:k3s-master" if i < 3 else "tag:k3s-worker"
        # 100.64.0.0/10 is Tailscale's CGNAT range.
        devices.append(api_device("node%05d.tail1234.ts.net" % i, tags=[tag],
                                  addresses=["100.%d.%d.%d" % (64 + i // 65536, i // 256 % 256, i % 256), "fd7a:115c:a1e0::%x" % i]))
    return devices


def static_inventory(devices):
    """The plugin's output for `devices`, written out as a YAML (JSON) inventory."""
    hostvars, groups = {}, {}
    for device in devices:
        name = device["name"].split(".")[0]
        ipv4, ipv6 = device["addresses"]
        hostvars[name] = {
            "ansible_host": ipv4, "tailscale_ip": ipv4, "tailscale_ipv6": ipv6, "tailscale_fqdn": device["name"],
            "tailscale_hostname": device["hostname"], "tailscale_os": device["os"], "tailscale_tags": device["tags"],
            "tailscale_online": True, "tailscale_node_id": device["nodeId"], "tailscale_last_seen": None,
            "tailscale_client_version": device["clientVersion"], "tailscale_authorized": True,
        }
        names = ["os_" + device["os"]] + ["tag_" + tag[4:].replace("-", "_") for tag in device["tags"]]
        names += [group for group, tags in TAG_GROUPS.items() if set(tags) & set(device["tags"])]
        for group in names:
            groups.setdefault(group, []).append(name)
    children = {group: {"hosts": {name: None for name in members}} for group, members in groups.items()}
    for name, variables in hostvars.items():
        children[groups_of(name, groups)]["hosts"][name] = variables
    return {"all": {"children": children}}


def groups_of(name, groups):
    """The first group a host is in: its variables are written there once."""
    for group, members in groups.items():
        if name in members:
            return group
    raise KeyError(name)


def timed(command, env, cwd):
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=str(cwd), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or proc.stderr.strip():
        sys.stderr.write(proc.stderr[-4000:])
        if proc.returncode != 0:
            raise SystemExit("ansible-inventory failed (rc=%d)" % proc.returncode)
    return elapsed, json.loads(proc.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    devices = tailnet(args.devices)
    inventory_bin = str(Path(sys.executable).parent / "ansible-inventory")
    results = {}
    with tempfile.TemporaryDirectory(prefix="tailscale-inv-bench-") as tmp, APIServer(devices).start() as server:
        work = Path(tmp)
        collections = work / "collections"
        (collections / "ansible_collections" / "infra").mkdir(parents=True)
        (collections / "ansible_collections" / "infra" / "k3s").symlink_to(ROOT)
        env = dict(os.environ)
        for key in [key for key in env if key.startswith(("TAILSCALE_", "ANSIBLE_"))]:
            del env[key]
        env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOME=str(work / "home"),
                   ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
                   TAILSCALE_API_KEY=API_KEY)
        static = work / "static.yml"
        static.write_text(json.dumps(static_inventory(devices)))
        cache_dir = work / "cache"
        plugin = work / "bench.tailscale.yml"
        plugin.write_text(json.dumps({"plugin": "infra.k3s.tailscale", "api_url": server.url, "tag_groups": TAG_GROUPS,
                                      "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
                                      "cache_connection": str(cache_dir), "cache_timeout": 3600}))
        outputs = {}
        for label, source in (("static", static), ("cold", plugin), ("cached", plugin)):
            times = []
            for _run in range(args.runs):
                if label == "cold":
                    shutil.rmtree(cache_dir, ignore_errors=True)
                before = len(server.device_requests())
                elapsed, outputs[label] = timed([inventory_bin, "-i", str(source), "--list"], env, work)
                requests = len(server.device_requests()) - before
                assert requests == (1 if label == "cold" else 0), "%s made %d API requests" % (label, requests)
                times.append(elapsed)
            results[label] = statistics.median(times)
        hosts = {label: len(output["_meta"]["hostvars"]) for label, output in outputs.items()}
        assert len(set(hosts.values())) == 1, "the inventories differ: %s" % hosts
    print("ansible-inventory --list, %d hosts (%d devices from the API stand-in on 127.0.0.1), median of %d runs"
          % (hosts["static"], args.devices, args.runs))
    print("%-34s %9s %10s" % ("inventory", "seconds", "vs static"))
    for label, title in (("static", "static YAML (same hosts and vars)"), ("cold", "tailscale plugin, cache empty"),
                         ("cached", "tailscale plugin, jsonfile cache")):
        print("%-34s %9.2f %9.2fx" % (title, results[label], results[label] / results["static"]))


if __name__ == "__main__":
    main()

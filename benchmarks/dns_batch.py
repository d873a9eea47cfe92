"""Benchmark infra.k3s.cloudflare_dns: one batched task versus one task per record.

Applies 200 A records across 50 names (4 values each) to the Cloudflare API test server
(tests/standins/cloudflare/, real HTTP on 127.0.0.1), through ansible-playbook:

  batched     one cloudflare_dns task with `records:` (50 record sets)
  per record  one cloudflare_dns call per record (a loop of 200 items, exclusive: false)

and prints, for a first apply and for a no-op re-apply of each, the requests the server
received (reads / writes) and the wall time of the ansible-playbook run. It asserts
nothing about timings.

  .venv/bin/python benchmarks/dns_batch.py [--names 50] [--values 4]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from standins.cloudflare import DEFAULT_TOKEN, CloudflareAPIServer  # noqa: E402

ZONE = "example.com"


def record_sets(names, per_name):
    # 198.18.0.0/15 is reserved for benchmarking (RFC 2544).
    return [{"name": "host%02d" % i, "type": "A", "values": ["198.18.%d.%d" % (i, j + 1) for j in range(per_name)]}
            for i in range(names)]


def batched_play(sets):
    return [{
        "name": "batched", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "all record sets in one batch",
                   "infra.k3s.cloudflare_dns": {"zone": ZONE, "ttl": 300, "records": sets}}],
    }]


def per_record_play(sets):
    items = [{"name": s["name"], "value": v} for s in sets for v in s["values"]]
    return [{
        "name": "per record", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "one record per task",
                   "infra.k3s.cloudflare_dns": {"zone": ZONE, "ttl": 300, "name": "{{ item.name }}", "type": "A",
                                                "values": ["{{ item.value }}"], "exclusive": False},
                   "loop": items, "loop_control": {"label": "{{ item.name }} {{ item.value }}"}}],
    }]


def run(playbook, server, workdir, collections):
    env = dict(os.environ)
    for key in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_EMAIL", "CLOUDFLARE_API_KEY", "CLOUDFLARE_API_USER_SERVICE_KEY"):
        env.pop(key, None)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"),
        ANSIBLE_HOME=str(workdir / "home"),
        ANSIBLE_NOCOLOR="1",
        CLOUDFLARE_API_TOKEN=DEFAULT_TOKEN,
    )
    path = workdir / "play.yml"
    play = json.loads(json.dumps(playbook))
    for task in play[0]["tasks"]:
        task["infra.k3s.cloudflare_dns"]["base_url"] = server.base_url
    path.write_text(json.dumps(play))
    mark = server.mark()
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)],
                          cwd=str(workdir), env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit("ansible-playbook failed (rc=%d)" % proc.returncode)
    requests = server.requests(mark)
    writes = [r for r in requests if r["method"] != "GET"]
    return {"requests": len(requests), "reads": len(requests) - len(writes), "writes": len(writes), "seconds": elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--values", type=int, default=4, help="A values per name")
    args = parser.parse_args()
    sets = record_sets(args.names, args.values)
    total = sum(len(s["values"]) for s in sets)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dns-bench-") as tmp:
        workdir = Path(tmp)
        collections = workdir / "collections"
        (collections / "ansible_collections" / "infra").mkdir(parents=True)
        (collections / "ansible_collections" / "infra" / "k3s").symlink_to(ROOT)
        for label, playbook in (("batched (1 task, records:)", batched_play(sets)),
                                ("one per record (%d calls)" % total, per_record_play(sets))):
            with CloudflareAPIServer(zones=(ZONE,), batch_limit=max(200, total)) as server:
                first = run(playbook, server, workdir, collections)
                assert len(server.get_records(ZONE)) == total, "the records were not all created"
                noop = run(playbook, server, workdir, collections)
            rows.append((label, "first apply", first))
            rows.append((label, "no-op re-apply", noop))
    print("%d A records across %d names, Cloudflare API test server on 127.0.0.1, cloudflare SDK %s"
          % (total, len(sets), _sdk_version()))
    print("%-28s %-15s %9s %7s %7s %9s" % ("approach", "run", "requests", "reads", "writes", "seconds"))
    for label, run_name, figures in rows:
        print("%-28s %-15s %9d %7d %7d %9.1f" % (label, run_name, figures["requests"], figures["reads"],
                                                 figures["writes"], figures["seconds"]))


def _sdk_version():
    try:
        import cloudflare
        return cloudflare.__version__
    except (ImportError, AttributeError):
        return "?"


if __name__ == "__main__":
    main()

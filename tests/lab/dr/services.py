#!/usr/bin/env python
"""Background services of the disaster-recovery drill (extensions/molecule/dr), on the test host.

    services.py start s3 --dir DIR --listen ADDR:PORT --bucket NAME
    services.py start cloudflare --dir DIR --listen ADDR:PORT --zone ZONE --token-file FILE
    services.py start velero --dir DIR --kubeconfig PATH
    services.py stop NAME|all --dir DIR
    services.py status NAME --dir DIR
    services.py list-bucket --url URL --bucket NAME [--prefix P]

Each service runs in its own session with DIR/NAME.pid, DIR/NAME.log (stderr) and DIR/NAME.out
(stdout); run this with the virtualenv's Python (moto, boto3 and kubernetes are needed).
`start` prints `NAME: started (pid N)` or, when the same service already runs with the same
arguments, `NAME: already running (pid N)` (so a play can report a change only for the first).
  s3          the R2 stand-in's moto S3 server (`python -m standins.r2`, run from tests/), then the bucket made
              (moto takes any key)
  cloudflare  `python -m standins.cloudflare`, run from tests/: the Cloudflare API stand-in with the zone
  velero      `python -m standins.velero --kubeconfig PATH`, run from tests/
`list-bucket` prints the bucket's keys as a JSON list (any key pair: moto does not check them).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1]
SERVICES = ("velero", "cloudflare", "s3")  # stop order
# moto accepts any credentials; these only sign the requests.
S3_KEYS = ("molecule-dr-access", "molecule-dr-secret")


def s3_client(url):
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=S3_KEYS[0],
                        aws_secret_access_key=S3_KEYS[1],
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def command_for(args):
    """(argv, cwd, readiness check) of a service."""
    if args.name == "s3":
        host, _sep, port = args.listen.rpartition(":")
        url = "http://%s:%s" % (host, port)

        def ready():
            try:
                s3_client(url).list_buckets()
            except Exception:  # pylint: disable=broad-except
                return False
            return True
        return [sys.executable, "-m", "standins.r2", "--listen", args.listen], str(TESTS), ready
    if args.name == "cloudflare":
        host, _sep, port = args.listen.rpartition(":")
        url = "http://%s:%s/client/v4/zones" % (host, port)

        def ready():
            try:
                urllib.request.urlopen(url, timeout=2)  # pylint: disable=consider-using-with
            except urllib.error.HTTPError:
                return True  # 401 without a token: it answers
            except OSError:
                return False
            return True
        argv = [sys.executable, "-m", "standins.cloudflare", "--listen", args.listen, "--token-file", args.token_file]
        for zone in args.zone:
            argv += ["--zone", zone]
        return argv, str(TESTS), ready
    if args.name == "velero":
        started = time.monotonic()
        return ([sys.executable, "-m", "standins.velero", "--kubeconfig", args.kubeconfig, "--interval", "0.5"],
                str(TESTS), lambda: time.monotonic() - started > 2)
    raise SystemExit("unknown service %s" % args.name)


def running_pid(directory, name):
    """The pid of the service started from this directory, when it still runs."""
    try:
        pid = int((directory / ("%s.pid" % name)).read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    wanted = (directory / ("%s.args" % name)).read_text(encoding="utf-8") if (directory / ("%s.args" % name)).exists() else ""
    # A recycled pid belongs to another program: ours has exactly the recorded command line.
    return pid if "\n".join(part.decode() for part in cmdline if part) == wanted else None


def start(args):
    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    argv, cwd, ready = command_for(args)
    name = args.name
    pid = running_pid(directory, name)
    if pid is not None:
        print("%s: already running (pid %d)" % (name, pid))
        return 0
    (directory / ("%s.args" % name)).write_text("\n".join(argv), encoding="utf-8")
    with open(directory / ("%s.out" % name), "wb") as out, open(directory / ("%s.log" % name), "ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=log,  # pylint: disable=consider-using-with
                                start_new_session=True)
    (directory / ("%s.pid" % name)).write_text("%d\n" % proc.pid, encoding="utf-8")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.stderr.write("%s exited (%s); last lines of %s:\n" % (name, proc.returncode, directory / ("%s.log" % name)))
            sys.stderr.write("".join((directory / ("%s.log" % name)).read_text(encoding="utf-8", errors="replace").splitlines(True)[-20:]))
            return 1
        if ready():
            break
        time.sleep(0.2)
    else:
        stop_one(directory, name)
        sys.stderr.write("%s not ready after 20 s; see %s\n" % (name, directory / ("%s.log" % name)))
        return 1
    if name == "s3":
        try:
            s3_client("http://" + args.listen).create_bucket(Bucket=args.bucket)
        except Exception as exc:  # pylint: disable=broad-except
            if "BucketAlreadyOwnedByYou" not in str(exc):
                stop_one(directory, name)
                sys.stderr.write("cannot create bucket %s: %s\n" % (args.bucket, exc))
                return 1
    print("%s: started (pid %d)" % (name, proc.pid))
    return 0


def stop_one(directory, name):
    pid = running_pid(directory, name)
    if pid is None:
        (directory / ("%s.pid" % name)).unlink(missing_ok=True)
        print("%s: not running" % name)
        return
    os.kill(pid, signal.SIGTERM)
    for _count in range(50):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    (directory / ("%s.pid" % name)).unlink(missing_ok=True)
    print("%s: stopped (pid %d)" % (name, pid))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("name", choices=SERVICES)
    p_start.add_argument("--dir", required=True)
    p_start.add_argument("--listen")
    p_start.add_argument("--bucket")
    p_start.add_argument("--zone", action="append", default=[])
    p_start.add_argument("--token-file")
    p_start.add_argument("--kubeconfig")
    for action in ("stop", "status"):
        p_other = sub.add_parser(action)
        p_other.add_argument("name", choices=SERVICES + ("all",))
        p_other.add_argument("--dir", required=True)
    p_list = sub.add_parser("list-bucket")
    p_list.add_argument("--url", required=True)
    p_list.add_argument("--bucket", required=True)
    p_list.add_argument("--prefix", default="")
    args = parser.parse_args(argv)

    if args.action == "start":
        needed = {"s3": ("listen", "bucket"), "cloudflare": ("listen", "token_file"), "velero": ("kubeconfig",)}[args.name]
        missing = [opt for opt in needed if not getattr(args, opt)] + (["zone"] if args.name == "cloudflare" and not args.zone else [])
        if missing:
            parser.error("start %s needs --%s" % (args.name, ", --".join(m.replace("_", "-") for m in missing)))
        return start(args)
    if args.action == "list-bucket":
        keys, token = [], None
        client = s3_client(args.url)
        while True:
            kwargs = {"Bucket": args.bucket, "Prefix": args.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = client.list_objects_v2(**kwargs)
            keys += [obj["Key"] for obj in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                break
        print(json.dumps(sorted(keys)))
        return 0
    directory = Path(args.dir).resolve()
    names = SERVICES if args.name == "all" else (args.name,)
    if args.action == "stop":
        for name in names:
            stop_one(directory, name)
        return 0
    status = 0
    for name in names:
        pid = running_pid(directory, name)
        print("%s: %s" % (name, "running (pid %d)" % pid if pid else "not running"))
        status = status or (0 if pid else 3)
    return status


if __name__ == "__main__":
    sys.exit(main())

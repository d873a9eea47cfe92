"""The PLAY RECAP of ansible-playbook's default callback, read by the tests."""
from __future__ import annotations


def play_recap(stdout: str) -> dict:
    """Parse the PLAY RECAP into {host: {ok, changed, failed, ...}}."""
    recap: dict = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line:
            host, counts = line.split(":", 1)
            recap[host.strip()] = {
                k: int(v) for k, v in (item.split("=") for item in counts.split())
            }
    return recap


def localhost_recap(proc) -> dict:
    """localhost's counts from a finished ansible-playbook process; fails the test when there is none."""
    counts = play_recap(proc.stdout).get("localhost")
    if counts is None:
        raise AssertionError(proc.stdout + proc.stderr)
    return counts

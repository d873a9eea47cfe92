"""Version of the stand-in; build-release.sh rewrites VERSION in the zipapp it builds."""
from __future__ import annotations

import hashlib

VERSION = "v1.31.4+k3s1"


def git_commit() -> str:
    """A stable fake commit id derived from the version."""
    return hashlib.sha256(VERSION.encode()).hexdigest()[:8]


def go_version() -> str:
    """The Go release the real K3s version was built with (approximately)."""
    minor = int(VERSION.lstrip("v").split(".")[1])
    return "go1.23.4" if minor >= 32 else "go1.22.9"


def server_version_info() -> dict:
    """The /version body."""
    core = VERSION.lstrip("v").split("+", maxsplit=1)[0].split(".")
    return {"major": core[0], "minor": core[1], "gitVersion": VERSION, "gitCommit": git_commit() * 5,
            "gitTreeState": "clean", "buildDate": "2024-12-10T00:00:00Z", "goVersion": go_version(),
            "compiler": "gc", "platform": "linux/amd64"}

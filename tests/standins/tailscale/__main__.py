"""Run a Tailscale stand-in (from tests/):

    python -m standins.tailscale control --listen ADDR:PORT --config CONFIG.json [--state STATE.json] [--pkgs DIR]
    python -m standins.tailscale tailscaled [--state=...] [--socket=...] [--tun=NAME] [--port=N] [--cleanup]
    python -m standins.tailscale tailscale [--socket=...] SUBCOMMAND ...

The same scripts run by path too (services.sh, host-node.sh, the .deb of build-repo.sh); README.md has the rest.
"""
from __future__ import annotations

import sys

from . import control, tailscale, tailscaled


def _cli(argv: list) -> int:
    sys.argv = ["tailscale", *argv]  # tailscale.main() reads sys.argv, as the installed /usr/bin/tailscale does
    return tailscale.main()


COMMANDS = {"control": control.main, "tailscaled": tailscaled.main, "tailscale": _cli}


def main(argv: list | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())

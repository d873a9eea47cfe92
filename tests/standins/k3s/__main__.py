"""`python -m standins.k3s` (from tests/) runs the `k3s` command; the zipapp has its own __main__ (build-release.sh)."""
import sys

from .cli import main

sys.exit(main())

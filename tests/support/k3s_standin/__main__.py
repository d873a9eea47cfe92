"""`python3 -m k3s_standin` runs the `k3s` command."""
import sys

from .cli import main

sys.exit(main())

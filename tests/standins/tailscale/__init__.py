"""Tailscale stand-ins (see README.md): the control plane with API v2 (control.py; its
APIServer serves the same API v2 in a test's own process, with fault knobs, for the inventory plugin's unit
tests), the node daemon and CLI (tailscaled.py, tailscale.py; packaged as a signed apt repository by
build-repo.sh), and a two-namespace tailnet
for tests that need running nodes (netns.py).

control.py, tailscaled.py and tailscale.py are standalone scripts (Python standard library only): the lab
runs them with the system python3 and the .deb installs them as /usr/sbin/tailscaled and /usr/bin/tailscale.
`python -m standins.tailscale` (from tests/) runs any of the three.
"""

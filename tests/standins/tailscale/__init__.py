"""Tailscale stand-ins (see README.md): the control plane with API v2 (control.py), the node daemon and CLI
(tailscaled.py, tailscale.py; packaged as a signed apt repository by build-repo.sh), an in-process API v2
server with fault knobs for the inventory plugin's unit tests (api_fake.py), and a two-namespace tailnet
for tests that need running nodes (netns.py).

control.py, tailscaled.py and tailscale.py are standalone scripts (Python standard library only): the lab
runs them with the system python3 and the .deb installs them as /usr/sbin/tailscaled and /usr/bin/tailscale.
`python -m standins.tailscale` (from tests/) runs any of the three.
"""

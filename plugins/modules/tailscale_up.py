#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: infra.k3s maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tailscale_up
short_description: Join a node to a tailnet with the wanted settings, deciding from the daemon's real state
version_added: 0.1.0
description:
  - Reads C(tailscale status --json) and C(tailscale debug prefs) and compares them with the wanted settings.
    No marker or hash file is kept; the daemon's state is the truth.
  - Not logged in, it runs C(tailscale up --reset) with the auth key and every wanted flag.
  - Logged in, with only settings that C(tailscale set) changes differing (hostname, SSH, routes, DNS,
    shields up, advertised routes, operator), it runs C(tailscale set); no auth key is needed.
  - Logged in, with the advertised tags or the login server differing, it re-authenticates with
    C(tailscale up --reset --force-reauth) and the auth key, and warns that SSH sessions over the tailnet may drop.
  - Logged in and stopped (after C(tailscale down)), it runs C(tailscale up --reset) without a key.
  - Logged in with an expired node key (C(Self.KeyExpiry) in the past, also when stopped), it logs in again with the
    auth key; C(tailscale up) without one would wait for an interactive login.
  - A daemon that holds a node key but reports C(NoState) (just started, before its first network map) is waited
    for, up to O(timeout) seconds, before anything is decided.
  - Re-authentication and any change of Tailscale SSH pass C(--accept-risk=lose-ssh). Over an SSH session to a
    Tailscale IP the CLI would otherwise ask for confirmation, and without a terminal it answers no.
  - Warns when the node's tags on the tailnet (C(Self.Tags)) differ from O(tags), or its MagicDNS name from
    O(hostname); neither is changed by this module (see RV(drift)).
  - With nothing differing it changes nothing and needs no auth key.
  - Settings are always given in full, with C(--reset), so removing an option converges instead of failing with
    Tailscale's I(requires mentioning all non-default flags) error.
  - The auth key is written to a file of mode 0600 in a private directory, passed as C(--auth-key=file:<path>)
    and removed afterwards; it never appears on a command line.
  - After a change it waits until the backend is C(Running) with an IPv4 address, or fails after O(timeout) seconds.
author:
  - infra.k3s maintainers (@infra-k3s)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing runs but the two read commands; on a host without Tailscale it reports a change.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  authkey:
    description:
      - Auth key (C(tskey-auth-...)), OAuth client secret (C(tskey-client-...)) or Headscale pre-auth key.
      - Needed only when the node must log in or re-authenticate.
    type: str
  ephemeral:
    description:
      - For an OAuth client secret, whether the node is ephemeral (removed when it goes offline).
      - Ignored for auth keys, whose attributes were chosen when the key was made.
    type: bool
    default: false
  preauthorized:
    description:
      - For an OAuth client secret, whether the node skips device approval.
    type: bool
    default: true
  hostname:
    description:
      - Name of the node on the tailnet (first label of its MagicDNS name). Empty means the OS host name.
    type: str
    default: ""
  tags:
    description:
      - Tags the node advertises, like V(tag:k3s-server). Changing them needs a re-authentication.
    type: list
    elements: str
    default: []
  ssh:
    description: Run Tailscale SSH on the node.
    type: bool
    default: false
  accept_routes:
    description: Accept subnet routes advertised by other nodes.
    type: bool
    default: false
  accept_dns:
    description: Let Tailscale manage the node's DNS (MagicDNS).
    type: bool
    default: true
  shields_up:
    description: Refuse incoming connections over the tailnet.
    type: bool
    default: false
  advertise_routes:
    description:
      - Subnet routes the node advertises, in CIDR form (normalised, so V(fd00::0/64) equals V(fd00::/64)).
      - Default routes are refused here; use O(advertise_exit_node).
    type: list
    elements: str
    default: []
  advertise_exit_node:
    description:
      - Offer the node as an exit node (C(--advertise-exit-node), which advertises V(0.0.0.0/0) and V(::/0)).
    type: bool
    default: false
    version_added: 0.1.0
  operator:
    description: Local user allowed to operate Tailscale without root.
    type: str
    default: ""
  login_server:
    description:
      - Control server URL, for Headscale or a mirror. Empty means Tailscale's (V(https://controlplane.tailscale.com));
        V(https://login.tailscale.com) is the same server.
    type: str
    default: ""
  extra_args:
    description:
      - Further flags for C(tailscale up), like V(--snat-subnet-routes=false). They are used when the node logs in or
        re-authenticates; they are not compared with the node's state. Flags with an option of their own are refused.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for the backend to be C(Running) with an address, and for a just-started daemon to leave
        C(NoState).
    type: int
    default: 120
  binary:
    description: Path or name of the C(tailscale) command.
    type: str
    default: tailscale
  socket:
    description: Path of tailscaled's socket, when not the default.
    type: path
"""

EXAMPLES = r"""
- name: Join the tailnet as a K3s server
  infra.k3s.tailscale_up:
    authkey: "{{ vault_tailscale_authkey }}"
    hostname: cp1
    tags: [tag:k3s-master]
    accept_dns: false
  no_log: true
  register: joined

- name: Use a Headscale server
  infra.k3s.tailscale_up:
    authkey: "{{ vault_headscale_preauth_key }}"
    login_server: https://headscale.example.com
  no_log: true
"""

RETURN = r"""
action:
  description: What was done (or would be, in check mode).
  returned: always
  type: str
  choices: [none, login, reauth, set, start, install]
  sample: set
differences:
  description: Prefs fields that differed from the wanted settings.
  returned: always
  type: list
  elements: str
  sample: [RunSSH]
drift:
  description: Differences between the node on the tailnet and the wanted tags or hostname, also given as warnings.
  returned: always
  type: list
  elements: str
  version_added: 0.1.0
  sample: ["the node's MagicDNS name is cp1-1, not cp1: ..."]
tailscale:
  description: The node as seen after the run (empty values in check mode before the first join).
  returned: always
  type: dict
  contains:
    ip:
      description: IPv4 address on the tailnet.
      type: str
      sample: 100.101.1.10
    ipv6:
      description: IPv6 address on the tailnet.
      type: str
      sample: fd7a:115c:a1e0::a01
    fqdn:
      description: MagicDNS name, without the trailing dot.
      type: str
      sample: cp1.tail1234.ts.net
    hostname:
      description: Host name known to the tailnet.
      type: str
      sample: cp1
    node_id:
      description: Stable node ID.
      type: str
      sample: nAbC123CNTRL
    tags:
      description: Tags the node has.
      type: list
      elements: str
      sample: [tag:k3s-master]
    backend_state:
      description: Backend state.
      type: str
      sample: Running
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.infra.k3s.plugins.module_utils.tailscale_runners import execute


def main():
    module = AnsibleModule(
        argument_spec=dict(
            authkey=dict(type="str", no_log=True),
            ephemeral=dict(type="bool", default=False),
            preauthorized=dict(type="bool", default=True),
            hostname=dict(type="str", default=""),
            tags=dict(type="list", elements="str", default=[]),
            ssh=dict(type="bool", default=False),
            accept_routes=dict(type="bool", default=False),
            accept_dns=dict(type="bool", default=True),
            shields_up=dict(type="bool", default=False),
            advertise_routes=dict(type="list", elements="str", default=[]),
            advertise_exit_node=dict(type="bool", default=False),
            operator=dict(type="str", default=""),
            login_server=dict(type="str", default=""),
            extra_args=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=120),
            binary=dict(type="str", default="tailscale"),
            socket=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    execute(module)


if __name__ == "__main__":
    main()

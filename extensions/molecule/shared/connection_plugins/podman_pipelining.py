# Test harness only (Molecule's connection to the lab containers); not part of the collection.
"""containers.podman's podman connection with pipelining.

Upstream (containers/ansible-podman-collections, plugins/connection/podman.py, class Connection)
sets has_pipelining = False because its exec_command runs `podman exec` without
`--interactive`, so a module piped on stdin never reaches the container. With
`--interactive` (podman exec -i, documented in podman-exec(1)) stdin is attached, and
Ansible can pipe each module into python3 in one `podman exec` instead of three (make the
temporary directory, run the copied module, remove the directory). Upstream's _connect also
runs `podman mount` for every task; here that happens only when a file is copied (put_file,
fetch_file), which a pipelined module does not need. Molecule selects it
in extensions/molecule/config.yml; users reach their nodes over SSH, where pipelining is
Ansible's own.
"""
from __future__ import annotations

DOCUMENTATION = """
    name: podman_pipelining
    short_description: containers.podman.podman with pipelining (podman exec --interactive)
    description:
        - The molecule lab's connection to its podman containers. Everything but pipelining is
          containers.podman.podman's.
    extends_documentation_fragment:
        - connection_pipelining
    options:
      remote_addr:
        description: The ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User to run commands as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""

from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    """Attach stdin when Ansible pipes data (a pipelined module) into `podman exec`; mount lazily."""

    transport = "podman_pipelining"
    has_pipelining = True
    _mount_tried = False

    def _connect(self):
        self._connected = True
        return self

    def _mount(self):
        if not self._mount_tried:
            self._mount_tried = True
            PodmanConnection._connect(self)  # sets self._mount_point (None when it cannot mount)

    def put_file(self, in_path, out_path):
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mount()
        super().fetch_file(in_path, out_path)

    def _podman(self, cmd, cmd_args=None, in_data=None, use_container_id=True):
        if in_data is not None and isinstance(cmd, (list, tuple)) and cmd and cmd[0] == "exec":
            cmd = ["exec", "--interactive", *cmd[1:]]
        return super()._podman(cmd, cmd_args, in_data, use_container_id)

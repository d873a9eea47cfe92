#!/usr/bin/env bash
# Build the lab's systemd host images with debootstrap, once per recipe.
#
#   tests/lab/images/build.sh bookworm trixie
#
# An image is tagged localhost/infra-k3s-lab:<release> and labelled with the sha256 of
# this script; it is rebuilt only when this script (its recipe) changes.
# Images stay minimal on purpose (systemd, python3, sudo, openssh-server, iproute2, dbus):
# the roles must install everything else they need, so a missing dependency shows in tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe=$(sha256sum "$here/build.sh" | cut -c1-16)
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../containers.conf}

if [ "$(id -u)" -ne 0 ]; then
  echo "building lab images needs root (debootstrap, rootful podman): run 'sudo make lab' or 'sudo make test'" >&2
  exit 1
fi

build() {
  local release=$1 image="localhost/infra-k3s-lab:$1" have
  have=$(podman image inspect --format '{{ index .Labels "infra.k3s.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$have" = "$recipe" ]; then
    echo "image $image is up to date (recipe $recipe)"
    return
  fi
  local root
  root=$(mktemp -d "/var/tmp/infra-k3s-$release.XXXXXX")
  trap 'rm -rf "$root"' RETURN
  echo "building $image with debootstrap from $mirror (recipe $recipe)"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,python3,sudo,iproute2,dbus,openssh-server \
    "$release" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
  rm -f "$root.log"

  # A VPS boots with its own SSH host keys: drop the ones debootstrap generated and
  # create fresh ones at first boot, before ssh.service (what cloud-init does).
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/systemd/system/lab-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot (lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  chroot "$root" systemctl enable lab-ssh-hostkeys.service ssh.service >/dev/null 2>&1
  # Units that cannot work in a container and would leave the system "degraded".
  for unit in systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
              systemd-firstboot.service getty@tty1.service console-getty.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  echo "deb $mirror $release main" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  : >"$root/etc/machine-id"

  tar -C "$root" -c . | podman import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL infra.k3s.recipe=$recipe" \
    - "$image" >/dev/null
  echo "built $image"
}

for release in "${@:-bookworm trixie}"; do
  for r in $release; do build "$r"; done
done

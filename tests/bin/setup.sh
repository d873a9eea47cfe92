#!/usr/bin/env bash
# Idempotent set-up from a fresh Debian machine; each step is skipped when already done.
#   setup.sh system      apt packages (podman, runc, debootstrap, ...)
#   setup.sh venv        .venv from requirements-dev.txt (re-created when it changes)
#   setup.sh collection  build the collection and install it into .collections/
#   setup.sh images      the lab's Debian 12/13 systemd images
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$root/.collections}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $1 needs root. Run: sudo make ${MAKE_TARGET:-test}" >&2
    exit 1
  fi
}

# gpg and dpkg-dev build the stand-in tailscale packages' signed apt repository (tests/lab/tailnet/).
APT_PACKAGES=(podman runc debootstrap uidmap iptables iproute2 openssh-client python3-venv git bc shellcheck gpg gpgv dpkg-dev)

system() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query --show --showformat='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: present"
    return
  fi
  need_root "installing ${missing[*]} with apt"
  echo "system packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "virtualenv: up to date"
    return
  fi
  echo "virtualenv: installing requirements-dev.txt into .venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" >"$stamp"
}

collection() {
  mkdir -p .cache/dist .collections
  rm -f .cache/dist/infra-k3s-*.tar.gz
  .venv/bin/ansible-galaxy collection build --force --output-path .cache/dist >/dev/null
  .venv/bin/ansible-galaxy collection install --force --no-deps -p .collections .cache/dist/infra-k3s-*.tar.gz >/dev/null
  echo "collection: built $(basename .cache/dist/infra-k3s-*.tar.gz) and installed into .collections/"
}

images() {
  need_root "building the lab images (debootstrap, podman)"
  tests/lab/images/build.sh bookworm trixie
}

for step in "$@"; do
  "$step"
done

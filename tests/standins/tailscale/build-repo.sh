#!/usr/bin/env bash
# Build the lab's stand-in `tailscale` packages (1.88.3 and 1.86.2) and a signed apt repository
# laid out like pkgs.tailscale.com/stable:
#   build-repo.sh OUTDIR [REPO_URL]
# OUTDIR/stable/debian/{pool/,dists/{bookworm,trixie}/...,<codename>.noarmor.gpg,<codename>.tailscale-keyring.list}
# REPO_URL (for the .list files) defaults to https://pkgs.tailscale.com/stable; control.py serves
# OUTDIR under /pkgs/, so the lab's URL is http://ADDR:PORT/pkgs/stable.
# The signing key is made in a temporary GNUPGHOME and discarded; nothing is rebuilt while the
# stand-in sources and this script are unchanged (OUTDIR/.stamp).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [REPO_URL]" >&2; exit 2; }
out=$1
repo_url=${2:-https://pkgs.tailscale.com/stable}
versions=(1.88.3 1.86.2)
suites=(bookworm trixie)
arch=amd64
export SOURCE_DATE_EPOCH=1735689600 # 2025-01-01, for reproducible .debs

stamp=$(cat "$here/tailscaled.py" "$here/tailscale.py" "$0" | sha256sum | cut -d' ' -f1)
stamp="$stamp $repo_url"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
  echo "build-repo: $out is up to date"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
rm -rf "$out/stable" "$out/.stamp"
debian=$out/stable/debian
mkdir -p "$debian/pool"
commit=$(printf '%s' "$stamp" | cut -c1-12)

build_deb() {
  local version=$1 root=$work/root-$1
  mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/default" \
    "$root/usr/share/doc/tailscale"
  sed -e '1s|^#!.*|#!/usr/bin/python3|' -e "s/^VERSION = .*/VERSION = \"$version\"  # stamped by build-repo.sh/" \
    -e "s/^COMMIT = .*/COMMIT = \"$commit\"  # stamped by build-repo.sh/" \
    "$here/tailscaled.py" >"$root/usr/sbin/tailscaled"
  sed -e '1s|^#!.*|#!/usr/bin/python3|' -e "s/^VERSION = .*/VERSION = \"$version\"  # stamped by build-repo.sh/" \
    -e "s/^COMMIT = .*/COMMIT = \"$commit\"  # stamped by build-repo.sh/" \
    "$here/tailscale.py" >"$root/usr/bin/tailscale"
  # The sources say #!/usr/bin/env python (ansible-test's rule); Debian has only python3.
  chmod 0755 "$root/usr/sbin/tailscaled" "$root/usr/bin/tailscale"

  cat >"$root/lib/systemd/system/tailscaled.service" <<'EOF'
[Unit]
Description=Tailscale node agent
Documentation=https://tailscale.com/kb/
Wants=network-pre.target
After=network-pre.target NetworkManager.service systemd-resolved.service

[Service]
EnvironmentFile=-/etc/default/tailscaled
ExecStart=/usr/sbin/tailscaled --state=/var/lib/tailscale/tailscaled.state --socket=/run/tailscale/tailscaled.sock --port=${PORT} $FLAGS
ExecStopPost=/usr/sbin/tailscaled --cleanup
Type=simple
Restart=on-failure
RuntimeDirectory=tailscale
RuntimeDirectoryMode=0755
StateDirectory=tailscale
StateDirectoryMode=0700
CacheDirectory=tailscale
CacheDirectoryMode=0750

[Install]
WantedBy=multi-user.target
EOF
  cat >"$root/etc/default/tailscaled" <<'EOF'
# Set the port to listen on for incoming VPN packets.
# Remote nodes will automatically be informed about the new port number,
# but you might want to configure this in order to set external firewall
# settings.
PORT="41641"

# Extra flags you might want to pass to tailscaled.
FLAGS=""
EOF
  printf '/etc/default/tailscaled\n' >"$root/DEBIAN/conffiles"
  printf 'Lab stand-in for Tailscale (test code of infra.k3s; not Tailscale).\n' >"$root/usr/share/doc/tailscale/README"

  cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper unmask tailscaled.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled tailscaled.service; then
      deb-systemd-helper enable tailscaled.service >/dev/null || true
    else
      deb-systemd-helper update-state tailscaled.service >/dev/null || true
    fi
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    systemctl enable tailscaled.service >/dev/null 2>&1 || true
    systemctl restart tailscaled.service >/dev/null || true
  else
    systemctl enable tailscaled.service >/dev/null 2>&1 || true
  fi
fi
exit 0
EOF
  cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl stop tailscaled.service >/dev/null 2>&1 || true
fi
exit 0
EOF
  cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
  systemctl disable tailscaled.service >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
if [ "$1" = "purge" ]; then
  rm -rf /var/lib/tailscale
fi
exit 0
EOF
  chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<EOF
Package: tailscale
Version: $version
Section: net
Priority: extra
Architecture: $arch
Maintainer: infra.k3s lab <lab@invalid>
Installed-Size: $size
Depends: python3, iproute2
Replaces: tailscale-relay
Conflicts: tailscale-relay
Description: The easiest, most secure, cross platform way to use WireGuard + oauth2 + 2FA/SSO
 Lab stand-in for the Tailscale node agent (tailscaled) and CLI, used by the tests of the
 infra.k3s collection. It is not Tailscale.
EOF
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$debian/pool/tailscale_${version}_${arch}.deb" >/dev/null
}

for version in "${versions[@]}"; do
  build_deb "$version"
done

export GNUPGHOME=$work/gnupg
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-generate-key 'infra.k3s lab package signing (stand-in) <lab@invalid>' ed25519 sign never 2>/dev/null
fingerprint=$(gpg --batch --quiet --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/ {print $10; exit}')

(cd "$debian" && dpkg-scanpackages --multiversion pool /dev/null 2>/dev/null) >"$work/Packages"

for suite in "${suites[@]}"; do
  dist=$debian/dists/$suite
  mkdir -p "$dist/main/binary-$arch"
  cp "$work/Packages" "$dist/main/binary-$arch/Packages"
  gzip -9n <"$dist/main/binary-$arch/Packages" >"$dist/main/binary-$arch/Packages.gz"
  {
    echo "Origin: Tailscale"
    echo "Label: Tailscale"
    echo "Suite: $suite"
    echo "Codename: $suite"
    echo "Architectures: $arch"
    echo "Components: main"
    echo "Description: Tailscale stable packages for debian $suite (lab stand-in)"
    echo "Date: $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')"
    for algo in MD5Sum:md5sum SHA1:sha1sum SHA256:sha256sum SHA512:sha512sum; do
      echo "${algo%%:*}:"
      for file in main/binary-$arch/Packages main/binary-$arch/Packages.gz; do
        printf ' %s %16d %s\n' "$("${algo#*:}" "$dist/$file" | cut -d' ' -f1)" "$(stat -c %s "$dist/$file")" "$file"
      done
    done
  } >"$dist/Release"
  gpg --batch --yes --quiet --local-user "$fingerprint" --clearsign --digest-algo SHA512 -o "$dist/InRelease" "$dist/Release"
  gpg --batch --yes --quiet --local-user "$fingerprint" --armor --detach-sign --digest-algo SHA512 -o "$dist/Release.gpg" "$dist/Release"
  gpg --batch --export "$fingerprint" >"$debian/$suite.noarmor.gpg"
  gpg --batch --armor --export "$fingerprint" >"$debian/$suite.asc"
  printf '# Tailscale packages for debian %s\ndeb [signed-by=/usr/share/keyrings/tailscale-archive-keyring.gpg] %s/debian %s main\n' \
    "$suite" "$repo_url" "$suite" >"$debian/$suite.tailscale-keyring.list"
done

printf '%s\n' "$stamp" >"$out/.stamp"
echo "build-repo: built $out/stable/debian (${versions[*]}; ${suites[*]})"

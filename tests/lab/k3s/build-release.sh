#!/usr/bin/env bash
# Build the lab's stand-in `k3s` (tests/standins/k3s as a python3 zipapp) laid out like
# K3s GitHub releases, so a plain HTTP server can mirror https://github.com/k3s-io/k3s/releases/download:
#
#   tests/lab/k3s/build-release.sh OUTDIR [VERSIONS...]     (default: v1.35.8+k3s1 v1.36.4+k3s1)
#
#   OUTDIR/v1.36.4+k3s1/k3s                  the executable (#!/usr/bin/python3 zipapp, version stamped in)
#   OUTDIR/v1.36.4+k3s1/sha256sum-amd64.txt  "<sha256>  k3s" (sha256sum format, like the real release)
#
# The release URL .../releases/download/v1.36.4%2Bk3s1/k3s is served from the directory
# "v1.36.4+k3s1": HTTP servers (python -m http.server, nginx) percent-decode the path and a literal
# "+" in a path is not a space, so both the encoded and unencoded URL map to that directory.
# A version is rebuilt only when the sources (or this script) change: OUTDIR/<version>/.stamp.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../standins/k3s" && pwd)
# The real helm.cattle.io CRDs, which K3s registers at start (../shared/upstream/SOURCE.md).
crds=$(cd "$here/../../../.." && pwd)/shared/upstream/crds
crd_files=("$crds/helm.cattle.io_helmcharts.yaml" "$crds/helm.cattle.io_helmchartconfigs.yaml")

if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR [VERSIONS...]" >&2
  exit 2
fi
outdir=$1
shift
if [ $# -eq 0 ]; then
  set -- v1.35.8+k3s1 v1.36.4+k3s1
fi
mkdir -p "$outdir"

sources_hash() {
  (cd "$src" && find . -maxdepth 1 -name '*.py' -type f | LC_ALL=C sort | xargs sha256sum; sha256sum "$here/build-release.sh" "${crd_files[@]}" | cut -d' ' -f1) \
    | sha256sum | cut -d' ' -f1
}

build() {
  local ver=$1 dir="$outdir/$1" stamp want stage
  case $ver in
    v[0-9]*.[0-9]*.[0-9]*+k3s[0-9]*) ;;
    *) echo "bad K3s version '$ver' (expected like v1.36.4+k3s1)" >&2; exit 2 ;;
  esac
  want="$(sources_hash) $ver"
  stamp="$dir/.stamp"
  if [ -f "$stamp" ] && [ -x "$dir/k3s" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "k3s $ver is up to date in $dir"
    return
  fi
  stage=$(mktemp -d)
  mkdir -p "$stage/k3s_standin" "$dir"
  cp "$src"/*.py "$stage/k3s_standin/"
  mkdir -p "$stage/k3s_standin/crds"
  cp "${crd_files[@]}" "$stage/k3s_standin/crds/"
  rm -f "$stage/k3s_standin/__main__.py"
  sed -i "s/^VERSION = .*/VERSION = \"$ver\"/" "$stage/k3s_standin/version.py"
  grep -q "^VERSION = \"$ver\"$" "$stage/k3s_standin/version.py"
  # Our own __main__ (zipapp -m ignores main()'s return value, losing the exit status).
  printf '%s\n' "import sys" "from k3s_standin.cli import main" "sys.exit(main())" >"$stage/__main__.py"
  python3 -m zipapp "$stage" -p "/usr/bin/python3" -o "$dir/k3s.tmp"
  rm -rf "$stage"
  chmod 0755 "$dir/k3s.tmp"
  mv -f "$dir/k3s.tmp" "$dir/k3s"
  (cd "$dir" && sha256sum k3s >sha256sum-amd64.txt)
  printf '%s\n' "$want" >"$stamp"
  echo "built k3s $ver in $dir"
}

for ver in "$@"; do
  build "$ver"
done

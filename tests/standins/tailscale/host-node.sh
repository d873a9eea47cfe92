#!/usr/bin/env bash
# The test host as a tailnet node (the Ansible controller's view): the stand-in tailscaled
# run from the source tree, with its own interface, socket and state, beside the lab's hosts.
#   host-node.sh start --dir DIR --tun NAME --login-server URL --authkey-file FILE [--hostname H] [--tags tag:a,tag:b]
#   host-node.sh stop --dir DIR
#   host-node.sh ip --dir DIR
# The auth key stays in FILE: it is passed as --auth-key=file:FILE, never as an argument.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
daemon=$here/tailscaled.py
cli=$here/tailscale.py

usage() {
  sed -n '4,6p' "$0" >&2
  exit 2
}

[ $# -ge 1 ] || usage
action=$1
shift
dir='' tun='' login='' keyfile='' hostname=$(hostname -s) tags=''
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --tun) tun=$2; shift 2 ;;
    --login-server) login=$2; shift 2 ;;
    --authkey-file) keyfile=$2; shift 2 ;;
    --hostname) hostname=$2; shift 2 ;;
    --tags) tags=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$dir" ] || usage
socket=$dir/tailscaled.sock

running() {
  [ -f "$dir/tailscaled.pid" ] && kill -0 "$(cat "$dir/tailscaled.pid")" 2>/dev/null
}

case $action in
  start)
    if [ -z "$tun" ] || [ -z "$login" ] || [ -z "$keyfile" ]; then usage; fi
    mkdir -p "$dir"
    chmod 0700 "$dir"
    if ! running; then
      echo "$tun" >"$dir/tun"
      setsid python3 "$daemon" --state="$dir/tailscaled.state" --socket="$socket" --port=41641 --tun="$tun" \
        >>"$dir/tailscaled.log" 2>&1 </dev/null &
      echo $! >"$dir/tailscaled.pid"
      for _ in $(seq 1 50); do
        [ -S "$socket" ] && break
        sleep 0.2
      done
      [ -S "$socket" ] || { echo "host-node.sh: tailscaled did not start; see $dir/tailscaled.log" >&2; exit 1; }
    fi
    python3 "$cli" --socket="$socket" up --reset --auth-key="file:$keyfile" --login-server="$login" \
      --hostname="$hostname" --advertise-tags="$tags" --accept-dns=false --timeout=30s
    python3 "$cli" --socket="$socket" ip -4
    ;;
  stop)
    if running; then
      kill -TERM "$(cat "$dir/tailscaled.pid")"
      for _ in $(seq 1 50); do
        running || break
        sleep 0.2
      done
    fi
    rm -f "$dir/tailscaled.pid"
    if [ -f "$dir/tun" ]; then
      python3 "$daemon" --cleanup --tun="$(cat "$dir/tun")" --socket="$socket" --state="$dir/tailscaled.state" || true
    fi
    ;;
  ip)
    python3 "$cli" --socket="$socket" ip -4
    ;;
  *) usage ;;
esac

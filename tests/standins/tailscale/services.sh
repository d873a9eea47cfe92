#!/usr/bin/env bash
# The lab's stand-in tailnet control service (control.py) in the background.
#   services.sh start --dir STATEDIR --listen ADDR:PORT --config CONFIG.json [--pkgs DIR]
#   services.sh stop --dir STATEDIR
#   services.sh status --dir STATEDIR
# STATEDIR holds control.pid, control.log (stderr: one line per request, no secrets),
# control.out (stdout: the ready line), control.args and state.json (the devices).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
control=$here/control.py

usage() {
  echo "usage: $0 start --dir STATEDIR --listen ADDR:PORT --config CONFIG.json [--pkgs DIR]" >&2
  echo "       $0 stop|status --dir STATEDIR" >&2
  exit 2
}

die() {
  echo "services.sh: $*" >&2
  exit 1
}

[ $# -ge 1 ] || usage
action=$1
shift
dir='' listen='' config='' pkgs=''
while [ $# -gt 0 ]; do
  case $1 in
    --dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    --listen) [ $# -ge 2 ] || usage; listen=$2; shift 2 ;;
    --config) [ $# -ge 2 ] || usage; config=$2; shift 2 ;;
    --pkgs) [ $# -ge 2 ] || usage; pkgs=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$dir" ] || usage
pidfile=$dir/control.pid
logfile=$dir/control.log
outfile=$dir/control.out
argsfile=$dir/control.args

# The pid of a running control.py started from this directory, or nothing.
running_pid() {
  local pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  # A recycled pid belongs to another program: only ours has control.py in its command line.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$control" || return 0
  echo "$pid"
}

# An HTTP GET of the health endpoint, with python3 (curl may be missing).
healthy() {
  local url=$1
  python3 - "$url" <<'PY' >/dev/null 2>&1
import sys
import urllib.request
with urllib.request.urlopen(sys.argv[1] + "/lab/health", timeout=2) as answer:
    sys.exit(0 if answer.status == 200 else 1)
PY
}

start() {
  if [ -z "$listen" ] || [ -z "$config" ]; then
    usage
  fi
  [ -f "$config" ] || die "no such config file: $config"
  [ -z "$pkgs" ] || [ -d "$pkgs" ] || die "no such directory: $pkgs"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  pidfile=$dir/control.pid logfile=$dir/control.log outfile=$dir/control.out argsfile=$dir/control.args
  config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
  [ -z "$pkgs" ] || pkgs=$(cd "$pkgs" && pwd)
  local args=(--listen "$listen" --config "$config" --state "$dir/state.json")
  [ -z "$pkgs" ] || args+=(--pkgs "$pkgs")
  local wanted pid
  wanted=$(printf '%s\n' "${args[@]}")
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    if [ "$(cat "$argsfile" 2>/dev/null || true)" = "$wanted" ]; then
      echo "control: already running (pid $pid) at http://$listen"
      return 0
    fi
    die "already running (pid $pid) with other arguments; run: $0 stop --dir $dir"
  fi
  rm -f "$pidfile"  # stale
  printf '%s\n' "$wanted" >"$argsfile"
  : >"$outfile"
  setsid nohup python3 "$control" "${args[@]}" >"$outfile" 2>>"$logfile" </dev/null &
  pid=$!
  echo "$pid" >"$pidfile"
  local url='' deadline=$((SECONDS + 10))
  while [ "$SECONDS" -le "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "services.sh: control.py exited; last lines of $logfile:" >&2
      tail -n 20 "$logfile" >&2 || true
      exit 1
    fi
    url=$(sed -n 's/^ready \(http:\/\/[^ ]*\)$/\1/p' "$outfile" | head -n 1)
    if [ -n "$url" ] || healthy "http://$listen"; then
      echo "control: running (pid $pid) at ${url:-http://$listen}"
      return 0
    fi
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "services.sh: control.py not ready after 10 s; last lines of $logfile:" >&2
  tail -n 20 "$logfile" >&2 || true
  exit 1
}

stop() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    rm -f "$pidfile"
    echo "control: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local count
  for count in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$count" -lt 50 ] || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  done
  rm -f "$pidfile"
  echo "control: stopped (pid $pid)"
}

status() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    echo "control: running (pid $pid) at $(sed -n 's/^ready //p' "$outfile" 2>/dev/null | head -n 1)"
    return 0
  fi
  echo "control: not running"
  return 3
}

case $action in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# Run Molecule scenarios side by side in lanes: each lane takes the next scenario from one
# queue (longest first, so the lanes end close together) until the queue is empty.
#   tests/bin/molecule.sh [SCENARIO...]      default: every scenario under extensions/molecule/
#   MOLECULE_LANES=N                          lanes (default 2: this project's machines have 2 cores)
# A scenario's output goes to .cache/molecule/<scenario>.log; it is printed whole when the
# scenario fails. After a failure no lane starts another scenario. Scenarios share nothing that
# would make them collide: each has its own podman network, stand-in services on that network's
# gateway, test-host interface and VXLAN id, state under its ephemeral directory and download cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
lanes=${MOLECULE_LANES:-2}
logs=$root/.cache/molecule
mkdir -p "$logs"

# Longest first (minutes measured on a 2-core machine, see README); unknown scenarios go last.
order=(k3s dr k3s_ha tailscale base)
all=()
for s in extensions/molecule/*/molecule.yml; do
  s=${s%/molecule.yml}
  all+=("${s##*/}")
done
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${all[@]}")
for s in "${wanted[@]}"; do
  [ -f "extensions/molecule/$s/molecule.yml" ] || { echo "error: no Molecule scenario '$s'" >&2; exit 2; }
done
queue=()
for s in "${order[@]}" "${wanted[@]}"; do
  # shellcheck disable=SC2076
  if [[ " ${wanted[*]} " == *" $s "* && ! " ${queue[*]} " =~ " $s " ]]; then queue+=("$s"); fi
done

# Seconds on the monotonic clock (see tests/bin/test.sh).
now() { local up; read -r up _ </proc/uptime; echo "${up%.*}"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "${queue[@]}" >"$work/queue"
: >"$work/results"

# Take the next scenario from the queue (under a lock); nothing once a scenario has failed.
next() {
  (
    flock 9
    [ -e "$work/failed" ] && exit 0
    head -n 1 "$work/queue"
    sed -i 1d "$work/queue"
  ) 9>"$work/lock"
}

lane() {
  local n=$1 s start rc secs
  while s=$(next) && [ -n "$s" ]; do
    echo "== molecule scenario $s (lane $n): started $(date +%T)"
    start=$(now)
    rc=0
    # SSH's control sockets (the scenarios' nested runs over the tailnet use SSH) under a short path of
    # this run's own: a unix socket's path has at most 107 bytes, and Molecule's control_path
    # (%(directory)s/%%h-%%p-%%r, plus the random suffix ssh adds) under a long checkout's
    # .ansible/ would not fit; one directory a scenario, so that no two share a socket.
    mkdir -p "$work/cp-$s"
    ANSIBLE_SSH_CONTROL_PATH_DIR="$work/cp-$s" molecule test -s "$s" >"$logs/$s.log" 2>&1 || rc=$?
    secs=$(($(now) - start))
    (
      flock 9
      if [ "$rc" -eq 0 ]; then
        echo "== molecule scenario $s: passed in ${secs}s"
      else
        touch "$work/failed"
        echo "== molecule scenario $s: FAILED (exit $rc) after ${secs}s; its output ($logs/$s.log):"
        sed 's/\x1b\[[0-9;]*m//g' "$logs/$s.log"
        echo "== end of molecule scenario $s's output"
      fi
      printf '%s %s %s\n' "$s" "$rc" "$secs" >>"$work/results"
    ) 9>"$work/print-lock"
  done
}

echo "== molecule: ${queue[*]} in $lanes lanes (logs in .cache/molecule/)"
pids=()
for n in $(seq 1 "$lanes"); do
  lane "$n" &
  pids+=($!)
  sleep 2  # stagger the first creates
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

echo "== molecule scenario timings"
failed=0
while read -r s rc secs; do
  printf '  %-12s %5ss  %s\n' "$s" "$secs" "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)"
  [ "$rc" -eq 0 ] || failed=1
done <"$work/results"
if [ -s "$work/queue" ]; then
  echo "  not run after the failure: $(tr '\n' ' ' <"$work/queue")"
  failed=1
fi
exit "$failed"

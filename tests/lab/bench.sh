#!/usr/bin/env bash
# make bench: cold converge of infra.k3s.site on a fresh lab, then an idempotent re-run.
# Prints wall time and task counts (from the play recap) for each. Not part of `make test`:
# these machines are shared and noisy, so timings are figures to read, not assertions.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
logs=$root/.lab/bench
mkdir -p "$logs"

run() {
  local label=$1 start end
  start=$(date +%s.%N)
  tests/lab/lab.sh up >"$logs/$label.log" 2>&1
  end=$(date +%s.%N)
  awk -v label="$label" -v secs="$(echo "$end - $start" | bc)" '
    /^PLAY RECAP/ {recap=1; delete sum; hosts=0; next}   # the last recap: site.yml
    recap && NF && $2 == ":" {
      for (i = 3; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] }
      hosts++
    }
    END {
      printf "%-12s %8.1fs  hosts=%d  tasks ok=%d changed=%d skipped=%d failed=%d\n",
        label, secs, hosts, sum["ok"], sum["changed"], sum["skipped"], sum["failed"]
    }' "$logs/$label.log"
}

echo "bench: site.yml on the three-host lab (logs in .lab/bench/)"
tests/lab/lab.sh down >/dev/null
run cold
run idempotent

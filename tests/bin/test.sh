#!/usr/bin/env bash
# `make test`: set up what is missing, then run every stage in order and print how long
# each took. Stops at the first stage that fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

declare -a names=() secs=()
stage() {
  local name=$1; shift
  echo
  echo "=== $name"
  local start=$SECONDS
  "$@"
  names+=("$name"); secs+=($((SECONDS - start)))
}
report() {
  echo
  echo "=== stage timings"
  local total=0
  for i in "${!names[@]}"; do
    printf '  %-22s %5ss\n' "${names[$i]}" "${secs[$i]}"
    total=$((total + secs[i]))
  done
  printf '  %-22s %5ss\n' total "$total"
}
trap report EXIT

stage "setup"          tests/bin/setup.sh system venv collection images
stage "ansible-lint"   make --no-print-directory lint
stage "sanity"         make --no-print-directory sanity
stage "pytest"         make --no-print-directory pytest
stage "molecule"       make --no-print-directory molecule

#!/usr/bin/env bash
# `make test`: set up what is missing, then run every stage in order and print how long
# each took. Stops at the first stage that fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

declare -a names=() secs=()
# Seconds on the monotonic clock (/proc/uptime): these machines' wall clock has been seen to step
# back by an hour during a run, which made bash's $SECONDS report negative durations.
now() { local up; read -r up _ </proc/uptime; echo "${up%.*}"; }
# Once, during development, /dev/null on this machine was found replaced by a symlink
# to a pipe while tests and other work ran side by side (cause not found), which breaks
# podman. Check it before the run and after every stage, so a stage that does it is named.
devnull_ok() { [ -c /dev/null ]; }
if ! devnull_ok; then
  echo "error: /dev/null is not a character device here; restore it: rm -f /dev/null && mknod -m 666 /dev/null c 1 3" >&2
  exit 1
fi
stage() {
  local name=$1; shift
  echo
  echo "=== $name"
  local start
  start=$(now)
  "$@"
  names+=("$name"); secs+=($(($(now) - start)))
  echo "=== $name: done in ${secs[-1]}s"
  if ! devnull_ok; then
    echo "error: /dev/null was replaced during stage '$name'" >&2
    exit 1
  fi
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

stage "setup"          tests/bin/setup.sh system venv upstream collection images
stage "ansible-lint"   make --no-print-directory lint
stage "sanity"         make --no-print-directory sanity
stage "pytest"         make --no-print-directory pytest
stage "molecule"       make --no-print-directory molecule

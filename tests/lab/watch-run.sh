#!/usr/bin/env bash
# Run a command while argv_watch.py scans every process's arguments for secrets.
#   watch-run.sh [--env-file FILE] SECRETS_FILE REPORT_JSON LOG_FILE -- COMMAND [ARGS...]
# The command's stdout and stderr go to LOG_FILE; the exit status is the command's.
# --env-file: variables (KEY=value lines) exported to the command, so that secrets it needs in
# its environment never pass through a command line (Ansible's `environment:` keyword puts
# them on the `sh -c` line of the task, where every user can read them).
set -euo pipefail
env_file=''
if [ "${1:-}" = "--env-file" ]; then
  env_file=$2
  shift 2
fi
secrets=$1 report=$2 log=$3
shift 3
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/argv_watch.py" --secrets "$secrets" --out "$report" &
watcher=$!
sleep 0.3
rc=0
if [ -n "$env_file" ]; then
  set -a
  # shellcheck source=/dev/null
  . "$env_file"
  set +a
fi
"$@" >"$log" 2>&1 || rc=$?
kill -TERM "$watcher"
wait "$watcher" || true
exit "$rc"

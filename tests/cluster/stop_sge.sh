#!/usr/bin/env bash
# Stops the Grid Engine daemons that tests/cluster/start_sge.sh started.
#
#   tests/cluster/stop_sge.sh
#
# Ends sge_execd and sge_qmaster by the process ids in their pid files (never by name).  The
# cluster's configuration stays in /var/lib/gridengine and /var/spool/gridengine, where the
# Debian packages keep it, so a later start_sge.sh comes up with the same queue.
set -euo pipefail

alive() {  # alive <pid>: the process exists and is not a zombie awaiting its reaper
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

stop() {  # stop <name> <pid-file>: SIGTERM, then SIGKILL after 10 s
  local name=$1 pid_file=$2 pid
  [ -s "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if alive "$pid"; then
    kill "$pid"
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "$0: $name ($pid) did not stop on SIGTERM; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file"
}

for pid_file in /var/spool/gridengine/execd/*/execd.pid; do
  stop sge_execd "$pid_file"
done
stop sge_qmaster /var/spool/gridengine/qmaster/qmaster.pid
echo "$0: Grid Engine stopped"

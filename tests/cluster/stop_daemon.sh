# shellcheck shell=bash
# Sourced by tests/cluster/stop_slurm.sh and stop_sge.sh: stop_daemon <name> <pid-file> ends
# the process of a pid file (never a process found by name): SIGTERM, then SIGKILL after 10 s.

alive() {  # alive <pid>: the process exists and is not a zombie awaiting its reaper
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

stop_daemon() {
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

#!/usr/bin/env bash
# Stops the one-node Slurm cluster that tests/cluster/start_slurm.sh started.
#
#   tests/cluster/stop_slurm.sh [state-dir] [--purge]   (default: /tmp/recipe-slurm)
#
# Ends slurmd, slurmctld and munged by the process ids in the state dir's pid files (never by
# name, so another Slurm on the machine is left alone).  --purge also deletes the state dir.
set -euo pipefail

state=/tmp/recipe-slurm
purge=false
for arg in "$@"; do
  case $arg in
    --purge) purge=true ;;
    -*) echo "$0: unknown option $arg; usage: $0 [state-dir] [--purge]" >&2; exit 1 ;;
    *) state=$arg ;;
  esac
done

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

stop slurmd "$state/slurmd.pid"
stop slurmctld "$state/slurmctld.pid"
stop munged "$state/munge/munged.pid"
if $purge; then
  rm -rf "$state"
fi
echo "$0: Slurm in $state stopped"

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

# shellcheck source=tests/cluster/stop_daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/stop_daemon.sh"

stop_daemon slurmd "$state/slurmd.pid"
stop_daemon slurmctld "$state/slurmctld.pid"
stop_daemon munged "$state/munge/munged.pid"
if $purge; then
  rm -rf "$state"
fi
echo "$0: Slurm in $state stopped"

#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the launcher tests (utils/launch_slurm.py).
#
#   tests/cluster/start_slurm.sh [state-dir]        (default: /tmp/recipe-slurm; needs root)
#   export SLURM_CONF=/tmp/recipe-slurm/slurm.conf  then sbatch/squeue/sinfo talk to it
#
# Installs Debian's slurm-wlm and munge when missing, writes a slurm.conf for this host on
# 127.0.0.1 and a munge key into the state dir, and starts munged, slurmctld and slurmd
# directly (no systemd), then waits until the node is idle.  Everything it writes lives in the
# state dir: /etc/slurm and the repository are left alone.  Running it again while the cluster
# is up does nothing.  tests/cluster/stop_slurm.sh stops it.
set -euo pipefail

state=${1:-/tmp/recipe-slurm}
node=recipe-node     # slurmd is started with -N, so the name need not be this host's
partition=debug
export SLURM_CONF=$state/slurm.conf
export DEBIAN_FRONTEND=noninteractive

die() { echo "$0: $*" >&2; exit 1; }
# shellcheck source=tests/cluster/packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

node_state() { sinfo -h -n "$node" -o %t 2>/dev/null || true; }

alive() {  # alive <pid>: the process exists and is not a zombie awaiting its reaper
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

running() {  # running <pid-file>: the daemon named in the pid file is alive
  [ -s "$1" ] && alive "$(cat "$1")"
}

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] \
    || die "slurm-wlm and munge are not installed, and installing them needs root."
  echo "$0: installing slurm-wlm and munge (once)"
  apt_locked apt-get update -q >/dev/null
  if ! apt_locked apt-get install -y -q --no-install-recommends slurm-wlm munge \
      >"$state/apt.log" 2>&1; then
    tail -n 20 "$state/apt.log" >&2
    die "apt-get install slurm-wlm munge failed (log: $state/apt.log)."
  fi
}

write_munge_key() {
  mkdir -p "$state/munge"
  chmod 0700 "$state/munge"   # munged refuses keys and sockets in dirs others can write
  if [ ! -s "$state/munge/munge.key" ]; then
    head -c 1024 /dev/urandom > "$state/munge/munge.key"
    chmod 0400 "$state/munge/munge.key"
  fi
}

write_slurm_conf() {
  local cpus mem_mb
  cpus=$(machine_cores)
  # Slurm drains a node that has less memory than configured: leave the OS a tenth.
  mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
  mkdir -p "$state/ctld" "$state/spool" "$state/log"
  cat > "$SLURM_CONF" <<EOF
# Written by tests/cluster/start_slurm.sh: a one-node cluster on 127.0.0.1 for tests.
ClusterName=recipe
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# Without systemd and cgroups: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# Jobs share the node by CPU and memory; without a default memory per CPU every array task
# would be given all of the node's memory and they would run one at a time.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=512
# Trust the node line below even where the VM's topology looks different to slurmd.
SlurmdParameters=config_overrides
# Start jobs as soon as they are submitted or resources free up (tests wait on it).
SchedulerType=sched/builtin
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
MinJobAge=300
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=$cpus RealMemory=$mem_mb
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemons() {
  if ! running "$state/munge/munged.pid"; then
    munged --force --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
      --pid-file="$state/munge/munged.pid" --log-file="$state/log/munged.log" \
      --seed-file="$state/munge/munged.seed" \
      || die "munged did not start; see $state/log/munged.log."
  fi
  if ! running "$state/slurmctld.pid"; then
    slurmctld -f "$SLURM_CONF" || die "slurmctld did not start; see $state/log/slurmctld.log."
  fi
  if ! running "$state/slurmd.pid"; then
    slurmd -f "$SLURM_CONF" -N "$node" || die "slurmd did not start; see $state/log/slurmd.log."
  fi
}

wait_until_idle() {
  local deadline=$((SECONDS + 60)) state_now
  while :; do
    state_now=$(node_state)
    case $state_now in
      idle|mix|alloc) return 0 ;;
      drain*|down*)   # e.g. a node left down by an earlier run: bring it back
        scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    if [ $SECONDS -ge $deadline ]; then
      echo "$0: the Slurm node is '${state_now:-unknown}', not idle, after 60 s." >&2
      echo "--- $state/log/slurmctld.log:" >&2; tail -n 20 "$state/log/slurmctld.log" >&2 || true
      echo "--- $state/log/slurmd.log:" >&2; tail -n 20 "$state/log/slurmd.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

mkdir -p "$state"
install_packages
if running "$state/slurmctld.pid" && running "$state/slurmd.pid" \
    && [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; then
  echo "$0: Slurm is already running (SLURM_CONF=$SLURM_CONF)"
  exit 0
fi
write_munge_key
# A running cluster keeps the config it started with; only write one for a fresh start.
running "$state/slurmctld.pid" || write_slurm_conf
start_daemons
wait_until_idle
echo "$0: Slurm is up: node $node idle, partition $partition (SLURM_CONF=$SLURM_CONF)"

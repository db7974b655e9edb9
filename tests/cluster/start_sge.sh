#!/usr/bin/env bash
# Starts a one-host Grid Engine (SGE) cluster on this machine for the launcher tests
# (utils/launch_sge.py).  Needs root.
#
#   tests/cluster/start_sge.sh          then qsub/qstat/qacct work as usual
#
# Installs Debian's gridengine-master, -exec and -client when missing, answering their debconf
# questions beforehand (cell 'default', this host as master), which creates the cell in
# /var/lib/gridengine/default and the spool in /var/spool/gridengine: the package puts them
# there, so unlike tests/cluster/start_slurm.sh this one cannot keep everything in a state dir
# (it keeps only its own files in /tmp/recipe-sge).  Then it starts sge_qmaster and sge_execd
# directly (no systemd; Docker-style machines refuse invoke-rc.d anyway), and configures:
# this host as admin, submit and exec host; root may run jobs (min_uid 0); the scheduler runs
# every second; a parallel environment 'smp' for --num-threads; a queue all.q with one slot
# per CPU.  Running it again while SGE is up does nothing.  tests/cluster/stop_sge.sh stops it.
set -euo pipefail

state=/tmp/recipe-sge
queue=all.q
pe=smp
sge_root=/var/lib/gridengine
cell=default
export SGE_ROOT=$sge_root SGE_CELL=$cell
export DEBIAN_FRONTEND=noninteractive
host=$(hostname)

die() { echo "$0: $*" >&2; exit 1; }
# shellcheck source=tests/cluster/packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

quietly() {  # quietly <command...>: qconf reports every change; show its words only on failure
  local out
  out=$("$@" 2>&1) || { echo "$out" >&2; die "'$*' failed."; }
}

alive() {  # alive <pid>: the process exists and is not a zombie awaiting its reaper
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

running() {  # running <pid-file>...: the daemon named in the (first existing) pid file is alive
  local pid_file
  for pid_file in "$@"; do
    [ -s "$pid_file" ] && alive "$(cat "$pid_file")" && return 0
  done
  return 1
}
qmaster_running() { running /var/spool/gridengine/qmaster/qmaster.pid; }
execd_running() { running /var/spool/gridengine/execd/*/execd.pid; }

queue_ready() {  # the queue instance on this host takes jobs: no state flags in qstat -f
  qstat -f -q "$queue" 2>/dev/null | awk -v q="$queue@" \
    'index($1, q) == 1 { found = 1; if (NF > 5) bad = 1 } END { exit !(found && !bad) }'
}

install_packages() {
  command -v sge_qmaster >/dev/null && command -v sge_execd >/dev/null \
    && command -v qsub >/dev/null && [ -f "$sge_root/$cell/common/bootstrap" ] && return 0
  [ "$(id -u)" -eq 0 ] || die "Grid Engine is not installed, and installing it needs root."
  echo "$0: installing gridengine-master, gridengine-exec, gridengine-client (once)"
  local package
  for package in gridengine-common gridengine-client gridengine-master gridengine-exec; do
    printf '%s\n' "$package shared/gridengineconfig boolean true" \
      "$package shared/gridenginecell string $cell" \
      "$package shared/gridenginemaster string $host"
  done | apt_locked debconf-set-selections
  apt_locked apt-get update -q >/dev/null
  # The postinst scripts try to start the daemons through invoke-rc.d; where that is refused
  # (policy-rc.d in containers) they go on, and we start them below.
  if ! apt_locked apt-get install -y -q gridengine-master gridengine-exec gridengine-client \
      >"$state/apt.log" 2>&1; then
    tail -n 20 "$state/apt.log" >&2
    die "apt-get install of Grid Engine failed (log: $state/apt.log)."
  fi
  [ -f "$sge_root/$cell/common/bootstrap" ] \
    || die "the packages did not create the cell $sge_root/$cell (debconf answers not taken?)."
}

# SGE insists that the name a connection's address resolves to is the client's own host
# name.  Where this host's name resolves to 127.0.0.1 and 127.0.0.1 back to 'localhost' (as in
# many containers), every client is refused ('access denied ... resolved to host name
# localhost'): host_aliases tells SGE that both names are this host.
write_host_aliases() {
  local address reverse
  address=$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')
  reverse=$(getent hosts "$address" | awk '{ print $2 }')
  if [ -n "$reverse" ] && [ "$reverse" != "$host" ]; then
    echo "$host $reverse" > "$sge_root/$cell/common/host_aliases"
  fi
  echo "$host" > "$sge_root/$cell/common/act_qmaster"
}

start_qmaster() {
  qmaster_running && return 0
  mkdir -p /var/run/gridengine
  chown sgeadmin:sgeadmin /var/run/gridengine
  sge_qmaster || die "sge_qmaster did not start; see /var/spool/gridengine/qmaster/messages."
  local deadline=$((SECONDS + 30))
  until qconf -sh >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] \
      || die "sge_qmaster does not answer after 30 s; see /var/spool/gridengine/qmaster/messages."
    sleep 0.5
  done
}

configure() {  # each step only when missing, so a second run changes nothing
  qconf -sh 2>/dev/null | grep -qx "$host" || quietly qconf -ah "$host"
  qconf -ss 2>/dev/null | grep -qx "$host" || quietly qconf -as "$host"
  mkdir -p "$state"
  # The tests run as root, whom SGE refuses by default (min_uid 1000).
  qconf -sconf global | sed -E 's/^(min_uid|min_gid)( +).*/\1\20/' > "$state/global"
  quietly qconf -Mconf "$state/global"
  # Schedule every second instead of every 15 s, and right after submits and job ends.
  qconf -ssconf | sed -E 's/^(schedule_interval +).*/\10:0:1/; s/^(flush_submit_sec +).*/\11/;
    s/^(flush_finish_sec +).*/\11/; s/^(job_load_adjustments +).*/\1NONE/;
    s/^(load_adjustment_decay_time +).*/\10:0:0/' > "$state/sched"
  quietly qconf -Msconf "$state/sched"
  if ! qconf -spl 2>/dev/null | grep -qx "$pe"; then
    # shellcheck disable=SC2016  # $pe_slots is SGE's word, not a shell variable
    printf '%s\n' "pe_name $pe" "slots 999" "user_lists NONE" "xuser_lists NONE" \
      "start_proc_args NONE" "stop_proc_args NONE" 'allocation_rule $pe_slots' \
      "control_slaves FALSE" "job_is_first_task TRUE" "urgency_slots min" \
      "accounting_summary FALSE" "qsort_args NONE" > "$state/pe"
    quietly qconf -Ap "$state/pe"
  fi
  if ! qconf -sql 2>/dev/null | grep -qx "$queue"; then
    # qconf -sq with no name prints the template queue; its slots are the machine's cores.
    qconf -sq | sed -E "s/^qname .*/qname $queue/; s/^hostlist .*/hostlist $host/;
      s/^pe_list .*/pe_list $pe/; s/^slots .*/slots $(machine_cores)/; s|^shell .*|shell /bin/bash|;
      s/^load_thresholds .*/load_thresholds NONE/" > "$state/queue"
    quietly qconf -Aq "$state/queue"
  fi
}

start_execd() {
  execd_running && return 0
  mkdir -p /var/spool/gridengine/execd
  chown sgeadmin:sgeadmin /var/spool/gridengine/execd
  sge_execd || die "sge_execd did not start; see /var/spool/gridengine/execd/*/messages."
}

wait_until_ready() {
  local deadline=$((SECONDS + 60))
  until queue_ready; do
    if [ $SECONDS -ge $deadline ]; then
      echo "$0: the queue $queue on $host does not take jobs after 60 s:" >&2
      qstat -f >&2 || true
      tail -n 5 /var/spool/gridengine/qmaster/messages /var/spool/gridengine/execd/*/messages \
        >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

mkdir -p "$state"
install_packages
if qmaster_running && execd_running && queue_ready; then
  echo "$0: Grid Engine is already running (queue $queue on $host)"
  exit 0
fi
qmaster_running || write_host_aliases
start_qmaster
configure
start_execd
wait_until_ready
echo "$0: Grid Engine is up: queue $queue on $host, parallel environment $pe"

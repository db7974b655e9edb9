#!/usr/bin/env bash
# Stops the Grid Engine daemons that tests/cluster/start_sge.sh started.
#
#   tests/cluster/stop_sge.sh
#
# Ends sge_execd and sge_qmaster by the process ids in their pid files (never by name).  The
# cluster's configuration stays in /var/lib/gridengine and /var/spool/gridengine, where the
# Debian packages keep it, so a later start_sge.sh comes up with the same queue.
set -euo pipefail

# shellcheck source=tests/cluster/stop_daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/stop_daemon.sh"

for pid_file in /var/spool/gridengine/execd/*/execd.pid; do
  stop_daemon sge_execd "$pid_file"
done
stop_daemon sge_qmaster /var/spool/gridengine/qmaster/qmaster.pid
echo "$0: Grid Engine stopped"

# shellcheck shell=bash
# Sourced by run.sh and the steps that write a data or exp dir: lock_dir DIR takes an exclusive
# lock (flock) on DIR/.lock for as long as this script and the processes it starts run, so that
# two runs never write the same directory at once (their jobs would mix: different --nj splits,
# two trainers).  A second run stops at once with a sentence naming the holder.  A directory that
# a parent script already holds (listed in RECIPE_LOCKS) is not locked again.

lock_dir() {
  local dir=$1 abs fd
  mkdir -p "$dir"
  abs=$(cd "$dir" && pwd)
  case ":${RECIPE_LOCKS:-}:" in *":$abs:"*) return 0 ;; esac
  # Opened for appending: the holder's line must survive until the lock is ours.
  exec {fd}>>"$abs/.lock"
  if ! flock -n "$fd"; then
    echo "$0: $dir is in use by another run: $(cat "$abs/.lock" 2>/dev/null || echo 'a process')" \
      "holds $abs/.lock (or a job it started that is still running: 'fuser -v $abs/.lock'" \
      "lists them). Wait for it to end or stop it, then rerun." >&2
    exit 1
  fi
  echo "process $$ ($0, since $(date '+%F %T'))" > "$abs/.lock"
  export RECIPE_LOCKS="${RECIPE_LOCKS:-}:$abs"
}

#!/usr/bin/env bash
# Runs the data-dir tools (utils/data_dir.py, standard-library Python) with path.sh's
# variables, so that they work before the environment exists, with the system python3.
# Called by validate_data_dir.sh, fix_data_dir.sh, split_data.sh, combine_data.sh,
# unscorable_trials.sh and shared_speakers.sh.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
. "$root/path.sh"
exec python3 "$root/utils/data_dir.py" "$@"

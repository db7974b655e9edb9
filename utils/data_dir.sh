#!/usr/bin/env bash
# Runs utils/data_dir.py (standard-library Python) with the recipe's modules importable, as
# path.sh does for everything else, so that the data-dir tools work without the environment.
# Called by validate_data_dir.sh, fix_data_dir.sh, split_data.sh, combine_data.sh,
# unscorable_trials.sh and shared_speakers.sh.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$root/utils/data_dir.py" "$@"

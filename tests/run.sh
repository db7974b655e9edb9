#!/usr/bin/env bash
# The test command: sets up .venv on first use, then runs the whole suite with pytest, its
# test files spread over one pytest-xdist worker per core, at most 4 (the longest file alone
# takes about 3 minutes, so more would hardly help, and each worker holds its own torch).
# tests/conftest.py keeps each file, and the cluster files together, on one worker, and gives
# each worker its share of the cores as threads.
#   tests/run.sh              everything (a whole tiny recipe run included)
#   tests/run.sh -k losses    pytest options pass through
#   tests/run.sh -n 0         in this one process, as plain pytest
set -euo pipefail
cd "$(dirname "$0")/.."
utils/setup_env.sh
. ./path.sh
workers=$(nproc)
[ "$workers" -le 4 ] || workers=4
exec python -m pytest -q -n "$workers" --dist loadfile "$@" tests

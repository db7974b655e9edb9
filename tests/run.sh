#!/usr/bin/env bash
# The test command: sets up .venv on first use, then runs the whole suite with pytest.
#   tests/run.sh              everything (a whole tiny recipe run included)
#   tests/run.sh -k losses    pytest options pass through
set -euo pipefail
cd "$(dirname "$0")/.."
utils/setup_env.sh
. ./path.sh
exec python -m pytest -q "$@" tests

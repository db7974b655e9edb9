# shellcheck shell=bash
# Sourced by run.sh, steps/, local/ and utils/data_dir.sh: the project's environment, in
# variables only (Kaldi's path.sh does no more).  The environment itself is made by
# utils/setup_env.sh, the first step of ./run.sh and tests/run.sh.
recipe_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$recipe_root/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$recipe_root/.venv/bin/activate"
fi
export PATH="$recipe_root/utils:$PATH"
# The one import root: every Python module of the recipe is pytorch_modules.<...>.
export PYTHONPATH="$recipe_root${PYTHONPATH:+:$PYTHONPATH}"
# C collation everywhere: Kaldi data files are sorted bytewise.
export LC_ALL=C
export PYTHONUNBUFFERED=1

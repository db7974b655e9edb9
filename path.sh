# Sourced by run.sh, steps/ and tests: the project's environment.
# Sets up .venv on first use (utils/setup_env.sh), then activates it.
recipe_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$recipe_root/utils/setup_env.sh" || return 1 2>/dev/null || exit 1
# shellcheck disable=SC1091
. "$recipe_root/.venv/bin/activate"
export PATH="$recipe_root/utils:$PATH"
export PYTHONPATH="$recipe_root${PYTHONPATH:+:$PYTHONPATH}"
# C collation everywhere: Kaldi data files are sorted bytewise.
export LC_ALL=C
export PYTHONUNBUFFERED=1

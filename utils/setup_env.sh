#!/usr/bin/env bash
# Creates the project-local virtual environment (.venv) from requirements.txt the first time it
# is needed.  Idempotent and quick afterwards: a stamp records the hash of requirements.txt, so
# the install reruns only when the pins change or a previous install did not finish.
#   usage: utils/setup_env.sh        (the first step of ./run.sh and tests/run.sh; safe by hand)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.venv
stamp=$venv/.requirements.sha256
want=$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 10) else 1)' 2>/dev/null; then
  echo "$0: need Python 3.10 or newer as '$python' (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
echo "$0: setting up $venv (first run only: torch is about 5 GB, a minute or two) ..." >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
if ! "$venv/bin/python" -m pip install --quiet -r "$root/requirements.txt"; then
  echo "$0: pip could not install requirements.txt into $venv; see the messages above." >&2
  echo "$0: check the network access to PyPI, then run the command again (it resumes)." >&2
  exit 1
fi
echo "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
echo "$0: environment ready." >&2

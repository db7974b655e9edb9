#!/usr/bin/env bash
# Makes sure ffmpeg is on PATH.  VoxCeleb2 is distributed as AAC in .m4a files, which libsndfile
# cannot decode; local/prepare_voxceleb2.py therefore writes wav.scp entries that decode each
# file with ffmpeg on the fly, and the feature stage needs ffmpeg to run them.
#
#   usage: local/install_ffmpeg.sh
#
# Does nothing when ffmpeg is already installed.  Otherwise installs Debian/Ubuntu's ffmpeg
# package with apt-get, which needs root; other systems print what to do instead.
set -euo pipefail
prog=$(basename "$0")

if command -v ffmpeg >/dev/null 2>&1; then
  echo "$prog: ffmpeg is already installed: $(command -v ffmpeg)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "$prog: ffmpeg is not installed and this system has no apt-get; install ffmpeg with" \
       "your package manager (e.g. 'dnf install ffmpeg', 'brew install ffmpeg' or" \
       "'conda install -c conda-forge ffmpeg') so that 'ffmpeg' is on PATH." >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "$prog: ffmpeg is not installed and installing it needs root; run" \
       "'sudo apt-get update && sudo apt-get install -y ffmpeg' (or ask your administrator)," \
       "or put a static ffmpeg build on PATH." >&2
  exit 1
fi

echo "$prog: installing ffmpeg with apt-get ..."
# Non-interactive: no debconf questions (tzdata etc.) may stall a recipe or CI run.
export DEBIAN_FRONTEND=noninteractive
# Another apt run (unattended upgrades, a parallel job) may hold the package lock: wait for it
# instead of failing at once.
wait_lock=(-o DPkg::Lock::Timeout=600)
if ! { apt-get "${wait_lock[@]}" update &&
       apt-get "${wait_lock[@]}" install -y --no-install-recommends ffmpeg; }; then
  echo "$prog: apt-get could not install ffmpeg; see the messages above (it needs network" \
       "access to the package mirrors and no other package manager holding the lock)." >&2
  exit 1
fi
command -v ffmpeg >/dev/null 2>&1 || {
  echo "$prog: apt-get finished but 'ffmpeg' is still not on PATH; check the installation." >&2
  exit 1
}
echo "$prog: installed $(command -v ffmpeg)"

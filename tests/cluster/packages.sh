# shellcheck shell=bash
# Sourced by start_slurm.sh and start_sge.sh: what their package installs and sizing share.

# Package installs take turns: tests/run.sh runs test files in parallel, and the ffmpeg fixture
# (tests/test_prepare_voxceleb2.py, the same lock file) may be installing at the same moment.
# flock -o: the command runs without the lock's descriptor, so no daemon it starts keeps the lock.
apt_locked() { flock -o /tmp/recipe-tests-apt.lock "$@"; }

# The machine's cores: nproc alone counts OMP_NUM_THREADS, which tests/run.sh's workers set.
machine_cores() { env -u OMP_NUM_THREADS nproc; }

"""Fixtures shared by several test files."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _path_sh_variables() -> dict:
    """The variables path.sh sets (PATH, PYTHONPATH, LC_ALL, ...), read by sourcing it: the
    entry points the tests start see the environment run.sh gives them, however pytest was
    started (tests/run.sh sources path.sh itself)."""
    listing = subprocess.run(["bash", "-c", ". ./path.sh && env -0"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    return dict(entry.split("=", 1) for entry in listing.decode().split("\0") if "=" in entry)


os.environ.update(_path_sh_variables())


def _share_the_cores_between_workers():
    """Under pytest-xdist (tests/run.sh) each worker, and every process it starts, gets its share
    of the cores as OMP/MKL threads: torch's default of every core in each of N workers runs
    N times more threads than cores, and trainings then run several times slower, not faster.
    Set before any test module imports torch; a value the user exported is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = str(max(1, len(os.sched_getaffinity(0)) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, share)


_share_the_cores_between_workers()
STATE_DIR = "/tmp/recipe-slurm"
SKIP = os.environ.get("RECIPE_SKIP_SLURM") == "1"


@pytest.fixture(scope="session")
def slurm_env():
    """The environment for talking to the single-node test Slurm (tests/cluster/start_slurm.sh),
    started if it is not running, and stopped again at the end if this session started it.
    Set RECIPE_SKIP_SLURM=1 to skip the tests that need it."""
    if SKIP:
        pytest.skip("RECIPE_SKIP_SLURM=1")
    result = subprocess.run(["bash", str(ROOT / "tests/cluster/start_slurm.sh"), STATE_DIR],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"tests/cluster/start_slurm.sh could not start Slurm (RECIPE_SKIP_SLURM=1 "
                    f"skips these tests):\n{result.stdout}{result.stderr}", pytrace=False)
    yield {**os.environ, "SLURM_CONF": f"{STATE_DIR}/slurm.conf",
           "RECIPE_TEST_MARK": "from-the-submitting-shell"}
    if "already running" not in result.stdout:
        subprocess.run(["bash", str(ROOT / "tests/cluster/stop_slurm.sh"), STATE_DIR],
                       capture_output=True, timeout=120)


# pytest-xdist's --dist loadfile (tests/run.sh) sends each file's tests to one worker, so that
# module-scoped fixtures (a whole ./run.sh) are made once; the files that share a test cluster's
# state (/tmp/recipe-slurm, the Grid Engine daemons, the cluster's two CPUs) also go to one worker,
# one after the other, as in a plain run.
CLUSTER_FILES = {"test_cluster_slurm.py", "test_cluster_recipe.py", "test_cluster_sge.py"}


@pytest.hookimpl(optionalhook=True)   # a hook of xdist: pytest -p no:xdist still loads this file
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None   # xdist's own scheduler for the mode the user asked for
    from xdist.scheduler import LoadFileScheduling

    class ByFileClustersTogether(LoadFileScheduling):
        def _split_scope(self, nodeid):
            file = super()._split_scope(nodeid)
            return "cluster files" if Path(file).name in CLUSTER_FILES else file

    return ByFileClustersTogether(config, log)


# The tiers of pytest.ini, given by what a test uses: a fixture that starts a test cluster makes
# it `cluster` and `slow`; a fixture of SLOW_FIXTURES (a whole ./run.sh, a training to the end)
# makes it `slow`.  Tests slow on their own carry @pytest.mark.slow.
CLUSTER_FIXTURES = {"slurm_env", "sge_env"}
SLOW_FIXTURES = set()


def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)
        if used & (CLUSTER_FIXTURES | SLOW_FIXTURES):
            item.add_marker(pytest.mark.slow)

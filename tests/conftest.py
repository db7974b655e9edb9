"""Fixtures shared by several test files."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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

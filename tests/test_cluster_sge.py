"""utils/launch_sge.py against a real one-host Grid Engine (tests/cluster/start_sge.sh).

The cluster is started once per session (installing Debian's gridengine packages when
missing, which needs root); if it cannot start, the cluster tests fail with the script's
output.  Set RECIPE_SKIP_SGE=1 to skip them for a quick local run; the tests of the SGE
notation still run.  The config format itself is tested in test_cluster_slurm.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytorch_modules.jobs import launcher_common as lc
from pytorch_modules.jobs import sge as launch_sge

ROOT = Path(__file__).resolve().parents[1]

LAUNCHER = str(ROOT / "utils" / "launch_sge.py")
CONFIG = str(ROOT / "conf" / "sge_launcher.conf")
SKIP = os.environ.get("RECIPE_SKIP_SGE") == "1"


@pytest.fixture(scope="session")
def sge_env():
    """The environment for submitting to the test cluster, started if it is not running (and
    then stopped again at the end)."""
    if SKIP:
        pytest.skip("RECIPE_SKIP_SGE=1")
    result = subprocess.run(["bash", str(ROOT / "tests/cluster/start_sge.sh")],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"tests/cluster/start_sge.sh could not start Grid Engine (RECIPE_SKIP_SGE=1 "
                    f"skips these tests):\n{result.stdout}{result.stderr}", pytrace=False)
    yield {**os.environ, "RECIPE_TEST_MARK": "from-the-submitting-shell"}
    if "already running" not in result.stdout:
        subprocess.run(["bash", str(ROOT / "tests/cluster/stop_sge.sh")], capture_output=True,
                       timeout=120)


def launch(env, cwd, *args):
    return subprocess.run([sys.executable, LAUNCHER, "--config", CONFIG, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def log_lines(path):
    return Path(path).read_text().splitlines()


# ---- against the cluster -------------------------------------------------------------------

def test_array_job_substitutes_job_and_logs_like_the_local_launcher(sge_env, tmp_path):
    result = launch(sge_env, tmp_path, "JOB=1:3", "exp/log/echo.JOB.log",
                    "echo job JOB of x.JOB; pwd; echo $RECIPE_TEST_MARK")
    assert result.returncode == 0, result.stderr
    for job in (1, 2, 3):
        lines = log_lines(tmp_path / f"exp/log/echo.{job}.log")
        assert lines[0] == f"# echo job {job} of x.{job}; pwd; echo $RECIPE_TEST_MARK"
        assert lines[1].startswith("# Started at ")
        assert lines[2:5] == [f"job {job} of x.{job}", str(tmp_path), "from-the-submitting-shell"]
        assert lines[5].startswith("# Accounting: time=") and lines[5].endswith(" threads=1")
        assert lines[6].startswith("# Ended (code 0) at ")
        assert len(lines) == 7
    assert " -t 1-3 -N echo " in (tmp_path / "exp/log/q/echo.JOB.sh").read_text()


def test_failed_tasks_and_only_failed_with_a_gap(sge_env, tmp_path):
    # Tasks 1 and 3 fail until the file 'fixed' exists.  qsub -t takes one range, so the rerun
    # submits 1-3 and task 2 must end at once without running or touching its log.
    command = "echo JOB >> runs.txt; [ JOB = 2 ] || [ -e fixed ]"
    result = launch(sge_env, tmp_path, "JOB=1:3", "log/r.JOB.log", command)
    assert result.returncode == 1
    assert "launch_sge.py: 2 / 3 failed, log is in log/r.*.log" in result.stderr
    assert log_lines(tmp_path / "log/r.1.log")[-1].startswith("# Ended (code 1) at ")
    log2 = (tmp_path / "log/r.2.log").read_text()
    (tmp_path / "fixed").touch()
    result = launch(sge_env, tmp_path, "--only-failed", "true", "JOB=1:3", "log/r.JOB.log",
                    command)
    assert result.returncode == 0, result.stderr
    assert sorted((tmp_path / "runs.txt").read_text().split()) == ["1", "1", "2", "3", "3"]
    assert (tmp_path / "log/r.2.log").read_text() == log2
    assert all(lc.job_succeeded(tmp_path / f"log/r.{j}.log") for j in (1, 2, 3))


def test_single_job_failure_message(sge_env, tmp_path):
    result = launch(sge_env, tmp_path, "log/one.log", "exit 3")
    assert result.returncode == 1
    assert "launch_sge.py: job failed, log is in log/one.log" in result.stderr
    assert log_lines(tmp_path / "log/one.log")[-1].startswith("# Ended (code 3) at ")


def test_mem_threads_and_time_reach_qsub(sge_env, tmp_path):
    # SGE's own view from inside the job (in a file: JOB_ID holds JOB, which would be replaced).
    (tmp_path / "show.sh").write_text(
        'qstat -j $JOB_ID | grep -E "^(hard resource_list|parallel environment):"\n'
        'echo "slots=$NSLOTS omp=$OMP_NUM_THREADS"\n')
    result = launch(sge_env, tmp_path, "--mem", "1.5G", "--num-threads", "2", "--time", "90",
                    "--max-jobs-run", "1", "JOB=1:2", "log/m.JOB.log", "bash show.sh")
    assert result.returncode == 0, result.stderr
    for job in (1, 2):
        lines = [" ".join(line.split()) for line in log_lines(tmp_path / f"log/m.{job}.log")]
        resources = lines[2].removeprefix("hard resource_list: ").split(",")
        assert sorted(resources) == ["h_rt=5400", "mem_free=1536M"]  # in either order
        assert lines[3:5] == ["parallel environment: smp range: 2", "slots=2 omp=2"]
    submitted = (tmp_path / "log/q/m.JOB.sh").read_text()
    assert ("qsub -V -l mem_free=1536M -pe smp 2 -l h_rt=1:30:00 -terse -t 1-2 -tc 1 -N m "
            in submitted)


# ---- SGE notation (no cluster needed) ------------------------------------------------------

@pytest.mark.parametrize("name, value, expected", [
    ("time", "90", "1:30:00"), ("time", "2:30", "0:02:30"), ("time", "1-0:00:05", "24:00:05"),
    ("mem", "1.5G", "1536M"), ("mem", "500", "500M"), ("gpu", "1", "1"),
])
def test_option_values_in_sge_notation(name, value, expected):
    assert launch_sge.GridEngine().option_value(name, value) == expected


def test_qstat_task_fields_and_terse_job_ids():
    assert launch_sge.task_ids("3") == [3]
    assert launch_sge.task_ids("2-5:1") == [2, 3, 4, 5]
    assert launch_sge.task_ids("1-5:2") == [1, 3, 5]
    assert launch_sge.task_ids("1,4") == [1, 4]
    assert launch_sge.task_ids("all.q@vm") == []
    sge = launch_sge.GridEngine()
    assert sge.parse_job_id("123.1-3:1\n") == "123"
    assert sge.parse_job_id("Unable to run job\n") is None
    assert sge.is_finished(None) and sge.is_finished("Eqw") and not sge.is_finished("qw")

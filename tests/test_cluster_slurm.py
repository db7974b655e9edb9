"""utils/launch_slurm.py against a real one-node Slurm (tests/cluster/start_slurm.sh), and the
scheduler-config parsing it shares with launch_sge.py.

The cluster is started once per session (installing slurm-wlm and munge when missing, which
needs root); if it cannot start, the cluster tests fail with the script's output.  Set
RECIPE_SKIP_SLURM=1 to skip them for a quick local run; the config tests still run.
"""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytorch_modules.jobs import cluster_launcher as cl
from pytorch_modules.jobs import launcher_common as lc
from pytorch_modules.jobs import slurm as launch_slurm

ROOT = Path(__file__).resolve().parents[1]

LAUNCHER = str(ROOT / "utils" / "launch_slurm.py")
CONFIG = str(ROOT / "conf" / "slurm_launcher.conf")


def launch(env, cwd, *args, config=CONFIG):
    return subprocess.run([sys.executable, LAUNCHER, "--config", config, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def log_lines(path):
    return Path(path).read_text().splitlines()


# ---- against the cluster -------------------------------------------------------------------

def test_array_job_substitutes_job_and_logs_like_the_local_launcher(slurm_env, tmp_path):
    result = launch(slurm_env, tmp_path, "JOB=1:3", "exp/log/echo.JOB.log",
                    "echo", "job", "JOB", "of", "x.JOB")
    assert result.returncode == 0, result.stderr
    for job in (1, 2, 3):
        lines = log_lines(tmp_path / f"exp/log/echo.{job}.log")
        assert lines[0] == f"# echo job {job} of x.{job}"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == f"job {job} of x.{job}"
        assert lines[3].startswith("# Accounting: time=") and lines[3].endswith(" threads=1")
        assert lines[4].startswith("# Ended (code 0) at ")
        assert len(lines) == 5
    script = (tmp_path / "exp/log/q/echo.JOB.sh").read_text()
    assert "--array=1-3 " in script
    assert not list((tmp_path / "exp/log/q").glob("rc.*"))  # markers are cleaned up


def test_job_runs_here_with_the_submitting_environment(slurm_env, tmp_path):
    result = launch(slurm_env, tmp_path, "log/env.log",
                    'pwd; echo "$RECIPE_TEST_MARK"; command -v python')
    assert result.returncode == 0, result.stderr
    lines = log_lines(tmp_path / "log/env.log")
    assert lines[2:5] == [str(tmp_path), "from-the-submitting-shell",
                          subprocess.run(["bash", "-c", "command -v python"], env=slurm_env,
                                         capture_output=True, text=True).stdout.strip()]


def test_one_of_three_failed(slurm_env, tmp_path):
    result = launch(slurm_env, tmp_path, "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2")
    assert result.returncode == 1
    assert "launch_slurm.py: 1 / 3 failed, log is in log/t.2.log" in result.stderr
    assert log_lines(tmp_path / "log/t.2.log")[-1].startswith("# Ended (code 1) at ")
    assert log_lines(tmp_path / "log/t.3.log")[-1].startswith("# Ended (code 0) at ")


def test_only_failed_reruns_just_the_failed_task(slurm_env, tmp_path):
    # Task 2 fails until the file 'fixed' exists; runs.txt records which tasks ran.
    command = "echo JOB >> runs.txt; [ JOB != 2 ] || [ -e fixed ]"
    assert launch(slurm_env, tmp_path, "JOB=1:3", "log/r.JOB.log", command).returncode == 1
    (tmp_path / "fixed").touch()
    result = launch(slurm_env, tmp_path, "--only-failed", "true", "JOB=1:3", "log/r.JOB.log",
                    command)
    assert result.returncode == 0, result.stderr
    assert "skipping 2 of 3 jobs that already succeeded" in result.stderr
    assert sorted((tmp_path / "runs.txt").read_text().split()) == ["1", "2", "2", "3"]
    assert all(lc.job_succeeded(tmp_path / f"log/r.{j}.log") for j in (1, 2, 3))
    assert "--array=2 " in (tmp_path / "log/q/r.JOB.sh").read_text()


def test_mem_threads_and_time_reach_sbatch(slurm_env, tmp_path):
    # Slurm's own view from inside the job: memory of the job (MB), CPUs per task, time limit.
    # (In a file, as the names of Slurm's variables contain JOB, which the launcher replaces.)
    (tmp_path / "show.sh").write_text(
        'echo "$SLURM_MEM_PER_NODE $SLURM_CPUS_PER_TASK $OMP_NUM_THREADS '
        '$(squeue -h -j ${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID -o %l)"\n')
    result = launch(slurm_env, tmp_path, "--mem", "1.5G", "--num-threads", "2", "--time", "7",
                    "--max-jobs-run", "1", "JOB=1:2", "log/m.JOB.log", "bash show.sh")
    assert result.returncode == 0, result.stderr
    for job in (1, 2):
        lines = log_lines(tmp_path / f"log/m.{job}.log")
        assert lines[2] == "1536 2 2 7:00"
        assert lines[3].endswith(" threads=2")
    submitted = (tmp_path / "log/q/m.JOB.sh").read_text()
    assert ("sbatch --export=ALL --ntasks-per-node=1 --mem=1536M --cpus-per-task=2 --time=7 "
            "--parsable --array=1-2%1 --job-name=m ") in submitted


def test_task_killed_without_exit_code_is_reported(slurm_env, tmp_path):
    # Killing the job script stands for Slurm killing a task (memory, time, node): no footer,
    # no exit-code file.  The launcher must notice from squeue, not wait forever.
    result = launch(slurm_env, tmp_path, "JOB=1:2", "log/k.JOB.log",
                    '[ JOB = 1 ] || kill -9 $PPID')
    assert result.returncode == 1
    assert "launch_slurm.py: job 2 ended without writing its exit code" in result.stderr
    assert "launch_slurm.py: 1 / 2 failed, log is in log/k.2.log" in result.stderr
    assert "ended without writing its exit code" in log_lines(tmp_path / "log/k.2.log")[-1]
    assert lc.job_succeeded(tmp_path / "log/k.1.log")


def test_sigterm_cancels_the_job(slurm_env, tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, LAUNCHER, "--config", CONFIG, "JOB=1:2", "log/s.JOB.log", "sleep 60"],
        cwd=tmp_path, env=slurm_env, stderr=subprocess.PIPE, text=True)
    logs = [tmp_path / "log/s.1.log", tmp_path / "log/s.2.log"]
    deadline = time.monotonic() + 30
    while not all(log.exists() for log in logs):
        assert time.monotonic() < deadline, "the tasks did not start"
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=30)
    assert launcher.returncode == 128 + signal.SIGTERM
    match = re.search(r"stopped by SIGTERM; cancelled Slurm job ([0-9]+), logs are in "
                      r"log/s\.\*\.log", stderr)
    assert match, stderr
    states = subprocess.run(["squeue", "-h", "--array", "--states=all", "-j", match.group(1),
                             "-o", "%T"], env=slurm_env, capture_output=True, text=True).stdout
    assert states.split() and not set(states.split()) & {"PENDING", "RUNNING"}  # CANCELLED, or
    # COMPLETING for the moment the tasks take to end
    # The job script outlives the SIGTERM that Slurm sends on cancelling to write the footer.
    deadline = time.monotonic() + 10
    while not all(lc.log_exit_code(log) is not None for log in logs):
        assert time.monotonic() < deadline, "no footer after scancel"
        time.sleep(0.1)
    assert [lc.log_exit_code(log) for log in logs] == [143, 143]


def test_sbatch_refusal_is_reported(slurm_env, tmp_path):
    config = tmp_path / "bad.conf"
    config.write_text("command sbatch --partition=no-such-partition\n")
    result = launch(slurm_env, tmp_path, "log/x.log", "true", config=str(config))
    assert result.returncode == 1
    assert "launch_slurm.py: Slurm did not take the job (sbatch said:" in result.stderr
    assert "no-such-partition" in result.stderr


# ---- scheduler configs (no cluster needed) -------------------------------------------------

def write_config(tmp_path, text):
    path = tmp_path / "sched.conf"
    path.write_text(text)
    return str(path)


def test_shipped_configs_parse():
    slurm = cl.read_scheduler_config(CONFIG)
    assert slurm.command[0] == "sbatch" and "--export=ALL" in slurm.command
    sge = cl.read_scheduler_config(str(ROOT / "conf" / "sge_launcher.conf"))
    assert sge.command[:2] == ["qsub", "-V"]


def test_config_maps_options_exact_values_and_defaults(tmp_path):
    config = cl.read_scheduler_config(write_config(tmp_path, """\
command sbatch --export=ALL   # every job
option mem=* --mem=$0
option mem=0
option num_threads=* --cpus-per-task=$0 "--comment=two words $0"
option gpu=* --gres=gpu:$0 -p gpu
option gpu=0 -p cpu
option time=* --time=$0
default mem=2G
default gpu=0
"""))
    assert config.command == ["sbatch", "--export=ALL"]
    args = config.scheduler_args(lc.Options())
    assert args == ["--mem=2G", "-p", "cpu"]  # the defaults, with gpu=0's own line
    options = lc.Options(mem="0", gpu=2, num_threads=3, time="1:00:00")
    assert config.scheduler_args(options) == [
        "--gres=gpu:2", "-p", "gpu", "--cpus-per-task=3", "--comment=two words 3", "--time=1:00:00"]
    slurm_value = launch_slurm.Slurm().option_value  # sbatch wants whole numbers
    assert config.scheduler_args(lc.Options(mem="1.5G"), slurm_value) == \
        ["--mem=1536M", "-p", "cpu"]


def test_option_without_a_config_line_is_an_error(tmp_path):
    path = write_config(tmp_path, "command sbatch\noption mem=* --mem=$0\n")
    config = cl.read_scheduler_config(path)
    with pytest.raises(cl.ConfigError, match=f"{path} has no 'option gpu=\\*' line, so --gpu 1 "
                                             f"cannot be passed to the scheduler"):
        config.scheduler_args(lc.Options(gpu=1))


@pytest.mark.parametrize("text, line, message", [
    ("option mem=* --mem=$0\n", None, "has no 'command' line"),
    ("command sbatch\nqueue all.q\n", 2, "unknown directive 'queue'"),
    ("command sbatch\noption memory=* --mem=$0\n", 2, "unknown option name 'memory'"),
    ("command sbatch\noption mem --mem\n", 2, "expected 'option NAME=VALUE ...'"),
    ("command sbatch\noption mem=lots --mem\n", 2, "--mem takes a memory size"),
    ("command sbatch\noption max_jobs_run=* -tc $0\n", 2, "passed by the launcher itself"),
    ("command sbatch\ndefault gpu=*\n", 2, "expected 'default NAME=VALUE'"),
    ("command sbatch\n\n# comment\noption mem=* '--mem=$0\n", 4, "No closing quotation"),
    ("command sbatch\noption gpu=1 a\noption gpu=1 b\n", 3, "a second 'option gpu=1' line"),
    ("command\n", 1, "'command' needs the submit program"),
])
def test_config_errors_name_file_and_line(tmp_path, text, line, message):
    path = write_config(tmp_path, text)
    where = f"{path}:{line}: " if line else path
    with pytest.raises(cl.ConfigError) as error:
        cl.read_scheduler_config(path)
    assert str(error.value).startswith(where)
    assert message in str(error.value)


def test_missing_config_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, LAUNCHER, "log/x.log", "true"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert ("launch_slurm.py: cannot read the scheduler config conf/slurm_launcher.conf: "
            "No such file or directory; give another with --config FILE.") in result.stderr
    assert not (tmp_path / "log").exists()


def test_usage_errors_match_the_local_launcher(tmp_path):
    result = subprocess.run([sys.executable, LAUNCHER, "JOB=3:1", "log/x.JOB.log", "true"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: launch_slurm.py")
    assert "launch_slurm.py: bad job range 'JOB=3:1'" in result.stderr


@pytest.mark.parametrize("value, expected", [
    ("4G", "4G"), ("4g", "4G"), ("1.5G", "1536M"), ("500", "500M"), ("0.5M", "512K"),
])
def test_memory_for_scheduler(value, expected):
    assert cl.memory_for_scheduler(value) == expected


@pytest.mark.parametrize("value, seconds", [
    ("90", 5400), ("2:30", 150), ("1:00:00", 3600), ("1-2", 93600), ("1-0:30", 88200),
    ("2-01:02:03", 176523),
])
def test_time_in_seconds(value, seconds):
    assert cl.time_in_seconds(value) == seconds


def test_array_spec_and_job_name():
    assert cl.array_spec([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert cl.array_spec([4]) == "4"
    request = lc.parse_request(["JOB=1:2", "exp/log/make_spec_vox1.JOB.log", "true"])
    assert cl.job_name(request) == "make_spec_vox1"
    request = lc.parse_request(["JOB=1:2", "log/2nd:try.JOB.log", "true"])
    assert cl.job_name(request) == "j2nd_try"  # SGE names may not start with a digit or hold ':'


def test_command_template_substitutes_like_command():
    request = lc.parse_request(["JOB=1:3", "log/x.JOB.log", "copy", "ark:a JOB |", "out.JOB"])
    assert request.command_template().replace("JOB", "2") == request.command(2)

"""utils/launch_local.py and utils/launcher_common.py: Kaldi run.pl-style local jobs."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytorch_modules.jobs import launcher_common as lc

UTILS = Path(__file__).resolve().parents[1] / "utils"

LAUNCHER = str(UTILS / "launch_local.py")


def launch(cwd, *args):
    return subprocess.run([sys.executable, LAUNCHER, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def log_lines(path):
    return Path(path).read_text().splitlines()


def test_substitutes_job_and_writes_header_and_footer(tmp_path):
    result = launch(tmp_path, "JOB=1:3", "exp/log/echo.JOB.log",
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


def test_single_job_without_range(tmp_path):
    result = launch(tmp_path, "a/b/log/one.log", "echo", "JOB")
    assert result.returncode == 0
    assert log_lines(tmp_path / "a/b/log/one.log")[2] == "JOB"  # no range: no substitution


def test_one_of_three_failed(tmp_path):
    result = launch(tmp_path, "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2")
    assert result.returncode == 1
    assert "launch_local.py: 1 / 3 failed, log is in log/t.2.log" in result.stderr
    assert log_lines(tmp_path / "log/t.2.log")[-1].startswith("# Ended (code 1) at ")
    assert log_lines(tmp_path / "log/t.3.log")[-1].startswith("# Ended (code 0) at ")


@pytest.mark.parametrize("signum, words", [
    (signal.SIGKILL, "killed by signal 9 (SIGKILL): often the kernel's out-of-memory killer "
                     "(check `dmesg`"),
    (signal.SIGTERM, "killed by signal 15 (SIGTERM): stopped from outside"),
    (signal.SIGSEGV, "killed by signal 11 (SIGSEGV): it crashed"),
])
def test_a_job_killed_by_a_signal_is_said_in_words(tmp_path, signum, words):
    """A trainer killed by the kernel for memory leaves no message of its own: the launcher's
    failure message says what its exit code means."""
    result = launch(tmp_path, "log/train.log", "bash", "-c", f"echo step 1; kill -{int(signum)} $$")
    assert result.returncode == 1
    assert log_lines(tmp_path / "log/train.log")[-1].startswith(f"# Ended (code {128 + signum})")
    assert f"log/train.log: {words}" in result.stderr, result.stderr
    assert "log/train.log: step 1" in result.stderr


def test_several_failed_and_single_job_failed_messages(tmp_path):
    result = launch(tmp_path, "JOB=1:3", "log/t.JOB.log", "exit JOB")
    assert result.returncode == 1
    assert "launch_local.py: 3 / 3 failed, log is in log/t.*.log" in result.stderr
    assert log_lines(tmp_path / "log/t.3.log")[-1].startswith("# Ended (code 3) at ")
    result = launch(tmp_path, "log/one.log", "false")
    assert result.returncode == 1
    assert "launch_local.py: job failed, log is in log/one.log" in result.stderr


def test_only_failed_reruns_just_the_failed_job(tmp_path):
    # Job 2 fails until the file 'fixed' exists; runs.txt records which jobs ran.
    command = "echo JOB >> runs.txt; [ JOB != 2 ] || [ -e fixed ]"
    assert launch(tmp_path, "JOB=1:3", "log/r.JOB.log", command).returncode == 1
    (tmp_path / "fixed").touch()
    result = launch(tmp_path, "--only-failed", "true", "JOB=1:3", "log/r.JOB.log", command)
    assert result.returncode == 0, result.stderr
    assert sorted((tmp_path / "runs.txt").read_text().split()) == ["1", "2", "2", "3"]
    assert all(lc.job_succeeded(tmp_path / f"log/r.{j}.log") for j in (1, 2, 3))


def test_pipes_and_quoting(tmp_path):
    # One argument is a whole command line; with several, one with spaces stays one argument
    # and a bare | (escaped in the caller's shell) is a pipe, as with Kaldi's run.pl.
    assert launch(tmp_path, "log/a.log", "echo hello world | tr a-z A-Z").returncode == 0
    assert "HELLO WORLD" in log_lines(tmp_path / "log/a.log")
    show_args = "import sys; print(sys.argv[1:])"
    assert launch(tmp_path, "log/b.log", "python3", "-c", show_args, "a b", "c").returncode == 0
    assert log_lines(tmp_path / "log/b.log")[2] == "['a b', 'c']"
    assert launch(tmp_path, "log/c.log", "echo", "xyz", "|", "tr", "x", "X").returncode == 0
    assert log_lines(tmp_path / "log/c.log")[2] == "Xyz"


def test_num_threads_sets_thread_variables(tmp_path):
    result = launch(tmp_path, "--num-threads", "1", "log/t.log",
                    "echo omp=$OMP_NUM_THREADS mkl=$MKL_NUM_THREADS")
    assert result.returncode == 0
    lines = log_lines(tmp_path / "log/t.log")
    assert lines[2] == "omp=1 mkl=1"
    assert lines[3].endswith("threads=1")


def job_times(tmp_path, max_jobs):
    """Runs two 0.5-s jobs that record their start and end; returns [(start, end)]."""
    command = "date +%s.%N > t.JOB.start; sleep 0.5; date +%s.%N > t.JOB.end"
    result = launch(tmp_path, "--max-jobs-run", str(max_jobs), "JOB=1:2", "log/p.JOB.log", command)
    assert result.returncode == 0, result.stderr
    return [(float((tmp_path / f"t.{j}.start").read_text()),
             float((tmp_path / f"t.{j}.end").read_text())) for j in (1, 2)]


@pytest.mark.skipif(lc.available_cpus() < 2, reason="needs 2 CPUs to run 2 jobs at once")
def test_jobs_run_in_parallel(tmp_path):
    times = job_times(tmp_path, 2)
    assert max(start for start, _ in times) < min(end for _, end in times)  # they overlap


def test_max_jobs_run_1_runs_one_at_a_time(tmp_path):
    (start1, end1), (start2, end2) = sorted(job_times(tmp_path, 1))
    assert start2 >= end1


def test_max_parallel_counts_threads():
    assert lc.max_parallel(lc.Options(), 8) == 8
    assert lc.max_parallel(lc.Options(num_threads=3), 8) == 2
    assert lc.max_parallel(lc.Options(num_threads=16), 8) == 1
    assert lc.max_parallel(lc.Options(max_jobs_run=3), 8) == 3
    assert lc.max_parallel(lc.Options(max_jobs_run=30), 8) == 8


def process_gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has stopped running, it only awaits its reaper


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks processes through /proc")
def test_sigterm_kills_running_jobs(tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, LAUNCHER, "JOB=1:2", "log/k.JOB.log",
         "sleep 30 & echo $! > pid.JOB; wait"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    pid_files = [tmp_path / "pid.1", tmp_path / "pid.2"]
    deadline = time.monotonic() + 10
    while not all(p.exists() and p.read_text().strip() for p in pid_files):
        assert time.monotonic() < deadline, "the jobs did not start"
        time.sleep(0.05)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=10)
    assert launcher.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in stderr
    for pid_file in pid_files:
        sleep_pid = int(pid_file.read_text())
        deadline = time.monotonic() + 2
        while not process_gone(sleep_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_gone(sleep_pid)
    assert log_lines(tmp_path / "log/k.1.log")[-1].startswith("# Ended (code 143)")


@pytest.mark.parametrize("args, message", [
    (["JOB=1:2"], "no log file given"),
    (["log/x.log"], "no command given"),
    (["JOB=3:1", "log/x.JOB.log", "true"], "bad job range 'JOB=3:1'"),
    (["JOB=a:b", "log/x.JOB.log", "true"], "bad job range 'JOB=a:b'"),
    (["--bogus", "1", "log/x.log", "true"], "unknown option --bogus"),
    (["--mem", "lots", "log/x.log", "true"], "--mem takes a memory size like 4G"),
    (["--gpu", "one", "log/x.log", "true"], "--gpu takes a whole number"),
    (["--time", "1h", "log/x.log", "true"], "--time takes minutes or [D-]HH:MM:SS"),
    (["--num-threads"], "option --num-threads needs a value"),
    (["JOB=1:2", "log/same.log", "true"],
     "2 jobs would all write to one log, log/same.log: put JOB in the log's name"),
])
def test_usage_errors(tmp_path, args, message):
    result = launch(tmp_path, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: launch_local.py")
    assert f"launch_local.py: {message}" in result.stderr
    assert not (tmp_path / "log").exists()


def test_help_exits_0(tmp_path):
    result = launch(tmp_path, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: launch_local.py")


def test_parse_request_accepts_valid_options_around_the_range():
    request = lc.parse_request(["--mem", "4G", "JOB=2:4", "--gpu=1", "--time", "1:00:00",
                                "--num-threads", "2", "d/log/x.JOB.log", "cmd", "--gpu", "JOB"])
    assert (request.job_var, request.first, request.last) == ("JOB", 2, 4)
    assert (request.options.mem, request.options.gpu, request.options.time) == ("4G", 1, "1:00:00")
    assert request.options.threads == 2
    assert request.log_path(3) == "d/log/x.3.log"
    assert request.command(3) == "cmd --gpu 3"  # options after the log belong to the command
    assert request.log_pattern() == "d/log/x.*.log"


def test_command_line_quoting():
    assert lc.command_line(["a | b > c"]) == "a | b > c"
    assert lc.command_line(["copy", "ark:gunzip -c x.gz |", "ark:-", "|", "wc"]) == \
        "copy 'ark:gunzip -c x.gz |' ark:- | wc"
    assert lc.command_line(["echo", ""]) == "echo ''"

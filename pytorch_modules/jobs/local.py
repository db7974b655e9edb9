"""Runs a recipe's parallel jobs on this machine, with Kaldi's run.pl calling form.

usage:
  utils/launch_local.py [options] [JOB=START:END] dir/log/name.JOB.log command [args...]

  utils/launch_local.py JOB=1:4 exp/log/feats.JOB.log \\
      python3 -m some.module data/split4/JOB/wav.scp exp/feats.JOB.ark
  utils/launch_local.py exp/log/count.log "wc -l data/train/wav.scp | tee exp/count"

Each job runs `bash -c <command>` in the current directory with this environment, its stdout
and stderr going to its log, which starts with '# <command>' and '# Started at <date>' and ends
with '# Accounting: time=<s> threads=<n>' and '# Ended (code <rc>) at <date>'.  At most
min(--max-jobs-run, CPUs // --num-threads) jobs run at once.  Exits 0 when every job succeeds;
otherwise prints which log to read and exits 1.  Ctrl-C or SIGTERM kills the running jobs.
Options: see `utils/launch_local.py --help` (the text is in launcher_common.USAGE).
"""

import os
import signal
import subprocess
import sys
import time

from pytorch_modules.jobs import launcher_common as lc

PROG = "launch_local.py"
POLL_SECONDS = 0.05     # how often finished jobs are noticed
KILL_GRACE_SECONDS = 3  # after SIGTERM, how long jobs get to exit before SIGKILL


class LocalJob:
    """One running job: a bash process in its own process group, writing to its log."""

    def __init__(self, request, job_id, env):
        self.job_id = job_id
        self.log_path = request.log_path(job_id)
        command = request.command(job_id)
        lc.write_header(self.log_path, command)
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log:
            # A session of its own lets us kill the job with everything it started;
            # stdin is /dev/null because a background job reading the terminal would hang.
            self.process = subprocess.Popen(
                ["bash", "-c", command], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def poll(self):
        """The job's exit code once it has ended, else None."""
        rc = self.process.poll()
        return None if rc is None else lc.exit_code(rc)

    def finish(self, rc, threads):
        lc.append_footer(self.log_path, time.monotonic() - self.started, threads, rc)

    def signal_group(self, signum):
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:  # already gone
            pass



def job_environment(options):
    env = dict(os.environ)
    if options.num_threads:
        # Numerical libraries otherwise start one thread per core in every job.
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(options.num_threads)
    return env


def jobs_to_run(request):
    """The job ids to run; with --only-failed true, those whose log does not end in success."""
    ids = list(request.job_ids())
    if not request.options.only_failed:
        return ids
    todo = [job for job in ids if not lc.job_succeeded(request.log_path(job))]
    if len(todo) < len(ids):
        print(f"{PROG}: skipping {len(ids) - len(todo)} of {len(ids)} jobs that already "
              f"succeeded (--only-failed true)", file=sys.stderr)
    return todo


def run_jobs(request, job_ids, limit, interrupt):
    """Runs the jobs, at most `limit` at once.

    Returns the ids of the jobs that failed, or None when a signal stopped the run.
    """
    env = job_environment(request.options)
    threads = request.options.threads
    pending, running, failed = list(job_ids), [], []
    while pending or running:
        if interrupt.signum is not None:
            kill_all(running, threads)
            return None
        while pending and len(running) < limit:
            try:
                running.append(LocalJob(request, pending.pop(0), env))
            except OSError:  # e.g. the log folder cannot be created: stop the others too
                kill_all(running, threads)
                raise
        for job in list(running):
            rc = job.poll()
            if rc is not None:
                job.finish(rc, threads)
                running.remove(job)
                if rc != 0:
                    failed.append(job.job_id)
        time.sleep(POLL_SECONDS)
    return sorted(failed)


def kill_all(running, threads):
    """Stops every running job (SIGTERM, then SIGKILL) and closes its log with its code."""
    for job in running:
        job.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while any(job.poll() is None for job in running) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for job in running:
        job.signal_group(signal.SIGKILL)  # also catches children that ignored SIGTERM
        job.process.wait()
        job.finish(job.poll(), threads)


def main(argv):
    request, code = lc.request_or_exit_code(PROG, argv)
    if request is None:
        return code
    # --mem, --gpu and --time are checked but not enforced: on one machine every job shares
    # its memory and GPUs, and there is no scheduler to hold a limit.  They matter to the
    # Slurm/SGE launchers, which take the same command lines.
    limit = lc.max_parallel(request.options, lc.available_cpus())
    interrupt = lc.SignalFlag()
    try:
        failed = run_jobs(request, jobs_to_run(request), limit, interrupt)
    except OSError as error:  # e.g. the log folder cannot be created
        print(f"{PROG}: {error.filename or 'a job'}: {error.strerror}", file=sys.stderr)
        return 1
    if failed is None:
        name = signal.Signals(interrupt.signum).name
        print(f"{PROG}: stopped by {name}; running jobs were killed, logs are in "
              f"{request.log_pattern()}", file=sys.stderr)
        return 128 + interrupt.signum
    if failed:
        print(lc.failure_message(PROG, request, failed), file=sys.stderr)
        return 1
    return 0


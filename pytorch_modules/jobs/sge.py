"""Runs a recipe's parallel jobs on Grid Engine (SGE), with the calling form of launch_local.py.

usage:
  utils/launch_sge.py [--mem X] [--gpu N] [--num-threads N] [--max-jobs-run N] [--time T]
                      [--only-failed true] [--config FILE] JOB=1:N dir/log/name.JOB.log command...

The jobs go to Grid Engine as one array job (qsub -t 1-N -tc max-jobs-run) whose task i runs
job i through bash in the current directory, with the submitting shell's environment (qsub -V
in the config), so the project's venv and PATH carry over; the execution hosts must see this
directory at the same path, as with Kaldi's queue.pl.  Each log gets the local launcher's
header and footer.  The job script is dir/log/q/name.JOB.sh, SGE's own output of task i is
dir/log/q/name.i.out.

How the generic options become qsub options is set by conf/sge_launcher.conf (another with
--config FILE); see that file and cluster_launcher's "scheduler configs".  --time is passed as
H:MM:SS (SGE reads a bare number as seconds, where Slurm reads minutes) and --mem as a whole
number with a unit.

Waiting: the launcher polls instead of using `qsub -sync y`.  Each task writes its exit code
to dir/log/q/rc.<jobid>.<task> when it ends; the launcher watches for those files every second
and asks `qstat -g d` now and then (every 2 s, growing to 30 s) whether the tasks are still
queued or running, so a task killed before it could write its code (h_rt, qdel, lost host)
is reported instead of waited for, and one stuck in an error state (Eqw) is reported and
deleted.  Polling also lets Ctrl-C delete the job (qdel).  qsub -t takes one range only, so
--only-failed true submits the range from the first to the last failed job and the others
end at once without touching their logs.  Exits 0 when every job succeeds; otherwise prints
which log to read, like launch_local.py, and exits 1.
"""

import os

from pytorch_modules.jobs import cluster_launcher as cl


class GridEngine(cl.Scheduler):
    name = "SGE"
    prog = "launch_sge.py"
    default_config = "conf/sge_launcher.conf"
    task_id_var = "SGE_TASK_ID"
    job_id_var = "JOB_ID"
    output_task_pattern = "$TASK_ID"  # qsub's pseudo variable in -o paths (not a shell's)
    task_lists = False                # -t takes one range

    def option_value(self, name, value):
        if name == "mem":
            return cl.memory_for_scheduler(value)
        if name == "time":
            seconds = cl.time_in_seconds(value)
            return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return value

    def submit_command(self, base, tasks, max_jobs_run, job_name, output, script):
        limit = ["-tc", str(max_jobs_run)] if max_jobs_run else []
        return [*base, "-terse", "-t", f"{tasks[0]}-{tasks[-1]}", *limit, "-N", job_name,
                "-o", output, "-j", "y", "-S", "/bin/bash", "-wd", os.getcwd(), script]

    def parse_job_id(self, stdout):
        # -terse prints "jobid.first-last:step" for an array job.
        words = stdout.strip().split()
        job_id = words[-1].split(".")[0] if words else ""
        return job_id if job_id.isdigit() else None

    def task_states(self, job_id):
        # -g d lists every task of an array on its own line: job-ID prior name user state
        # date time [queue] slots ja-task-ID.  A job that has ended is not listed.
        rc, stdout, _ = cl.run_scheduler_command(["qstat", "-g", "d"])
        if rc != 0:
            return None
        states = {}
        for line in stdout.splitlines():
            words = line.split()
            if len(words) >= 8 and words[0] == job_id:
                for task in task_ids(words[-1]):
                    states[task] = words[4]
        return states

    def is_finished(self, state):
        # 'E' (e.g. Eqw) is SGE's error state: the task stays queued but never runs.
        return state is None or "E" in state

    def cancel(self, job_id):
        cl.run_scheduler_command(["qdel", job_id])


def task_ids(field):
    """The task ids in qstat's ja-task-ID field: '3', or a range like '2-5:1' or '1,4'."""
    ids = []
    for part in field.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        if not first.isdigit() or not (last or first).isdigit():
            continue
        step = int(step) if step.isdigit() else 1
        ids += range(int(first), int(last or first) + 1, step)
    return ids


def main(argv):
    return cl.run_on_cluster(GridEngine(), argv)


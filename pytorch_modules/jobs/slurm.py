"""Runs a recipe's parallel jobs on a Slurm cluster, with the calling form of launch_local.py.

usage:
  utils/launch_slurm.py [--mem X] [--gpu N] [--num-threads N] [--max-jobs-run N] [--time T]
                        [--only-failed true] [--config FILE] JOB=1:N dir/log/name.JOB.log command...

  utils/launch_slurm.py --mem 4G JOB=1:8 exp/log/feats.JOB.log \\
      python -m some.module data/split8/JOB/wav.scp exp/feats.JOB.ark

The jobs go to Slurm as one array job (sbatch --array=1-N%max-jobs-run) whose task i runs job
i through bash in the current directory, with the submitting shell's environment (sbatch
--export=ALL in the config), so the project's venv and PATH carry over; the cluster's nodes
must see this directory at the same path, as with Kaldi's slurm.pl.  Each log gets the local
launcher's header and footer.  The job script is dir/log/q/name.JOB.sh, Slurm's own output of
task i is dir/log/q/name.i.out.

How the generic options become sbatch options is set by conf/slurm_launcher.conf (another
with --config FILE); see that file and cluster_launcher's "scheduler configs".

Waiting: the launcher polls instead of using `sbatch --wait`.  Each task writes its exit code
to dir/log/q/rc.<jobid>.<task> when it ends; the launcher watches for those files every second
and asks squeue now and then (every 2 s, growing to 30 s) whether the tasks still exist, so a
task killed before it could write its code (time limit, out of memory, scancel, node failure)
is reported with its Slurm state instead of being waited for.  Polling also lets Ctrl-C
cancel the job (scancel) and rides out a slurmctld restart, and it does not depend on how
--wait reports the codes of array tasks.  Exits 0 when every job succeeds; otherwise prints
which log to read, like launch_local.py, and exits 1.
"""

import os

from pytorch_modules.jobs import cluster_launcher as cl

# States in which a task has ended for good (squeue --states=all lists them for MinJobAge).
FINISHED_STATES = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY",
                   "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED"}


class Slurm(cl.Scheduler):
    name = "Slurm"
    prog = "launch_slurm.py"
    default_config = "conf/slurm_launcher.conf"
    task_id_var = "SLURM_ARRAY_TASK_ID"
    job_id_var = "SLURM_ARRAY_JOB_ID"
    output_task_pattern = "%a"  # sbatch's filename pattern for the array index
    task_lists = True           # --array takes lists like 1-3,5

    def option_value(self, name, value):
        # sbatch reads only whole numbers with a unit (no 1.5G); --time takes our forms as is.
        return cl.memory_for_scheduler(value) if name == "mem" else value

    def submit_command(self, base, tasks, max_jobs_run, job_name, output, script):
        array = cl.array_spec(tasks) + (f"%{max_jobs_run}" if max_jobs_run else "")
        return [*base, "--parsable",
                f"--array={array}", f"--job-name={job_name}", f"--output={output}",
                f"--chdir={os.getcwd()}", script]

    def parse_job_id(self, stdout):
        # --parsable prints "jobid" or "jobid;cluster".
        words = stdout.strip().split(";")[0].split()
        return words[-1] if words and words[-1].isdigit() else None

    def task_states(self, job_id):
        rc, stdout, stderr = cl.run_scheduler_command(
            ["squeue", "--noheader", "--array", "--states=all", f"--jobs={job_id}",
             "--format=%K %T"])
        if rc != 0:
            # A job that ended more than MinJobAge ago is forgotten: all its tasks are done.
            return {} if "Invalid job id" in stderr else None
        states = {}
        for line in stdout.splitlines():
            words = line.split()
            if len(words) == 2 and words[0].isdigit():
                states[int(words[0])] = words[1]
        return states

    def is_finished(self, state):
        return state is None or state in FINISHED_STATES

    def cancel(self, job_id):
        cl.run_scheduler_command(["scancel", job_id])


def main(argv):
    return cl.run_on_cluster(Slurm(), argv)


"""What the cluster launchers share (utils/launch_slurm.py, utils/launch_sge.py; the local
launcher needs none of it): the scheduler config (conf/slurm_launcher.conf,
conf/sge_launcher.conf), the array job's script, and the waiting for its tasks
(run_on_cluster).  The calling form, logs and failure message are launcher_common's.
Standard library only.
"""

import dataclasses
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time

from pytorch_modules.jobs import launcher_common as lc

# ---- scheduler configs (Slurm and SGE launchers) -------------------------------------------
#
# A scheduler config maps the generic options to the scheduler's own, in the format of Kaldi's
# conf/queue.conf and conf/slurm.conf.  It is parsed, never run through a shell:
#
#   command sbatch --export=ALL        the submit program and the arguments every job gets
#   option mem=* --mem=$0              --mem X adds --mem=X ($0 is the value)
#   option mem=0                       --mem 0 adds nothing (an exact value beats '*')
#   default mem=2G                     the value used when the option is not given
#
# Words are split as a shell would ('#' starts a comment, quotes group words).  An option
# given on the command line (or by a default) that no line maps is an error, so that a job
# never silently runs without the memory or GPU it asked for.

# Option names in a config -> the launcher option they map.
CONFIG_OPTIONS = {"mem": "--mem", "gpu": "--gpu", "num_threads": "--num-threads",
                  "time": "--time"}
# Names Kaldi's configs have that these launchers handle themselves.
SET_BY_LAUNCHER = {
    "max_jobs_run": "--max-jobs-run is passed by the launcher itself (as the array's limit of "
                    "tasks running at once); remove this line",
    "name": "the job name is set by the launcher itself (from the log's name); remove this line",
}


class ConfigError(Exception):
    """A scheduler config is wrong, or cannot express an option; the message says where."""


@dataclasses.dataclass
class SchedulerConfig:
    path: str
    command: list | None = None  # the submit program and its fixed arguments
    option_args: dict = dataclasses.field(default_factory=dict)  # (name, value|"*") -> words
    defaults: dict = dataclasses.field(default_factory=dict)     # name -> value

    def scheduler_args(self, options, convert=lambda name, value: value):
        """The submit arguments that express the options, in CONFIG_OPTIONS order.

        convert(name, value) rewrites a value in the scheduler's own notation before it
        replaces $0 (e.g. --time 90 -> 1:30:00 for SGE, which reads a bare number as seconds).
        """
        args = []
        for name, flag in CONFIG_OPTIONS.items():
            value = getattr(options, lc.OPTION_PARSERS[flag][0])
            if value is None:
                value = self.defaults.get(name)
            if value is None:
                continue
            value = str(value)
            words = self.option_args.get((name, value), self.option_args.get((name, "*")))
            if words is None:
                raise ConfigError(
                    f"{self.path} has no 'option {name}=*' line, so {flag} {value} cannot be "
                    f"passed to the scheduler: add one, or leave out {flag}.")
            args += [word.replace("$0", convert(name, value)) for word in words]
        return args


def read_scheduler_config(path):
    """Parses a scheduler config file; raises ConfigError naming file:line on a mistake."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read the scheduler config {path}: {error.strerror}; "
                          f"give another with --config FILE.") from None
    config = SchedulerConfig(path)
    for number, line in enumerate(lines, 1):
        _read_config_line(config, f"{path}:{number}", line)
    if config.command is None:
        raise ConfigError(f"{path} has no 'command' line naming the submit program, "
                          f"like 'command sbatch --export=ALL'.")
    return config


def _read_config_line(config, where, line):
    try:
        words = shlex.split(line, comments=True)
    except ValueError as error:  # e.g. "No closing quotation"
        raise ConfigError(f"{where}: {error}.") from None
    if not words:
        return
    directive, rest = words[0], words[1:]
    if directive == "command":
        if not rest:
            raise ConfigError(f"{where}: 'command' needs the submit program after it.")
        if config.command is not None:
            raise ConfigError(f"{where}: a second 'command' line; keep one.")
        config.command = rest
    elif directive == "option":
        key = _config_setting(where, directive, rest)
        if key in config.option_args:
            raise ConfigError(f"{where}: a second 'option {key[0]}={key[1]}' line; keep one.")
        config.option_args[key] = rest[1:]
    elif directive == "default":
        name, value = _config_setting(where, directive, rest)
        if value == "*" or len(rest) > 1:
            raise ConfigError(f"{where}: expected 'default NAME=VALUE' with one value and "
                              f"nothing after it, like 'default gpu=0'.")
        config.defaults[name] = value
    else:
        raise ConfigError(f"{where}: unknown directive '{directive}': lines start with "
                          f"'command', 'option' or 'default'.")


def _config_setting(where, directive, rest):
    """The (name, value) of 'NAME=VALUE' after option/default, value checked like the option."""
    name, has_equals, value = rest[0].partition("=") if rest else ("", "", "")
    if not has_equals or not name or not value:
        raise ConfigError(f"{where}: expected '{directive} NAME=VALUE ...' like "
                          f"'{directive} mem=4G', got '{' '.join([directive, *rest])}'.")
    if name in SET_BY_LAUNCHER:
        raise ConfigError(f"{where}: {SET_BY_LAUNCHER[name]}.")
    if name not in CONFIG_OPTIONS:
        raise ConfigError(f"{where}: unknown option name '{name}': the names are "
                          f"{', '.join(CONFIG_OPTIONS)}.")
    if value != "*":
        flag = CONFIG_OPTIONS[name]
        try:
            value = str(lc.OPTION_PARSERS[flag][1](flag, value))  # '02' and '2' are one value
        except lc.UsageError as error:
            raise ConfigError(f"{where}: {error}") from None
    return name, value


def memory_for_scheduler(value):
    """A --mem value as a whole number with an upper-case unit, which Slurm and SGE both read.

    '4g' -> '4G', '1.5G' -> '1536M', '500' -> '500M' (a bare number is megabytes, as in Slurm;
    SGE would read it as bytes).
    """
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGTkmgt]?)", value)
    number, unit = float(match.group(1)), (match.group(2) or "M").upper()
    while number != int(number) and unit != "K":
        number, unit = number * 1024, "KMGT"["KMGT".index(unit) - 1]
    return f"{math.ceil(number)}{unit}"


def time_in_seconds(value):
    """Seconds in a --time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS."""
    days, _, clock = value.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:  # after the days come hours, then minutes and seconds
        hours, minutes, seconds = parts + [0] * (3 - len(parts))
    elif len(parts) == 1:
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = parts
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


# ---- cluster launchers (Slurm, SGE) --------------------------------------------------------
#
# A cluster launcher submits the jobs as one array job whose task i runs job i.  The job
# script (dir/log/q/<name>.sh, as Kaldi's queue.pl/slurm.pl keep theirs) writes the same log
# header and footer as the local launcher, then the task's exit code into a marker file
# dir/log/q/rc.<scheduler job id>.<task>.  The launcher waits by watching for the markers
# (cheap: one directory listing a second) and asks the scheduler now and then whether the
# tasks still exist, so that a task killed before it could write its marker (time or memory
# limit, cancelled, node lost) is noticed and reported instead of waited for forever.
# Keying markers by the scheduler's job id means a marker left by an earlier run can never
# be mistaken for this run's.

MARKER_POLL_SECONDS = 1.0     # how often the markers are looked for
FIRST_QUERY_SECONDS = 2.0     # first scheduler query; the interval then grows...
MAX_QUERY_SECONDS = 30.0      # ...to this, to spare the scheduler on long runs
# After the scheduler has let go of every task, how long a missing marker is still waited
# for: a shared file system may show a file written on a node some seconds late.
MARKER_GRACE_SECONDS = 10.0
QUERY_WARN_AFTER = 5          # failed scheduler queries in a row before a warning


class Scheduler:
    """What run_on_cluster needs to know about one scheduler; launch_slurm.py and
    launch_sge.py fill it in."""

    name = "?"                 # for messages: "Slurm"
    prog = "?"                 # the launcher's file name
    default_config = "?"       # relative to the current directory
    task_id_var = "?"          # the job environment's variable holding the task index
    job_id_var = "?"           # ... and the one holding the array job's id
    output_task_pattern = "?"  # how an output path names the task index in the submit command
    task_lists = True          # False: an array is one range, so tasks not asked for are skipped

    def option_value(self, name, value):
        """A generic option value ('4G', '1:00:00') in the scheduler's notation."""
        return value

    def submit_command(self, base, tasks, max_jobs_run, job_name, output, script):
        """The submit command line: base is the config's command plus the option arguments."""
        raise NotImplementedError

    def parse_job_id(self, stdout):
        """The job id in the submit command's output, or None."""
        raise NotImplementedError

    def task_states(self, job_id):
        """{task: state} for the tasks the scheduler still lists; None when it cannot tell."""
        raise NotImplementedError

    def is_finished(self, state):
        """True when a task in this state (None: not listed) will not run or write anything."""
        raise NotImplementedError

    def cancel(self, job_id):
        raise NotImplementedError


def run_scheduler_command(args, timeout=120):
    """Runs a scheduler client; returns (exit code, stdout, stderr), code 127 when missing."""
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        return 127, "", f"{args[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{args[0]} did not answer in {timeout} s"
    return done.returncode, done.stdout, done.stderr


def array_spec(tasks):
    """Sorted task ids as Slurm's --array list: [1, 2, 3, 5] -> '1-3,5'."""
    runs = []  # [first, last] of each run of consecutive ids
    for task in tasks:
        if runs and task == runs[-1][1] + 1:
            runs[-1][1] = task
        else:
            runs.append([task, task])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def job_name(request):
    """A scheduler job name from the log's name, e.g. exp/log/extract.JOB.log -> extract.

    Only letters, digits, '_', '.' and '-' are kept, and it starts with a letter: SGE refuses
    names starting with a digit or holding '/', ':', '@', '*' or '?'.
    """
    base = os.path.basename(request.log_template)
    base = base[:-len(".log")] if base.endswith(".log") else base
    if request.job_var:
        base = base.replace(request.job_var, "")
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base).strip("._-") or "job"
    return base if base[0].isalpha() else "j" + base


@dataclasses.dataclass
class ClusterFiles:
    """Where a cluster launcher call keeps its job script, task outputs and exit-code markers."""

    q_dir: str        # dir/log/q, absolute: the job may run in another directory
    base: str         # the log's file name without .log, JOB left in

    @classmethod
    def for_request(cls, request):
        log_dir = os.path.dirname(os.path.abspath(request.log_template))
        base = os.path.basename(request.log_template)
        base = base[:-len(".log")] if base.endswith(".log") else base
        return cls(os.path.join(log_dir, "q"), base)

    @property
    def script(self):
        return os.path.join(self.q_dir, self.base + ".sh")

    def output(self, request, task_pattern):
        """The scheduler's own output file of a task (the job script's errors land there)."""
        if request.job_var and request.job_var in self.base:
            name = self.base.replace(request.job_var, str(task_pattern))
        else:
            name = f"{self.base}.{task_pattern}"
        return os.path.join(self.q_dir, name + ".out")

    def marker(self, job_id, task):
        return os.path.join(self.q_dir, f"rc.{job_id}.{task}")


JOB_SCRIPT = """\
#!/usr/bin/env bash
# Job script of {prog}: {scheduler} array task N runs job N of the call below, logging like
# utils/launch_local.py, and then writes its exit code to {q_dir}/rc.<job id>.N.
#   log: {log_comment}
#   command: {command_comment}
# Submitted with: {submit_comment}
cd {cwd} || exit 1
task=${{{task_id_var}:?is not set: this script is run as a task of a {scheduler} array job}}
{skip_unasked}log={log_template}
command={command_template}
{substitute}marker={q_dir}/rc.${{{job_id_var}}}.$task
{thread_vars}stamp() {{ LC_ALL=C date '+%a %b %d %H:%M:%S %Z %Y'; }}
# {scheduler} sends SIGTERM before it kills a job (time limit, cancel); the command gets it too.
# The trap keeps this script alive so that it can still write the footer and the exit code.
trap 'echo "# Received SIGTERM at $(stamp)" >> "$log"' TERM
mkdir -p "$(dirname "$log")"
{{ printf '# %s\\n' "${{command//$'\\n'/$'\\n# '}}"; echo "# Started at $(stamp)"; }} > "$log"
start=$SECONDS
bash -c "$command" < /dev/null >> "$log" 2>&1
rc=$?
{{ echo "# Accounting: time=$((SECONDS - start)) threads={threads}"
  echo "# Ended (code $rc) at $(stamp)"; }} >> "$log"
echo "$rc" > "$marker.tmp.$$" && mv -f "$marker.tmp.$$" "$marker"
exit "$rc"
"""


def job_script(scheduler, request, files, tasks, submit):
    """The bash script every array task runs; `submit` is the submit command, for the record."""
    q = shlex.quote
    var = request.job_var
    substitute = ""
    if var:  # every occurrence, as Request.substitute does
        substitute = f'log=${{log//{var}/$task}}\ncommand=${{command//{var}/$task}}\n'
    skip_unasked = ""
    if not scheduler.task_lists and tasks != list(range(tasks[0], tasks[-1] + 1)):
        # The array is one range but only some tasks were asked for (--only-failed true):
        # the others end at once, leaving their logs alone.
        skip_unasked = (f'case " {" ".join(map(str, tasks))} " in *" $task "*) ;; '
                        f'*) exit 0 ;; esac  # not asked for\n')
    thread_vars = ""
    if request.options.num_threads:
        n = request.options.num_threads
        thread_vars = f"export OMP_NUM_THREADS={n} MKL_NUM_THREADS={n}\n"
    return JOB_SCRIPT.format(
        prog=scheduler.prog, scheduler=scheduler.name, q_dir=q(files.q_dir),
        log_comment=request.log_template,
        command_comment=request.command_template().replace("\n", " "),
        submit_comment=" ".join(map(q, submit)).replace("\n", " "),
        cwd=q(os.getcwd()), task_id_var=scheduler.task_id_var,
        job_id_var=scheduler.job_id_var, skip_unasked=skip_unasked,
        log_template=q(request.log_template), command_template=q(request.command_template()),
        substitute=substitute, thread_vars=thread_vars, threads=request.options.threads)


@dataclasses.dataclass
class TaskWatch:
    """The launcher's view of a submitted array job while it waits."""

    scheduler: Scheduler
    request: lc.Request
    files: ClusterFiles
    job_id: str
    tasks: list
    codes: dict = dataclasses.field(default_factory=dict)       # task -> exit code, or None
    last_state: dict = dataclasses.field(default_factory=dict)  # task -> scheduler's state

    def pending(self):
        return [task for task in self.tasks if task not in self.codes]

    def read_markers(self):
        try:
            present = set(os.listdir(self.files.q_dir))
        except FileNotFoundError:
            present = set()
        for task in self.pending():
            marker = self.files.marker(self.job_id, task)
            if os.path.basename(marker) in present:
                code = _read_code(marker)
                if code is not None:
                    self.codes[task] = code

    def read_footers(self):
        """Codes from the logs of tasks with no marker (their log was removed before submit,
        so a footer there is this run's)."""
        for task in self.pending():
            code = lc.log_exit_code(self.request.log_path(task))
            if code is not None:
                self.codes[task] = code

    def all_let_go(self):
        """Asks the scheduler; True when no pending task can still run, None if it can't tell."""
        states = self.scheduler.task_states(self.job_id)
        if states is None:
            return None
        for task in self.pending():
            if task in states:
                self.last_state[task] = states[task]
        return all(self.scheduler.is_finished(states.get(task)) for task in self.pending())


def _read_code(path):
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


def wait_for_tasks(watch, interrupt):
    """Waits until every task has an exit code or is known to have died without one.

    Returns False when a signal stopped the wait.  Tasks that died get code None.
    """
    interval = FIRST_QUERY_SECONDS
    next_query = time.monotonic() + interval
    let_go_at, failed_queries = None, 0
    while True:
        if interrupt.signum is not None:
            return False
        watch.read_markers()
        if not watch.pending():
            return True
        now = time.monotonic()
        if now >= next_query:
            let_go = watch.all_let_go()
            failed_queries = 0 if let_go is not None else failed_queries + 1
            if failed_queries == QUERY_WARN_AFTER:
                print(f"{watch.scheduler.prog}: cannot ask {watch.scheduler.name} about job "
                      f"{watch.job_id}; still waiting for its exit-code files in "
                      f"{watch.files.q_dir}", file=sys.stderr)
            if let_go:
                let_go_at = let_go_at or now
                watch.read_footers()
            elif let_go is False:
                let_go_at = None  # e.g. requeued after a node failure: running again
            interval = min(interval * 1.5, MAX_QUERY_SECONDS)
            next_query = now + (MARKER_POLL_SECONDS if let_go_at else interval)
        if let_go_at is not None and now - let_go_at >= MARKER_GRACE_SECONDS:
            for task in watch.pending():
                watch.codes[task] = None
            return True
        time.sleep(MARKER_POLL_SECONDS)


def report_lost_tasks(watch, output_of):
    """Says which tasks ended without an exit code, on stderr and at the end of their logs."""
    lost = [task for task in watch.tasks if watch.codes.get(task) is None]
    for task in lost:
        state = watch.last_state.get(task, "no longer listed")
        note = (f"job {task} ended without writing its exit code ({watch.scheduler.name} job "
                f"{watch.job_id}, state: {state}); the scheduler's output is in "
                f"{output_of(task)}")
        print(f"{watch.scheduler.prog}: {note}", file=sys.stderr)
        try:
            with open(watch.request.log_path(task), "a", encoding="utf-8") as log:
                log.write(f"# {note}\n")
        except OSError:
            pass
    return lost


def remove_markers(watch):
    for task in watch.tasks:
        try:
            os.remove(watch.files.marker(watch.job_id, task))
        except FileNotFoundError:
            pass


class SubmitError(Exception):
    """The scheduler refused the job or could not be reached; the message has its words."""


def submit(scheduler, request, base, tasks, files):
    """Writes the job script, clears the tasks' old logs and submits; returns the job id."""
    output = files.output(request, scheduler.output_task_pattern)
    command = scheduler.submit_command(base, tasks, request.options.max_jobs_run,
                                       job_name(request), output, files.script)
    os.makedirs(files.q_dir, exist_ok=True)
    with open(files.script, "w", encoding="utf-8") as script:
        script.write(job_script(scheduler, request, files, tasks, command))
    os.chmod(files.script, 0o755)
    for task in tasks:  # an old log's footer must not pass for this run's
        try:
            os.remove(request.log_path(task))
        except FileNotFoundError:
            pass
    rc, stdout, stderr = run_scheduler_command(command)
    job_id = scheduler.parse_job_id(stdout) if rc == 0 else None
    if job_id is None:
        said = (stderr.strip() or stdout.strip() or f"exit code {rc}").replace("\n", " | ")
        raise SubmitError(f"{scheduler.name} did not take the job ({command[0]} said: {said}); "
                          f"the command was: {' '.join(map(shlex.quote, command))}")
    return job_id


def run_on_cluster(scheduler, argv):
    """The whole of a cluster launcher: parse, submit, wait, collect exit codes, report."""
    prog = scheduler.prog
    request, code = lc.request_or_exit_code(prog, argv)
    if request is None:
        return code
    try:
        config = read_scheduler_config(request.options.config or scheduler.default_config)
        base = config.command + config.scheduler_args(request.options, scheduler.option_value)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    tasks = lc.jobs_to_run(prog, request)
    if not tasks:
        return 0
    files = ClusterFiles.for_request(request)
    interrupt = lc.SignalFlag()
    try:
        job_id = submit(scheduler, request, base, tasks, files)
    except SubmitError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. the log folder cannot be created
        print(f"{prog}: {error.filename or 'the job script'}: {error.strerror}", file=sys.stderr)
        return 1
    watch = TaskWatch(scheduler, request, files, job_id, tasks)
    if not wait_for_tasks(watch, interrupt):
        scheduler.cancel(job_id)
        name = signal.Signals(interrupt.signum).name
        print(f"{prog}: stopped by {name}; cancelled {scheduler.name} job {job_id}, logs are in "
              f"{request.log_pattern()}", file=sys.stderr)
        return 128 + interrupt.signum
    lost = report_lost_tasks(watch, lambda task: files.output(request, task))
    if lost:
        scheduler.cancel(job_id)  # e.g. SGE tasks stuck in an error state would stay queued
    remove_markers(watch)
    failed = sorted(task for task, code in watch.codes.items() if code != 0)
    if failed:
        print(lc.failure_message(prog, request, failed), file=sys.stderr)
        return 1
    return 0

"""What every job launcher of the recipe shares: local, Slurm and SGE.

All launchers take the calling form of Kaldi's run.pl / queue.pl / slurm.pl:

  LAUNCHER [options] [NAME=START:END] dir/log/name.NAME.log command args...

This module parses that form, expands the job range, builds each job's bash command line and
log path, writes the log header and footer, and words the failure message, so that the
launchers differ only in how they start and watch processes.  For the cluster launchers it
also reads the scheduler config (conf/slurm_launcher.conf, conf/sge_launcher.conf), writes the
array job's script and waits for its tasks (see run_on_cluster).  Standard library only.

  import launcher_common as lc
  request = lc.parse_request(sys.argv[1:])          # raises lc.UsageError on a bad command line
  for job in request.job_ids():
      lc.write_header(request.log_path(job), request.command(job))
      ...                                           # run it, appending its output to the log
      lc.append_footer(request.log_path(job), seconds, request.options.threads, rc)
"""

import dataclasses
import datetime
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time

USAGE = """\
usage: {prog} [options] [JOB=START:END] dir/log/name.JOB.log command [args...]
  Runs the command once per job index, with every occurrence of JOB (any variable name may be
  used) in the log path and the arguments replaced by the index; without a range it runs once.
  A single command argument is taken as a whole bash command line, so pipes work:
    {prog} JOB=1:4 exp/log/count.JOB.log "wc -l data/split4/JOB/wav.scp | tee exp/JOB.count"
options:
  --num-threads N     threads per job: sets OMP_NUM_THREADS and MKL_NUM_THREADS (default: 1)
  --max-jobs-run N    most jobs running at once (default: as many as there are CPUs)
  --mem SIZE          memory per job, like 4G or 500M
  --gpu N             GPUs per job (0 or more)
  --time LIMIT        time limit per job: minutes, or [D-]HH:MM:SS
  --only-failed BOOL  true: skip jobs whose log ends '# Ended (code 0)', redo the rest
  --config FILE       the Slurm/SGE launchers' scheduler config (default:
                      conf/slurm_launcher.conf or conf/sge_launcher.conf); the local one ignores it
Options may also be written --name=value."""


class UsageError(Exception):
    """The launcher's command line is wrong; the message says how."""


@dataclasses.dataclass
class Options:
    """The generic options; a launcher uses what it can (local ignores --mem/--gpu/--time).

    None means 'not given', so that a scheduler config's defaults can apply.
    """

    mem: str | None = None
    gpu: int | None = None
    num_threads: int | None = None  # None: not given, so the launcher leaves thread vars alone
    max_jobs_run: int | None = None
    time: str | None = None
    only_failed: bool = False
    config: str | None = None

    @property
    def threads(self):
        """Threads one job uses, as written to the log's accounting line."""
        return self.num_threads or 1


@dataclasses.dataclass
class Request:
    """One launcher call: the options, the job range and the command to run per job."""

    options: Options
    job_var: str | None  # e.g. "JOB"; None when no range was given (one job, no substitution)
    first: int
    last: int
    log_template: str
    command_args: list

    def job_ids(self):
        return range(self.first, self.last + 1)

    @property
    def num_jobs(self):
        return self.last - self.first + 1

    def substitute(self, text, job):
        # Like run.pl: every occurrence of the name is replaced, even inside a longer word.
        return text.replace(self.job_var, str(job)) if self.job_var else text

    def log_path(self, job):
        return self.substitute(self.log_template, job)

    def command(self, job):
        return command_line([self.substitute(arg, job) for arg in self.command_args])

    def command_template(self):
        """The command line with the job variable left in, for a job script to substitute.

        Substituting afterwards gives the same line as command(job): quoting only adds quote
        characters, which cannot be part of a variable name.
        """
        return command_line(self.command_args)

    def log_pattern(self):
        """The log path with the job index as '*', for messages about several jobs."""
        return self.substitute(self.log_template, "*")


def command_line(args):
    """Joins the command arguments into the line that `bash -c` runs.

    One argument is the whole command line ("a | b" stays a pipe).  With several, a word
    without whitespace is passed as is, as Kaldi's run.pl does, so an escaped \\| or \\> still
    acts as a pipe or redirection; an argument with whitespace (e.g. "ark:gunzip -c x.gz |")
    is quoted so that it reaches the program as one argument.
    """
    if len(args) == 1:
        return args[0]
    return " ".join(arg if arg and not _has_space(arg) else shlex.quote(arg) for arg in args)


def _has_space(text):
    return any(ch.isspace() for ch in text)


# ---- option values -------------------------------------------------------------------------

def _positive_int(option, value):
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise UsageError(f"{option} takes a whole number of 1 or more, not '{value}'.")
    return int(value)


def _non_negative_int(option, value):
    if not re.fullmatch(r"[0-9]+", value):
        raise UsageError(f"{option} takes a whole number of 0 or more, not '{value}'.")
    return int(value)


def _memory(option, value):
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?[KMGTkmgt]?", value):
        raise UsageError(f"{option} takes a memory size like 4G or 500M, not '{value}'.")
    return value


def _time_limit(option, value):
    # Slurm's forms: minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]].
    if not re.fullmatch(r"([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}", value):
        raise UsageError(f"{option} takes minutes or [D-]HH:MM:SS like 1:00:00, not '{value}'.")
    return value


def _file(option, value):
    if not value:
        raise UsageError(f"{option} takes a file name, not an empty string.")
    return value


def _boolean(option, value):
    if value not in ("true", "false"):
        raise UsageError(f"{option} takes true or false, not '{value}'.")
    return value == "true"


# option -> (field of Options, value parser)
OPTION_PARSERS = {
    "--mem": ("mem", _memory),
    "--gpu": ("gpu", _non_negative_int),
    "--num-threads": ("num_threads", _positive_int),
    "--max-jobs-run": ("max_jobs_run", _positive_int),
    "--time": ("time", _time_limit),
    "--only-failed": ("only_failed", _boolean),
    "--config": ("config", _file),
}

JOB_RANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(?::([0-9]+))?")
LOOKS_LIKE_RANGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


# ---- command line --------------------------------------------------------------------------

def parse_request(argv):
    """Parses [options] [NAME=START:END] [options] log command... into a Request.

    Options may come before and after the range, as run.pl allows.
    """
    options = Options()
    job_var, first, last = None, 1, 1
    args = list(argv)
    seen_range = False
    while args:
        if args[0].startswith("--"):
            _take_option(args, options)
        elif not seen_range and LOOKS_LIKE_RANGE.match(args[0]):
            job_var, first, last = _parse_range(args.pop(0))
            seen_range = True
        else:
            break
    if not args:
        raise UsageError("no log file given.")
    log_template = args.pop(0)
    if not args:
        raise UsageError(f"no command given after the log file {log_template}.")
    if job_var and last > first and job_var not in log_template:
        raise UsageError(f"{last - first + 1} jobs would all write to one log, "
                         f"{log_template}: put {job_var} in the log's name.")
    return Request(options, job_var, first, last, log_template, args)


def _take_option(args, options):
    """Removes one option (and its value) from the front of args into options."""
    name, has_value, value = args.pop(0).partition("=")
    if name not in OPTION_PARSERS:
        raise UsageError(f"unknown option {name}.")
    if not has_value:
        if not args:
            raise UsageError(f"option {name} needs a value.")
        value = args.pop(0)
    field, parse = OPTION_PARSERS[name]
    setattr(options, field, parse(name, value))


def _parse_range(spec):
    match = JOB_RANGE.fullmatch(spec)
    if not match:
        raise UsageError(f"bad job range '{spec}': expected NAME=START:END like JOB=1:4.")
    name, first = match.group(1), int(match.group(2))
    last = int(match.group(3)) if match.group(3) is not None else first
    if first > last:
        raise UsageError(f"bad job range '{spec}': the start is after the end.")
    return name, first, last


# ---- how many at once ----------------------------------------------------------------------

def available_cpus():
    """CPUs this process may use (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def max_parallel(options, cpus):
    """Jobs to run at once on a machine with `cpus` CPUs: each job takes --num-threads CPUs."""
    limit = max(1, cpus // options.threads)
    if options.max_jobs_run:
        limit = min(limit, options.max_jobs_run)
    return limit


# ---- logs ----------------------------------------------------------------------------------

def now():
    """The time as date(1) prints it, which is what Kaldi's logs show."""
    return datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y")


def header_text(command):
    # A multi-line command stays a block of '#' lines.
    return "# " + command.replace("\n", "\n# ") + "\n" + f"# Started at {now()}\n"


def footer_text(seconds, threads, rc):
    return (f"# Accounting: time={round(seconds)} threads={threads}\n"
            f"# Ended (code {rc}) at {now()}\n")


def write_header(log_path, command):
    """Starts a fresh log (creating its folder) with the command and start time."""
    log_dir = os.path.dirname(log_path)
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(header_text(command))


def append_footer(log_path, seconds, threads, rc):
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(footer_text(seconds, threads, rc))


def job_succeeded(log_path):
    """True when the log's last line says the job ended with code 0 (for --only-failed)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))  # logs can be large: the footer is at the end
            tail = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return False
    lines = tail.rstrip("\n").split("\n")
    return lines[-1].startswith("# Ended (code 0)")


MAX_SHOWN_ERRORS = 3  # failed jobs whose last line of output the failure message quotes


def failure_message(prog, request, failed):
    """The line telling the user which log to read (failed is the list of failed job ids),
    then the last line of output of the first few failed jobs: usually the error itself."""
    if request.num_jobs == 1:
        message = f"{prog}: job failed, log is in {request.log_path(failed[0])}"
    else:
        where = request.log_path(failed[0]) if len(failed) == 1 else request.log_pattern()
        message = f"{prog}: {len(failed)} / {request.num_jobs} failed, log is in {where}"
    quoted = []
    for job in failed[:MAX_SHOWN_ERRORS]:
        line = last_output_line(request.log_path(job))
        if line:
            quoted.append(f"  {request.log_path(job)}: {line}")
    return "\n".join([message] + quoted)


def last_output_line(log_path):
    """The last line a job wrote to its log, past the launcher's '# ' lines; None if none."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if line.strip() and not line.startswith("# "):
            return line.strip()
    return None


def exit_code(returncode):
    """A Popen return code as bash reports it: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def jobs_to_run(prog, request):
    """The job ids to run; with --only-failed true, those whose log does not end in success."""
    ids = list(request.job_ids())
    if not request.options.only_failed:
        return ids
    todo = [job for job in ids if not job_succeeded(request.log_path(job))]
    if len(todo) < len(ids):
        print(f"{prog}: skipping {len(ids) - len(todo)} of {len(ids)} jobs that already "
              f"succeeded (--only-failed true)", file=sys.stderr)
    return todo


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
            value = getattr(options, OPTION_PARSERS[flag][0])
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
            value = str(OPTION_PARSERS[flag][1](flag, value))  # '02' and '2' are one value
        except UsageError as error:
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


class SignalFlag:
    """Remembers a Ctrl-C / SIGTERM / SIGHUP so the waiting loop can cancel the job and stop.

    Signals that were ignored stay ignored (nohup, or started with & from a script).
    """

    def __init__(self):
        self.signum = None
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        self.signum = signum


@dataclasses.dataclass
class TaskWatch:
    """The launcher's view of a submitted array job while it waits."""

    scheduler: Scheduler
    request: Request
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
            code = log_exit_code(self.request.log_path(task))
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


def log_exit_code(log_path):
    """The code in a log's '# Ended (code N)' footer, or None when it has none."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            tail = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    match = re.match(r"# Ended \(code ([0-9]+)\)", tail.rstrip("\n").split("\n")[-1])
    return int(match.group(1)) if match else None


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
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=prog))
        return 0
    try:
        request = parse_request(argv)
    except UsageError as error:
        print(USAGE.format(prog=prog), file=sys.stderr)
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    try:
        config = read_scheduler_config(request.options.config or scheduler.default_config)
        base = config.command + config.scheduler_args(request.options, scheduler.option_value)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    tasks = jobs_to_run(prog, request)
    if not tasks:
        return 0
    files = ClusterFiles.for_request(request)
    interrupt = SignalFlag()
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
        print(failure_message(prog, request, failed), file=sys.stderr)
        return 1
    return 0

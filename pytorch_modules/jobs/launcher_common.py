"""What every job launcher of the recipe shares: local, Slurm and SGE.

All launchers take the calling form of Kaldi's run.pl / queue.pl / slurm.pl:

  LAUNCHER [options] [NAME=START:END] dir/log/name.NAME.log command args...

This module parses that form, expands the job range, builds each job's bash command line and
log path, writes the log header and footer, and words the failure message, so that the
launchers differ only in how they start and watch processes.  What only the cluster launchers
need (scheduler configs, array jobs, waiting for tasks) is in cluster_launcher.py.  Standard
library only.

  from pytorch_modules.jobs import launcher_common as lc
  request = lc.parse_request(sys.argv[1:])          # raises lc.UsageError on a bad command line
  for job in request.job_ids():
      lc.write_header(request.log_path(job), request.command(job))
      ...                                           # run it, appending its output to the log
      lc.append_footer(request.log_path(job), seconds, request.options.threads, rc)
"""

import dataclasses
import datetime
import os
import re
import shlex
import signal
import sys

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

def request_or_exit_code(prog, argv):
    """(request, None) for a launcher's command line, or (None, exit code) when it asked for
    --help (0: the usage was printed) or was wrong (1: the usage and the error were printed)."""
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=prog))
        return None, 0
    try:
        return parse_request(argv), None
    except UsageError as error:
        print(USAGE.format(prog=prog), file=sys.stderr)
        print(f"{prog}: {error}", file=sys.stderr)
        return None, 1


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
        for line in (last_output_line(request.log_path(job)),
                     signal_sentence(log_exit_code(request.log_path(job)))):
            if line:
                quoted.append(f"  {request.log_path(job)}: {line}")
    return "\n".join([message] + quoted)


def signal_sentence(code):
    """What a job's exit code says when a signal ended it (bash's 128 + N), in words; None
    for an ordinary exit.  A job killed by the kernel leaves no message of its own."""
    if code is None or code <= 128:
        return None
    try:
        name = signal.Signals(code - 128).name
    except ValueError:
        return None
    if name == "SIGKILL":
        why = ("often the kernel's out-of-memory killer (check `dmesg` or the scheduler's "
               "accounting): give the job more memory (--mem) or make it need less (for "
               "training, a smaller data.batch_size or fewer data.num_workers)")
    elif name in ("SIGTERM", "SIGINT", "SIGHUP"):
        why = "stopped from outside: by a user, or by the scheduler (a time limit, a cancel)"
    else:
        why = "it crashed; rerun it to see whether it happens again"
    return f"killed by signal {code - 128} ({name}): {why}"


def log_tail(log_path):
    """The last 4 KiB of a log as text (the footer and the last lines of output); None when
    it cannot be read."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return None


def last_output_line(log_path):
    """The last line a job wrote to its log, past the launcher's '# ' lines; None if none."""
    tail = log_tail(log_path)
    if tail is None:
        return None
    for line in reversed(tail.splitlines()):
        if line.strip() and not line.startswith("# "):
            return line.strip()
    return None


def log_exit_code(log_path):
    """The code in a log's '# Ended (code N)' footer, or None when it has none."""
    tail = log_tail(log_path)
    if tail is None:
        return None
    match = re.match(r"# Ended \(code ([0-9]+)\)", tail.rstrip("\n").split("\n")[-1])
    return int(match.group(1)) if match else None


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


# ---- signals -------------------------------------------------------------------------------

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



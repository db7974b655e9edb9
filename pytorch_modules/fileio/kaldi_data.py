"""The Kaldi data formats, their one home: each data-dir file's line format (SPECS), a one-pass
scan of a file for format and order problems, the readers of utt2spk, spk2utt, id lists, scp
tables and trials, whose errors name the file and line and say what to do, and C-order sorting.
Writing goes through fileio/atomic.py (whole files or none).

Standard library only (numpy inside read_trials), so that utils/data_dir.py, the tool behind the
utils/ scripts, runs with the system python3 before the environment exists; the corpus
preparations (data/corpus_prep.py) and the training and scoring code read the same formats
here.  Files are read as streams of (line number, text, fields) tuples rather than objects: a
VoxCeleb2 directory has a million lines per file, and the tools must stay quick and small.
"""
import dataclasses
import sys

from pytorch_modules.errors import RecipeError

# Files with one line per utterance, besides utt2spk: fix and split keep them in step.
PER_UTT_FILES = ("wav.scp", "feats.scp", "utt2num_frames", "utt2dur")

MAX_REPORTED = 5  # problems or ids listed per kind before "and N more"

# Paths and ids may hold bytes that are not UTF-8; surrogateescape carries them through.
TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}


class DataError(RecipeError):
    """Bad input; the message names the file or line and says what to do."""


# ---- reading and writing -------------------------------------------------------------------

def c_key(text):
    """Sort key giving C (bytewise) order, the order of `LC_ALL=C sort`."""
    return text.encode("utf-8", "surrogateescape")


def c_sorted(ids):
    return sorted(ids, key=c_key)


def iter_lines(stream):
    """(line number from 1, text without the newline, whitespace-split fields) per line."""
    for number, raw in enumerate(stream, 1):
        yield number, raw.rstrip("\n"), raw.split()


def open_input(path):
    """A file, or stdin when path is None or '-'."""
    if path in (None, "-"):
        return open(sys.stdin.fileno(), closefd=False, **TEXT)
    return open(path, **TEXT)


def input_name(path):
    return "stdin" if path in (None, "-") else path


def write_stdout(lines):
    with open(sys.stdout.fileno(), "w", closefd=False, **TEXT) as out:
        out.writelines(line + "\n" for line in lines)


def plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def first_few(ids):
    """'a', 'b', 'c' ... for messages: the first MAX_REPORTED ids in C order."""
    shown = ", ".join(f"'{i}'" for i in c_sorted(ids)[:MAX_REPORTED])
    return shown + (", ..." if len(ids) > MAX_REPORTED else "")


# ---- file formats --------------------------------------------------------------------------

def _positive_int(value):
    return value.isdigit() and int(value) > 0


def _positive_float(value):
    try:
        return float(value) > 0
    except ValueError:
        return False


@dataclasses.dataclass
class FileSpec:
    form: str                 # what a line looks like, for messages
    min_fields: int
    max_fields: int | None = None
    value_ok: object = None   # check of the second field, or None
    value_kind: str = ""      # what value_ok wants, for messages
    sorted: bool = True       # first fields sorted (C order) and unique


SPECS = {
    "utt2spk": FileSpec("utt spk", 2, 2),
    "spk2utt": FileSpec("spk utt1 utt2 ...", 2),
    "wav.scp": FileSpec("utt path-or-command", 2),
    "feats.scp": FileSpec("utt ark-path:offset", 2),
    "utt2num_frames": FileSpec("utt frames", 2, 2, _positive_int, "a positive whole number"),
    "utt2dur": FileSpec("utt seconds", 2, 2, _positive_float, "a positive number"),
    "trials": FileSpec("enroll test target|nontarget", 3, 3, sorted=False),
}


def line_problem(fields, text, spec):
    """What is wrong with one line's format, or None."""
    n = len(fields)
    if n == 0:
        return "is empty"
    if n < spec.min_fields or (spec.max_fields and n > spec.max_fields):
        want = (f"{spec.min_fields}" if spec.max_fields == spec.min_fields
                else f"at least {spec.min_fields}")
        return f"has {n} fields, expected {want} ('{spec.form}'): '{text}'"
    if spec.value_ok and not spec.value_ok(fields[1]):
        return f"value '{fields[1]}' for '{fields[0]}' is not {spec.value_kind}"
    if spec is SPECS["trials"] and fields[2] not in ("target", "nontarget"):
        return f"the third field is '{fields[2]}', expected target or nontarget"
    return None


def order_problem(prev, key, seen):
    """What is wrong with id `key` following id `prev` in a sorted file, or None.

    seen maps the ids met so far to their line numbers.  Only neighbours are compared, so one
    misplaced line gives one message, not one for every line after it.
    """
    if key in seen:
        return f"duplicate id '{key}' (also on line {seen[key]})"
    if prev is not None and c_key(key) < c_key(prev):
        return f"'{key}' comes after '{prev}' but must come before it (C order)"
    return None


@dataclasses.dataclass
class Scan:
    """One pass over a file: its problems, and what later checks need from it."""

    problems: list
    ids: dict       # first field -> line number, for the well-formed lines of a sorted file
    rows: list      # fields of the well-formed lines, when asked for
    num_lines: int = 0


def scan_file(path, spec, keep_rows=False):
    """Checks the format and order of every line of a file, in one pass."""
    scan, prev = Scan([], {}, []), None
    with open(path, **TEXT) as f:
        for number, text, fields in iter_lines(f):
            scan.num_lines = number
            problem = line_problem(fields, text, spec)
            if problem is None and spec.sorted:
                problem = order_problem(prev, fields[0], scan.ids)
                scan.ids.setdefault(fields[0], number)
                prev = fields[0]
            if problem:
                scan.problems.append(f"{path} line {number}: {problem}")
            elif keep_rows:
                scan.rows.append(fields)
    return scan


def summarize(problems):
    """At most MAX_REPORTED problems, then a count of the rest."""
    shown = problems[:MAX_REPORTED]
    if len(problems) > MAX_REPORTED:
        shown.append(f"... and {len(problems) - MAX_REPORTED} more problems like these")
    return shown


# ---- speaker files and id lists -------------------------------------------------------------

def spk2utt_of(utt2spk):
    """[(spk, [utts])] from (utt, spk) pairs: speakers and their utterances in C order."""
    by_speaker = {}
    for utt, spk in utt2spk:
        by_speaker.setdefault(spk, []).append(utt)
    return [(spk, c_sorted(by_speaker[spk])) for spk in c_sorted(by_speaker)]


def spk2utt_lines(utt2spk):
    return [f"{spk} {' '.join(utts)}" for spk, utts in spk2utt_of(utt2spk)]


def read_utt2spk(path):
    """[(utt, spk)] from a utt2spk file or stdin, checking the format line by line."""
    pairs, seen = [], {}
    with open_input(path) as f:
        for number, text, fields in iter_lines(f):
            if len(fields) != 2:
                raise DataError(f"{input_name(path)} line {number}: expected 'utt spk', "
                                f"got '{text}'.")
            _check_new_utterance(path, number, fields[0], seen)
            pairs.append((fields[0], fields[1]))
    return pairs


def read_spk2utt_rows(path):
    """[(line number, speaker, [utt, ...])] of a spk2utt file or stdin, in file order (also the
    enrollment models of trials, a model per line)."""
    rows = []
    with open_input(path) as f:
        for number, text, fields in iter_lines(f):
            if len(fields) < 2:
                raise DataError(f"{input_name(path)} line {number}: expected "
                                f"'spk utt1 utt2 ...', got '{text}'.")
            rows.append((number, fields[0], fields[1:]))
    if not rows:
        raise DataError(f"{input_name(path)} is empty; a spk2utt file lists at least one "
                        f"speaker.")
    return rows


def read_spk2utt(path):
    """[(utt, spk)] from a spk2utt file or stdin; an utterance has one speaker."""
    pairs, seen = [], {}
    for number, spk, utts in read_spk2utt_rows(path):
        for utt in utts:
            _check_new_utterance(path, number, utt, seen)
            pairs.append((utt, spk))
    return pairs


def _check_new_utterance(path, number, utt, seen):
    if utt in seen:
        raise DataError(f"{input_name(path)} line {number}: utterance '{utt}' is also on line "
                        f"{seen[utt]}; each utterance has one speaker.")
    seen[utt] = number


def read_ids(path):
    """The first column of an id list, a file or stdin for '-' (blank lines ignored)."""
    with open_input(path) as f:
        return {line.split()[0] for line in f if line.strip()}


# ---- tables of the training and scoring code ------------------------------------------------

def read_scp_lines(path) -> list[tuple[str, str]]:
    """(key, value) pairs of a Kaldi scp/table file: first field, then the rest of the line."""
    pairs = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, value = line.partition(" ")
            if not value.strip():
                raise DataError(f"{path}:{number}: expected '<id> <value>', got '{line}'")
            pairs.append((key, value.strip()))
    return pairs


def read_trials(path, warn=None):
    """Read Kaldi trials.

    Returns (enroll ids, test ids, labels): labels is an int8 array, 1 = target and
    0 = nontarget, or None when the file has no label column.  Blank lines are skipped.  A
    trial listed again is kept once (it would otherwise count twice in EER and minDCF), with
    a warning through `warn` (default: stderr); listed again with the other label, it is an
    error naming both lines."""
    import numpy as np  # here, not at the top: the utils/ tools run without numpy
    enroll, test, labels = [], [], []
    n_fields = None
    first_line = {}     # (enroll, test) -> (line number, label)
    repeats = []        # (line number, line number of the first listing)
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if n_fields is None:
                n_fields = len(fields)  # the first trial decides labelled vs unlabelled
            if len(fields) != n_fields or n_fields not in (2, 3) or (
                    n_fields == 3 and fields[2] not in ("target", "nontarget")):
                raise DataError(
                    f"{path}:{line_no}: malformed trial {line.rstrip()!r}; expected "
                    f"'ENROLL TEST target|nontarget' (or 'ENROLL TEST' on every line for "
                    f"unlabelled trials).")
            pair, label = (fields[0], fields[1]), fields[2:]
            if pair in first_line:
                first_no, first_label = first_line[pair]
                if first_label != label:
                    raise DataError(
                        f"{path}:{line_no}: trial '{pair[0]} {pair[1]}' is {label[0]} here but "
                        f"{first_label[0]} on line {first_no}; a trial has one label, correct "
                        f"the list.")
                repeats.append((line_no, first_no))
                continue
            first_line[pair] = (line_no, label)
            enroll.append(fields[0])
            test.append(fields[1])
            if n_fields == 3:
                labels.append(fields[2] == "target")
    if not enroll:
        raise DataError(f"{path} holds no trials.")
    if repeats:
        (warn or _warn_on_stderr)(
            f"warning: {path} lists {len(repeats)} trial(s) again (first: line {repeats[0][0]}, "
            f"the trial of line {repeats[0][1]}); each trial is scored and counted once.")
    return enroll, test, (np.array(labels, dtype=np.int8) if n_fields == 3 else None)


def _warn_on_stderr(message: str) -> None:
    print(message, file=sys.stderr)

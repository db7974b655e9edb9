"""The Kaldi data formats, their one home: each data-dir file's line format (SPECS), a one-pass
scan of a file for format and order problems, the readers of utt2spk, spk2utt, id lists, scp
tables and trials, whose errors name the file and line and say what to do, and C-order sorting.
Writing goes through fileio/atomic.py (whole files or none).

Standard library only (numpy inside read_trials and its helpers), so that the data-dir tools
(fileio/data_dir.py), the tool behind the utils/ scripts, runs with the system python3 before the
environment exists; the corpus preparations (data/corpus_prep.py) and the training and scoring code
read the same formats here.  Files are read as streams of (line number, text, fields) tuples rather
than objects (trials, read whole and split with NumPy, excepted): a VoxCeleb2 directory has a
million lines per file, and the tools must stay quick and small.
"""
import dataclasses
import itertools
import sys

from pytorch_modules.errors import RecipeError

# Files with one line per utterance, besides utt2spk: fix and split keep them in step.
PER_UTT_FILES = ("wav.scp", "feats.scp", "utt2num_frames", "utt2dur")

MAX_REPORTED = 5  # problems or ids listed per kind before "and N more"

# Paths and ids may hold bytes that are not UTF-8; surrogateescape carries them through.
TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}


class DataError(RecipeError):
    """Bad input; the message names the file or line and says what to do."""


# ---- ids ------------------------------------------------------------------------------------

def id_problem(key) -> str | None:
    """Why `key` cannot be an id (the first field) of a Kaldi table, else None: every table
    the recipe writes must be readable by the recipe, so ids are checked where they are made
    (data preparation, embed), not when a later stage reads them."""
    if not key:
        return "it is empty"
    if any(c.isspace() for c in key):
        return "it holds whitespace, which ends an id in Kaldi tables"
    return None


def safe_id(text: str) -> str:
    """An id made from `text` (e.g. a file path): its whitespace runs turned into '_'."""
    return "_".join(text.split())


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
        spaced = " (an id with a space in it?)" if spec.max_fields and n > spec.max_fields else ""
        return f"has {n} fields, expected {want} ('{spec.form}'): '{text}'{spaced}"
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


# Whitespace as str.split() sees it (str.isspace), in UTF-8: these ASCII bytes, and the wider
# characters' byte sequences (tests/test_scoring.py checks both against str.isspace).
_ASCII_SPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_WIDE_SPACE = tuple(chr(c).encode("utf-8") for c in (0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                                     0x2028, 0x2029, 0x202F, 0x205F, 0x3000))
_LABELS = ("nontarget", "target")  # label code -> word
_id_hash = hash  # of the ids, to find repeated trials (a test makes it collide)


def read_trials(path, warn=None, with_lines=False):
    """Read Kaldi trials.

    Returns (enroll ids, test ids, labels): labels is an int8 array, 1 = target and
    0 = nontarget, or None when the file has no label column.  Blank lines are skipped.  A
    trial listed again is kept once (it would otherwise count twice in EER and minDCF), with
    a warning through `warn` (default: stderr); listed again with the other label, it is an
    error naming both lines.  with_lines=True adds a fourth item, each kept trial's line
    number (int64 array, from 1).

    One vectorised pass, no Python loop per trial (a Vox1-E list has 580,000 lines): NumPy
    finds the lines and fields in the file's bytes, the ids are one str.split() of the whole
    text, and repeated trials are found by sorting a 64-bit hash of each trial.  The first
    problem in file order is the one reported, as a line-by-line reader would."""
    import numpy as np  # here, not at the top: the utils/ tools run without numpy
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: byte {e.start} is not UTF-8 text ({e.reason}); a trial "
                        f"list is text: check the file's encoding") from None
    lay = _trial_layout(data)
    n_fields = int(lay.counts[0]) if len(lay.counts) else 0  # the first trial decides
    wrong = np.flatnonzero(lay.counts != n_fields)
    valid = 0 if n_fields not in (2, 3) else int(wrong[0]) if wrong.size else len(lay.counts)
    fields = text.split()  # trial line k's are fields[k * n_fields:] while k < valid
    del text
    if len(fields) != len(lay.starts):
        raise AssertionError(f"{path}: fields found unlike str.split()")  # cannot happen
    step = max(n_fields, 1)  # 0 for a file without trials
    enroll, test = fields[0:valid * step:step], fields[1:valid * step:step]
    codes = None
    if n_fields == 3:
        words = fields[2:valid * 3:3]
        if words.count("target") + words.count("nontarget") != len(words):
            known = np.fromiter(map(_LABELS.__contains__, words), dtype=bool, count=valid)
            valid = int(np.argmin(known))  # the first other word
            del enroll[valid:], test[valid:]
        third = lay.first[:valid] + 2
        codes = (lay.ends[third] - lay.starts[third] == len("target")).astype(np.int8)
    numbers = lay.lines[:valid] + 1
    first = _first_listings(enroll, test)
    repeats = np.flatnonzero(first != np.arange(valid))
    if codes is not None:
        conflicts = repeats[codes[repeats] != codes[first[repeats]]]
        if conflicts.size:  # the first one: a reader line by line stops there
            i = conflicts[0]
            raise DataError(
                f"{path}:{numbers[i]}: trial '{enroll[i]} {test[i]}' is {_LABELS[codes[i]]} "
                f"here but {_LABELS[codes[first[i]]]} on line {numbers[first[i]]}; a trial has "
                f"one label, correct the list.")
    if valid < len(lay.counts):
        line = lay.lines[valid]
        begin = lay.breaks[line - 1] + 1 if line else 0
        stop = lay.breaks[line] if line < len(lay.breaks) else len(data)
        raise DataError(
            f"{path}:{line + 1}: malformed trial {data[begin:stop].decode('utf-8').rstrip()!r}; "
            f"expected 'ENROLL TEST target|nontarget' (or 'ENROLL TEST' on every line for "
            f"unlabelled trials).")
    if not enroll:
        raise DataError(f"{path} holds no trials.")
    if repeats.size:
        (warn or _warn_on_stderr)(
            f"warning: {path} lists {len(repeats)} trial(s) again (first: line "
            f"{numbers[repeats[0]]}, the trial of line {numbers[first[repeats[0]]]}); each "
            f"trial is scored and counted once.")
        kept = first == np.arange(valid)
        enroll = list(itertools.compress(enroll, kept.tobytes()))  # bytes: 0 or 1 per trial
        test = list(itertools.compress(test, kept.tobytes()))
        numbers = numbers[kept]
        codes = None if codes is None else codes[kept]
    trials = enroll, test, codes
    return trials + (numbers,) if with_lines else trials


@dataclasses.dataclass
class _TrialLayout:
    """Where a file's fields and lines are (NumPy arrays; lines numbered from 0)."""

    starts: object  # byte offset of each field
    ends: object    # byte offset after each field
    first: object   # per non-blank line: the index of its first field
    counts: object  # per non-blank line: how many fields it has
    lines: object   # per non-blank line: its line number
    breaks: object  # byte offset of each line break


def _trial_layout(data):
    """The fields (whitespace as str.split() sees it) and lines (breaks as Python's text
    files see them: \\n, \\r\\n or \\r) of UTF-8 bytes."""
    import numpy as np
    b = np.frombuffer(data, dtype=np.uint8)
    space = np.ones(len(b) + 2, dtype=bool)  # per byte, with a space before and after
    scratch = np.empty(len(b) + 1, dtype=bool)  # the one temporary of the text's size
    breaks = np.flatnonzero(np.equal(b, 10, out=scratch[1:]))
    np.less_equal(b, 32, out=space[1:-1])  # exact if no byte below 28 but \n is there
    if np.count_nonzero(np.less(b, 28, out=scratch[1:])) != len(breaks):  # tabs, \r, ...
        table = np.zeros(256, dtype=bool)
        table[list(_ASCII_SPACE)] = True
        space[1:-1] = table[b]
        if b"\r" in data:
            lone_cr = b == 13
            lone_cr[:-1] &= b[1:] != 10  # \r\n is one break, at its \n
            breaks = np.flatnonzero((b == 10) | lone_cr)
    if not data.isascii():
        leads = np.flatnonzero((b == 0xC2) | ((b >= 0xE1) & (b <= 0xE3)))
        for seq in _WIDE_SPACE:
            at = leads[(b[leads] == seq[0]) & (leads + len(seq) <= len(b))]
            for k in range(1, len(seq)):
                at = at[b[at + k] == seq[k]]
            for k in range(len(seq)):
                space[at + k + 1] = True
    edges = np.flatnonzero(np.not_equal(space[1:], space[:-1], out=scratch))
    starts, ends = edges[0::2], edges[1::2]  # a field starts and ends where space changes
    bounds = np.concatenate(([0], np.searchsorted(starts, breaks), [len(starts)]))
    per_line = np.diff(bounds)  # fields on each line, blank ones too
    lines = np.flatnonzero(per_line)
    return _TrialLayout(starts, ends, bounds[lines], per_line[lines], lines, breaks)


def _first_listings(enroll, test):
    """Per trial, the index of the first trial with the same ids (its own if none before).

    Trials are sorted by a 64-bit mix of the two ids' hashes: unequal keys mean unequal
    trials, and only the trials whose key is shared are compared as strings."""
    import numpy as np
    n = len(enroll)
    first = np.arange(n)
    if n < 2:
        return first
    key = np.fromiter(map(_id_hash, enroll), dtype=np.int64, count=n).view(np.uint64)
    key *= np.uint64(0x9E3779B97F4A7C15)  # odd: one-to-one, wrapping mod 2**64
    key ^= np.fromiter(map(_id_hash, test), dtype=np.int64, count=n).view(np.uint64)
    order = np.argsort(key)
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return first
    shared = np.zeros(n, dtype=bool)
    shared[1:] = same
    shared[:-1] |= same
    candidates = np.sort(order[shared]).tolist()  # in file order: a first listing first
    seen = {}
    pairs = zip(map(enroll.__getitem__, candidates), map(test.__getitem__, candidates))
    first[candidates] = np.fromiter(map(seen.setdefault, pairs, candidates), dtype=np.int64,
                                    count=len(candidates))
    return first


def _warn_on_stderr(message: str) -> None:
    print(message, file=sys.stderr)

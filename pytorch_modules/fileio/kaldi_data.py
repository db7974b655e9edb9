"""The Kaldi tables the recipe's Python code reads: scp and other key-value tables, spk2utt and
trials.  Each error names the file and line and says what to do.  NumPy and the standard library
only (no torch).  (utils/data_dir.py, the standard-library tool behind the utils/ scripts,
validates, fixes and splits whole data dirs; pytorch_modules/data/corpus_prep.py writes them.)
"""
import sys

import numpy as np

from pytorch_modules.errors import RecipeError


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
                raise RecipeError(f"{path}:{number}: expected '<id> <value>', got '{line}'")
            pairs.append((key, value.strip()))
    return pairs


def read_spk2utt(path):
    """[(line number, model, [utt, ...]), ...] of a Kaldi spk2utt file, in file order."""
    models = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 2:
                raise RecipeError(f"{path}:{line_no}: expected 'MODEL UTT [UTT ...]', "
                                  f"got {line.rstrip()!r}")
            models.append((line_no, fields[0], fields[1:]))
    if not models:
        raise RecipeError(f"{path} lists no models")
    return models


def read_trials(path, warn=None):
    """Read Kaldi trials.

    Returns (enroll ids, test ids, labels): labels is an int8 array, 1 = target and
    0 = nontarget, or None when the file has no label column.  Blank lines are skipped.  A
    trial listed again is kept once (it would otherwise count twice in EER and minDCF), with
    a warning through `warn` (default: stderr); listed again with the other label, it is an
    error naming both lines."""
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
                raise RecipeError(
                    f"{path}:{line_no}: malformed trial {line.rstrip()!r}; expected "
                    f"'ENROLL TEST target|nontarget' (or 'ENROLL TEST' on every line for "
                    f"unlabelled trials).")
            pair, label = (fields[0], fields[1]), fields[2:]
            if pair in first_line:
                first_no, first_label = first_line[pair]
                if first_label != label:
                    raise RecipeError(
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
        raise RecipeError(f"{path} holds no trials.")
    if repeats:
        (warn or _warn_on_stderr)(
            f"warning: {path} lists {len(repeats)} trial(s) again (first: line {repeats[0][0]}, "
            f"the trial of line {repeats[0][1]}); each trial is scored and counted once.")
    return enroll, test, (np.array(labels, dtype=np.int8) if n_fields == 3 else None)


def _warn_on_stderr(message: str) -> None:
    print(message, file=sys.stderr)

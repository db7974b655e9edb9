"""Tools for Kaldi data directories: check, fix, split, and convert their files.

usage (the Kaldi-named wrappers in utils/ call these):
  data_dir.py validate [--no-feats] [--no-wav] DATA_DIR        utils/validate_data_dir.sh
  data_dir.py fix DATA_DIR                                     utils/fix_data_dir.sh
  data_dir.py split [--per-utt] DATA_DIR N                     utils/split_data.sh
  data_dir.py utt2spk-to-spk2utt [UTT2SPK]                     utils/utt2spk_to_spk2utt.py
  data_dir.py spk2utt-to-utt2spk [SPK2UTT]                     utils/spk2utt_to_utt2spk.py
  data_dir.py filter-scp [--exclude] [-f FIELD] ID_LIST [SCP]  utils/filter_scp.py
  data_dir.py unscorable TRIALS ENROLL_IDS TEST_IDS             utils/unscorable_trials.sh
  data_dir.py shared-speakers EVAL_DIR TRAIN_DIR                utils/shared_speakers.sh

A data directory holds, one line per utterance or speaker, each file sorted bytewise (C order,
`LC_ALL=C sort`) on a unique first field:
  utt2spk          utt spk                (required)
  spk2utt          spk utt1 utt2 ...      (required; the same pairs as utt2spk)
  wav.scp          utt path, or utt command ... |
  feats.scp        utt ark-path:offset
  utt2num_frames   utt frames             (a positive whole number)
  utt2dur          utt seconds            (a positive number)
  trials           enroll test target|nontarget   (any order; ids need not be utterances)
Only the standard library is used, so these run before the Python environment exists.
"""

import argparse
import dataclasses
import os
import shutil
import sys

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.data_dir_split import run_split
from pytorch_modules.fileio.kaldi_data import (
    PER_UTT_FILES,
    SPECS,
    TEXT,
    DataError,
    c_key,
    c_sorted,
    first_few,
    input_name,
    iter_lines,
    line_problem,
    open_input,
    plural,
    read_ids,
    read_spk2utt,
    read_utt2spk,
    scan_file,
    spk2utt_lines,
    summarize,
    write_stdout,
)

# Kaldi names of the subcommands, used in messages since those are what users type.
PROGS = {
    "validate": "validate_data_dir.sh",
    "fix": "fix_data_dir.sh",
    "split": "split_data.sh",
    "utt2spk-to-spk2utt": "utt2spk_to_spk2utt.py",
    "spk2utt-to-utt2spk": "spk2utt_to_utt2spk.py",
    "filter-scp": "filter_scp.py",
    "combine": "combine_data.sh",
    "unscorable": "unscorable_trials.sh",
    "shared-speakers": "shared_speakers.sh",
}

# ---- validate ------------------------------------------------------------------------------

def validate_data_dir(data_dir, need_feats=True, need_wav=True):
    """Checks data_dir; returns (problems, warnings), both lists of sentences."""
    if not os.path.isdir(data_dir):
        return [f"{data_dir} is not a directory."], []
    required = {"utt2spk", "spk2utt"} | ({"feats.scp"} if need_feats else set()) \
        | ({"wav.scp"} if need_wav else set())
    problems, agreement, warnings = [], [], []
    utt2spk = None  # utt -> spk, once utt2spk is read; the other files are compared with it
    for name, spec in SPECS.items():  # utt2spk comes first
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            if name in required:
                problems.append(f"{path} is missing{_missing_hint(name, data_dir)}")
            continue
        scan = scan_file(path, spec, keep_rows=name in ("utt2spk", "spk2utt"))
        problems += summarize(scan.problems)
        if scan.num_lines == 0 and name != "trials":
            problems.append(f"{path} is empty.")
        if name == "utt2spk":
            utt2spk = dict(scan.rows)
            warnings += _speaker_order_warning(data_dir, scan.rows)
        elif name == "spk2utt" and utt2spk is not None:
            agreement += speaker_file_problems(data_dir, utt2spk, scan.rows)
        elif name in PER_UTT_FILES and utt2spk is not None:
            agreement += same_utterance_problems(data_dir, name, utt2spk, scan.ids)
    # Files that disagree because one of them is malformed would only repeat its problem.
    if not problems:
        problems += agreement
    if any("C order" in p or "duplicate id" in p for p in problems):
        problems.append(f"sort the files and drop duplicates with: "
                        f"utils/fix_data_dir.sh {data_dir}")
    return problems, warnings


def _missing_hint(name, data_dir):
    if name == "spk2utt":
        return (f"; make it with: utils/utt2spk_to_spk2utt.py {data_dir}/utt2spk "
                f"> {data_dir}/spk2utt")
    if name == "feats.scp":
        return " (pass --no-feats if features are not made yet)"
    if name == "wav.scp":
        return " (pass --no-wav to check a directory without audio)"
    return "."


def _speaker_order_warning(data_dir, utt2spk_rows):
    """Kaldi wants utt2spk in speaker order too (ids prefixed by their speaker); warn if not.

    Kaldi makes this an error because its split tools need each speaker's utterances to be
    adjacent; split_data.sh here groups by speaker itself, so it is only a warning.
    """
    speakers = [c_key(spk) for _, spk in utt2spk_rows]
    if all(a <= b for a, b in zip(speakers, speakers[1:])):
        return []
    return [f"{data_dir}/utt2spk is not in speaker order too; utterance ids should start "
            f"with their speaker id"]


def speaker_file_problems(data_dir, utt2spk, spk2utt_rows):
    """utt2spk and spk2utt must hold the same (utterance, speaker) pairs."""
    from_spk2utt = {utt: row[0] for row in spk2utt_rows for utt in row[1:]}
    problems = []
    listed = sum(len(row) - 1 for row in spk2utt_rows)
    if listed > len(from_spk2utt):
        problems.append(f"{plural(listed - len(from_spk2utt), 'utterance')} of "
                        f"{data_dir}/spk2utt listed more than once")
    regenerate = (f"regenerate spk2utt with: utils/utt2spk_to_spk2utt.py {data_dir}/utt2spk "
                  f"> {data_dir}/spk2utt")
    for here, there, mine, theirs in (("utt2spk", "spk2utt", utt2spk, from_spk2utt),
                                      ("spk2utt", "utt2spk", from_spk2utt, utt2spk)):
        unmatched = [utt for utt, spk in mine.items() if theirs.get(utt) != spk]
        if unmatched:
            pairs = [f"{utt} {mine[utt]}" for utt in unmatched]
            problems.append(
                f"{plural(len(pairs), 'utterance-speaker pair')} of {data_dir}/{here} "
                f"missing from {data_dir}/{there} (first: {first_few(pairs)}); {regenerate}")
    return problems


def same_utterance_problems(data_dir, name, utt2spk, ids):
    """A per-utterance file must list exactly the utterances of utt2spk."""
    problems = []
    for here, there, mine, theirs in (("utt2spk", name, utt2spk, ids),
                                      (name, "utt2spk", ids, utt2spk)):
        missing = [utt for utt in mine if utt not in theirs]
        if missing:
            problems.append(
                f"{plural(len(missing), 'utterance')} of {data_dir}/{here} missing from "
                f"{data_dir}/{there} (first: {first_few(missing)}); keep only the utterances "
                f"in every file with: utils/fix_data_dir.sh {data_dir}")
    return problems


def run_validate(args):
    prog = PROGS["validate"]
    problems, warnings = validate_data_dir(args.data_dir, not args.no_feats, not args.no_wav)
    for warning in warnings:
        print(f"{prog}: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"{prog}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{prog}: successfully validated data-directory {args.data_dir}")
    return 0


# ---- fix -----------------------------------------------------------------------------------

@dataclasses.dataclass
class CleanFile:
    """A per-utterance file's first well-formed line per id, and counts of what was dropped."""

    name: str
    by_id: dict
    duplicates: int = 0
    malformed: int = 0


def clean_file(path, name):
    spec, clean = SPECS[name], CleanFile(name, {})
    with open(path, **TEXT) as f:
        for _, text, fields in iter_lines(f):
            if not fields:
                continue  # blank lines carry nothing
            if line_problem(fields, text, spec):
                clean.malformed += 1
            elif fields[0] in clean.by_id:
                clean.duplicates += 1
            else:
                clean.by_id[fields[0]] = text.strip()
    return clean


def fix_data_dir(data_dir):
    """Sorts, dedupes and intersects the per-utterance files; returns the report lines."""
    if not os.path.exists(os.path.join(data_dir, "utt2spk")):
        raise DataError(f"{data_dir}/utt2spk is missing; it is needed to fix the directory "
                        f"(from spk2utt: utils/spk2utt_to_utt2spk.py {data_dir}/spk2utt "
                        f"> {data_dir}/utt2spk).")
    names = ["utt2spk"] + [n for n in PER_UTT_FILES if os.path.exists(os.path.join(data_dir, n))]
    files = [clean_file(os.path.join(data_dir, n), n) for n in names]
    kept = c_sorted(utt for utt in files[0].by_id if all(utt in f.by_id for f in files))
    if not kept:
        raise DataError(f"no utterance of {data_dir} is in all of {', '.join(names)}: "
                        f"nothing would be left; check how the directory was made.")
    for f in files:
        replace_file(data_dir, f.name, [f.by_id[utt] for utt in kept])
    utt2spk = [(utt, files[0].by_id[utt].split()[1]) for utt in kept]
    replace_file(data_dir, "spk2utt", spk2utt_lines(utt2spk))
    report = [f"dropped {what} from {data_dir}/{f.name}"
              for f in files for what in _dropped_lines(f)]
    return report + [_kept_message(files, kept)]


def _dropped_lines(clean):
    if clean.duplicates:
        yield (f"{plural(clean.duplicates, 'line')} with a repeated id "
               f"(kept the first line of each id)")
    if clean.malformed:
        yield f"{plural(clean.malformed, 'malformed line')} (expected '{SPECS[clean.name].form}')"


def _kept_message(files, kept):
    """'kept 950 of 1000 utterances (50 dropped: 30 not in feats.scp, 20 not in wav.scp)'."""
    all_ids = set().union(*(f.by_id for f in files))
    message = f"kept {len(kept)} of {len(all_ids)} utterances"
    if len(kept) == len(all_ids):
        return message
    # Each dropped utterance counts once, under the first file lacking it (utt2spk, wav.scp,
    # feats.scp, ... order), so the counts add up to the number dropped.
    reasons = {}
    for utt in all_ids.difference(kept):
        lacking = next(f.name for f in files if utt not in f.by_id)
        reasons[lacking] = reasons.get(lacking, 0) + 1
    detail = ", ".join(f"{count} not in {name}"
                       for name, count in sorted(reasons.items(), key=lambda r: -r[1]))
    return f"{message} ({len(all_ids) - len(kept)} dropped: {detail})"


def replace_file(data_dir, name, lines):
    """Writes data_dir/name atomically if its content changes, backing up the original first."""
    path = os.path.join(data_dir, name)
    if os.path.exists(path):
        with open(path, **TEXT) as f:
            if f.read().splitlines() == lines:
                return
        backup = os.path.join(data_dir, ".backup")
        os.makedirs(backup, exist_ok=True)
        shutil.copy2(path, os.path.join(backup, name))
    write_lines(path, lines)


def run_fix(args):
    for line in fix_data_dir(args.data_dir):
        print(f"{PROGS['fix']}: {line}")
    return 0


# ---- speakers ------------------------------------------------------------------------------

def run_utt2spk_to_spk2utt(args):
    write_stdout(spk2utt_lines(read_utt2spk(args.file)))
    return 0


def run_spk2utt_to_utt2spk(args):
    pairs = sorted(read_spk2utt(args.file), key=lambda pair: c_key(pair[0]))
    write_stdout(f"{utt} {spk}" for utt, spk in pairs)
    return 0


# ---- filter_scp ----------------------------------------------------------------------------

def filter_lines(lines, ids, field=1, exclude=False, name="input"):
    """The texts of the lines whose field-th field is in ids (not in ids with exclude)."""
    for number, text, fields in lines:
        if len(fields) < field:
            raise DataError(f"{name} line {number} has no field {field}: '{text}'.")
        if (fields[field - 1] in ids) != exclude:
            yield text


def run_filter_scp(args):
    if args.field < 1:
        raise DataError(f"-f takes a field number of 1 or more, not {args.field}.")
    if args.id_list == "-" and args.scp in (None, "-"):
        raise DataError("the id list and the scp cannot both be stdin; give one as a file.")
    ids = read_ids(args.id_list)
    with open_input(args.scp) as f:
        write_stdout(filter_lines(iter_lines(f), ids, args.field, args.exclude,
                                  input_name(args.scp)))
    return 0


# ---- unscorable trials ---------------------------------------------------------------------

def unscorable_trials(trials, enroll_ids, test_ids):
    """(number of trials, number that name an id missing from its side, the missing ids)."""
    total, unscorable, missing = 0, 0, set()
    with open(trials, **TEXT) as f:
        for number, text, fields in iter_lines(f):
            if not fields:
                continue
            if len(fields) < 2:
                raise DataError(f"{trials} line {number}: expected 'enroll test [target|"
                                f"nontarget]', got '{text}'.")
            total += 1
            lost = [i for i, ids in zip(fields[:2], (enroll_ids, test_ids)) if i not in ids]
            unscorable += bool(lost)
            missing.update(lost)
    return total, unscorable, missing


def run_unscorable(args):
    """Warns (on stderr, exit status 0) when trials name ids that have no features, so that
    a dropped evaluation utterance is known before training rather than at scoring."""
    total, unscorable, missing = unscorable_trials(args.trials, read_ids(args.enroll_ids),
                                                   read_ids(args.test_ids))
    if unscorable:
        print(f"{PROGS['unscorable']}: warning: {unscorable} of {total} trials of {args.trials} "
              f"use {plural(len(missing), 'id')} without features ({first_few(missing)}); "
              f"scoring will refuse them.  Fix the audio and rerun the feature stage, which "
              f"tries dropped utterances again.", file=sys.stderr)
    return 0


def run_shared_speakers(args):
    """Prints 'SHARED TOTAL': how many of EVAL_DIR's speakers are also TRAIN_DIR's."""
    speakers = {}
    for data_dir in (args.eval_dir, args.train_dir):
        path = os.path.join(data_dir, "utt2spk")
        with open(path, **TEXT) as f:
            speakers[data_dir] = {fields[1] for _, _, fields in iter_lines(f) if len(fields) > 1}
    evaluated = speakers[args.eval_dir]
    print(len(evaluated & speakers[args.train_dir]), len(evaluated))
    return 0


# ---- command line --------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse that reports errors as 'prog: message' with exit status 1, as the recipe does."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(1)


def combine_data_dirs(dest, sources):
    """Union of data dirs: utt2spk and every per-utterance file all sources have; an
    utterance in several sources must have identical lines there (same audio, same speaker)."""
    names = ["utt2spk"] + [n for n in PER_UTT_FILES
                           if all(os.path.isfile(os.path.join(src, n)) for src in sources)]
    os.makedirs(dest, exist_ok=True)
    for name in names:
        lines = {}
        for src in sources:
            path = os.path.join(src, name)
            with open(path, **TEXT) as f:
                for number, line in enumerate(f, 1):
                    key = line.split(maxsplit=1)[0] if line.strip() else None
                    if key is None:
                        continue
                    if key in lines and lines[key] != line.rstrip("\n"):
                        raise DataError(f"{path}:{number}: {key} differs from its line in another "
                                        f"source; the sets disagree about this utterance.")
                    lines[key] = line.rstrip("\n")
        write_lines(os.path.join(dest, name), [lines[k] for k in c_sorted(lines)])
    utt2spk = read_utt2spk(os.path.join(dest, "utt2spk"))
    write_lines(os.path.join(dest, "spk2utt"), spk2utt_lines(utt2spk))
    for name in PER_UTT_FILES + ("feats.scp",):
        if name not in names and os.path.exists(os.path.join(dest, name)):
            os.remove(os.path.join(dest, name))  # stale: not every source has it
    return len(utt2spk)


def run_combine(args):
    count = combine_data_dirs(args.dest, args.sources)
    print(f"{PROGS['combine']}: {args.dest}: {count} utterances from {len(args.sources)} "
          f"data dir(s)", file=sys.stderr)
    return 0


def build_parser():
    parser = Parser(prog="data_dir.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(command, run, help_text):
        p = sub.add_parser(command, prog=PROGS[command], help=help_text, description=help_text)
        p.set_defaults(run=run)
        return p

    p = add("validate", run_validate, "Check a data directory's files and their agreement.")
    p.add_argument("--no-feats", action="store_true", help="feats.scp is not required")
    p.add_argument("--no-wav", action="store_true", help="wav.scp is not required")
    p.add_argument("--no-text", action="store_true",
                   help="accepted for Kaldi compatibility; text is never checked here")
    p.add_argument("data_dir")

    p = add("fix", run_fix, "Sort files, drop duplicates and utterances missing from any "
            "per-utterance file, regenerate spk2utt; originals go to DATA_DIR/.backup/.")
    p.add_argument("data_dir")

    p = add("split", run_split, "Write DATA_DIR/splitN/{1..N}/ (splitNutt with --per-utt): "
            "contiguous runs of speakers (or utterances) with about equal utterance counts.")
    p.add_argument("--per-utt", action="store_true",
                   help="split by utterance; a speaker may be in several parts")
    p.add_argument("data_dir")
    p.add_argument("num_parts", type=int)

    p = add("utt2spk-to-spk2utt", run_utt2spk_to_spk2utt, "utt2spk (file or stdin) -> spk2utt.")
    p.add_argument("file", nargs="?")
    p = add("spk2utt-to-utt2spk", run_spk2utt_to_utt2spk, "spk2utt (file or stdin) -> utt2spk.")
    p.add_argument("file", nargs="?")

    p = add("filter-scp", run_filter_scp, "Keep the lines of SCP (or stdin) whose id is in the "
            "first column of ID_LIST (--exclude: is not).")
    p.add_argument("--exclude", action="store_true", help="keep lines whose id is NOT listed")
    p.add_argument("-f", dest="field", type=int, default=1,
                   help="which field of SCP is the id (default: 1)")
    p.add_argument("id_list")
    p.add_argument("scp", nargs="?")

    p = add("unscorable", run_unscorable, "Warn when TRIALS name ids missing from the first "
            "column of ENROLL_IDS (enrollment side) or TEST_IDS (test side), e.g. the feats.scp "
            "of the evaluation set.")
    p.add_argument("trials")
    p.add_argument("enroll_ids")
    p.add_argument("test_ids")

    p = add("shared-speakers", run_shared_speakers, "Print how many speakers of EVAL_DIR "
            "are also speakers of TRAIN_DIR, and how many EVAL_DIR has (utt2spk).")
    p.add_argument("eval_dir")
    p.add_argument("train_dir")

    p = add("combine", run_combine, "Write DEST as the union of the SOURCE data dirs.")
    p.add_argument("dest")
    p.add_argument("sources", nargs="+", metavar="source")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    prog = PROGS[args.command]
    try:
        return args.run(args)
    except RecipeError as error:  # DataError, or a full disk while writing
        print(f"{prog}: {error}", file=sys.stderr)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as error:
        print(f"{prog}: cannot use {error.filename}: {error.strerror}.", file=sys.stderr)
    return 1


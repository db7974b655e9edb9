#!/usr/bin/env python3
"""Prepare Kaldi data directories for the core-core condition of Speakers in the Wild (SITW).

Usage:
  local/prepare_sitw.py SITW_ROOT DATA_DIR

SITW_ROOT is the top folder of the SITW database as SRI International distributes it (e.g.
sitw_database.v4), holding for each part, dev and eval:
  <part>/audio/*.flac              16 kHz mono FLAC, read directly by path
  <part>/lists/enroll-core.lst     'MODEL audio/FILE.flac': the file enrolling each model
  <part>/lists/test-core.lst       'audio/FILE.flac ...': the core test files
  <part>/keys/core-core.lst        'MODEL audio/FILE.flac tgt|imp': the trials and their key
Paths in the lists are relative to the part's folder.

For each part it writes
  DATA_DIR/sitw_<part>_enroll/   wav.scp, utt2spk, spk2utt: one utterance per enrollment file,
                                 id MODEL_FILE (e.g. 12013_unotx), its speaker the model
  DATA_DIR/sitw_<part>_test/     wav.scp, utt2spk, spk2utt: the test files, id FILE (unotx),
                                 each its own speaker since test speakers are unknown; and
                                 trials, core-core.lst in Kaldi form 'MODEL FILE target|nontarget'
                                 (tgt -> target, imp -> nontarget), in the key's order
The enrollment side of a trial is a model, not an utterance: the model's embedding is the mean
of the embeddings of its enrollment utterances (spk2utt of sitw_<part>_enroll; one file per
model in the core condition), and the trial's score compares it with the test file's embedding.

Files are sorted in C order; every set is written to a temporary folder in DATA_DIR, and the
sets are renamed into place only when all of them are complete.
"""

import os
from collections import namedtuple

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.data.corpus_prep import argument_parser, count_line, speaker_files, write_sets
from pytorch_modules.errors import RecipeError, run_entry_point

PROG = "prepare_sitw.py"
PARTS = ("dev", "eval")
SITW_SOURCE = ("SITW is distributed by SRI International on request under a research licence "
               "(http://www.speech.sri.com/projects/sitw/, sitw_poc@speech.sri.com)")
ENROLL_LIST = os.path.join("lists", "enroll-core.lst")
TEST_LIST = os.path.join("lists", "test-core.lst")
KEY_FILE = os.path.join("keys", "core-core.lst")
KEY_LABELS = {"tgt": "target", "imp": "nontarget"}
MAX_LISTED_MISSING = 10


# A Kaldi set: wavs maps utterance id -> absolute audio path, utt2spk utterance -> speaker;
# trials is a list of Kaldi trial lines or None.
DataSet = namedtuple("DataSet", "name wavs utt2spk trials")


def file_id(rel_path):
    """'audio/unotx.flac' -> 'unotx': the file name without folder and extension."""
    return os.path.splitext(os.path.basename(rel_path))[0]


# ---------------------------------------------------------------- reading the lists


def part_dir(sitw_root, part):
    """SITW_ROOT/<part>, which must hold the core lists and key."""
    if not os.path.isdir(sitw_root):
        raise RecipeError(f"SITW root {sitw_root} does not exist. {layout_help(sitw_root)}")
    path = os.path.join(sitw_root, part)
    if not os.path.isdir(path):
        raise RecipeError(f"{sitw_root} has no {part}/ folder. {layout_help(sitw_root)}")
    return path


def layout_help(sitw_root):
    return (f"Expected {sitw_root}/dev and {sitw_root}/eval, each with audio/*.flac, "
            f"{ENROLL_LIST}, {TEST_LIST} and {KEY_FILE}; pass the database's top folder (e.g. "
            f"sitw_database.v4) as SITW_ROOT. {SITW_SOURCE}.")


def read_list(directory, name, num_fields, form, extra_fields_ok=False):
    """(list path, [(line number, fields)]) of directory/name: every line has num_fields fields
    (more are cut off where extra_fields_ok), the audio path being the first one of a test list
    and the second one otherwise."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise RecipeError(f"{path} not found; every SITW part has {name}. {SITW_SOURCE}.")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if extra_fields_ok:
                fields = fields[:num_fields]
            audio_field = 0 if num_fields == 1 else 1
            if len(fields) != num_fields or not fields[audio_field].endswith(".flac"):
                raise RecipeError(f"{path}:{line_no}: malformed line {line.strip()!r}; "
                                   f"expected '{form}'.")
            rows.append((line_no, fields))
    if not rows:
        raise RecipeError(f"{path} is empty; expected lines like '{form}'.")
    return path, rows


def read_key(directory):
    """[(line number, model, test file path, label)] of keys/core-core.lst."""
    form = "MODEL audio/FILE.flac tgt|imp"
    path, rows = read_list(directory, KEY_FILE, 3, form)
    for line_no, (_, _, label) in rows:
        if label not in KEY_LABELS:
            raise RecipeError(f"{path}:{line_no}: label '{label}' is neither tgt nor imp; "
                               f"expected '{form}'.")
    return path, [(line_no, model, rel, label) for line_no, (model, rel, label) in rows]


def check_audio(directory, list_path, rows):
    """Fail, naming lines and paths, if any listed flac is not on disk; {rel: abs path}."""
    paths = {rel: os.path.abspath(os.path.join(directory, rel)) for _, rel in rows}
    missing = [(line_no, rel) for line_no, rel in rows if not os.path.isfile(paths[rel])]
    if missing:
        shown = "; ".join(f"line {n}: {paths[rel]}" for n, rel in missing[:MAX_LISTED_MISSING])
        more = len(missing) - MAX_LISTED_MISSING
        shown += f"; and {more} more" if more > 0 else ""
        raise RecipeError(f"{list_path}: {len(missing)} listed audio file(s) do not exist "
                           f"({shown}); check that the SITW archive was fully unpacked.")
    for path in paths.values():
        if any(c.isspace() for c in path):
            # wav.scp is 'utt path' split at whitespace: a path with a space cannot be written.
            raise RecipeError(
                f"the audio path {path} contains whitespace, which Kaldi's wav.scp cannot hold; "
                f"make a symbolic link without spaces to SITW_ROOT and pass that instead.")
    return paths


def unique_ids(list_path, rows, id_of):
    """{id: row} over rows, failing on two lines that give the same utterance id."""
    seen = {}
    for row in rows:
        utt = id_of(row)
        if utt in seen:
            raise RecipeError(f"{list_path}:{row[0]}: utterance {utt} is already given on line "
                               f"{seen[utt][0]}; remove the repeated line.")
        seen[utt] = row
    return seen


# ---------------------------------------------------------------- building the sets


def build_enroll_set(part, directory):
    """sitw_<part>_enroll from enroll-core.lst; also returns the set of models."""
    path, rows = read_list(directory, ENROLL_LIST, 2, "MODEL audio/FILE.flac")
    audio = check_audio(directory, path, [(n, rel) for n, (_, rel) in rows])
    by_utt = unique_ids(path, [(n, model, rel) for n, (model, rel) in rows],
                        lambda row: f"{row[1]}_{file_id(row[2])}")
    wavs = {utt: audio[rel] for utt, (_, _, rel) in by_utt.items()}
    utt2spk = {utt: model for utt, (_, model, _) in by_utt.items()}
    return DataSet(f"sitw_{part}_enroll", wavs, utt2spk, None), set(utt2spk.values())


def build_test_set(part, directory, models):
    """sitw_<part>_test from test-core.lst, with trials from keys/core-core.lst."""
    # The README documents one column; a further one, if a release has it, is not needed.
    path, rows = read_list(directory, TEST_LIST, 1, "audio/FILE.flac", extra_fields_ok=True)
    rows = [(n, rel) for n, (rel,) in rows]
    audio = check_audio(directory, path, rows)
    by_utt = unique_ids(path, rows, lambda row: file_id(row[1]))
    wavs = {utt: audio[rel] for utt, (_, rel) in by_utt.items()}
    key_path, key = read_key(directory)
    trials = []
    for line_no, model, rel, label in key:
        if model not in models:
            raise RecipeError(f"{key_path}:{line_no}: model {model} is not enrolled in "
                               f"{os.path.join(directory, ENROLL_LIST)}; the key and the lists "
                               f"must come from the same SITW release.")
        if file_id(rel) not in wavs:
            raise RecipeError(f"{key_path}:{line_no}: test file {rel} is not in "
                               f"{path}; the key and the lists must come from the same SITW "
                               f"release.")
        trials.append(f"{model} {file_id(rel)} {KEY_LABELS[label]}")
    return DataSet(f"sitw_{part}_test", wavs, {utt: utt for utt in wavs}, trials)


# ---------------------------------------------------------------- writing


def kaldi_files(dataset):
    """{file name: lines} of a set: data_prep.speaker_files and the trials in the key's order,
    which the scores will keep."""
    files = speaker_files(dataset.wavs, dataset.utt2spk)
    if dataset.trials is not None:
        files["trials"] = dataset.trials
    return files


def summary(dataset):
    """'N speakers|models, M utterances[, T trials (a target, b nontarget)]' for the log."""
    what = "models" if dataset.name.endswith("_enroll") else "speakers"
    trials, targets = None, None
    if dataset.trials is not None:
        trials, targets = len(dataset.trials), sum(t.endswith(" target") for t in dataset.trials)
    return count_line(len(set(dataset.utt2spk.values())), what, len(dataset.wavs), trials,
                      targets)


def prepare(sitw_root, data_dir):
    """Prepare the enroll and test sets of both parts; return the DataSets written."""
    datasets = []
    for part in PARTS:
        directory = part_dir(sitw_root, part)
        enroll, models = build_enroll_set(part, directory)
        datasets += [enroll, build_test_set(part, directory, models)]
    # only once all four sets are known to be good; written as the VoxCeleb sets are
    write_sets(data_dir, datasets, kaldi_files)
    return datasets


def parse_args(argv):
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("sitw_root", metavar="SITW_ROOT")
    parser.add_argument("data_dir", metavar="DATA_DIR")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    datasets = prepare(args.sitw_root, args.data_dir)
    for dataset in datasets:
        print(f"{PROG}: wrote {os.path.join(args.data_dir, dataset.name)}: {summary(dataset)}")
    return 0


if __name__ == "__main__":
    run_entry_point(main, PROG)

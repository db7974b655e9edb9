#!/usr/bin/env python3
"""Prepare Kaldi data directories for VoxCeleb1.

Usage:
  local/prepare_voxceleb1.py [--trials NAME=FILE ...] [--optional-trials NAME=FILE ...]
      [--held-out-list FILE] [--exclude-speakers FILE] [--no-count-check] VOX1_ROOT DATA_DIR

Writes
  DATA_DIR/voxceleb1_dev/   the training speakers: wav.scp, utt2spk, spk2utt
  DATA_DIR/<NAME>/          one evaluation set per trial list: wav.scp, utt2spk, spk2utt and
                            trials (`enroll test target|nontarget`, in the list's order)

VOX1_ROOT may have either distribution layout:
  split:  VOX1_ROOT/dev/wav/idNNNNN/<session>/NNNNN.wav and VOX1_ROOT/test/wav/...
          training speakers = every speaker under dev/wav
  merged: VOX1_ROOT/wav/idNNNNN/<session>/NNNNN.wav
          training speakers = every speaker that does not appear in the held-out trial list
          (--held-out-list, default veri_test2.txt, i.e. the Vox1-O test speakers)
Evaluation utterances are looked up across all of the audio, so the Vox1-E/H lists
(list_test_all2.txt, list_test_hard2.txt), which draw on dev speakers too, work the same way:
  --trials vox1_o=veri_test2.txt --trials vox1_e=list_test_all2.txt \
      --trials vox1_h=list_test_hard2.txt
The original, uncleaned lists are prepared only where they were downloaded too:
  --optional-trials vox1_o_orig=veri_test.txt --optional-trials vox1_e_orig=list_test_all.txt \
      --optional-trials vox1_h_orig=list_test_hard.txt

A trial list FILE is looked for as given when absolute, otherwise in VOX1_ROOT, then
VOX1_ROOT/meta/, then relative to the current directory.

Counts: a list with a published file name (veri_test2.txt 37,611 trials, list_test_all2.txt
579,818, list_test_hard2.txt 550,894; veri_test.txt 37,720, list_test_all.txt 581,480,
list_test_hard.txt 552,536) that holds a different number of trials, or a voxceleb1_dev other than
1,211 speakers / 148,642 utterances (counted before --exclude-speakers), gives a warning, since
it usually means a truncated download or archive.  --no-count-check turns this off for corpora
that are not the full VoxCeleb1, such as the demo corpus.

--exclude-speakers FILE leaves speakers out of voxceleb1_dev (never out of the trial sets): one
per line, '#' starts a comment.  An entry is a VoxCeleb1 id (id10001) or a name as in the second
column of vox1_meta.csv (A.J._Buckley), which is then looked up in VOX1_ROOT/vox1_meta.csv or
VOX1_ROOT/meta/vox1_meta.csv.  This is how the 60 VoxCeleb1 speakers who also appear in SITW are
removed when SITW is evaluated: OpenSLR's list (http://www.openslr.org/resources/49/
voxceleb1_sitw_overlap.txt, by the Kaldi authors) names them the second way.

Utterance ids are the wav path relative to the wav/ folder with '/' -> '-' and '.wav' removed
(id10270/x6uYqmx31kE/00001.wav -> id10270-x6uYqmx31kE-00001), so they are speaker-prefixed and
the files sort consistently in C order.  Output directories are written to a temporary folder in
DATA_DIR and renamed into place, so an interrupted run never leaves half-written sets.
"""

import os
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.data.corpus_prep import (
    SPEAKER_ID,
    DataSet,
    Trial,
    argument_parser,
    speaker_of_utt,
    summary,
    training_set_warning,
    utt_id,
    voxceleb_files,
    write_sets,
)
from pytorch_modules.errors import RecipeError, run_entry_point

PROG = "prepare_voxceleb1.py"
VOX1_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
TRAIN_SET = "voxceleb1_dev"
DEFAULT_TRIALS = "vox1_o=veri_test2.txt"
TRIAL_LINE_EXAMPLE = "1 id10270/x6uYqmx31kE/00001.wav id10273/8cfyJEV7hP8/00004.wav"
# How many missing wavs to name individually before summarising the rest as a count.
MAX_LISTED_MISSING = 10
# Sizes of the real corpus (VoxCeleb1 website and papers), to catch truncated downloads.
PUBLISHED_TRIALS = {
    "veri_test2.txt": 37611, "list_test_all2.txt": 579818, "list_test_hard2.txt": 550894,
    "veri_test.txt": 37720, "list_test_all.txt": 581480, "list_test_hard.txt": 552536,
}
PUBLISHED_DEV_SPEAKERS = 1211
PUBLISHED_DEV_UTTERANCES = 148642
META_FILE = "vox1_meta.csv"


def speaker_of(rel_path):
    return rel_path.split("/", 1)[0]


# ---------------------------------------------------------------- finding the audio


def find_audio_roots(vox1_root):
    """Return (layout, {part: wav folder}) for the split or merged layout.

    layout is "split" (parts "dev" and "test") or "merged" (part "all")."""
    if not os.path.isdir(vox1_root):
        raise RecipeError(
            f"VoxCeleb1 root {vox1_root} does not exist. {layout_help(vox1_root)}")
    dev = os.path.join(vox1_root, "dev", "wav")
    test = os.path.join(vox1_root, "test", "wav")
    merged = os.path.join(vox1_root, "wav")
    if os.path.isdir(dev) and os.path.isdir(test):
        return "split", {"dev": dev, "test": test}
    if os.path.isdir(merged):
        return "merged", {"all": merged}
    raise RecipeError(f"no VoxCeleb1 audio found in {vox1_root}. {layout_help(vox1_root)}")


def layout_help(vox1_root):
    return (f"Expected {vox1_root}/dev/wav and {vox1_root}/test/wav, or {vox1_root}/wav, "
            f"each holding idNNNNN/<session>/NNNNN.wav. VoxCeleb1 is downloaded from {VOX1_URL} "
            f"(registration required); unpack it and pass its top folder as VOX1_ROOT.")


def scan_wavs(wav_dir):
    """Map 'spk/session/utt.wav' -> absolute path for every wav two folders below wav_dir."""
    wav_dir = os.path.abspath(wav_dir)
    if any(c.isspace() for c in wav_dir):
        # wav.scp is 'utt path' split at whitespace: a path with a space cannot be written.
        raise RecipeError(
            f"the audio folder {wav_dir} contains whitespace, which Kaldi's wav.scp cannot "
            f"hold; make a symbolic link without spaces to VOX1_ROOT and pass that instead.")
    found = {}
    for spk in sorted(os.listdir(wav_dir)):
        spk_dir = os.path.join(wav_dir, spk)
        if not os.path.isdir(spk_dir):
            continue
        for session in sorted(os.listdir(spk_dir)):
            session_dir = os.path.join(spk_dir, session)
            if not os.path.isdir(session_dir):
                continue
            for name in os.listdir(session_dir):
                if name.endswith(".wav"):
                    found[f"{spk}/{session}/{name}"] = os.path.join(session_dir, name)
    if not found:
        raise RecipeError(
            f"{wav_dir} holds no wav files (expected idNNNNN/<session>/NNNNN.wav below it); "
            f"check that the VoxCeleb1 archives were fully unpacked.")
    return found


def merge_audio(parts):
    """Union of the per-part maps; the same relative path in two parts is ambiguous."""
    merged = {}
    for wavs in parts.values():
        for rel, path in wavs.items():
            if rel in merged:
                raise RecipeError(
                    f"{rel} exists twice, as {merged[rel]} and {path}; remove one copy so that "
                    f"each utterance has exactly one file.")
            merged[rel] = path
    return merged


# ---------------------------------------------------------------- trial lists


def parse_trials_option(spec):
    """'vox1_o=veri_test2.txt' -> ('vox1_o', 'veri_test2.txt')."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise RecipeError(f"--trials {spec}: expected NAME=FILE, e.g. --trials {DEFAULT_TRIALS}.")
    if "/" in name or name.startswith(".") or name == TRAIN_SET:
        raise RecipeError(
            f"--trials {spec}: NAME becomes the folder DATA_DIR/{name}, so it must be a plain "
            f"folder name other than {TRAIN_SET}, e.g. vox1_o.")
    return name, path


def trial_list_candidates(vox1_root, path):
    """Where a trial list is looked for: absolute as given, else VOX1_ROOT, VOX1_ROOT/meta, cwd."""
    if os.path.isabs(path):
        return [path]
    return [os.path.join(vox1_root, path), os.path.join(vox1_root, "meta", path), path]


def find_trial_list(vox1_root, path):
    """The first candidate that exists, or None."""
    for candidate in trial_list_candidates(vox1_root, path):
        if os.path.isfile(candidate):
            return candidate
    return None


def locate_trial_list(vox1_root, path):
    """Find a trial list that must exist."""
    found = find_trial_list(vox1_root, path)
    if found:
        return found
    candidates = trial_list_candidates(vox1_root, path)
    raise RecipeError(
        f"trial list {path} not found; looked for {', '.join(candidates)}. The lists "
        f"(veri_test2.txt for Vox1-O, list_test_all2.txt for Vox1-E, list_test_hard2.txt for "
        f"Vox1-H) are on {VOX1_URL}; put them in {vox1_root}.")


def read_trial_list(path):
    """Parse a VoxCeleb trial list into Trials; malformed lines fail with file:line."""
    trials = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if (len(fields) != 3 or fields[0] not in ("0", "1")
                    or not all(is_rel_wav(p) for p in fields[1:])):
                raise RecipeError(
                    f"{path}:{line_no}: malformed trial {line.strip()!r}; expected "
                    f"'LABEL ENROLL TEST' with LABEL 1 (target) or 0 (nontarget) and wav paths "
                    f"of the form speaker/session/utt.wav, e.g. '{TRIAL_LINE_EXAMPLE}'.")
            trials.append(Trial(line_no, fields[0] == "1", fields[1], fields[2]))
    if not trials:
        raise RecipeError(f"{path} holds no trials; expected lines like '{TRIAL_LINE_EXAMPLE}'.")
    return trials


def is_rel_wav(path):
    parts = path.split("/")
    return len(parts) == 3 and all(parts) and path.endswith(".wav")


def check_trial_audio(path, trials, audio):
    """Fail, naming line numbers and paths, if any trial names a wav that is not on disk."""
    missing = [(t.line_no, rel) for t in trials for rel in (t.enroll_rel, t.test_rel)
               if rel not in audio]
    if not missing:
        return
    shown = "; ".join(f"line {line_no}: {rel}" for line_no, rel in missing[:MAX_LISTED_MISSING])
    more = len(missing) - MAX_LISTED_MISSING
    shown += f"; and {more} more" if more > 0 else ""
    raise RecipeError(
        f"{path}: {len(missing)} trial wav reference(s) have no file in the VoxCeleb1 audio "
        f"({shown}). Check that the archives were fully unpacked and that the list belongs to "
        f"VoxCeleb1.")


# ---------------------------------------------------------------- counts against the real corpus


def trial_count_warning(name, list_path, num_trials):
    """A warning when a list named like a published one holds another number of trials."""
    expected = PUBLISHED_TRIALS.get(os.path.basename(list_path))
    if expected is None or num_trials == expected:
        return None
    return (f"warning: {name} has {num_trials:,} trials, but {os.path.basename(list_path)} of "
            f"the real corpus has {expected:,}; is the list complete?")


def dev_count_warning(num_speakers, num_utterances):
    """A warning when the training set is not the size of the real VoxCeleb1 dev set."""
    return training_set_warning(TRAIN_SET, num_speakers, num_utterances,
                                "the real VoxCeleb1 dev set",
                                (PUBLISHED_DEV_SPEAKERS, PUBLISHED_DEV_UTTERANCES),
                                "are all the dev archives downloaded and unpacked?")


# ---------------------------------------------------------------- excluded speakers


def read_speaker_list(path):
    """(line number, entry) for each speaker of an --exclude-speakers file."""
    if not os.path.isfile(path):
        raise RecipeError(f"--exclude-speakers {path}: no such file; give a file with one "
                           f"VoxCeleb1 id (id10001) or vox1_meta.csv name per line.")
    entries = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if len(fields) > 1:
                raise RecipeError(
                    f"{path}:{line_no}: {line.strip()!r} holds {len(fields)} words; put one "
                    f"speaker id or name on each line ('#' starts a comment).")
            if fields:
                entries.append((line_no, fields[0]))
    return entries


def read_meta(meta_path):
    """{name: id} from vox1_meta.csv (tab-separated as distributed; commas are accepted too)."""
    names = {}
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            fields = [x.strip() for x in line.split("\t" if "\t" in line else ",")]
            if len(fields) >= 2 and SPEAKER_ID.fullmatch(fields[0]):  # the header is skipped
                names[fields[1]] = fields[0]
    return names


def resolve_speakers(vox1_root, path):
    """The VoxCeleb1 ids an --exclude-speakers file names, names mapped through vox1_meta.csv."""
    entries = read_speaker_list(path)
    ids = {entry for _, entry in entries if SPEAKER_ID.fullmatch(entry)}
    named = [(line_no, entry) for line_no, entry in entries if not SPEAKER_ID.fullmatch(entry)]
    if not named:
        return ids
    meta_candidates = [os.path.join(vox1_root, META_FILE),
                       os.path.join(vox1_root, "meta", META_FILE)]
    meta_path = next((p for p in meta_candidates if os.path.isfile(p)), None)
    if meta_path is None:
        line_no, name = named[0]
        raise RecipeError(
            f"{path}:{line_no}: '{name}' is a speaker name, which needs {META_FILE} to find its "
            f"id, but there is none at {' or '.join(meta_candidates)}; download {META_FILE} from "
            f"{VOX1_URL} into {vox1_root}, or list ids (id10001) instead of names.")
    names = read_meta(meta_path)
    for line_no, name in named:
        if name not in names:
            raise RecipeError(
                f"{path}:{line_no}: '{name}' is neither a VoxCeleb1 id (id10001) nor a name in "
                f"{meta_path}; correct or remove the line.")
        ids.add(names[name])
    return ids


def exclude_speakers(dataset, speakers):
    """(dataset without `speakers`, number of speakers removed, number of utterances removed)."""
    kept = {utt: p for utt, p in dataset.wavs.items() if speaker_of_utt(utt) not in speakers}
    if not kept:
        raise RecipeError(f"--exclude-speakers removes every speaker of {TRAIN_SET}; check that "
                           f"the file lists the speakers to leave out, not those to keep.")
    removed = {speaker_of_utt(utt) for utt in dataset.wavs} & speakers
    return dataset._replace(wavs=kept), len(removed), len(dataset.wavs) - len(kept)


# ---------------------------------------------------------------- building the sets


def build_train_set(layout, parts, held_out_speakers):
    """The training set: dev/wav (split layout) or everyone not held out (merged layout)."""
    if layout == "split":
        wavs = parts["dev"]
    else:
        wavs = {rel: p for rel, p in parts["all"].items()
                if speaker_of(rel) not in held_out_speakers}
    if not wavs:
        raise RecipeError(
            "no training speakers are left: every speaker in the audio appears in the held-out "
            "trial list; pass the Vox1-O list (veri_test2.txt) as --held-out-list.")
    return DataSet(TRAIN_SET, {utt_id(rel): p for rel, p in wavs.items()}, None)


def build_eval_set(name, trials, audio):
    """An evaluation set holding exactly the utterances its trials need."""
    needed = {rel for t in trials for rel in (t.enroll_rel, t.test_rel)}
    return DataSet(name, {utt_id(rel): audio[rel] for rel in needed}, trials)


def trial_lists(vox1_root, trials_specs, optional_specs):
    """[(NAME, list path)] of the --trials lists and of the --optional-trials lists found, and
    a note for each optional list that is not there."""
    lists, notes = [], []
    specs = [(s, True) for s in trials_specs] + [(s, False) for s in optional_specs]
    for spec, required in specs:
        name, path = parse_trials_option(spec)
        if name in (n for n, _ in lists):
            raise RecipeError(f"trial set NAME {name} is given twice; each NAME is one folder.")
        found = locate_trial_list(vox1_root, path) if required else find_trial_list(vox1_root, path)
        if found:
            lists.append((name, found))
        else:
            looked = ", ".join(trial_list_candidates(vox1_root, path))
            notes.append(f"skipping {name}: optional trial list {path} not found (looked for "
                         f"{looked})")
    return lists, notes


def prepare(vox1_root, data_dir, trials_specs, held_out_list="veri_test2.txt", optional_specs=(),
            exclude_list=None, check_counts=True):
    """Prepare all sets; return (the DataSets written, messages for the log: notes and warnings).
    Raises RecipeError on bad input."""
    layout, wav_dirs = find_audio_roots(vox1_root)
    parts = {part: scan_wavs(d) for part, d in wav_dirs.items()}
    audio = merge_audio(parts)
    excluded = resolve_speakers(vox1_root, exclude_list) if exclude_list else None

    lists, messages = trial_lists(vox1_root, trials_specs, optional_specs)
    eval_sets = []
    for name, path in lists:
        trials = read_trial_list(path)
        check_trial_audio(path, trials, audio)
        eval_sets.append(build_eval_set(name, trials, audio))
        if check_counts:
            messages.append(trial_count_warning(name, path, len(trials)))

    held_out = set()
    if layout == "merged":
        # Which speakers are test speakers is known only from the Vox1-O list here.
        held_out_path = locate_trial_list(vox1_root, held_out_list)
        held_out = {speaker_of(rel) for t in read_trial_list(held_out_path)
                    for rel in (t.enroll_rel, t.test_rel)}
    train_set = build_train_set(layout, parts, held_out)
    if check_counts:  # before the exclusion, whose size depends on the list
        speakers = {speaker_of_utt(utt) for utt in train_set.wavs}
        messages.append(dev_count_warning(len(speakers), len(train_set.wavs)))
    if excluded is not None:
        train_set, num_speakers, num_utts = exclude_speakers(train_set, excluded)
        others = len(excluded) - num_speakers
        messages.append(
            f"removed {num_speakers} of the {len(excluded)} speakers listed in {exclude_list} "
            f"from {TRAIN_SET} ({num_utts} utterances)"
            + (f"; the other {others} are not among its speakers" if others else ""))
    datasets = [train_set] + eval_sets
    write_sets(data_dir, datasets, voxceleb_files)
    for name, path in lists:   # which list each set is, for the results' labels
        with open(os.path.join(data_dir, name, "trials.info"), "w", encoding="utf-8") as f:
            f.write(f"list {os.path.basename(path)}\n")
    return datasets, [m for m in messages if m]


def parse_args(argv):
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("--trials", action="append", metavar="NAME=FILE",
                        help=f"a trial list to convert into DATA_DIR/NAME (repeatable; "
                             f"default {DEFAULT_TRIALS})")
    parser.add_argument("--optional-trials", action="append", default=[], metavar="NAME=FILE",
                        help="like --trials, but skipped with a note when FILE is not found "
                             "(repeatable)")
    parser.add_argument("--held-out-list", default="veri_test2.txt", metavar="FILE",
                        help="merged layout only: speakers in this trial list are left out of "
                             f"{TRAIN_SET} (default %(default)s)")
    parser.add_argument("--exclude-speakers", metavar="FILE",
                        help=f"leave the speakers listed in FILE out of {TRAIN_SET}")
    parser.add_argument("--no-count-check", dest="check_counts", action="store_false",
                        help="no warnings when the counts differ from the real VoxCeleb1")
    parser.add_argument("vox1_root", metavar="VOX1_ROOT")
    parser.add_argument("data_dir", metavar="DATA_DIR")
    args = parser.parse_args(argv)
    args.trials = args.trials or [DEFAULT_TRIALS]
    return args


def main(argv=None):
    args = parse_args(argv)
    datasets, messages = prepare(args.vox1_root, args.data_dir, args.trials,
                                 args.held_out_list, args.optional_trials,
                                 args.exclude_speakers, args.check_counts)
    for message in messages:
        stream = sys.stderr if message.startswith("warning") else sys.stdout
        print(f"{PROG}: {message}", file=stream)
    for dataset in datasets:
        print(f"{PROG}: wrote {os.path.join(args.data_dir, dataset.name)}: {summary(dataset)}")
    return 0


if __name__ == "__main__":
    run_entry_point(main, PROG)

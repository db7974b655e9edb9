#!/usr/bin/env python3
"""Prepare Kaldi data directories for VoxCeleb1.

Usage:
  local/prepare_voxceleb1.py [--trials NAME=FILE ...] [--held-out-list FILE] VOX1_ROOT DATA_DIR

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

A trial list FILE is looked for as given when absolute, otherwise in VOX1_ROOT, then
VOX1_ROOT/meta/, then relative to the current directory.

Utterance ids are the wav path relative to the wav/ folder with '/' -> '-' and '.wav' removed
(id10270/x6uYqmx31kE/00001.wav -> id10270-x6uYqmx31kE-00001), so they are speaker-prefixed and
the files sort consistently in C order.  Output directories are written to a temporary folder in
DATA_DIR and renamed into place, so an interrupted run never leaves half-written sets.
"""

import argparse
import os
import shutil
import sys
import tempfile
from collections import namedtuple

PROG = "prepare_voxceleb1.py"
VOX1_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
TRAIN_SET = "voxceleb1_dev"
DEFAULT_TRIALS = "vox1_o=veri_test2.txt"
TRIAL_LINE_EXAMPLE = "1 id10270/x6uYqmx31kE/00001.wav id10273/8cfyJEV7hP8/00004.wav"
# How many missing wavs to name individually before summarising the rest as a count.
MAX_LISTED_MISSING = 10


class PrepareError(Exception):
    """Bad input: the message is a sentence for the user, printed without a traceback."""


# One trial of a VoxCeleb list: target is True for label 1; paths are relative to wav/.
Trial = namedtuple("Trial", "line_no target enroll_rel test_rel")
# A prepared Kaldi set: wavs maps utterance id -> absolute wav path; trials may be None.
DataSet = namedtuple("DataSet", "name wavs trials")


def utt_id(rel_path):
    """'id10270/x6uYqmx31kE/00001.wav' -> 'id10270-x6uYqmx31kE-00001'.

    VoxCeleb speaker ids (idNNNNN) hold no '-', so the speaker is the id up to the first '-'
    (YouTube session ids may contain '-', which is harmless after the prefix)."""
    return rel_path[: -len(".wav")].replace("/", "-")


def speaker_of(rel_path):
    return rel_path.split("/", 1)[0]


def speaker_of_utt(utt):
    return utt.split("-", 1)[0]


# ---------------------------------------------------------------- finding the audio


def find_audio_roots(vox1_root):
    """Return (layout, {part: wav folder}) for the split or merged layout.

    layout is "split" (parts "dev" and "test") or "merged" (part "all")."""
    if not os.path.isdir(vox1_root):
        raise PrepareError(
            f"VoxCeleb1 root {vox1_root} does not exist. {layout_help(vox1_root)}")
    dev = os.path.join(vox1_root, "dev", "wav")
    test = os.path.join(vox1_root, "test", "wav")
    merged = os.path.join(vox1_root, "wav")
    if os.path.isdir(dev) and os.path.isdir(test):
        return "split", {"dev": dev, "test": test}
    if os.path.isdir(merged):
        return "merged", {"all": merged}
    raise PrepareError(f"no VoxCeleb1 audio found in {vox1_root}. {layout_help(vox1_root)}")


def layout_help(vox1_root):
    return (f"Expected {vox1_root}/dev/wav and {vox1_root}/test/wav, or {vox1_root}/wav, "
            f"each holding idNNNNN/<session>/NNNNN.wav. VoxCeleb1 is downloaded from {VOX1_URL} "
            f"(registration required); unpack it and pass its top folder as VOX1_ROOT.")


def scan_wavs(wav_dir):
    """Map 'spk/session/utt.wav' -> absolute path for every wav two folders below wav_dir."""
    wav_dir = os.path.abspath(wav_dir)
    if any(c.isspace() for c in wav_dir):
        # wav.scp is 'utt path' split at whitespace: a path with a space cannot be written.
        raise PrepareError(
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
        raise PrepareError(
            f"{wav_dir} holds no wav files (expected idNNNNN/<session>/NNNNN.wav below it); "
            f"check that the VoxCeleb1 archives were fully unpacked.")
    return found


def merge_audio(parts):
    """Union of the per-part maps; the same relative path in two parts is ambiguous."""
    merged = {}
    for wavs in parts.values():
        for rel, path in wavs.items():
            if rel in merged:
                raise PrepareError(
                    f"{rel} exists twice, as {merged[rel]} and {path}; remove one copy so that "
                    f"each utterance has exactly one file.")
            merged[rel] = path
    return merged


# ---------------------------------------------------------------- trial lists


def parse_trials_option(spec):
    """'vox1_o=veri_test2.txt' -> ('vox1_o', 'veri_test2.txt')."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise PrepareError(f"--trials {spec}: expected NAME=FILE, e.g. --trials {DEFAULT_TRIALS}.")
    if "/" in name or name.startswith(".") or name == TRAIN_SET:
        raise PrepareError(
            f"--trials {spec}: NAME becomes the folder DATA_DIR/{name}, so it must be a plain "
            f"folder name other than {TRAIN_SET}, e.g. vox1_o.")
    return name, path


def locate_trial_list(vox1_root, path):
    """Find a trial list: absolute as given, else in VOX1_ROOT, VOX1_ROOT/meta, the cwd."""
    if os.path.isabs(path):
        candidates = [path]
    else:
        candidates = [os.path.join(vox1_root, path), os.path.join(vox1_root, "meta", path), path]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise PrepareError(
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
                raise PrepareError(
                    f"{path}:{line_no}: malformed trial {line.strip()!r}; expected "
                    f"'LABEL ENROLL TEST' with LABEL 1 (target) or 0 (nontarget) and wav paths "
                    f"of the form speaker/session/utt.wav, e.g. '{TRIAL_LINE_EXAMPLE}'.")
            trials.append(Trial(line_no, fields[0] == "1", fields[1], fields[2]))
    if not trials:
        raise PrepareError(f"{path} holds no trials; expected lines like '{TRIAL_LINE_EXAMPLE}'.")
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
    raise PrepareError(
        f"{path}: {len(missing)} trial wav reference(s) have no file in the VoxCeleb1 audio "
        f"({shown}). Check that the archives were fully unpacked and that the list belongs to "
        f"VoxCeleb1.")


# ---------------------------------------------------------------- building the sets


def build_train_set(layout, parts, held_out_speakers):
    """The training set: dev/wav (split layout) or everyone not held out (merged layout)."""
    if layout == "split":
        wavs = parts["dev"]
    else:
        wavs = {rel: p for rel, p in parts["all"].items()
                if speaker_of(rel) not in held_out_speakers}
    if not wavs:
        raise PrepareError(
            "no training speakers are left: every speaker in the audio appears in the held-out "
            "trial list; pass the Vox1-O list (veri_test2.txt) as --held-out-list.")
    return DataSet(TRAIN_SET, {utt_id(rel): p for rel, p in wavs.items()}, None)


def build_eval_set(name, trials, audio):
    """An evaluation set holding exactly the utterances its trials need."""
    needed = {rel for t in trials for rel in (t.enroll_rel, t.test_rel)}
    return DataSet(name, {utt_id(rel): audio[rel] for rel in needed}, trials)


def kaldi_files(dataset):
    """Return {file name: list of lines} for a set, every file sorted in C order."""
    utts = sorted(dataset.wavs)  # ASCII ids: Python's order is LC_ALL=C sort's order
    spk2utt = {}
    for utt in utts:
        spk2utt.setdefault(speaker_of_utt(utt), []).append(utt)
    files = {
        "wav.scp": [f"{utt} {dataset.wavs[utt]}" for utt in utts],
        "utt2spk": [f"{utt} {speaker_of_utt(utt)}" for utt in utts],
        "spk2utt": [f"{spk} {' '.join(spk2utt[spk])}" for spk in sorted(spk2utt)],
    }
    if dataset.trials is not None:
        # Kaldi trials keep the list's order; scores are written in the same order.
        files["trials"] = [
            f"{utt_id(t.enroll_rel)} {utt_id(t.test_rel)} "
            f"{'target' if t.target else 'nontarget'}" for t in dataset.trials]
    return files


def write_sets(data_dir, datasets):
    """Write every set into a temporary folder, then swap each one into DATA_DIR/<name>."""
    os.makedirs(data_dir, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix=".prepare_voxceleb1.", dir=data_dir)
    try:
        for dataset in datasets:
            set_dir = os.path.join(tmp_root, dataset.name)
            os.mkdir(set_dir)
            for file_name, lines in kaldi_files(dataset).items():
                with open(os.path.join(set_dir, file_name), "w", encoding="utf-8") as f:
                    f.writelines(line + "\n" for line in lines)
        for dataset in datasets:
            replace_dir(os.path.join(tmp_root, dataset.name),
                        os.path.join(data_dir, dataset.name))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def replace_dir(new_dir, final_dir):
    """Rename new_dir to final_dir; an old final_dir (and anything derived in it) is removed,
    because features or embeddings computed from the old lists no longer match."""
    old_dir = None
    if os.path.exists(final_dir):
        old_dir = final_dir + ".old." + str(os.getpid())
        os.rename(final_dir, old_dir)
    os.rename(new_dir, final_dir)
    if old_dir:
        shutil.rmtree(old_dir)


def summary(dataset):
    """'N speakers, M utterances[, T trials (a target, b nontarget)]' for the log."""
    speakers = {speaker_of_utt(utt) for utt in dataset.wavs}
    line = f"{len(speakers)} speakers, {len(dataset.wavs)} utterances"
    if dataset.trials is not None:
        targets = sum(t.target for t in dataset.trials)
        line += (f", {len(dataset.trials)} trials ({targets} target, "
                 f"{len(dataset.trials) - targets} nontarget)")
    return line


def prepare(vox1_root, data_dir, trials_specs, held_out_list="veri_test2.txt"):
    """Prepare all sets; return the DataSets written.  Raises PrepareError on bad input."""
    layout, wav_dirs = find_audio_roots(vox1_root)
    parts = {part: scan_wavs(d) for part, d in wav_dirs.items()}
    audio = merge_audio(parts)

    eval_sets = []
    for name, path in (parse_trials_option(s) for s in trials_specs):
        if name in (s.name for s in eval_sets):
            raise PrepareError(f"--trials {name}=... is given twice; each NAME is one folder.")
        path = locate_trial_list(vox1_root, path)
        trials = read_trial_list(path)
        check_trial_audio(path, trials, audio)
        eval_sets.append(build_eval_set(name, trials, audio))

    held_out = set()
    if layout == "merged":
        # Which speakers are test speakers is known only from the Vox1-O list here.
        held_out_path = locate_trial_list(vox1_root, held_out_list)
        held_out = {speaker_of(rel) for t in read_trial_list(held_out_path)
                    for rel in (t.enroll_rel, t.test_rel)}
    datasets = [build_train_set(layout, parts, held_out)] + eval_sets
    write_sets(data_dir, datasets)
    return datasets


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    parser.add_argument("--trials", action="append", metavar="NAME=FILE",
                        help=f"a trial list to convert into DATA_DIR/NAME (repeatable; "
                             f"default {DEFAULT_TRIALS})")
    parser.add_argument("--held-out-list", default="veri_test2.txt", metavar="FILE",
                        help="merged layout only: speakers in this trial list are left out of "
                             f"{TRAIN_SET} (default %(default)s)")
    parser.add_argument("vox1_root", metavar="VOX1_ROOT")
    parser.add_argument("data_dir", metavar="DATA_DIR")
    args = parser.parse_args(argv)
    args.trials = args.trials or [DEFAULT_TRIALS]
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        datasets = prepare(args.vox1_root, args.data_dir, args.trials, args.held_out_list)
    except (PrepareError, OSError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    for dataset in datasets:
        print(f"{PROG}: wrote {os.path.join(args.data_dir, dataset.name)}: {summary(dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Prepare the Kaldi data directory of the VoxCeleb2 dev set, the paper's large training set.

Usage:
  local/prepare_voxceleb2.py [--no-count-check] VOX2_ROOT DATA_DIR

Writes DATA_DIR/voxceleb2_dev/: wav.scp, utt2spk, spk2utt.

VOX2_ROOT is the folder the dev archive was unpacked into, or that dev/ folder itself:
  VOX2_ROOT/dev/aac/idNNNNN/<session>/NNNNN.m4a   as distributed (AAC audio in m4a)
  VOX2_ROOT/dev/wav/idNNNNN/<session>/NNNNN.wav   a copy already converted to wav
  VOX2_ROOT/aac/... or VOX2_ROOT/wav/...          the same, with VOX2_ROOT pointing at dev/
VOX2_ROOT/dev is looked at first, since the test archive unpacks to aac/ at its top: aac/ next to
dev/ is the test part.  A mix-up shows in the count check (the test part has 118 speakers).
A converted wav copy is used when there is one (no decoding at feature time); otherwise the m4a
files are decoded on the fly: their wav.scp entries are ffmpeg commands writing 16-bit mono
16 kHz wav to stdout, which pytorch_modules/fileio/audio.py reads like any Kaldi pipe entry:
  id00012-21Uxsk56VDQ-00001 ffmpeg -nostdin -loglevel error -i /abs/path/00001.m4a -ac 1 \\
      -ar 16000 -c:a pcm_s16le -f wav - |
so ffmpeg must be on PATH wherever features are computed (local/install_ffmpeg.sh installs it).
Decoding takes about 0.09 s per 8-s utterance on one core of the development machine (some 90x
real time), roughly a day of one core for the whole dev set, spread over the feature jobs and
paid once; a wav copy saves it only where features are computed more than once.
The test part of VoxCeleb2 is not prepared: the paper trains on the dev part only, and Kaldi's
SITW recipe found test speakers who also appear in SITW.

Utterance ids are built as for VoxCeleb1 (id00012/21Uxsk56VDQ/00001.m4a ->
id00012-21Uxsk56VDQ-00001), so they are speaker-prefixed; files are sorted in C order and
written to a temporary folder in DATA_DIR that is then renamed into place.

The real dev set has 5,994 speakers and 1,092,009 utterances; other counts give a warning (a
truncated download or unpacking, usually) unless --no-count-check is given.
"""

import os
import shlex
import shutil
import sys

# The ids have VoxCeleb1's form, so the set is written as the VoxCeleb1 preparation writes its.
import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.data.corpus_prep import (
    SPEAKER_ID,
    DataSet,
    argument_parser,
    speaker_of_utt,
    summary,
    training_set_warning,
    voxceleb_files,
    write_sets,
)
from pytorch_modules.errors import RecipeError, run_entry_point

PROG = "prepare_voxceleb2.py"
VOX2_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html"
TRAIN_SET = "voxceleb2_dev"
PUBLISHED_SPEAKERS = 5994
PUBLISHED_UTTERANCES = 1092009


def ffmpeg_command(path):
    """The wav.scp entry decoding one m4a file: 16-bit PCM, mono, 16 kHz wav on stdout.

    -nostdin: ffmpeg would otherwise read the terminal or the job's stdin for key presses;
    -loglevel error: only real problems reach the feature job's log."""
    return (f"ffmpeg -nostdin -loglevel error -i {shlex.quote(path)} "
            f"-ac 1 -ar 16000 -c:a pcm_s16le -f wav - |")


# ---------------------------------------------------------------- finding the audio


def find_audio_dir(vox2_root):
    """(audio folder, extension) of the dev set: converted wav first, then the m4a."""
    if not os.path.isdir(vox2_root):
        raise RecipeError(f"VoxCeleb2 root {vox2_root} does not exist. {layout_help(vox2_root)}")
    for dev_dir in (os.path.join(vox2_root, "dev"), vox2_root):
        for sub, ext in (("wav", ".wav"), ("aac", ".m4a")):
            if os.path.isdir(os.path.join(dev_dir, sub)):
                return os.path.join(dev_dir, sub), ext
    raise RecipeError(f"no VoxCeleb2 dev audio found in {vox2_root}. {layout_help(vox2_root)}")


def layout_help(vox2_root):
    return (f"Expected {vox2_root}/dev/aac/idNNNNN/<session>/NNNNN.m4a as unpacked from the dev "
            f"archive (or a wav copy in {vox2_root}/dev/wav, or VOX2_ROOT pointing at dev/ "
            f"itself). VoxCeleb2 is downloaded from {VOX2_URL} (registration required).")


def scan_audio(audio_dir, ext):
    """Map utterance id -> absolute path for every `ext` file two folders below audio_dir."""
    audio_dir = os.path.abspath(audio_dir)
    found = {}
    for spk in sorted(os.scandir(audio_dir), key=lambda e: e.name):
        if not spk.is_dir():
            continue
        if not SPEAKER_ID.fullmatch(spk.name):
            # The speaker is read back from the id up to its first '-': other names break that.
            raise RecipeError(
                f"{spk.path} is not a VoxCeleb2 speaker folder (idNNNNN); move it out of "
                f"{audio_dir}.")
        for session in os.scandir(spk.path):
            if not session.is_dir():
                continue
            for f in os.scandir(session.path):
                if f.name.endswith(ext) and not f.name.startswith("."):
                    found[f"{spk.name}-{session.name}-{f.name[:-len(ext)]}"] = f.path
    if not found:
        raise RecipeError(
            f"{audio_dir} holds no {ext} files (expected idNNNNN/<session>/NNNNN{ext} below it); "
            f"check that the VoxCeleb2 archive was fully unpacked.")
    return found


def wav_scp_entries(files, ext):
    """utterance id -> wav.scp value: the path of a wav, an ffmpeg pipe for an m4a."""
    if ext == ".m4a":
        return {utt: ffmpeg_command(path) for utt, path in files.items()}
    for path in files.values():
        if any(c.isspace() for c in path):
            # A plain path is the rest of the wav.scp line, split at whitespace by Kaldi tools.
            raise RecipeError(
                f"{path} contains whitespace, which a wav.scp path cannot hold; make a symbolic "
                f"link without spaces to VOX2_ROOT and pass that instead.")
    return files


def check_ffmpeg():
    if shutil.which("ffmpeg") is None:
        raise RecipeError(
            "the VoxCeleb2 audio is m4a, which is read through ffmpeg, but ffmpeg is not on "
            "PATH; run local/install_ffmpeg.sh (as root) or install ffmpeg with your package "
            "manager, or point VOX2_ROOT at a copy converted to wav (dev/wav/idNNNNN/...).")


def count_warning(num_speakers, num_utterances):
    """A warning when the set is not the size of the real VoxCeleb2 dev set."""
    return training_set_warning(TRAIN_SET, num_speakers, num_utterances,
                                "the real VoxCeleb2 dev set",
                                (PUBLISHED_SPEAKERS, PUBLISHED_UTTERANCES),
                                "is the dev archive completely downloaded and unpacked?")


def prepare(vox2_root, data_dir, check_counts=True):
    """Write DATA_DIR/voxceleb2_dev; return (its DataSet, the audio format, a warning or None).
    Raises RecipeError on bad input."""
    audio_dir, ext = find_audio_dir(vox2_root)
    if ext == ".m4a":
        check_ffmpeg()  # before anything is written: the set would be unusable without it
    files = scan_audio(audio_dir, ext)
    dataset = DataSet(TRAIN_SET, wav_scp_entries(files, ext), None)
    warning = None
    if check_counts:
        speakers = {speaker_of_utt(utt) for utt in files}
        warning = count_warning(len(speakers), len(files))
    write_sets(data_dir, [dataset], voxceleb_files)
    return dataset, ext, warning


def parse_args(argv):
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("--no-count-check", dest="check_counts", action="store_false",
                        help="no warning when the counts differ from the real VoxCeleb2 dev set")
    parser.add_argument("vox2_root", metavar="VOX2_ROOT")
    parser.add_argument("data_dir", metavar="DATA_DIR")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dataset, ext, warning = prepare(args.vox2_root, args.data_dir, args.check_counts)
    if warning:
        print(f"{PROG}: {warning}", file=sys.stderr)
    how = "m4a decoded by ffmpeg pipes" if ext == ".m4a" else "wav files"
    print(f"{PROG}: wrote {os.path.join(args.data_dir, TRAIN_SET)}: "
          f"{summary(dataset)} ({how})")
    return 0


if __name__ == "__main__":
    run_entry_point(main, PROG)

#!/usr/bin/env python3
"""Lists the files of the augmentation corpora for the configs' augment: section.

Usage:
  local/prepare_augment_lists.py [--musan-root MUSAN] [--rirs-root RIRS_NOISES] DATA_DIR

MUSAN (OpenSLR 17) as unpacked: MUSAN/noise/, MUSAN/music/ and MUSAN/speech/, wav files in
their subfolders; writes DATA_DIR/musan/noise.list, music.list and speech.list (for
augment.noise_list, music_list and babble_list).  RIRS_NOISES (OpenSLR 28) as unpacked:
RIRS_NOISES/simulated_rirs/{small,medium,large}room/Room*/*.wav; writes DATA_DIR/rirs/rir.list
(augment.rir_list), the simulated rooms Kaldi's voxceleb v2 recipe uses.  Each list holds
absolute paths in sorted order, one per line; a missing folder is an error naming it.
Standard library only.
"""
import argparse
import os
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.fileio.atomic import write_lines

PROG = "prepare_augment_lists.py"


def wav_files(folder):
    found = []
    for root, _, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names if n.lower().endswith(".wav"))
    return sorted(os.path.abspath(f) for f in found)


def write_list(path, files):
    write_lines(path, files)
    print(f"{PROG}: {len(files)} files in {path}")


def lists(musan_root, rirs_root, data_dir):
    """{list path: files}; raises ValueError naming what is missing."""
    out = {}
    if musan_root:
        for part, name in (("noise", "noise"), ("music", "music"), ("speech", "speech")):
            folder = os.path.join(musan_root, part)
            files = wav_files(folder) if os.path.isdir(folder) else []
            if not files:
                raise ValueError(f"{folder} holds no wav files; --musan-root must be the "
                                 f"unpacked MUSAN folder (noise/, music/, speech/), "
                                 f"https://www.openslr.org/17/")
            out[os.path.join(data_dir, "musan", f"{name}.list")] = files
    if rirs_root:
        folder = os.path.join(rirs_root, "simulated_rirs")
        files = wav_files(folder) if os.path.isdir(folder) else []
        if not files:
            raise ValueError(f"{folder} holds no wav files; --rirs-root must be the unpacked "
                             f"RIRS_NOISES folder, https://www.openslr.org/28/")
        out[os.path.join(data_dir, "rirs", "rir.list")] = files
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--musan-root")
    parser.add_argument("--rirs-root")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    if not args.musan_root and not args.rirs_root:
        parser.error("give --musan-root, --rirs-root or both")
    try:
        found = lists(args.musan_root, args.rirs_root, args.data_dir)
    except ValueError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    for path, files in found.items():
        write_list(path, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())

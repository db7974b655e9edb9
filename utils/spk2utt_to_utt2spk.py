#!/usr/bin/env python3
"""Converts spk2utt to utt2spk, sorted by utterance in C order.

usage: utils/spk2utt_to_utt2spk.py [spk2utt] > utt2spk      (reads stdin without a file)
"""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.fileio import data_dir  # noqa: E402

if __name__ == "__main__":
    sys.exit(data_dir.main(["spk2utt-to-utt2spk", *sys.argv[1:]]))

#!/usr/bin/env python3
"""Converts utt2spk to spk2utt: speakers and their utterances in C order.

usage: utils/utt2spk_to_spk2utt.py [utt2spk] > spk2utt      (reads stdin without a file)
"""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.fileio import data_dir  # noqa: E402

if __name__ == "__main__":
    sys.exit(data_dir.main(["utt2spk-to-spk2utt", *sys.argv[1:]]))

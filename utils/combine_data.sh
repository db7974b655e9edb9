#!/usr/bin/env bash
# Writes <dest> as the union of the source data dirs: utt2spk and the per-utterance files
# (wav.scp, feats.scp, utt2num_frames, utt2dur) that every source has, sorted in C order, and
# spk2utt.  An utterance listed by several sources must have identical lines in them.
#
#   usage: utils/combine_data.sh <dest-data-dir> <src-data-dir> [<src-data-dir> ...]
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" combine "$@"

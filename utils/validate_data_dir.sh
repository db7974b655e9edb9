#!/usr/bin/env bash
# Checks a Kaldi data directory: every file's format and C sort order, unique ids, utt2spk and
# spk2utt holding the same pairs, and every per-utterance file (wav.scp, feats.scp,
# utt2num_frames, utt2dur) listing exactly the utterances of utt2spk; trials (if present) must
# be 'enroll test target|nontarget'.  Prints every problem found and exits 1, or prints
# 'validate_data_dir.sh: successfully validated data-directory DIR' and exits 0.
#
#   usage: utils/validate_data_dir.sh [--no-feats] [--no-wav] <data-dir>
#     --no-feats   feats.scp is not required (it is still checked when present)
#     --no-wav     wav.scp is not required (it is still checked when present)
#     --no-text    accepted for Kaldi compatibility; there is no text file to check
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" validate "$@"

#!/usr/bin/env bash
# Repairs a Kaldi data directory in place: sorts utt2spk, wav.scp, feats.scp, utt2num_frames
# and utt2dur (those present) in C order, drops duplicate ids (keeping the first line) and
# malformed lines, keeps only the utterances present in all of them, and regenerates spk2utt.
# Originals of changed files are copied to <data-dir>/.backup/ first; files are replaced
# atomically.  trials and other files are left alone.  Reports, e.g.:
#   fix_data_dir.sh: kept 950 of 1000 utterances
#                    (50 dropped: 30 not in feats.scp, 20 not in wav.scp)   [on one line]
#
#   usage: utils/fix_data_dir.sh <data-dir>
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" fix "$@"

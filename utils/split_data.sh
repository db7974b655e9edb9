#!/usr/bin/env bash
# Splits a Kaldi data directory into N parts for parallel jobs:
#   <data-dir>/split<N>/{1..N}/      (or split<N>utt/ with --per-utt)
# each holding its subset of utt2spk, wav.scp, feats.scp, utt2num_frames, utt2dur (those
# present) and its own spk2utt.  By default every speaker's utterances stay in one part: the
# speakers, in C order, are cut into N contiguous runs with about equal utterance counts
# (like Kaldi's split_scp.pl --utt2spk); --per-utt cuts the utterances themselves.  Nothing is
# rewritten when the split is newer than all source files; it is rebuilt when any is newer,
# keeping the part files whose content is the same (the stages redo a job only when the
# content of its part changed, see utils/pending_jobs.sh).
# Fails when N is larger than the number of speakers (utterances with --per-utt).
#
#   usage: utils/split_data.sh [--per-utt] <data-dir> <num-parts>
#   e.g.   utils/split_data.sh data/train 8 && ls data/train/split8/3
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" split "$@"

#!/usr/bin/env bash
# MFCCs of the classical baselines (conf/mfcc.conf, pytorch_modules/features/mfcc.py) for a data dir in
# --nj parallel jobs: Kaldi arks in <mfcc-dir>, feats.scp + utt2num_frames (voiced frames) in
# the data dir.  Give it a data dir of its own (local/run_classical_baselines.sh makes
# data/<set>_mfcc), since feats.scp of data/<set> holds the spectrograms.  The jobs, restarts
# and bad-audio handling are those of steps/make_spectrogram.sh, which this runs with
# --feature-type mfcc; its options apply (--nj, --cmd, --feat-config, --compress, ...).
#   e.g.: steps/make_mfcc.sh --nj 8 --cmd "$train_cmd" data/voxceleb1_dev_mfcc mfcc
set -euo pipefail
exec "$(dirname "$0")/make_spectrogram.sh" --feature-type mfcc "$@"

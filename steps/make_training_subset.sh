#!/usr/bin/env bash
# The training speakers' utterances that the back-ends learn from (the AS-norm cohort; PLDA and
# calibration): a data dir of the first <n> utterances of each training speaker (0: all of
# them, the training dir itself), with features.  A training set trained from shards has no
# feature arks: its subset's features are computed here.  Writes <subset-dir> (unless n is 0)
# and, when missing, its feats.scp (steps/make_spectrogram.sh).
set -euo pipefail

nj=2
cmd=utils/launch_local.py
feat_config=conf/spectrogram.conf
help_message="Usage: $0 [options] <train-data-dir> <n> <subset-dir>
e.g.: $0 --nj 8 data/voxceleb2_dev 3 data/voxceleb2_dev_cohort3
  <n>  utterances per speaker (the first n of spk2utt), 0 for all of them (then <subset-dir>
       must be <train-data-dir>)
Options:
  --nj <n>               parallel feature jobs, when features are made (default: $nj)
  --cmd <launcher>       job launcher (default: $cmd)
  --feat-config <file>   the training features' options (default: $feat_config)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
train=$1
n=$2
subset=$3

[[ "$n" =~ ^[0-9]+$ ]] || { echo "$0: <n> takes a whole number (0: all), not '$n'" >&2; exit 1; }
if [ "$n" -eq 0 ]; then
  [ "$subset" -ef "$train" ] ||
    { echo "$0: <n> 0 keeps all of $train: give it as <subset-dir> too" >&2; exit 1; }
else
  lock_dir "$subset"   # other models of the same training set share it
  utils/subset_data_dir.sh --per-spk "$train" "$n" "$subset"
fi
if [ ! -f "$subset/feats.scp" ]; then
  lock_dir "$subset"
  steps/make_spectrogram.sh --nj "$nj" --cmd "$cmd" --feat-config "$feat_config" "$subset" feats
fi

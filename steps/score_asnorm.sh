#!/usr/bin/env bash
# AS-norm scoring (adaptive symmetric score normalisation against training-speaker cohort
# embeddings, pytorch_modules/scoring/asnorm.py) of every trial, then EER and minDCF (p_target 0.01 and
# 0.001): <out-dir>/<name>.scores (enroll test score) and <out-dir>/<name>.results.
# The cohort dir is what pytorch_modules.bin.make_cohort writes from the training set's
# embeddings: mean.scp, xvector.scp and xvector_meansub.scp.
set -euo pipefail

name=
enroll_spk2utt=
top_n=300
subtract_mean=true
help_message="Usage: $0 [options] <trials> <cohort-dir> <enroll-embedding-dir> <test-embedding-dir> <out-dir>
e.g.: $0 data/vox1_o/trials exp/m/cohort_voxceleb1_dev exp/m/embeddings_vox1_o exp/m/embeddings_vox1_o exp/m/scores
Options:
  --name <name>              name of the trial set in the results (default: the trials' folder
                             name + _asnorm, e.g. vox1_o_asnorm)
  --top-n <n>                cohort scores per side, the highest ones (default: $top_n; capped
                             at the number of cohort speakers)
  --subtract-mean <bool>     subtract the training-set mean embedding before length-normalisation,
                             from the trials' and the cohort's embeddings alike (default: $subtract_mean)
  --enroll-spk2utt <file>    average the enrollment embeddings per model (model utt1 utt2 ...)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 5 ] || { echo "$help_message" >&2; exit 1; }
trials=$1
cohort=$2
enroll=$3
test=$4
dir=$5
[ -n "$name" ] || name=$(basename "$(dirname "$trials")")_asnorm

# parse_options.sh has checked that --subtract-mean is true or false.
mean_opts=(--cohort-scp "$cohort/xvector.scp")
$subtract_mean && mean_opts=(--mean-scp "$cohort/mean.scp" --cohort-scp "$cohort/xvector_meansub.scp")
for f in "$cohort/mean.scp" "$cohort/xvector.scp" "$cohort/xvector_meansub.scp"; do
  [ -f "$f" ] || { echo "$0: $f does not exist; make the cohort first: python -m pytorch_modules.bin.make_cohort <train-data>/spk2utt <train-embeddings>/xvector.scp $cohort" >&2; exit 1; }
done

mkdir -p "$dir"
python -m pytorch_modules.bin.score --trials "$trials" --name "$name" --top-n "$top_n" \
  "${mean_opts[@]}" ${enroll_spk2utt:+--enroll-spk2utt "$enroll_spk2utt"} \
  --enroll-scp "$enroll/xvector.scp" --test-scp "$test/xvector.scp" \
  --scores-out "$dir/$name.scores" --results-out "$dir/$name.results"

#!/usr/bin/env bash
# Cosine-scores every trial of a Kaldi trials file and computes EER and minDCF (p_target 0.01
# and 0.001): <out-dir>/<name>.scores (enroll test score) and <out-dir>/<name>.results.
set -euo pipefail

name=
enroll_spk2utt=
help_message="Usage: $0 [options] <trials> <enroll-embedding-dir> <test-embedding-dir> <out-dir>
e.g.: $0 data/vox1_o/trials exp/m/embeddings_vox1_o exp/m/embeddings_vox1_o exp/m/scores
Options:
  --name <name>            name of the trial set in the results (default: the trials' folder name)
  --enroll-spk2utt <file>  average the enrollment embeddings per model (model utt1 utt2 ...),
                           as SITW enrolls a model from several utterances"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
trials=$1
enroll=$2
test=$3
dir=$4
[ -n "$name" ] || name=$(basename "$(dirname "$trials")")

mkdir -p "$dir"
python -m pytorch_modules.bin.score --trials "$trials" --name "$name" \
  ${enroll_spk2utt:+--enroll-spk2utt "$enroll_spk2utt"} \
  --enroll-scp "$enroll/xvector.scp" --test-scp "$test/xvector.scp" \
  --scores-out "$dir/$name.scores" --results-out "$dir/$name.results"

#!/usr/bin/env bash
# The AS-norm cohort of a model: embeddings of a cohort data dir (usually the training set or
# a few utterances per speaker of it, utils/subset_data_dir.sh --per-spk) through
# steps/extract_embeddings.sh, then one mean embedding per speaker
# (pytorch_modules/bin/make_cohort.py).  Writes
#   <embedding-dir>/xvector.scp     the cohort utterances' embeddings
#   <cohort-dir>/xvector.scp        one embedding per cohort speaker, and xvector_meansub.scp,
#                                   mean.scp (the cohort mean) and info, read by steps/score_asnorm.sh
set -euo pipefail

nj=2
cmd=utils/launch_local.py
use_gpu=false
layer=bn
min_frames=32
help_message="Usage: $0 [options] <model> <cohort-data-dir> <embedding-dir> <cohort-dir>
e.g.: $0 --nj 8 exp/rescnn_dam/final.pt data/voxceleb2_dev_cohort3 \\
        exp/rescnn_dam/embeddings_voxceleb2_dev_cohort3 exp/rescnn_dam/cohort_voxceleb2_dev_cohort3
Options (passed to steps/extract_embeddings.sh):
  --nj <n>                 parallel jobs (default: $nj)
  --cmd <launcher>         job launcher (default: $cmd)
  --use-gpu <true|false>   extract on a GPU (default: $use_gpu)
  --layer <bn|fc>          which vector is the embedding (default: $layer)
  --min-frames <n>         shorter utterances are repeated up to n frames (default: $min_frames)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
model=$1
data=$2
emb=$3
cohort=$4

steps/extract_embeddings.sh --nj "$nj" --cmd "$cmd" --use-gpu "$use_gpu" --layer "$layer" \
  --min-frames "$min_frames" \
  "$model" "$data" "$emb"
python -m pytorch_modules.bin.make_cohort "$data/spk2utt" "$emb/xvector.scp" "$cohort"

#!/usr/bin/env bash
# The AS-norm cohort of a model: one mean embedding per speaker of a training subset
# (steps/make_training_subset.sh), from that subset's embeddings (steps/extract_embeddings.sh),
# by pytorch_modules/bin/make_cohort.py.  Writes
#   <cohort-dir>/xvector.scp     one embedding per cohort speaker, and xvector_meansub.scp,
#                                mean.scp (the cohort mean) and info, read by steps/score_asnorm.sh
set -euo pipefail

help_message="Usage: $0 <cohort-data-dir> <embedding-dir> <cohort-dir>
e.g.: $0 data/voxceleb2_dev_cohort3 exp/rescnn_dam/embeddings_voxceleb2_dev_cohort3 \\
        exp/rescnn_dam/cohort_voxceleb2_dev_cohort3"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
data=$1
emb=$2
cohort=$3
[ -f "$emb/xvector.scp" ] ||
  { echo "$0: $emb/xvector.scp does not exist; embed $data first (steps/extract_embeddings.sh)" >&2; exit 1; }
python -m pytorch_modules.bin.make_cohort "$data/spk2utt" "$emb/xvector.scp" "$cohort"

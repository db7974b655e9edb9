#!/usr/bin/env bash
# A trained model made ready for use (run.sh stage 6): its decision threshold, the EER point
# of the cosine scores of a labelled trial set (pytorch_modules/bin/calibrate.py, stored where
# pytorch_modules/bin/verify.py finds it), and <exp-dir>/export/ with the embedding network
# and its feature config (pytorch_modules/bin/export_model.py).
set -euo pipefail

help_message="Usage: $0 <exp-dir> <scores> <trials>
e.g.: $0 exp/rescnn_dam exp/rescnn_dam/scores/vox1_o.scores data/vox1_o/trials"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
exp_dir=$1
scores=$2
trials=$3

python -m pytorch_modules.bin.calibrate --model "$exp_dir/final.pt" --operating-point eer \
  --scores "$scores" --trials "$trials"
python -m pytorch_modules.bin.export_model --model "$exp_dir/final.pt" --out-dir "$exp_dir/export"

#!/usr/bin/env bash
# The figures of a scored model (run.sh stage 6), under <exp-dir>/plots/:
#   det_<set>.png        DET curve of each trial set: cosine scores and, with --asnorm true,
#                        AS-norm scores on the same axes
#   margin.png           the margin against cos(theta_y) (the paper's Fig 3), for am_softmax,
#                        dam_softmax, aam_softmax and dam_aam_softmax models (the last two:
#                        an angular margin)
#   cos_theta_hist.png   the distributions of cos(theta_y) over the epochs (Fig 1), when
#                        training recorded them (<exp-dir>/cos_theta_hist.tsv)
set -euo pipefail

asnorm=false
loss=dam_softmax
help_message="Usage: $0 [options] <exp-dir> <set>:<trials> [<set>:<trials> ...]
e.g.: $0 --asnorm true exp/rescnn_dam vox1_o:data/vox1_o/trials sitw_eval:data/sitw_eval_test/trials
Options:
  --asnorm <true|false>  draw <exp-dir>/scores/<set>_asnorm.scores too (default: $asnorm)
  --loss <type>          the model's loss (default: $loss)"

. ./path.sh
. utils/parse_options.sh
[ $# -ge 2 ] || { echo "$help_message" >&2; exit 1; }
exp_dir=$1
shift

for entry in "$@"; do
  set=${entry%%:*}
  systems=("cosine=$exp_dir/scores/$set.scores")
  [ "$asnorm" = false ] || systems+=("AS-norm=$exp_dir/scores/${set}_asnorm.scores")
  python -m pytorch_modules.bin.plot_det --trials "${entry#*:}" \
    --title "$set ($(basename "$exp_dir"))" --out "$exp_dir/plots/det_$set.png" "${systems[@]}"
done
case $loss in
  am_softmax|dam_softmax|aam_softmax|dam_aam_softmax)
    python -m pytorch_modules.bin.plot_margin --model "$exp_dir/final.pt" \
      --out "$exp_dir/plots/margin.png" ;;
esac
if [ -f "$exp_dir/cos_theta_hist.tsv" ]; then
  python -m pytorch_modules.bin.plot_cos_hist --out "$exp_dir/plots/cos_theta_hist.png" \
    "$exp_dir/cos_theta_hist.tsv"
fi

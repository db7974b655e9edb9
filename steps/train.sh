#!/usr/bin/env bash
# Trains the speaker-embedding network (pytorch_modules/bin/train.py) as one job through $cmd.
# Rerunning continues from the newest checkpoint in <exp-dir>/checkpoints; <exp-dir>/final.pt
# is written when training is complete.
set -euo pipefail

cmd=utils/launch_local.py
config=conf/rescnn_dam.yaml
show_log=true
help_message="Usage: $0 [options] <train-data-dir> <exp-dir>
e.g.: $0 --config conf/rescnn_dam.yaml data/voxceleb2_dev exp/rescnn_dam
Options:
  --cmd <launcher>         job launcher, e.g. \"\$cuda_cmd --gpu 1\" (default: $cmd)
  --config <yaml>          training config (default: $config)
  --show-log <true|false>  also print the training log while it runs (default: $show_log)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1
dir=$2

utils/validate_data_dir.sh --no-wav "$data"
mkdir -p "$dir/log"
log=$dir/log/train.log
echo "$0: training $dir on $data with $config; log: $log"
if $show_log; then
  : > "$log"
  tail -n +1 -F "$log" 2>/dev/null &
  tail_pid=$!
  trap 'kill $tail_pid 2>/dev/null || true' EXIT
fi
$cmd "$log" python -m pytorch_modules.bin.train --config "$config" "$data" "$dir"

#!/usr/bin/env bash
# Trains softmax, A-Softmax, AM-Softmax and DAM-Softmax with the same data and schedule (the
# base config with loss.type set to each; a loss other than the base config's takes its own
# defaults, the published settings), each with several training seeds, and compares them:
# local/run_grid.sh with one axis, loss.type, which writes <out-dir>/results.md (every run,
# each loss's mean and spread over its seeds, a paired test of each against --reference,
# AM-Softmax by default, and with two or more seeds each loss's fused seeds, <loss>_fused).
# Data and features must exist (./run.sh --stop-stage 2).
#
#   local/compare_losses.sh                                  the demo corpus
#   local/compare_losses.sh --corpus voxceleb --voxceleb1-root /data/VoxCeleb1 \
#       --base-config conf/rescnn_dam.yaml --out-dir exp/loss_comparison_vox1
# Options: --base-config, --out-dir, --losses "...", --seeds "1 2 3", --reference LOSS;
# any option after them is passed to ./run.sh.
set -euo pipefail

base_config=conf/demo_dam.yaml
out_dir=exp/loss_comparison
losses="softmax a_softmax am_softmax dam_softmax"
seeds="1 2 3"
reference=am_softmax
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
while [ $# -gt 0 ]; do
  case $1 in
    --base-config) base_config=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    --losses) losses=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --reference) reference=$2; shift 2 ;;
    *) break ;;
  esac
done
case " $losses " in *" $reference "*) ;; *) reference=${losses%% *} ;; esac
read -ra loss_list <<< "$losses"
axis=$(IFS=,; echo "${loss_list[*]}")
exec "$(dirname "$0")/run_grid.sh" --configs "$base_config" --axis "loss.type=$axis" \
  --seeds "$seeds" --reference "$reference" --out-dir "$out_dir" "$@"

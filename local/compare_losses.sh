#!/usr/bin/env bash
# Trains softmax, A-Softmax, AM-Softmax and DAM-Softmax with the same data, seed and schedule
# (the base config with only its loss: section replaced), scores them the same way, and writes
# one table (EER and minDCF per trial set, like the paper's Table 1) and one DET plot with the
# four systems on the same axes.  Data and features must exist (./run.sh --stop-stage 2).
#
#   local/compare_losses.sh                                  the demo corpus
#   local/compare_losses.sh --corpus voxceleb --voxceleb1-root /data/VoxCeleb1 \
#       --base-config conf/rescnn_dam.yaml --out-dir exp/loss_comparison_vox1
# Any option after the known ones is passed to ./run.sh.
set -euo pipefail

base_config=conf/demo_dam.yaml
out_dir=exp/loss_comparison
losses="softmax a_softmax am_softmax dam_softmax"
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
while [ $# -gt 0 ]; do
  case $1 in
    --base-config) base_config=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    --losses) losses=$2; shift 2 ;;
    *) break ;;
  esac
done

cd "$(dirname "$0")/.."
. ./path.sh
mkdir -p "$out_dir/conf"

for loss in $losses; do
  config=$out_dir/conf/$loss.yaml
  python -m pytorch_modules.bin.loss_variant_config "$base_config" "$loss" > "$config.tmp"
  mv "$config.tmp" "$config"
  ./run.sh --stage 3 --stop-stage 5 --asnorm false --config "$config" --exp-dir "$out_dir/$loss" "$@"
done

results=() systems=()
for loss in $losses; do
  for r in "$out_dir/$loss"/scores/*.results; do results+=("$r"); done
  systems+=("$loss=$out_dir/$loss/scores/vox1_o.scores")
done
python -m pytorch_modules.bin.results_table "${results[@]}" > "$out_dir/results.md.tmp"
mv "$out_dir/results.md.tmp" "$out_dir/results.md"
python -m pytorch_modules.bin.plot_det --trials data/vox1_o/trials --title "vox1_o: loss comparison" \
  --out "$out_dir/det_vox1_o.png" "${systems[@]}"
echo
cat "$out_dir/results.md"
echo "$0: DET curves in $out_dir/det_vox1_o.png"

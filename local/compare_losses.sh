#!/usr/bin/env bash
# Trains softmax, A-Softmax, AM-Softmax and DAM-Softmax with the same data and schedule (the
# base config with only its loss: section replaced), each with several training seeds, scores
# them alike, and writes exp/.../results.md: every run's EER and minDCF with 95% speaker-
# bootstrap intervals, then per VoxCeleb1-style trial set the mean and spread over the seeds of
# each loss and a paired bootstrap test of its EER against --reference (AM-Softmax by default,
# so the DAM row reads DAM - AM), and a DET plot of the first seed of each loss.  With two or
# more seeds, each loss's seeds are also fused into one system, <loss>_fused (the mean of their
# scores, pytorch_modules/bin/fuse_scores.py), scored and compared alike.
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

cd "$(dirname "$0")/.."
. ./path.sh
mkdir -p "$out_dir/conf"
case " $losses " in *" $reference "*) ;; *) reference=${losses%% *} ;; esac

for loss in $losses; do
  for seed in $seeds; do
    run=${loss}_seed$seed
    config=$out_dir/conf/$run.yaml
    python -m pytorch_modules.bin.loss_variant_config --seed "$seed" "$base_config" "$loss" > "$config.tmp"
    mv "$config.tmp" "$config"
    ./run.sh --stage 3 --stop-stage 5 --asnorm false --baseline false --config "$config" \
      --exp-dir "$out_dir/$run" "$@"
  done
done

read -ra seed_list <<< "$seeds"
first_seed=${seed_list[0]}
fuse=false; [ "${#seed_list[@]}" -lt 2 ] || fuse=true   # each loss's seeds fused into one
trial_sets=$(for d in data/vox1_*; do [ -f "$d/trials" ] && basename "$d"; done)
if [ "$fuse" = true ]; then
  for loss in $losses; do
    for set in $trial_sets; do
      mkdir -p "$out_dir/${loss}_fused/scores"
      python -m pytorch_modules.bin.fuse_scores --trials "data/$set/trials" \
        --scores-out "$out_dir/${loss}_fused/scores/$set.scores" \
        --results-out "$out_dir/${loss}_fused/scores/$set.results" \
        $(for seed in $seeds; do echo "$out_dir/${loss}_seed$seed/scores/$set.scores"; done)
    done
  done
fi
results=() systems=()
for loss in $losses; do
  for seed in $seeds; do
    for r in "$out_dir/${loss}_seed$seed"/scores/*.results; do results+=("$r"); done
  done
  [ "$fuse" = false ] || for r in "$out_dir/${loss}_fused"/scores/*.results; do results+=("$r"); done
  systems+=("$loss=$out_dir/${loss}_seed$first_seed/scores/vox1_o.scores")
done
{
  python -m pytorch_modules.bin.results_table "${results[@]}"
  for set in $trial_sets; do
    seeded=()
    for loss in $losses; do
      files=$(for seed in $seeds; do printf '%s,' "$out_dir/${loss}_seed$seed/scores/$set.scores"; done)
      seeded+=("$loss=${files%,}")
    done
    if [ "$fuse" = true ]; then
      for loss in $losses; do seeded+=("${loss}_fused=$out_dir/${loss}_fused/scores/$set.scores"); done
    fi
    echo; echo "Seeds $seeds on $set:"; echo
    python -m pytorch_modules.bin.compare_systems --trials "data/$set/trials" \
      --reference "$reference" "${seeded[@]}"
  done
} > "$out_dir/results.md.tmp"
mv "$out_dir/results.md.tmp" "$out_dir/results.md"
python -m pytorch_modules.bin.plot_det --trials data/vox1_o/trials --title "vox1_o: loss comparison" \
  --out "$out_dir/det_vox1_o.png" "${systems[@]}"
echo
cat "$out_dir/results.md"
echo "$0: DET curves (seed $first_seed of each loss) in $out_dir/det_vox1_o.png"

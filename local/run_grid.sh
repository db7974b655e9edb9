#!/usr/bin/env bash
# Trains a grid of systems that differ in config keys (backbone x loss x anything), each with
# several training seeds, scores them alike, and writes <out-dir>/results.md: every run's EER
# and minDCF with 95% speaker-bootstrap intervals, then per VoxCeleb1-style trial set the mean
# and spread over the seeds of each system and a paired bootstrap test of its EER against
# --reference.  With two or more seeds, each system's seeds are also fused into one system,
# <name>_fused (the mean of their scores, pytorch_modules/bin/fuse_scores.py), scored and
# compared alike; a DET plot shows the first seed of each system.
# Data and features must exist (./run.sh --stop-stage 2).
#
#   local/run_grid.sh --configs "conf/small_dam_lr0.1.yaml conf/resnet34_small_dam.yaml" \
#       --axis loss.type=am_softmax,dam_softmax --seeds "1 2 3" --out-dir exp/grid \
#       --corpus voxceleb --voxceleb1-root /data/mycorpus --train-set voxceleb1
#
# Options (any option after them goes to ./run.sh):
#   --configs "A.yaml ..."     base configs (default: conf/demo_dam.yaml)
#   --axis KEY=V1,V2,...       one axis of the grid (repeatable): each value is a --set of
#                              run.sh; commas inside [...] belong to the value
#   --set KEY=VALUE            a --set for every system (repeatable)
#   --seeds "1 2 3"            training.seed of each system's runs (default: 1 2 3)
#   --reference NAME           the system the paired tests compare against (default: the first)
#   --out-dir DIR              (default: exp/grid)
# A system is named by what varies: the config's name when there are several configs, then
# each axis's value (e.g. small_dam_lr0.1_am_softmax); its runs are <out-dir>/<name>_seed<N>.
set -euo pipefail

configs=conf/demo_dam.yaml
axes=() common=()
seeds="1 2 3"
reference=
out_dir=exp/grid
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
while [ $# -gt 0 ]; do
  case $1 in
    --configs) configs=$2; shift 2 ;;
    --axis) axes+=("$2"); shift 2 ;;
    --set) common+=(--set "$2"); shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --reference) reference=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    *) break ;;
  esac
done

cd "$(dirname "$0")/.."
. ./path.sh
die() { echo "$0: $*" >&2; exit 1; }

# The values of an axis, one per line: its text after '=', split at commas outside brackets.
axis_values() {
  local text=${1#*=} depth=0 value="" c i
  for ((i = 0; i < ${#text}; i++)); do
    c=${text:i:1}
    case $c in
      '[') depth=$((depth + 1)) ;;
      ']') depth=$((depth - 1)) ;;
      ',') if [ "$depth" -eq 0 ]; then printf '%s\n' "$value"; value=; continue; fi ;;
    esac
    value+=$c
  done
  printf '%s\n' "$value"
}
# A name part of a value: letters, digits, dots and dashes, the rest as single underscores.
name_part() { printf '%s' "$1" | tr -c 'A-Za-z0-9.-' '_' | tr -s '_' | sed 's/^_//; s/_$//'; }

# The systems: names[k] and, newline-separated, the --set values sets[k] of system k.
read -ra config_list <<< "$configs"
[ "${#config_list[@]}" -gt 0 ] || die "--configs names no config"
names=() sets=() bases=()
for config in "${config_list[@]}"; do
  [ -f "$config" ] || die "no config file $config"
  part=
  [ "${#config_list[@]}" -eq 1 ] || part=$(basename "$config" .yaml)
  names+=("$part") sets+=("") bases+=("$config")
done
for axis in "${axes[@]}"; do
  [[ "$axis" == *.*=* ]] || die "--axis takes section.key=V1,V2,..., not '$axis'"
  mapfile -t values < <(axis_values "$axis")
  new_names=() new_sets=() new_bases=()
  for k in "${!names[@]}"; do
    for value in "${values[@]}"; do
      [ -n "$value" ] || die "--axis $axis has an empty value"
      new_names+=("${names[k]:+${names[k]}_}$(name_part "$value")")
      new_sets+=("${sets[k]:+${sets[k]}$'\n'}${axis%%=*}=$value")
      new_bases+=("${bases[k]}")
    done
  done
  names=("${new_names[@]}") sets=("${new_sets[@]}") bases=("${new_bases[@]}")
done
[ -n "${names[0]}" ] || names[0]=$(basename "${bases[0]}" .yaml)   # one config, no axis
[ -n "$reference" ] || reference=${names[0]}
[[ " ${names[*]} " == *" $reference "* ]] || die "--reference $reference is none of the systems: ${names[*]}"
read -ra seed_list <<< "$seeds"
[ "${#seed_list[@]}" -gt 0 ] || die "--seeds names no seed"

# Every run is checked before the first one trains: a bad key or value of the last system
# must not wait for the others.
for k in "${!names[@]}"; do
  overrides=("${common[@]}")
  while IFS= read -r s; do [ -z "$s" ] || overrides+=(--set "$s"); done <<< "${sets[k]}"
  python -m pytorch_modules.bin.config_value "${overrides[@]}" "${bases[k]}" >/dev/null ||
    die "system ${names[k]} (${bases[k]}${sets[k]:+ with ${sets[k]//$'\n'/, }}) has a bad config"
done

mkdir -p "$out_dir"
for k in "${!names[@]}"; do
  overrides=("${common[@]}")
  while IFS= read -r s; do [ -z "$s" ] || overrides+=(--set "$s"); done <<< "${sets[k]}"
  for seed in "${seed_list[@]}"; do
    ./run.sh --stage 3 --stop-stage 5 --asnorm false --plda false --calibrate false --baseline false \
      --config "${bases[k]}" \
      "${overrides[@]}" --set "training.seed=$seed" --exp-dir "$out_dir/${names[k]}_seed$seed" "$@"
  done
done

first_seed=${seed_list[0]}
fuse=false; [ "${#seed_list[@]}" -lt 2 ] || fuse=true   # each system's seeds fused into one
trial_sets=$(for d in data/vox1_*; do [ -f "$d/trials" ] && basename "$d"; done)
if [ "$fuse" = true ]; then
  for name in "${names[@]}"; do
    for set in $trial_sets; do
      mkdir -p "$out_dir/${name}_fused/scores"
      seed_scores=()
      for seed in "${seed_list[@]}"; do
        seed_scores+=("$out_dir/${name}_seed$seed/scores/$set.scores")
      done
      python -m pytorch_modules.bin.fuse_scores --trials "data/$set/trials" \
        --scores-out "$out_dir/${name}_fused/scores/$set.scores" \
        --results-out "$out_dir/${name}_fused/scores/$set.results" \
        "${seed_scores[@]}"
    done
  done
fi
results=() systems=()
for name in "${names[@]}"; do
  for seed in "${seed_list[@]}"; do
    for r in "$out_dir/${name}_seed$seed"/scores/*.results; do results+=("$r"); done
  done
  [ "$fuse" = false ] || for r in "$out_dir/${name}_fused"/scores/*.results; do results+=("$r"); done
  systems+=("$name=$out_dir/${name}_seed$first_seed/scores/vox1_o.scores")
done
{
  python -m pytorch_modules.bin.results_table "${results[@]}"
  for set in $trial_sets; do
    seeded=()
    for name in "${names[@]}"; do
      files=$(for seed in "${seed_list[@]}"; do printf '%s,' "$out_dir/${name}_seed$seed/scores/$set.scores"; done)
      seeded+=("$name=${files%,}")
    done
    if [ "$fuse" = true ]; then
      for name in "${names[@]}"; do seeded+=("${name}_fused=$out_dir/${name}_fused/scores/$set.scores"); done
    fi
    echo; echo "Seeds $seeds on $set:"; echo
    python -m pytorch_modules.bin.compare_systems --trials "data/$set/trials" \
      --reference "$reference" "${seeded[@]}"
  done
} > "$out_dir/results.md.tmp"
mv "$out_dir/results.md.tmp" "$out_dir/results.md"
python -m pytorch_modules.bin.plot_det --trials data/vox1_o/trials --title "vox1_o: $(basename "$out_dir")" \
  --out "$out_dir/det_vox1_o.png" "${systems[@]}"
echo
cat "$out_dir/results.md"
echo "$0: DET curves (seed $first_seed of each system) in $out_dir/det_vox1_o.png"

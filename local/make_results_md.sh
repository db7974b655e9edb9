#!/usr/bin/env bash
# <exp-dir>/results.md (run.sh stage 5): the results table of the model's .results files,
# beside the paper's Table 1 and the baselines' .results
# (pytorch_modules/bin/results_table.py; calibrated rows, <set>_cal from
# steps/calibrate_scores.sh, add actual DCF, Cllr and minCllr, explained under the table),
# then, for each --sets trial set, the paired
# speaker-bootstrap comparison of the model's cosine scores against each classical baseline's
# on the same trials (pytorch_modules/bin/compare_systems.py).  Printed when done.
set -euo pipefail

paper_train_set=
loss=dam_softmax
baselines=
classical_dir=
classical_systems=
sets=
help_message="Usage: $0 [options] <exp-dir> <results> [<results> ...]
e.g.: $0 --paper-train-set voxceleb2 --loss dam_softmax --baselines \"exp/classical_x/gmm_ubm/scores/vox1_o.results\" \\
        --classical-dir exp/classical_x --classical-systems gmm_ubm --sets vox1_o \\
        exp/rescnn_dam exp/rescnn_dam/scores/vox1_o.results
Options:
  --paper-train-set <set>     the paper's rows to show (voxceleb1 or voxceleb2; empty: none)
  --loss <type>               the model's loss (default: $loss)
  --baselines <files>         the baselines' .results files
  --classical-dir <dir>       where run_classical_baselines.sh put the baselines, and
  --classical-systems <list>  which of them to compare the model with, on
  --sets <list>               these trial sets (data/<set>/trials)"

. ./path.sh
. utils/parse_options.sh
[ $# -ge 2 ] || { echo "$help_message" >&2; exit 1; }
exp_dir=$1
shift

# shellcheck disable=SC2086
python -m pytorch_modules.bin.results_table --paper-table local/paper_table1.txt \
  --train-set "$paper_train_set" --loss "$loss" "$@" \
  ${baselines:+--baselines $baselines} > "$exp_dir/results.md.tmp"
if grep -qs '^cllr ' "$@"; then
  { echo
    echo "actDCF, Cllr, minCllr: of the calibrated rows (*_cal), whose scores are log-likelihood"
    echo "ratios from a logistic-regression calibration fitted on a trial list of training speakers"
    echo "(steps/calibrate_scores.sh); actDCF(p) decides at the Bayes threshold -logit(p), minDCF at"
    echo "the best threshold of the list itself; minCllr is Cllr after the best monotonic"
    echo "recalibration (PAV).  Cosine and AS-norm scores are not log-likelihood ratios: '-'."
  } >> "$exp_dir/results.md.tmp"
fi
for set in $sets; do
  [ -n "$classical_systems" ] || break
  systems=("$(basename "$exp_dir")=$exp_dir/scores/$set.scores")
  for system in $classical_systems; do
    systems+=("$system=$classical_dir/$system/scores/$set.scores")
  done
  { echo; echo "Paired comparison on $set (cosine scores):"; echo
    python -m pytorch_modules.bin.compare_systems --trials "data/$set/trials" "${systems[@]}"
  } >> "$exp_dir/results.md.tmp"
done
mv "$exp_dir/results.md.tmp" "$exp_dir/results.md"
echo
cat "$exp_dir/results.md"

#!/usr/bin/env bash
# The classical baselines of every results table (pytorch_modules/models/classical.py, settings in
# conf/classical.yaml): MFCC mean+std (mfcc_stats_lda), a GMM-UBM supervector system (gmm_ubm)
# and Kaldi's i-vector system (ivector), trained on the same training set as the neural model
# and embedding the same evaluation sets, so that run.sh stage 5 scores them on the same trials.
# Writes
#   data/<set>_mfcc/                      copies of the data dirs with MFCC feats.scp
#   <mfcc-dir>/raw_mfcc_<set>.*           the MFCC arks (steps/make_mfcc.sh, --nj jobs)
#   <exp-dir>/<system>/embeddings_<set>/  xvector.scp per evaluation set and for the training set
#   <exp-dir>/<system>/backend            how stage 5 scores the system: cosine
#                                         (steps/score_cosine.sh) or plda (steps/score_plda.sh
#                                         with <train-data-dir> and embeddings_<train-set>)
#   <exp-dir>/<system>/log/train.log      the training log (one job through --cmd)
# Restartable: MFCC jobs that are done are kept (steps/make_spectrogram.sh), and a system is
# trained again only when its MFCCs or settings differ from those it was trained on
# (<exp-dir>/<system>/inputs.sha256).
set -euo pipefail

nj=2
cmd=utils/launch_local.py
systems="mfcc_stats_lda gmm_ubm ivector"
config=conf/classical.yaml
mfcc_dir=mfcc
help_message="Usage: $0 [options] <train-data-dir> <exp-dir> <eval-data-dir> [<eval-data-dir> ...]
e.g.: $0 --nj 8 --cmd \"\$train_cmd\" data/voxceleb1_dev exp/classical_voxceleb1_dev data/voxceleb1_eval
Options:
  --nj <n>              parallel MFCC jobs (default: $nj)
  --cmd <launcher>      job launcher (default: $cmd)
  --systems <list>      which baselines, of mfcc_stats_lda gmm_ubm ivector (default: \"$systems\")
  --config <file>       the baselines' settings, a section per system (default: $config)
  --mfcc-dir <dir>      where the MFCC arks go (default: $mfcc_dir)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
[ $# -ge 3 ] || { echo "$help_message" >&2; exit 1; }
train=$1
exp=$2
shift 2
evals=("$@")

die() { echo "$0: $*" >&2; exit 1; }
for system in $systems; do
  case $system in mfcc_stats_lda|gmm_ubm|ivector) ;; *) die "unknown system '$system' (mfcc_stats_lda, gmm_ubm, ivector)" ;; esac
done
[ -f "$config" ] || die "$config does not exist (--config: the baselines' settings, e.g. conf/classical.yaml)"
lock_dir "$exp"

# data/<set>_mfcc: the set's wav.scp, utt2spk and spk2utt, copied only when they changed,
# and its MFCCs.
mfcc_sets=()
for data in "$train" "${evals[@]}"; do
  utils/validate_data_dir.sh --no-feats "$data"
  out=${data%/}_mfcc
  mkdir -p "$out"
  for f in wav.scp utt2spk spk2utt; do
    cmp -s "$data/$f" "$out/$f" || cp "$data/$f" "$out/$f"
  done
  steps/make_mfcc.sh --nj "$nj" --cmd "$cmd" "$out" "$mfcc_dir"
  mfcc_sets+=("$out")
done
mfcc_evals=("${mfcc_sets[@]:1}")

# What a system is made from: its settings and every MFCC set (the feats.scp lines and the
# size and time of each ark they point into).  Stage 2 rewrites feats.scp on every run, so
# file times alone would retrain the baselines each time; this changes only when the MFCCs do.
inputs_of() {
  local settings
  settings=$(python -m pytorch_modules.bin.classical_baseline --system "$1" --config "$config" \
    --print-settings) || die "cannot read the settings of $1 from $config"
  echo "system=$1 $settings"
  for data in "${mfcc_sets[@]}"; do
    echo "$data"; cat "$data/feats.scp"
    cut -d' ' -f2- "$data/feats.scp" | sed 's/:[0-9]*$//' | sort -u | xargs stat -c '%n %s %Y'
  done | sha256sum | cut -d' ' -f1
}

train_name=$(basename "${mfcc_sets[0]%_mfcc}")
for system in $systems; do
  dir=$exp/$system
  inputs=$(inputs_of "$system")
  done_already=true
  [ "$(cat "$dir/inputs.sha256" 2>/dev/null)" = "$inputs" ] || done_already=false
  for data in "${mfcc_evals[@]}"; do
    [ -f "$dir/embeddings_$(basename "${data%_mfcc}")/xvector.scp" ] || done_already=false
  done
  [ -f "$dir/embeddings_$train_name/xvector.scp" ] && [ -f "$dir/backend" ] || done_already=false
  if $done_already; then
    echo "$0: $system is already trained on $train from these MFCCs (delete $dir to redo it)"
    continue
  fi
  rm -f "$dir/inputs.sha256"
  $cmd "$dir/log/train.log" python -m pytorch_modules.bin.classical_baseline --system "$system" \
    --config "$config" "${mfcc_sets[0]}" "$dir" "${mfcc_evals[@]}" ||
    die "training $system failed; see $dir/log/train.log"
  echo "$inputs" > "$dir/inputs.sha256"
  grep "^classical_baseline: wrote" "$dir/log/train.log"
done

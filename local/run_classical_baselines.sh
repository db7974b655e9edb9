#!/usr/bin/env bash
# The classical baselines of every results table (pytorch_modules/models/classical.py): MFCC mean+std
# with LDA (mfcc_stats_lda) and a GMM-UBM supervector system with PCA + LDA (gmm_ubm), trained
# on the same training set as the neural model and embedding the same evaluation sets, so that
# run.sh stage 5 scores them on the same trials.  Writes
#   data/<set>_mfcc/                      copies of the data dirs with MFCC feats.scp
#   <mfcc-dir>/raw_mfcc_<set>.*           the MFCC arks (steps/make_mfcc.sh, --nj jobs)
#   <exp-dir>/<system>/embeddings_<set>/  xvector.scp per evaluation set
#   <exp-dir>/<system>/log/train.log      the training log (one job through --cmd)
# Restartable: MFCC jobs that are done are kept (steps/make_spectrogram.sh), and a system is
# trained again only when its MFCCs or options differ from those it was trained on
# (<exp-dir>/<system>/inputs.sha256).
set -euo pipefail

nj=2
cmd=utils/launch_local.py
systems="mfcc_stats_lda gmm_ubm"
num_gauss=128
mfcc_dir=mfcc
help_message="Usage: $0 [options] <train-data-dir> <exp-dir> <eval-data-dir> [<eval-data-dir> ...]
e.g.: $0 --nj 8 --cmd \"\$train_cmd\" data/voxceleb1_dev exp/classical_voxceleb1_dev data/voxceleb1_eval
Options:
  --nj <n>              parallel MFCC jobs (default: $nj)
  --cmd <launcher>      job launcher (default: $cmd)
  --systems <list>      which baselines (default: \"$systems\")
  --num-gauss <n>       UBM components of gmm_ubm (default: $num_gauss)
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
  case $system in mfcc_stats_lda|gmm_ubm) ;; *) die "unknown system '$system' (mfcc_stats_lda, gmm_ubm)" ;; esac
done
[[ "$num_gauss" =~ ^[1-9][0-9]*$ ]] || die "--num-gauss takes a positive number, not '$num_gauss'"
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

# What a system is made from: its options and every MFCC set (the feats.scp lines and the
# size and time of each ark they point into).  Stage 2 rewrites feats.scp on every run, so
# file times alone would retrain the baselines each time; this changes only when the MFCCs do.
inputs_of() {
  echo "system=$1 num_gauss=$num_gauss"
  for data in "${mfcc_sets[@]}"; do
    echo "$data"; cat "$data/feats.scp"
    cut -d' ' -f2- "$data/feats.scp" | sed 's/:[0-9]*$//' | sort -u | xargs stat -c '%n %s %Y'
  done | sha256sum | cut -d' ' -f1
}

for system in $systems; do
  dir=$exp/$system
  inputs=$(inputs_of "$system")
  done_already=true
  [ "$(cat "$dir/inputs.sha256" 2>/dev/null)" = "$inputs" ] || done_already=false
  for data in "${mfcc_evals[@]}"; do
    [ -f "$dir/embeddings_$(basename "${data%_mfcc}")/xvector.scp" ] || done_already=false
  done
  if $done_already; then
    echo "$0: $system is already trained on $train from these MFCCs (delete $dir to redo it)"
    continue
  fi
  rm -f "$dir/inputs.sha256"
  $cmd "$dir/log/train.log" python -m pytorch_modules.bin.classical_baseline --system "$system" \
    --num-gauss "$num_gauss" "${mfcc_sets[0]}" "$dir" "${mfcc_evals[@]}" ||
    die "training $system failed; see $dir/log/train.log"
  echo "$inputs" > "$dir/inputs.sha256"
  grep "^classical_baseline: wrote" "$dir/log/train.log"
done

#!/usr/bin/env bash
# Speaker verification with ResCNN + DAM-Softmax (Zhou et al., Interspeech 2020), Kaldi style.
#
#   ./run.sh                         the whole recipe on the generated demo corpus (CPU, minutes)
#   ./run.sh --stage 3               redo training and everything after it
#   ./run.sh --config conf/demo_am.yaml    the AM-Softmax baseline (exp dir follows the config)
#
# Stages:
#   0  generate the demo corpus, laid out like VoxCeleb1      corpora/demo/
#   1  data preparation (local/prepare_voxceleb1.py)          data/voxceleb1_dev, data/vox1_o
#   2  161-bin log spectrograms -> Kaldi arks                 feats/, data/*/feats.scp
#   3  train the ResCNN                                       exp/<config>/final.pt
#   4  embeddings of the evaluation utterances                exp/<config>/embeddings_vox1_o/
#   5  cosine scoring, EER and minDCF, results table          exp/<config>/scores/, results.md
set -euo pipefail

stage=0
stop_stage=100
corpus=demo
config=
exp_dir=
nj=2
demo_root=corpora/demo
demo_seed=777
demo_options=
help_message="Usage: $0 [options]
Options:
  --stage <n>            first stage to run (default: $stage)
  --stop-stage <n>       last stage to run (default: all)
  --corpus <demo>        which corpus (default: $corpus)
  --config <yaml>        training config (default: conf/demo_dam.yaml for the demo)
  --exp-dir <dir>        experiment dir (default: exp/<config name>)
  --nj <n>               parallel jobs for features and embeddings (default: $nj)
  --demo-root <dir>      where the demo corpus is generated (default: $demo_root)
  --demo-seed <n>        seed of the demo corpus (default: $demo_seed)
  --demo-options <str>   extra options for local/make_demo_corpus.py, e.g. \"--num-dev-speakers 10\""

cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1'" >&2; echo "$help_message" >&2; exit 1; }

case $corpus in
  demo)
    [ -n "$config" ] || config=conf/demo_dam.yaml
    vox1_root=$demo_root
    train_set=voxceleb1_dev
    eval_sets="vox1_o" ;;
  *) echo "$0: unknown --corpus '$corpus' (demo)" >&2; exit 1 ;;
esac
[ -f "$config" ] || { echo "$0: no config file $config" >&2; exit 1; }
[ -n "$exp_dir" ] || exp_dir=exp/$(basename "$config" .yaml)

run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
banner() { echo; echo "=== stage $1: $2 ($(date '+%H:%M:%S'))"; }

if run_stage 0 && [ "$corpus" = demo ]; then
  banner 0 "demo corpus in $demo_root"
  # shellcheck disable=SC2086
  local/make_demo_corpus.py --seed "$demo_seed" --nj "$nj" $demo_options "$demo_root"
fi

if run_stage 1; then
  banner 1 "data preparation"
  local/prepare_voxceleb1.py --no-count-check --trials vox1_o=veri_test2.txt "$vox1_root" data
  for set in $train_set $eval_sets; do utils/validate_data_dir.sh --no-feats "data/$set"; done
fi

if run_stage 2; then
  banner 2 "features"
  for set in $train_set $eval_sets; do
    steps/make_spectrogram.sh --nj "$nj" --cmd "$train_cmd" "data/$set" feats
  done
fi

if run_stage 3; then
  banner 3 "training $exp_dir with $config"
  steps/train.sh --cmd "$cuda_cmd" --config "$config" "data/$train_set" "$exp_dir"
fi

if run_stage 4; then
  banner 4 "embeddings"
  for set in $eval_sets; do
    steps/extract_embeddings.sh --nj "$nj" --cmd "$train_cmd" "$exp_dir/final.pt" \
      "data/$set" "$exp_dir/embeddings_$set"
  done
fi

if run_stage 5; then
  banner 5 "scoring"
  results=()
  for set in $eval_sets; do
    steps/score_cosine.sh --name "$set" "data/$set/trials" "$exp_dir/embeddings_$set" \
      "$exp_dir/embeddings_$set" "$exp_dir/scores"
    results+=("$exp_dir/scores/$set.results")
  done
  python -m pytorch_modules.bin.results_table "${results[@]}" > "$exp_dir/results.md.tmp"
  mv "$exp_dir/results.md.tmp" "$exp_dir/results.md"
  echo
  cat "$exp_dir/results.md"
fi

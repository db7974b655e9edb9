#!/usr/bin/env bash
# Speaker verification with ResCNN + DAM-Softmax (Zhou et al., Interspeech 2020), Kaldi style.
#
#   ./run.sh                              the whole recipe on the generated demo corpus (CPU)
#   ./run.sh --stage 3                    redo training and everything after it
#   ./run.sh --config conf/demo_am.yaml   the AM-Softmax baseline (exp dir follows the config)
#   ./run.sh --set loss.type=am_softmax --set training.seed=2   the config with two keys changed
#   ./run.sh --corpus voxceleb --voxceleb1-root /data/VoxCeleb1 --voxceleb2-root /data/VoxCeleb2 \
#            --sitw-root /data/sitw_database.v4 --config conf/rescnn_dam.yaml
#
# Stages:
#   0  demo: generate the demo corpus (laid out like VoxCeleb1)   corpora/demo/
#      voxceleb: check the corpora are there (and ffmpeg for VoxCeleb2's m4a)
#   1  data preparation                                           data/<train-set>, data/vox1_*, data/sitw_*
#   2  161-bin log spectrograms -> Kaldi arks                     feats/, data/*/feats.scp
#   3  train the ResCNN                                           exp/<config>/final.pt
#   4  embeddings of the evaluation utterances; the classical     exp/<config>/embeddings_*/,
#      baselines (MFCC+LDA, GMM-UBM) on the same sets             exp/classical_<train-set>/
#   5  cosine and AS-norm scoring, EER and minDCF with 95%        exp/<config>/scores/, results.md
#      intervals, the baselines' rows and paired tests
#   6  DET curves, margin and cos(theta) figures, decision
#      threshold, TorchScript/ONNX export                         exp/<config>/plots/, final.threshold, export/
set -euo pipefail

stage=0
stop_stage=6
corpus=demo
config=
set=()
overlay=
init_model=
lm=false
exp_dir=
nj=2
num_gpus=0
nproc_per_node=1
embed_use_gpu=auto
embedding_layer=bn
embed_min_frames=32
demo_root=corpora/demo
demo_seed=777
demo_options=
voxceleb1_root=
voxceleb2_root=
sitw_root=
musan_root=
rirs_root=
train_set=
sitw_overlap_list=local/voxceleb1_sitw_overlap.txt
asnorm=true
plda=true
calibrate=true
classical_config=conf/classical.yaml
asnorm_top_n=300
cohort_utts_per_spk=0
baseline=true
help_message="Usage: $0 [options]
Options:
  --stage <n>               first stage to run (default: $stage)
  --stop-stage <n>          last stage to run (default: $stop_stage, the last)
  --corpus <demo|voxceleb>  the generated demo corpus, or the real corpora (default: $corpus)
  --config <yaml>           training config (default: conf/demo_dam.yaml for the demo,
                            conf/rescnn_dam.yaml for voxceleb)
  --set <section.key=value> override a key of the config, e.g. --set loss.type=aam_softmax
                            (repeatable; checked like the file; the exp dir's config.yaml
                            records the result, and the default exp dir name gets the
                            overrides: exp/<config name>_loss.type-aam_softmax)
  --overlay <yaml>          a partial config whose keys override the config's, as --set does
                            (e.g. conf/overlays/finetune.yaml); the exp dir name gets its name
  --init-model <final.pt>   start training from this model (training.init_model): its
                            network, and its head on the same speakers (fine-tuning)
  --lm <true|false>         after stage 3, large-margin fine-tuning (conf/overlays/lm.yaml: 6-s crops,
                            margin 0.5, lr 1e-4, 5 epochs) of the trained model into
                            <exp-dir>_lm, which stages 4-6 then use (default: $lm)
  --exp-dir <dir>           experiment dir (default: exp/<config name> for the demo,
                            exp/<train-set>_<config name> for voxceleb)
  --nj <n>                  parallel jobs for features and embeddings (default: $nj)
  --num-gpus <n>            train on n GPUs of this node with torchrun/DDP (default: $num_gpus: CPU)
  --nproc-per-node <n>      CPU training processes (gloo) when --num-gpus is 0 (default: $nproc_per_node)
                            (several nodes: run steps/train.sh with --nnodes/--node-rank, README.md)
  --embed-use-gpu <auto|true|false>  extract embeddings on GPUs through \$cuda_cmd, one per
                            job (auto: when --num-gpus > 0; default: $embed_use_gpu)
  --embedding-layer <bn|fc> the vector scored: the embedding BatchNorm's output (bn) or the
                            FC output in front of it (fc) (default: $embedding_layer)
  --embed-min-frames <n>    stage 4: utterances shorter than n frames are repeated up to n
                            before embedding, and counted (default: $embed_min_frames: 0.32 s,
                            the least the networks take)
  --asnorm <true|false>     also score with AS-norm against training-speaker cohorts, which
                            embeds the training set too (default: $asnorm)
  --asnorm-top-n <n>        AS-norm: cohort scores per side (default: $asnorm_top_n)
  --plda <true|false>       also score with PLDA (LDA, length norm, two-covariance PLDA trained
                            on the training subset's embeddings; <set>_plda rows) (default: $plda)
  --calibrate <true|false>  also calibrate the scores to log-likelihood ratios, fitted on trials of
                            training speakers (<set>_cal rows with actual DCF and Cllr; the model's
                            final.calibration for verify) (default: $calibrate)
  --cohort-utts-per-spk <n> embed only the first n utterances of each training speaker for the
                            back-ends (AS-norm cohort, calibration) (0: all of them; default:
                            $cohort_utts_per_spk)
  --classical-config <f>    the baselines' settings (default: $classical_config; for a corpus of
                            one sitting per speaker conf/classical_one_sitting.yaml, without
                            mean normalisation)
  --baseline <true|false>   also train the classical baselines (MFCC mean+std + LDA, GMM-UBM
                            + PLDA, i-vector + PLDA)
                            on the training set and score them on the same trials, once per
                            training set, in exp/classical_<train-set> (default: $baseline)
 demo corpus:
  --demo-root <dir>         where the demo corpus is generated (default: $demo_root)
  --demo-seed <n>           seed of the demo corpus (default: $demo_seed)
  --demo-options <str>      extra options of local/make_demo_corpus.py, e.g. \"--num-dev-speakers 10\"
 real corpora (nothing is downloaded; see README.md for where each comes from):
  --voxceleb1-root <dir>    VoxCeleb1: dev/wav + test/wav (or wav/) and veri_test2.txt;
                            list_test_all2.txt, list_test_hard2.txt add Vox1-E and Vox1-H
  --voxceleb2-root <dir>    VoxCeleb2: dev/aac/idNNNNN/<session>/NNNNN.m4a (or a wav copy)
  --sitw-root <dir>         SITW: dev/ and eval/ with audio/, lists/, keys/
  --train-set <voxceleb1|voxceleb2>  training data (default: voxceleb2 when given, else voxceleb1)
  --sitw-overlap-list <f>   VoxCeleb1 speakers who are also in SITW, removed from voxceleb1
                            training when SITW is evaluated (default: $sitw_overlap_list)
  --musan-root <dir>        MUSAN (noise/, music/, speech/): stage 1 lists its files in
                            data/musan/{noise,music,speech}.list for a config's augment: section
  --rirs-root <dir>         RIRS_NOISES: stage 1 lists simulated_rirs/ in data/rirs/rir.list"

cd "$(dirname "$0")"
utils/setup_env.sh   # the environment, made the first time (path.sh only sets variables)
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1'" >&2; echo "$help_message" >&2; exit 1; }

die() { echo "$0: $*" >&2; exit 1; }
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
banner() { echo; echo "=== stage $1: $2 ($(date '+%H:%M:%S'))"; }
# need FILE STAGE MAKER: STAGE cannot start without FILE, which stage MAKER writes.
need() {
  [ -e "$1" ] || die "stage $2 needs $1, which stage $3 writes; run ./run.sh --stage $3 (with the same options) first"
}
# whole_number OPTION VALUE MIN: a whole number of at least MIN, or a sentence before any work.
whole_number() {
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] ||
    die "--$1 takes a whole number of at least $3, not '$2'"
}
whole_number nj "$nj" 1
whole_number num-gpus "$num_gpus" 0
whole_number nproc-per-node "$nproc_per_node" 1
whole_number asnorm-top-n "$asnorm_top_n" 1
whole_number embed-min-frames "$embed_min_frames" 32
whole_number cohort-utts-per-spk "$cohort_utts_per_spk" 0
whole_number demo-seed "$demo_seed" 0
for root in $musan_root $rirs_root; do
  [ -d "$root" ] || die "augmentation corpus folder $root does not exist (--musan-root/--rirs-root)"
done
last_stage=6
[[ "$stage" =~ ^[0-9]+$ ]] && [ "$stage" -le $last_stage ] ||
  die "--stage takes a stage of this recipe, 0 to $last_stage, not '$stage' (./run.sh --help lists them)"
[[ "$stop_stage" =~ ^[0-9]+$ ]] && [ "$stop_stage" -ge "$stage" ] && [ "$stop_stage" -le $last_stage ] ||
  die "--stop-stage takes a stage from --stage ($stage) to $last_stage, not '$stop_stage'"

# Which data each stage works on:
#   train_data   the training set (data/<train_data>)
#   vox1_sets    VoxCeleb1 trial sets, all embedded from one union set, data/voxceleb1_eval
#   sitw_parts   SITW parts, each with an enrollment and a test set
#   embed_sets   every data dir that gets embeddings
case $corpus in
  demo)
    [ -n "$config" ] || config=conf/demo_dam.yaml
    vox1_root=$demo_root
    train_data=voxceleb1_dev
    paper_train_set=demo
    vox1_trials="--no-count-check --trials vox1_o=veri_test2.txt"
    sitw_parts="" ;;
  voxceleb)
    [ -n "$config" ] || config=conf/rescnn_dam.yaml
    [ -n "$voxceleb1_root" ] || die "--corpus voxceleb needs --voxceleb1-root (its evaluation lists are Vox1-O/E/H)"
    vox1_root=$voxceleb1_root
    [ -n "$train_set" ] || { [ -n "$voxceleb2_root" ] && train_set=voxceleb2 || train_set=voxceleb1; }
    case $train_set in
      voxceleb1) train_data=voxceleb1_dev ;;
      voxceleb2) train_data=voxceleb2_dev
                 [ -n "$voxceleb2_root" ] || die "--train-set voxceleb2 needs --voxceleb2-root" ;;
      *) die "--train-set must be voxceleb1 or voxceleb2, not '$train_set'" ;;
    esac
    paper_train_set=$train_set
    vox1_trials="--trials vox1_o=veri_test2.txt --optional-trials vox1_e=list_test_all2.txt
      --optional-trials vox1_h=list_test_hard2.txt --optional-trials vox1_o_orig=veri_test.txt
      --optional-trials vox1_e_orig=list_test_all.txt --optional-trials vox1_h_orig=list_test_hard.txt"
    sitw_parts=""
    [ -z "$sitw_root" ] || sitw_parts="dev eval" ;;
  *) die "unknown --corpus '$corpus' (demo or voxceleb)" ;;
esac
[ -f "$config" ] || die "no config file $config"
# Checked here, not in stage 4: a typo must not wait for training to end.
case $embed_use_gpu in
  auto) [ "$num_gpus" -gt 0 ] && embed_use_gpu=true || embed_use_gpu=false ;;
  true|false) ;;
  *) die "--embed-use-gpu takes auto, true or false, not '$embed_use_gpu'" ;;
esac
[[ "$embedding_layer" =~ ^(bn|fc)$ ]] || die "--embedding-layer takes bn or fc, not '$embedding_layer'"
for flag in lm asnorm plda calibrate baseline; do
  [[ "${!flag}" =~ ^(true|false)$ ]] || die "--$flag takes true or false, not '${!flag}'"
done
# An overlay is a set of --set options, read from a file; --init-model one more.
named_sets=("${set[@]}")
if [ -n "$overlay" ]; then
  [ -f "$overlay" ] || die "no overlay file $overlay"
  mapfile -t overlay_sets < <(python -m pytorch_modules.bin.config_value --as-overrides "$overlay")
  [ "${#overlay_sets[@]}" -gt 0 ] || die "the overlay $overlay sets no keys (or could not be read: see above)"
  set=("${overlay_sets[@]}" "${set[@]}")
fi
[ -z "$init_model" ] || set+=("training.init_model=$init_model")
overrides=()
for o in "${set[@]}"; do overrides+=(--set "$o"); done
if [ -z "$exp_dir" ]; then
  # One exp dir per (training set, config, overrides): VoxCeleb1 and VoxCeleb2 models never
  # mix, and neither do variants of one config.
  exp_dir=exp/$(basename "$config" .yaml)
  [ "$corpus" = demo ] || exp_dir=exp/${train_set}_$(basename "$config" .yaml)
  [ -z "$overlay" ] || exp_dir+=_$(basename "$overlay" .yaml)
  for o in "${named_sets[@]}"; do exp_dir+=_$(printf '%s' "${o/=/-}" | tr -c 'A-Za-z0-9._-' '_'); done
fi
# Large-margin fine-tuning: the same config with conf/overlays/lm.yaml's keys, from the trained model.
lm_exp_dir=${exp_dir}_lm
lm_overrides=()
if [ "$lm" = true ]; then
  mapfile -t lm_sets < <(python -m pytorch_modules.bin.config_value --as-overrides conf/overlays/lm.yaml)
  for o in "${lm_sets[@]}" "training.init_model=$exp_dir/final.pt"; do lm_overrides+=(--set "$o"); done
  python -m pytorch_modules.bin.config_value "${overrides[@]}" "${lm_overrides[@]}" "$config" \
    >/dev/null || exit 1
fi
# The whole config is checked now, not when training starts: a bad value stops here.
values=$(python -m pytorch_modules.bin.config_value "${overrides[@]}" "$config" loss.type \
  data.features data.spectrogram_config training.init_model) || exit 1
mapfile -t value_lines <<< "$values"   # the last, an empty init_model, may be no line at all
loss=${value_lines[0]} train_features=${value_lines[1]} feat_config=${value_lines[2]}
init_from=${value_lines[3]:-}
# A model to start from must be there before the stages before training do their work.
[ -z "$init_from" ] || [ -f "$init_from" ] || [ -f "$exp_dir/final.pt" ] ||
  die "training.init_model $init_from does not exist (from --init-model, --set or $config); give the final.pt or a checkpoint of a trained model"
# One run at a time writes the data dirs (stages 1-2) and the exp dir (3-6): each stage locks
# what it writes once its inputs are there, and a second run started beside this one stops,
# naming this one (utils/lock.sh; a lock is taken once and held to the end of the run).
. utils/lock.sh

# The VoxCeleb1 trial sets that stage 1 prepared (E/H and the original lists are optional).
vox1_sets() { for d in data/vox1_*; do [ -f "$d/trials" ] && basename "$d"; done; }
embed_sets() {
  echo voxceleb1_eval
  for part in $sitw_parts; do echo "sitw_${part}_enroll sitw_${part}_test"; done
}

if run_stage 0; then
  if [ "$corpus" = demo ]; then
    banner 0 "demo corpus in $demo_root"
    # shellcheck disable=SC2086
    local/make_demo_corpus.py --seed "$demo_seed" --nj "$nj" $demo_options "$demo_root"
  else
    banner 0 "checking the corpora"
    for root in "$voxceleb1_root" $voxceleb2_root $sitw_root; do
      [ -d "$root" ] || die "corpus folder $root does not exist; see README.md, 'Real corpora', for where each corpus comes from"
    done
    if [ "$train_set" = voxceleb2 ] && ! command -v ffmpeg >/dev/null; then
      [ -d "$voxceleb2_root/dev/wav" ] || [ -d "$voxceleb2_root/wav" ] || local/install_ffmpeg.sh
    fi
  fi
fi

if run_stage 1; then
  banner 1 "data preparation"
  lock_dir data
  exclude=()
  if [ "$corpus" = voxceleb ] && [ "$train_set" = voxceleb1 ] && [ -n "$sitw_parts" ]; then
    if [ -f "$sitw_overlap_list" ]; then
      exclude=(--exclude-speakers "$sitw_overlap_list")
    else
      echo "$0: warning: $sitw_overlap_list not found, so the VoxCeleb1 speakers who are also in SITW stay in training; get voxceleb1_sitw_overlap.txt (OpenSLR resource 49) and pass --sitw-overlap-list" >&2
    fi
  fi
  rm -rf data/vox1_*   # sets of an earlier run with other lists
  # shellcheck disable=SC2086
  local/prepare_voxceleb1.py $vox1_trials "${exclude[@]}" "$vox1_root" data
  if [ "$train_data" = voxceleb2_dev ]; then
    local/prepare_voxceleb2.py "$voxceleb2_root" data
  fi
  [ -z "$sitw_parts" ] || local/prepare_sitw.py "$sitw_root" data
  if [ -n "$musan_root$rirs_root" ]; then
    local/prepare_augment_lists.py ${musan_root:+--musan-root "$musan_root"} \
      ${rirs_root:+--rirs-root "$rirs_root"} data
  fi
  # One union of the VoxCeleb1 trial sets: each utterance is embedded once, however many
  # lists name it (Vox1-E and Vox1-H share most of VoxCeleb1).
  sets=$(vox1_sets)
  set_dirs=()
  for s in $sets; do set_dirs+=("data/$s"); done
  utils/combine_data.sh data/voxceleb1_eval "${set_dirs[@]}"
  # Vox1-E and Vox1-H draw on VoxCeleb1 dev speakers: trained on VoxCeleb1 dev, they measure
  # trained-on-test performance.  Recorded beside the trials; results.md marks such rows.
  for set in $sets; do
    read -r shared total < <(utils/shared_speakers.sh "data/$set" "data/$train_data")
    echo "speakers_in_training $shared" >> "data/$set/trials.info"
    [ "$shared" -eq 0 ] || echo "$0: warning: $shared of the $total speakers of $set are in" \
      "the training set data/$train_data: its results measure trained-on-test speakers, and" \
      "results.md marks them so" >&2
  done
  for set in $train_data $(embed_sets); do utils/validate_data_dir.sh --no-feats "data/$set"; done
fi

if run_stage 2; then
  banner 2 "features"
  need "data/$train_data/wav.scp" 2 1
  lock_dir data
  # data.features: shards trains from tar shards of the training set (decoded once, here),
  # whose indexes hold the frame counts: its arks are not made (139-545 GB for VoxCeleb2).
  feature_sets=$(embed_sets)
  [ "$train_features" = shards ] || feature_sets="$train_data $feature_sets"
  for set in $feature_sets; do
    steps/make_spectrogram.sh --nj "$nj" --cmd "$train_cmd" --feat-config "$feat_config" \
      "data/$set" feats
  done
  if [ "$train_features" = shards ]; then
    steps/make_shards.sh --nj "$nj" --cmd "$train_cmd" --feat-config "$feat_config" \
      "data/$train_data" "shards/$train_data"
  fi
  # A trial naming an utterance that had to be dropped cannot be scored: say so before training.
  for set in $(vox1_sets); do
    utils/unscorable_trials.sh "data/$set/trials" data/voxceleb1_eval/feats.scp \
      data/voxceleb1_eval/feats.scp
  done
  for part in $sitw_parts; do
    utils/unscorable_trials.sh "data/sitw_${part}_test/trials" \
      "data/sitw_${part}_enroll/spk2utt" "data/sitw_${part}_test/feats.scp"
  done
fi

if run_stage 3; then
  banner 3 "training $exp_dir with $config"
  if [ "$train_features" = shards ]; then
    need "data/$train_data/shards.list" 3 2
  else
    need "data/$train_data/feats.scp" 3 2
  fi
  lock_dir "$exp_dir"
  steps/train.sh --cmd "$cuda_cmd" --num-gpus "$num_gpus" --nproc-per-node "$nproc_per_node" \
    --config "$config" "${overrides[@]}" "data/$train_data" "$exp_dir"
  if [ "$lm" = true ]; then
    banner 3 "large-margin fine-tuning of $exp_dir into $lm_exp_dir"
    lock_dir "$lm_exp_dir"
    steps/train.sh --cmd "$cuda_cmd" --num-gpus "$num_gpus" --nproc-per-node "$nproc_per_node" \
      --config "$config" "${overrides[@]}" "${lm_overrides[@]}" "data/$train_data" "$lm_exp_dir"
  fi
fi
# With --lm true, stages 4-6 work on the fine-tuned model.
[ "$lm" = false ] || exp_dir=$lm_exp_dir

# The back-ends learn from training speakers' embeddings: those of data/<backend_data>, the
# training set or a few utterances of each of its speakers (--cohort-utts-per-spk).
backend_data=$train_data
[ "$cohort_utts_per_spk" -eq 0 ] || backend_data=${train_data}_cohort$cohort_utts_per_spk
cohort_dir=$exp_dir/cohort_$backend_data
# The model's back-ends, each scoring every trial set into scores/<set><suffix>: cosine
# (<set>), AS-norm (<set>_asnorm), PLDA (<set>_plda).
model_backends=cosine
[ "$asnorm" = false ] || model_backends+=" asnorm"
[ "$plda" = false ] || model_backends+=" plda"
# The classical baselines: trained once per training set and settings file, shared by every
# config; each is scored by its own back-end (its dir's `backend` file), under <set>.
classical_dir=exp/classical_$train_data
[ "$classical_config" = conf/classical.yaml ] ||
  classical_dir+=_$(basename "$classical_config" .yaml | sed 's/^classical_//')
classical_systems="mfcc_stats_lda gmm_ubm ivector"

if run_stage 4; then
  banner 4 "embeddings"
  need "$exp_dir/final.pt" 4 3
  need data/voxceleb1_eval/feats.scp 4 2
  lock_dir "$exp_dir"
  embed_sets_now=$(embed_sets)
  if [ "$model_backends" != cosine ] || [ "$calibrate" = true ]; then
    steps/make_training_subset.sh --nj "$nj" --cmd "$train_cmd" --feat-config "$feat_config" \
      "data/$train_data" "$cohort_utts_per_spk" "data/$backend_data"
    embed_sets_now="$embed_sets_now $backend_data"
  fi
  embed_cmd=$train_cmd
  [ "$embed_use_gpu" = false ] || embed_cmd=$cuda_cmd
  for set in $embed_sets_now; do
    steps/extract_embeddings.sh --nj "$nj" --cmd "$embed_cmd" --use-gpu "$embed_use_gpu" \
      --layer "$embedding_layer" --min-frames "$embed_min_frames" "$exp_dir/final.pt" \
      "data/$set" "$exp_dir/embeddings_$set"
  done
  if [ "$asnorm" = true ]; then
    steps/make_asnorm_cohort.sh "data/$backend_data" "$exp_dir/embeddings_$backend_data" "$cohort_dir"
  fi
  if [ "$baseline" = true ]; then
    # shellcheck disable=SC2046
    local/run_classical_baselines.sh --nj "$nj" --cmd "$train_cmd" --systems "$classical_systems" \
      --config "$classical_config" "data/$train_data" "$classical_dir" \
      $(for set in $(embed_sets); do echo "data/$set"; done)
  fi
fi

# Every trial set: its name, trials, and the data sets of its enrollment and test sides (SITW
# enrolls models, one embedding each, the mean of their utterances).
trial_sets() {
  local set part
  for set in $(vox1_sets); do echo "$set data/$set/trials voxceleb1_eval voxceleb1_eval"; done
  for part in $sitw_parts; do echo "sitw_$part data/sitw_${part}_test/trials sitw_${part}_enroll sitw_${part}_test"; done
}
suffix() { [ "$1" = cosine ] || echo "_$1"; }
# score_trial_sets DIR BACKEND SUFFIX TRAIN: every trial set scored with the embeddings under
# DIR by BACKEND (cosine, asnorm, plda) into DIR/scores/<set>SUFFIX; PLDA learns from the
# embeddings of data/TRAIN.
score_trial_sets() {
  local dir=$1 backend=$2 suffix=$3 train=$4 name trials enroll test
  while read -r name trials enroll test; do
    local models=()
    [[ "$enroll" != sitw_*_enroll ]] || models=(--enroll-spk2utt "data/$enroll/spk2utt")
    local sides=("$dir/embeddings_$enroll" "$dir/embeddings_$test" "$dir/scores")
    case $backend in
      cosine) steps/score_cosine.sh --name "$name$suffix" "${models[@]}" "$trials" "${sides[@]}" ;;
      asnorm) steps/score_asnorm.sh --name "$name$suffix" --top-n "$asnorm_top_n" "${models[@]}" \
                "$trials" "$cohort_dir" "${sides[@]}" ;;
      plda) steps/score_plda.sh --name "$name$suffix" "${models[@]}" "$trials" "data/$train" \
              "$dir/embeddings_$train" "${sides[@]}" ;;
    esac
  done < <(trial_sets)
}
# Calibrated scores (<name>_cal, <name>_asnorm_cal) of every trial set, fitted on the scores of
# a calibration list of training speakers (bin/make_calibration_trials.py); the cosine fit of
# the first set is the model's final.calibration, which verify reads.
calibrate_trial_sets() {
  local dir=$1 emb=$1/embeddings_$backend_data cal=$1/calibration_$backend_data
  local name trials enroll test backend out=(--calibration-out "$1/final.calibration")
  python -m pytorch_modules.bin.make_calibration_trials --seed 1 --xvector-scp "$emb/xvector.scp" \
    "data/$backend_data" "$cal" || {
      echo "$0: warning: no calibration list from data/$backend_data (see above); results.md goes without calibrated scores" >&2
      return 0; }
  steps/score_cosine.sh --name calibration "$cal/trials" "$emb" "$emb" "$dir/scores"
  [ "$asnorm" = false ] || steps/score_asnorm.sh --name calibration_asnorm \
    --top-n "$asnorm_top_n" "$cal/trials" "$cohort_dir" "$emb" "$emb" "$dir/scores"
  while read -r name trials enroll test; do
    local models=()
    [[ "$enroll" != sitw_*_enroll ]] || models=(--enroll-spk2utt "data/$enroll/spk2utt"
      --enroll-utt2num-frames "data/$enroll/utt2num_frames")
    for backend in cosine $([ "$asnorm" = false ] || echo asnorm); do
      local asnorm_opts=()
      [ "$backend" = cosine ] || asnorm_opts=(--cohort-dir "$cohort_dir" --top-n "$asnorm_top_n")
      # A model whose training-speaker scores do not rank targets first cannot be calibrated:
      # the stage goes on with what it has (the reason is above).
      steps/calibrate_scores.sh --name "$name$(suffix "$backend")" "${models[@]}" "${asnorm_opts[@]}" \
        "${out[@]}" "$cal" "$trials" "data/$test/utt2num_frames" "$dir/scores" || {
          echo "$0: warning: no calibrated scores for $name$(suffix "$backend"); results.md goes without them" >&2
          continue; }
      out=()
    done
  done < <(trial_sets)
}
# results_of DIR SUFFIX...: the .results files of every trial set with each SUFFIX, and the
# calibrated ones beside them where calibration wrote them.
results_of() {
  local dir=$1 name rest suffix
  shift
  while read -r name rest; do
    for suffix in "$@"; do
      echo "$dir/scores/$name$suffix.results"
      [ ! -f "$dir/scores/${name}${suffix}_cal.results" ] || echo "$dir/scores/${name}${suffix}_cal.results"
    done
  done < <(trial_sets)
}

if run_stage 5; then
  banner 5 "scoring"
  need "$exp_dir/embeddings_voxceleb1_eval/xvector.scp" 5 4
  lock_dir "$exp_dir"
  suffixes=()
  for backend in $model_backends; do
    score_trial_sets "$exp_dir" "$backend" "$(suffix "$backend")" "$backend_data"
    suffixes+=("$(suffix "$backend")")
  done
  rm -f "$exp_dir"/scores/*_cal.results   # of an earlier run: this one's decide
  [ "$calibrate" = false ] || calibrate_trial_sets "$exp_dir"
  baselines=()
  compared=
  if [ "$baseline" = true ]; then
    for system in $classical_systems; do
      score_trial_sets "$classical_dir/$system" "$(cat "$classical_dir/$system/backend")" "" \
        "$train_data"
      mapfile -t -O "${#baselines[@]}" baselines < <(results_of "$classical_dir/$system" "")
    done
    compared=$classical_systems   # the model against each baseline on the same trials
  fi
  mapfile -t model_results < <(results_of "$exp_dir" "${suffixes[@]}")
  local/make_results_md.sh --paper-train-set "$paper_train_set" --loss "$loss" \
    --baselines "${baselines[*]}" --classical-dir "$classical_dir" \
    --classical-systems "$compared" --sets "$(vox1_sets)" "$exp_dir" "${model_results[@]}"
fi

if run_stage 6; then
  banner 6 "figures, decision threshold, export"
  need "$exp_dir/scores/vox1_o.scores" 6 5
  lock_dir "$exp_dir"
  # DET curves of every trial set, the margin (Fig 3) and cos(theta_y) (Fig 1) figures.
  plotted=()
  for set in $(vox1_sets); do plotted+=("$set:data/$set/trials"); done
  for part in $sitw_parts; do plotted+=("sitw_$part:data/sitw_${part}_test/trials"); done
  local/make_plots.sh --asnorm "$asnorm" --loss "$loss" "$exp_dir" "${plotted[@]}"
  # The decision threshold of pytorch_modules.bin.verify: the EER point of Vox1-O's cosine scores.
  local/export_model.sh "$exp_dir" "$exp_dir/scores/vox1_o.scores" data/vox1_o/trials
fi

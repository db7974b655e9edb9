#!/usr/bin/env bash
# PLDA scoring (pytorch_modules/scoring/plda.py, as Kaldi's egs/voxceleb/v2 stages 9-10): a
# back-end trained on the training speakers' embeddings (training-set mean subtraction, LDA,
# length normalisation, two-covariance PLDA) scores every trial by its log-likelihood ratio;
# then EER and minDCF (p_target 0.01 and 0.001) with 95% speaker-bootstrap intervals:
# <out-dir>/<name>.scores (enroll test score) and <out-dir>/<name>.results.
# The training embeddings are those stage 4 makes for the AS-norm cohort
# (exp/<model>/embeddings_<train-set>/), or a classical system's embeddings_<train-set>/.
set -euo pipefail

name=
enroll_spk2utt=
lda_dim=200
subtract_mean=true
em_iters=10
help_message="Usage: $0 [options] <trials> <train-data-dir> <train-embedding-dir> <enroll-embedding-dir> <test-embedding-dir> <out-dir>
e.g.: $0 data/vox1_o/trials data/voxceleb1_dev exp/m/embeddings_voxceleb1_dev exp/m/embeddings_voxceleb1_eval exp/m/embeddings_voxceleb1_eval exp/m/scores
<train-data-dir> gives the speakers (utt2spk) of the embeddings in <train-embedding-dir>.
Options:
  --name <name>              name of the trial set in the results (default: the trials' folder
                             name + _plda, e.g. vox1_o_plda)
  --lda-dim <n>              LDA dimension before the PLDA (default: $lda_dim, Kaldi's voxceleb/v2;
                             capped at training speakers - 1 and the embedding size; 0: no LDA)
  --subtract-mean <bool>     subtract the training-set mean embedding before the LDA and length
                             normalisation (default: $subtract_mean)
  --em-iters <n>             EM iterations of the PLDA (default: $em_iters)
  --enroll-spk2utt <file>    enroll a model as the mean of its utterances' embeddings (model
                             utt1 utt2 ...), scored with its number of utterances"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 6 ] || { echo "$help_message" >&2; exit 1; }
trials=$1
train_data=$2
train_emb=$3
enroll=$4
test=$5
dir=$6
[ -n "$name" ] || name=$(basename "$(dirname "$trials")")_plda

for f in "$train_data/utt2spk" "$train_emb/xvector.scp"; do
  [ -f "$f" ] || { echo "$0: $f does not exist; the PLDA is trained on the training set's embeddings (stage 4 makes them)" >&2; exit 1; }
done

mkdir -p "$dir"
# parse_options.sh has checked that --subtract-mean is true or false.
python -m pytorch_modules.bin.score_plda --trials "$trials" --name "$name" \
  --train-scp "$train_emb/xvector.scp" --train-utt2spk "$train_data/utt2spk" \
  --lda-dim "$lda_dim" --subtract-mean "$subtract_mean" --em-iters "$em_iters" \
  ${enroll_spk2utt:+--enroll-spk2utt "$enroll_spk2utt"} \
  --enroll-scp "$enroll/xvector.scp" --test-scp "$test/xvector.scp" \
  --scores-out "$dir/$name.scores" --results-out "$dir/$name.results"

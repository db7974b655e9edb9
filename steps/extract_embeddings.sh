#!/usr/bin/env bash
# Embeds the full-length utterances of a data dir with a trained model, in --nj parallel jobs:
# <out-dir>/xvector.scp and its arks (Kaldi float vectors, one per utterance).
#
# Restartable: a job is done when its <out-dir>/xvector.JOB.scp exists and was made from the
# same split input (split<nj>utt/JOB/feats.scp) and model, by content (utils/pending_jobs.sh),
# so a rerun runs only the other jobs; another model, even one copied in with an old time,
# redoes them all.  Job outputs and xvector.scp appear only by rename, when
# complete: a stage stopped halfway leaves no xvector.scp for scoring to take as finished.
set -euo pipefail

nj=2
cmd=utils/launch_local.py
use_gpu=false
layer=bn
min_frames=32
help_message="Usage: $0 [options] <model.pt> <data-dir> <out-dir>
e.g.: $0 --nj 8 exp/rescnn_dam/final.pt data/vox1_o exp/rescnn_dam/embeddings_vox1_o
Options:
  --nj <n>             parallel jobs (default: $nj)
  --cmd <launcher>     job launcher (default: $cmd)
  --use-gpu <bool>     true: each job embeds on a GPU (adds --gpu 1 to the launcher; give
                       it \$cuda_cmd) (default: $use_gpu)
  --layer <bn|fc>      bn: the output of the embedding BatchNorm; fc: the FC output in
                       front of it (default: $layer)
  --min-frames <n>     utterances shorter than n frames are repeated up to n before
                       embedding, and counted (default: $min_frames, the least the networks
                       take: 0.32 s)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
. utils/job_outputs.sh
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
model=$1
data=$2
dir=$3

[ -f "$model" ] || { echo "$0: no model at $model; run the training stage first" >&2; exit 1; }
device=cpu   # parse_options.sh has checked that --use-gpu is true or false
[ "$use_gpu" = false ] || { device=cuda; cmd="$cmd --gpu 1"; }
[[ "$layer" =~ ^(bn|fc)$ ]] || { echo "$0: --layer takes bn or fc, not '$layer'" >&2; exit 1; }
[[ "$min_frames" =~ ^[0-9]+$ ]] && [ "$min_frames" -ge 32 ] ||
  { echo "$0: --min-frames takes a whole number of at least 32, not '$min_frames'" >&2; exit 1; }
utils/validate_data_dir.sh --no-wav "$data"
lock_dir "$dir"
mkdir -p "$dir/log"
dir=$(cd "$dir" && pwd)
rm -f "$dir/xvector.scp"   # stale until every job is done
utils/split_data.sh --per-utt "$data" "$nj"
sdata=$data/split${nj}utt

forget_other_nj "$dir/xvector" "$nj"

utils/run_pending_jobs.sh --cmd "$cmd" "$dir" "$nj" "$dir/xvector.JOB.scp" \
  "$sdata/JOB/feats.scp $model" "$dir/log/extract.JOB.log" \
  python -m pytorch_modules.bin.extract_embeddings --device "$device" --layer "$layer" \
    --min-frames "$min_frames" "$model" "$sdata/JOB/feats.scp" "$dir/xvector.JOB"

gather "$dir/xvector.JOB.scp" "$nj" "$dir/xvector.scp"
gather "$dir/xvector.JOB.padded" "$nj" "$dir/padded"
mv "$dir/padded.tmp" "$dir/padded"
mv "$dir/xvector.scp.tmp" "$dir/xvector.scp"
total=$(wc -l < "$dir/xvector.scp")
echo "$0: $total embeddings in $dir/xvector.scp"
padded=$(wc -l < "$dir/padded")
if [ "$padded" -gt 0 ]; then
  echo "$0: $padded of the $total utterances of $data are shorter than $min_frames frames" \
    "($(awk -v f="$min_frames" 'BEGIN { printf "%.2f", f / 100 }') s) and were repeated up to" \
    "it before embedding (listed with their frames in $dir/padded)" >&2
fi

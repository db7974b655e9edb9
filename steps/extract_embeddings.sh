#!/usr/bin/env bash
# Embeds the full-length utterances of a data dir with a trained model, in --nj parallel jobs:
# <out-dir>/xvector.scp and its arks (Kaldi float vectors, one per utterance).
set -euo pipefail

nj=2
cmd=utils/launch_local.py
help_message="Usage: $0 [options] <model.pt> <data-dir> <out-dir>
e.g.: $0 --nj 8 exp/rescnn_dam/final.pt data/vox1_o exp/rescnn_dam/embeddings_vox1_o
Options:
  --nj <n>             parallel jobs (default: $nj)
  --cmd <launcher>     job launcher (default: $cmd)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
model=$1
data=$2
dir=$3

[ -f "$model" ] || { echo "$0: no model at $model; run the training stage first" >&2; exit 1; }
utils/validate_data_dir.sh --no-wav "$data"
mkdir -p "$dir/log"
dir=$(cd "$dir" && pwd)
rm -f "$dir/xvector.scp"
utils/split_data.sh --per-utt "$data" "$nj"

$cmd JOB=1:"$nj" "$dir/log/extract.JOB.log" \
  python -m pytorch_modules.bin.extract_embeddings "$model" \
    "$data/split${nj}utt/JOB/feats.scp" "$dir/xvector.JOB"

for n in $(seq "$nj"); do cat "$dir/xvector.$n.scp"; done | sort > "$dir/xvector.scp.tmp"
mv "$dir/xvector.scp.tmp" "$dir/xvector.scp"
echo "$0: $(wc -l < "$dir/xvector.scp") embeddings in $dir/xvector.scp"

#!/usr/bin/env bash
# Packs a data dir's utterances into tar shards of about --shard-size utterances (16-bit FLAC
# members, each with an index of offsets), for training with data.features: shards: a corpus of
# a million small files is then read as a few hundred large ones, front to back.  wav.scp
# commands (VoxCeleb2's ffmpeg pipes) are decoded once, here.  --nj jobs through --cmd; job J
# writes the shards k with k mod nj = J - 1 (pytorch_modules/fileio/shards.py).
#   <shard-dir>/shard_NNNNNN.tar(.index)   the shards
#   <data-dir>/shards.list                 their paths, in shard order: what training reads
# Restartable: complete shards are kept; a job is redone when wav.scp, utt2spk or the options
# change (utils/pending_jobs.sh).  Unusable audio is named in the job's log and skipped.
set -euo pipefail

nj=2
cmd=utils/launch_local.py
shard_size=1000
seed=777
feat_config=conf/spectrogram.conf
help_message="Usage: $0 [options] <data-dir> <shard-dir>
e.g.: $0 --nj 8 --cmd \"\$train_cmd\" data/voxceleb2_dev shards/voxceleb2_dev
Options:
  --nj <n>                 parallel jobs (default: $nj)
  --cmd <launcher>         job launcher (default: $cmd)
  --shard-size <n>         utterances per shard (default: $shard_size)
  --seed <n>               which utterances go together (default: $seed)
  --feat-config <file>     sample rate and silence threshold (default: $feat_config)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
. utils/job_outputs.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1
dir=$2
die() { echo "$0: $*" >&2; exit 1; }
[[ "$shard_size" =~ ^[1-9][0-9]*$ ]] || die "--shard-size takes a whole number of at least 1, not '$shard_size'"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed takes a whole number, not '$seed'"
utils/validate_data_dir.sh --no-feats "$data"
lock_dir "$dir"
mkdir -p "$dir/log"
dir=$(cd "$dir" && pwd)
rm -f "$data/shards.list"   # stale until every job is done
forget_other_nj "$dir/shards" "$nj"

utils/run_pending_jobs.sh --cmd "$cmd" "$data" "$nj" "$dir/shards.JOB.list" \
  "$data/wav.scp $data/utt2spk $feat_config" "$dir/log/make_shards.JOB.log" \
  python -m pytorch_modules.bin.make_shards --job JOB --num-jobs "$nj" --shard-size "$shard_size" \
    --seed "$seed" --config "$feat_config" "$data" "$dir"

gather "$dir/shards.JOB.list" "$nj" "$data/shards.list"
mv "$data/shards.list.tmp" "$data/shards.list"
echo "$0: $(wc -l < "$data/shards.list") shards of $data in $dir ($data/shards.list)"

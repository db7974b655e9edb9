#!/usr/bin/env bash
# Computes the paper's 161-bin log spectrograms for a data dir in --nj parallel jobs, writing
# Kaldi arks to <feat-dir> and feats.scp + utt2num_frames to the data dir.  Utterances whose
# audio cannot be read are reported by name and dropped (utils/fix_data_dir.sh); a job fails
# when it loses more than --max-fail-fraction of its utterances.
set -euo pipefail

nj=2
cmd=utils/launch_local.py
feat_config=conf/spectrogram.conf
compress=false
max_fail_fraction=0.05
help_message="Usage: $0 [options] <data-dir> <feat-dir>
e.g.: $0 --nj 8 data/voxceleb1_dev feats
Options:
  --nj <n>                     parallel jobs (default: $nj)
  --cmd <launcher>             job launcher, e.g. \"\$train_cmd\" (default: $cmd)
  --feat-config <file>         Kaldi-style feature options (default: $feat_config)
  --compress <true|false>      Kaldi compressed matrices, ~4x smaller (default: $compress)
  --max-fail-fraction <f>      fail when more than this fraction of audio is unreadable (default: $max_fail_fraction)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1
featdir=$2
name=$(basename "$data")
logdir=$data/log

utils/validate_data_dir.sh --no-feats "$data"
mkdir -p "$featdir" "$logdir"
featdir=$(cd "$featdir" && pwd)   # feats.scp must hold absolute paths: data dirs get copied
rm -f "$data/feats.scp" "$data/utt2num_frames"

utils/split_data.sh --per-utt "$data" "$nj"
sdata=$data/split${nj}utt

$cmd JOB=1:"$nj" "$logdir/make_spectrogram_$name.JOB.log" \
  python -m pytorch_modules.bin.compute_spectrogram --config "$feat_config" \
    --compress "$compress" --max-fail-fraction "$max_fail_fraction" \
    "$sdata/JOB/wav.scp" "$featdir/raw_spec_$name.JOB"

for n in $(seq "$nj"); do cat "$featdir/raw_spec_$name.$n.scp"; done | sort > "$data/feats.scp.tmp"
for n in $(seq "$nj"); do cat "$featdir/raw_spec_$name.$n.utt2num_frames"; done | sort > "$data/utt2num_frames.tmp"
mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
mv "$data/feats.scp.tmp" "$data/feats.scp"   # last: feats.scp marks the stage as done

if ! cmp -s <(cut -d' ' -f1 "$data/feats.scp") <(cut -d' ' -f1 "$data/utt2spk"); then
  grep -h "skipping" "$logdir"/make_spectrogram_"$name".*.log >&2 || true
  utils/fix_data_dir.sh "$data"
fi
echo "$0: features for $(wc -l < "$data/feats.scp") utterances of $data in $featdir"

#!/usr/bin/env bash
# Computes the paper's 161-bin log spectrograms for a data dir in --nj parallel jobs, writing
# Kaldi arks to <feat-dir> and feats.scp + utt2num_frames to the data dir.  With
# --feature-type mfcc (steps/make_mfcc.sh) the same job runs the classical baselines' MFCCs
# (pytorch_modules/features/mfcc.py) instead, into a data dir of their own (data/<set>_mfcc).
#
# Bad audio does not stop the stage: each utterance that cannot be used (missing, unreadable,
# truncated, several channels, another sample rate, silent, ...) is named in its job's log and
# skipped; the stage fails only when more than --max-fail-fraction of the data dir's utterances
# are lost, and otherwise drops them from the data dir (utils/fix_data_dir.sh), keeping their
# lines in <data-dir>/.dropped/.  A rerun puts them back first and tries them again, so
# utterances whose audio was fixed since come back.
#
# Restartable: a job is done when its <feat-dir>/raw_spec_<set>.JOB.scp exists and was made from
# the same split input (split<nj>utt/JOB/wav.scp), feature config and options, by content
# (utils/pending_jobs.sh), so a rerun (after a kill, a full disk, a failed job) runs only the
# other jobs, and only their logs are rewritten.  The
# job's .scp and the data dir's feats.scp appear only by rename, when complete: a stage stopped
# halfway leaves no feats.scp for a later stage to take as finished.
set -euo pipefail

nj=2
cmd=utils/launch_local.py
feature_type=spectrogram
feat_config=
compress=false
max_fail_fraction=0.05
help_message="Usage: $0 [options] <data-dir> <feat-dir>
e.g.: $0 --nj 8 data/voxceleb1_dev feats
Options:
  --nj <n>                     parallel jobs (default: $nj)
  --cmd <launcher>             job launcher, e.g. \"\$train_cmd\" (default: $cmd)
  --feature-type <type>        spectrogram or mfcc (default: $feature_type)
  --feat-config <file>         Kaldi-style feature options (default: conf/spectrogram.conf,
                               conf/mfcc.conf for mfcc)
  --compress <true|false>      Kaldi compressed matrices, ~4x smaller (default: $compress)
  --max-fail-fraction <f>      fail when more than this fraction of the utterances cannot be
                               used (default: $max_fail_fraction)"

. ./path.sh
. utils/parse_options.sh
. utils/lock.sh
. utils/job_outputs.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1
featdir=$2
name=$(basename "$data")
logdir=$data/log

die() { echo "$0: $*" >&2; exit 1; }
per_utt_files="utt2spk wav.scp utt2dur"

# The utterances an earlier run dropped go back into the data dir, to be tried again.
restore_dropped() {
  [ -d "$data/.dropped" ] || return 0
  local f
  for f in $per_utt_files; do
    [ -f "$data/.dropped/$f" ] && [ -f "$data/$f" ] || continue
    # through a file of its own: filter_scp reads $data/$f as its id list
    utils/filter_scp.py --exclude "$data/$f" "$data/.dropped/$f" > "$data/.dropped/$f.back"
    cat "$data/.dropped/$f.back" >> "$data/$f" && rm "$data/.dropped/$f.back"
  done
  echo "$0: trying again the $(wc -l < "$data/.dropped/utt2spk") utterance(s) of $data that" \
    "an earlier run dropped" >&2
  rm -f "$data/feats.scp" "$data/utt2num_frames"
  utils/fix_data_dir.sh "$data" >&2   # sorts them in and rebuilds spk2utt
  rm -rf "$data/.dropped"
}

# Keeps the lines of the utterances without features in $data/.dropped/ (restore_dropped).
save_dropped() {
  local f
  mkdir -p "$data/.dropped"
  for f in $per_utt_files; do
    [ -f "$data/$f" ] || continue
    utils/filter_scp.py --exclude "$data/feats.scp" "$data/$f" > "$data/.dropped/$f.tmp"
    mv "$data/.dropped/$f.tmp" "$data/.dropped/$f"
  done
}
case $feature_type in
  spectrogram) prefix=raw_spec program=compute_spectrogram ;;
  mfcc) prefix=raw_mfcc program=compute_mfcc ;;
  *) die "--feature-type must be spectrogram or mfcc, not '$feature_type'" ;;
esac
[ -n "$feat_config" ] || feat_config=conf/$feature_type.conf
[ -f "$feat_config" ] || die "no feature config $feat_config"
[[ "$max_fail_fraction" =~ ^(0|1|0?\.[0-9]+)$ ]] ||
  die "--max-fail-fraction takes a fraction from 0 to 1, like 0.05, not '$max_fail_fraction'"
lock_dir "$data"
restore_dropped
utils/validate_data_dir.sh --no-feats "$data"
mkdir -p "$featdir" "$logdir"
featdir=$(cd "$featdir" && pwd)   # feats.scp must hold absolute paths: data dirs get copied
out=$featdir/${prefix}_$name       # job n writes $out.n.{ark,scp,utt2num_frames}
rm -f "$data/feats.scp" "$data/utt2num_frames"   # stale until every job is done

utils/split_data.sh --per-utt "$data" "$nj"
sdata=$data/split${nj}utt

forget_other_nj "$out" "$nj"

# Every job keeps what it can read (--max-fail-fraction 1): the fraction is judged below,
# over the whole data dir, so that it does not depend on --nj.
utils/run_pending_jobs.sh --cmd "$cmd" "$data" "$nj" "$out.JOB.scp" \
  "$sdata/JOB/wav.scp $feat_config" "$logdir/make_${feature_type}_$name.JOB.log" \
  python -m pytorch_modules.bin.$program --config "$feat_config" \
    --compress "$compress" --max-fail-fraction 1 "$sdata/JOB/wav.scp" "$out.JOB"

gather "$out.JOB.scp" "$nj" "$data/feats.scp"
gather "$out.JOB.utt2num_frames" "$nj" "$data/utt2num_frames"

total=$(wc -l < "$data/utt2spk")
lost=$((total - $(wc -l < "$data/feats.scp.tmp")))
if [ "$lost" -gt 0 ]; then  # the reasons, from the jobs' logs (awk, not head: no SIGPIPE)
  for n in $(seq "$nj"); do
    grep -h "skipping" "$logdir/make_${feature_type}_$name.$n.log" 2>/dev/null || true
  done | awk 'NR <= 20; END { if (NR > 20) print "... and " NR - 20 " more" }' >&2
fi
if awk -v lost="$lost" -v total="$total" -v f="$max_fail_fraction" 'BEGIN { exit !(lost > f * total) }'; then
  rm -f "$data/feats.scp.tmp" "$data/utt2num_frames.tmp"
  # The jobs that lost utterances are redone next time, when the audio may have been fixed.
  for n in $(seq "$nj"); do
    [ "$(wc -l < "$out.$n.scp")" -eq "$(wc -l < "$sdata/$n/wav.scp")" ] || rm -f "$out.$n.scp"
  done
  die "$lost of $total utterances of $data could not be used, more than --max-fail-fraction" \
    "$max_fail_fraction; the reasons are above and in $logdir/make_${feature_type}_$name.*.log." \
    "Fix the audio or wav.scp and rerun (only the jobs that lost utterances are redone), or" \
    "remove those utterances from wav.scp and run utils/fix_data_dir.sh $data"
fi
mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
mv "$data/feats.scp.tmp" "$data/feats.scp"   # last: feats.scp marks the stage as done

if [ "$lost" -gt 0 ]; then
  # The jobs that lost utterances count as not done: a rerun tries their audio again.
  for n in $(seq "$nj"); do
    [ "$(wc -l < "$out.$n.scp")" -eq "$(wc -l < "$sdata/$n/wav.scp")" ] || rm -f "$out.$n.scp.inputs"
  done
  echo "$0: $lost of $total utterances of $data could not be used (see above); dropping them" \
    "(kept in $data/.dropped/; rerunning this step tries them again)" >&2
  save_dropped
  utils/fix_data_dir.sh "$data"
fi
echo "$0: $feature_type features for $(wc -l < "$data/feats.scp") utterances of $data in $featdir"

#!/usr/bin/env bash
# Prints, one per line, the numbers of the jobs 1..N that a restarted stage must (re)run: those
# whose output is missing, or whose inputs differ in content from those the output was made
# from.  A job's inputs are fingerprinted (sha256 of each input file, and of --key, e.g. the
# job's command line) into <output>.inputs when it is started; a model copied in with an old
# timestamp, or an edited config, therefore redoes the job, while a file touched without
# change does not.  JOB in a file name stands for the job's number.  The output must be the
# file a job writes last, by rename, so that a job killed halfway has none and counts as not
# done.
#
#   usage: utils/pending_jobs.sh [--record] [--key <text>] <num-jobs> <output> <input> [<input> ...]
#   e.g.   utils/pending_jobs.sh 4 feats/raw_spec_train.JOB.scp \
#              data/train/split4utt/JOB/wav.scp conf/spectrogram.conf
#   --record   make each pending job ready to start: remove its output, then record the
#              fingerprint of its inputs (the job counts as done once the output reappears)
set -euo pipefail

record=false key=
while [ $# -gt 0 ]; do
  case $1 in
    --record) record=true; shift ;;
    --key) key=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 3 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  sed -n '2,15s/^# \{0,1\}//p' "$0" >&2
  exit 1
fi
nj=$1
output=$2
shift 2

# The fingerprint of job $1's inputs: one line per input (its content's sha256 and its name)
# and one for the key.
fingerprint() {
  local input in
  for input in "$@"; do
    in=${input//JOB/$n}
    if [ ! -f "$in" ]; then
      echo "$0: $in does not exist; it is an input of job $n (${output//JOB/$n})" >&2
      return 1
    fi
    sha256sum "$in"
  done
  printf '%s' "$key" | sha256sum | sed 's/-$/key/'
}

for n in $(seq "$nj"); do
  out=${output//JOB/$n}
  current=$(fingerprint "$@")
  if [ -e "$out" ] && [ "$current" = "$(cat "$out.inputs" 2>/dev/null)" ]; then continue; fi
  if $record; then
    rm -f "$out"
    printf '%s\n' "$current" > "$out.inputs.tmp"
    mv "$out.inputs.tmp" "$out.inputs"
  fi
  echo "$n"
done

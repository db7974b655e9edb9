#!/usr/bin/env bash
# Prints, one per line, the numbers of the jobs 1..N that a restarted stage must (re)run: those
# whose output is missing or older than one of its inputs.  JOB in a file name stands for the
# job's number.  The output must be the file a job writes last, by rename, so that a job killed
# halfway has none and counts as not done.
#
#   usage: utils/pending_jobs.sh <num-jobs> <output> <input> [<input> ...]
#   e.g.   utils/pending_jobs.sh 4 feats/raw_spec_train.JOB.scp \
#              data/train/split4utt/JOB/wav.scp conf/spectrogram.conf
set -euo pipefail

if [ $# -lt 3 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
  exit 1
fi
nj=$1
output=$2
shift 2

for n in $(seq "$nj"); do
  out=${output//JOB/$n}
  pending=false
  [ -e "$out" ] || pending=true
  for input in "$@"; do
    in=${input//JOB/$n}
    if [ ! -e "$in" ]; then
      echo "$0: $in does not exist; it is an input of job $n ($out)" >&2
      exit 1
    fi
    [ "$in" -nt "$out" ] && pending=true
  done
  if $pending; then echo "$n"; fi
done

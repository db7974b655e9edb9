#!/usr/bin/env bash
# Runs, through a launcher, the jobs of a parallel stage that are not done yet.  A job is done
# when its output (the file it writes last, by rename) exists and was made from inputs of the
# same content and the same command (utils/pending_jobs.sh, which records that fingerprint).
# The log and output of each pending job are deleted first, so that the launcher's
# --only-failed true reruns exactly those jobs (and any whose log was lost).
# JOB in the output, the inputs, the log and the command stands for the job's number.
set -euo pipefail

cmd=utils/launch_local.py
help_message="Usage: $0 [--cmd <launcher>] <what> <num-jobs> <output> <inputs> <log> <command> [args...]
e.g.: $0 --cmd \"\$train_cmd\" data/train 4 feats/raw_spec_train.JOB.scp \\
        \"data/train/split4utt/JOB/wav.scp conf/spectrogram.conf\" data/train/log/spec.JOB.log \\
        python -m pytorch_modules.bin.compute_spectrogram ... data/train/split4utt/JOB/wav.scp ...
  <what>     what the jobs work on, for the messages
  <inputs>   the input files of a job, separated by spaces
Options:
  --cmd <launcher>   job launcher and its options (default: $cmd)"

. utils/parse_options.sh
[ $# -ge 6 ] || { echo "$help_message" >&2; exit 1; }
what=$1 nj=$2 output=$3 inputs=$4 log=$5
shift 5

# shellcheck disable=SC2086  # the inputs are a space-separated list
pending=$(utils/pending_jobs.sh --record --key "$*" "$nj" "$output" $inputs)
if [ -z "$pending" ]; then
  echo "$0: all $nj jobs of $what are already done (delete ${output//JOB/*} to redo them)"
  exit 0
fi
if [ "$(echo "$pending" | wc -l)" -lt "$nj" ]; then
  echo "$0: rerunning job(s) ${pending//$'\n'/ } of $nj; the others are done"
fi
for n in $pending; do rm -f "${log//JOB/$n}"; done
$cmd --only-failed true JOB=1:"$nj" "$log" "$@"

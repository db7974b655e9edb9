#!/usr/bin/env bash
# Calibrates a trial set's scores to log-likelihood ratios (pytorch_modules/scoring/calibration.py:
# logistic regression with quality measures, fitted on a calibration list of training speakers
# scored by the same back-end), then EER, minDCF, actual DCF, Cllr and minCllr:
# <scores-dir>/<name>_cal.scores (enroll test llr) and <scores-dir>/<name>_cal.results.
# The calibration list is what pytorch_modules.bin.make_calibration_trials writes (trials,
# utt2spk, utt2num_frames, info); score it first with steps/score_cosine.sh --name calibration
# (and steps/score_asnorm.sh --name calibration_asnorm) into <scores-dir>.
set -euo pipefail

name=
cal_name=
quality_measures=duration
prior=
cohort_dir=
subtract_mean=true
top_n=300
embeddings=
enroll_embeddings=
enroll_spk2utt=
enroll_utt2num_frames=
calibration_out=
help_message="Usage: $0 [options] <cal-dir> <trials> <utt2num-frames> <scores-dir>
e.g.: $0 --name vox1_o exp/m/calibration_voxceleb1_dev data/vox1_o/trials \\
        data/voxceleb1_eval/utt2num_frames exp/m/scores
      $0 --name vox1_o_asnorm --cohort-dir exp/m/cohort_voxceleb1_dev \\
        --quality-measures duration,cohort_mean --embeddings exp/m/embeddings_voxceleb1_eval \\
        exp/m/calibration_voxceleb1_dev data/vox1_o/trials data/voxceleb1_eval/utt2num_frames exp/m/scores
Fits on <scores-dir>/<cal-name>.scores (the scores of <cal-dir>/trials) and calibrates
<scores-dir>/<name>.scores; <utt2num-frames>: the frames of the trials' (test) utterances.
Options:
  --name <name>                  the scores to calibrate (default: the trials' folder name)
  --cal-name <name>              the calibration list's scores (default: calibration_asnorm when
                                 <name> ends in _asnorm, else calibration)
  --quality-measures <list>      none, duration, cohort_mean, or duration,cohort_mean (default:
                                 $quality_measures); cohort_mean needs --cohort-dir and --embeddings
  --prior <p>                    target prior of the fit (default: the calibration list's target share)
  --cohort-dir <dir>             the AS-norm cohort (make_cohort's), needed for AS-norm scores
                                 and the cohort_mean measure
  --subtract-mean <bool>         as steps/score_asnorm.sh (default: $subtract_mean)
  --top-n <n>                    as steps/score_asnorm.sh (default: $top_n)
  --embeddings <dir>             the trials' embeddings (cohort_mean)
  --enroll-embeddings <dir>      the enrollment side's, when they differ (SITW)
  --enroll-spk2utt <file>        enrollment models (model utt1 utt2 ...), as in scoring
  --enroll-utt2num-frames <file> the frames of the enrollment utterances, when not in <utt2num-frames>
  --calibration-out <file>       also write the calibration (exp/<model>/final.calibration is
                                 what pytorch_modules.bin.verify reads)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
cal_dir=$1
trials=$2
frames=$3
dir=$4
[ -n "$name" ] || name=$(basename "$(dirname "$trials")")
if [ -z "$cal_name" ]; then
  cal_name=calibration
  [[ "$name" != *_asnorm ]] || cal_name=calibration_asnorm
fi
for f in "$cal_dir/trials" "$dir/$cal_name.scores" "$dir/$name.scores"; do
  [ -f "$f" ] || { echo "$0: $f does not exist; make the calibration list (pytorch_modules.bin.make_calibration_trials) and score it and the trials with the same back-end first" >&2; exit 1; }
done

opts=(--quality-measures "$quality_measures" --top-n "$top_n")
[ -z "$prior" ] || opts+=(--prior "$prior")
if [ -n "$cohort_dir" ]; then
  # parse_options.sh has checked that --subtract-mean is true or false.
  if $subtract_mean; then
    opts+=(--mean-scp "$cohort_dir/mean.scp" --cohort-scp "$cohort_dir/xvector_meansub.scp")
  else
    opts+=(--cohort-scp "$cohort_dir/xvector.scp")
  fi
fi
[ -z "$embeddings" ] || opts+=(--embeddings "$embeddings/xvector.scp")
[ -z "$enroll_embeddings" ] || opts+=(--enroll-embeddings "$enroll_embeddings/xvector.scp")
[ -z "$enroll_spk2utt" ] || opts+=(--enroll-spk2utt "$enroll_spk2utt")
[ -z "$calibration_out" ] || opts+=(--calibration-out "$calibration_out")

python -m pytorch_modules.bin.calibrate_scores "${opts[@]}" \
  --cal-trials "$cal_dir/trials" --cal-scores "$dir/$cal_name.scores" \
  --trials "$trials" --scores "$dir/$name.scores" --name "${name}_cal" \
  --utt2num-frames "$frames" ${enroll_utt2num_frames:+"$enroll_utt2num_frames"} \
  --scores-out "$dir/${name}_cal.scores" --results-out "$dir/${name}_cal.results"

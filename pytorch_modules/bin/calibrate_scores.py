"""Calibrates scores to log-likelihood ratios: fits on a calibration list's scores, applies
to an evaluation list's, and evaluates them (EER, minDCF, actual DCF, Cllr, minCllr).

    python -m pytorch_modules.bin.calibrate_scores \
        --cal-trials exp/m/calibration_voxceleb1_dev/trials \
        --cal-scores exp/m/scores/calibration.scores \
        --trials data/vox1_o/trials --scores exp/m/scores/vox1_o.scores \
        --utt2num-frames data/voxceleb1_eval/utt2num_frames \
        --scores-out exp/m/scores/vox1_o_cal.scores --results-out exp/m/scores/vox1_o_cal.results \
        [--name vox1_o_cal] [--quality-measures duration] [--prior P] \
        [--cohort-scp exp/m/cohort_x/xvector_meansub.scp --mean-scp exp/m/cohort_x/mean.scp \
         --top-n 300 --embeddings exp/m/embeddings_voxceleb1_eval/xvector.scp] \
        [--calibration-out exp/m/final.calibration]

Both lists must be scored by the same back-end (pytorch_modules.bin.score: cosine, or AS-norm
with the same cohort and top-N); where the .results beside both scores files are there, their
back-end keys (mean_subtracted, cohort_size, top_n) must agree.  The calibration
(pytorch_modules/scoring/calibration.py) is a prior-weighted logistic regression of the score
and the --quality-measures: none; duration (log frame counts of the two sides, from
utt2num_frames: --cal-utt2num-frames, default the one beside --cal-trials, and
--utt2num-frames for the evaluation ids); cohort_mean (the two sides' mean top-N cohort
score, as AS-norm computes it: --cohort-scp, --mean-scp when the scores were mean-subtracted,
--top-n, --cal-embeddings, default the xvector_scp named in the info beside --cal-trials, and
--embeddings or --enroll-embeddings/--test-embeddings).  --prior: the target prior the fit
weighs the classes at (default: the calibration list's target share), its log-odds taken off,
so that the output is a true log-likelihood ratio.

Writes the LLRs as a scores file in trial order (6 decimals) and a results file with the keys
of pytorch_modules.bin.score plus act_dcf_p0.01, act_dcf_p0.001, cllr, min_cllr (with 95%
speaker-bootstrap intervals) and calibration_{backend,measures,prior,trials}; the formula is
printed.  --calibration-out writes the calibration file (`key value` lines) that
pytorch_modules.bin.verify reads beside a model (exp/m/final.calibration).
"""
import argparse
import os
import sys

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_scp_lines, read_trials
from pytorch_modules.scoring import calibration, trial_outputs
from pytorch_modules.scoring.cosine import read_results, read_scores

PROG = "calibrate_scores"
# Results keys that say which back-end made a scores file (pytorch_modules.bin.score).
BACKEND_KEYS = ("mean_subtracted", "cohort_size", "top_n")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trial_outputs.add_arguments(
        parser, "speaker of every evaluation trial id, for the speaker-level bootstrap "
        "(default: the utt2spk beside --trials)")
    parser.add_argument("--scores", required=True, help="scores of --trials (bin/score.py)")
    parser.add_argument("--cal-trials", required=True, help="the calibration list "
                        "(pytorch_modules.bin.make_calibration_trials), with labels")
    parser.add_argument("--cal-scores", required=True, help="its scores, same back-end")
    parser.add_argument("--quality-measures", default="duration",
                        help="none, or a comma-separated list of duration and cohort_mean "
                        "(default: duration)")
    parser.add_argument("--prior", type=float, help="target prior of the fit (default: the "
                        "calibration list's target share)")
    parser.add_argument("--cal-utt2num-frames", help="frames of the calibration ids (default: "
                        "utt2num_frames beside --cal-trials)")
    parser.add_argument("--utt2num-frames", nargs="+", default=[], metavar="FILE",
                        help="frames of the evaluation ids (SITW: the enroll and test sets')")
    parser.add_argument("--enroll-spk2utt", help="the evaluation trials enroll models "
                        "(model utt1 utt2 ...): frames summed, embeddings averaged")
    parser.add_argument("--cohort-scp", help="the AS-norm cohort the scores were normalised "
                        "with (make_cohort's xvector_meansub.scp or xvector.scp)")
    parser.add_argument("--mean-scp", help="the mean subtracted before scoring (make_cohort's "
                        "mean.scp)")
    parser.add_argument("--top-n", type=int, default=300, help="AS-norm top-N (default 300)")
    parser.add_argument("--cal-embeddings", help="embeddings of the calibration ids (default: "
                        "the xvector_scp of the info beside --cal-trials)")
    parser.add_argument("--embeddings", help="embeddings of the evaluation ids")
    parser.add_argument("--enroll-embeddings", help="embeddings of the enrollment side "
                        "(default: --embeddings)")
    parser.add_argument("--test-embeddings", help="embeddings of the test side (default: "
                        "--embeddings)")
    parser.add_argument("--calibration-out", help="also write the calibration file here (e.g. "
                        "exp/m/final.calibration, which verify reads)")
    args = parser.parse_args()
    trial_outputs.check_arguments(parser, args)
    if args.prior is not None and not 0 < args.prior < 1:
        parser.error("--prior must lie strictly between 0 and 1")
    args.enroll_embeddings = args.enroll_embeddings or args.embeddings
    args.test_embeddings = args.test_embeddings or args.embeddings
    return args


def beside(path, name):
    return os.path.join(os.path.dirname(os.path.abspath(path)), name)


def backend_of(scores_path):
    """{key: value} of BACKEND_KEYS from the .results beside a scores file (None if absent)."""
    results = os.path.splitext(scores_path)[0] + ".results"
    if not os.path.isfile(results):
        return None
    found = read_results(results)
    return {key: found.get(key, "-") for key in BACKEND_KEYS}


def check_backends(args):
    """'cosine' or 'asnorm', after checking that both lists were scored alike."""
    cal, evaluation = backend_of(args.cal_scores), backend_of(args.scores)
    if cal is not None and evaluation is not None and cal != evaluation:
        show = lambda keys: ", ".join(f"{k} {v}" for k, v in keys.items())  # noqa: E731
        raise RecipeError(f"{args.cal_scores} ({show(cal)}) and {args.scores} ({show(evaluation)})"
                          f" were scored by different back-ends; score the calibration list "
                          f"as the evaluation trials (same cohort, top-N, mean subtraction).")
    keys = evaluation or cal
    if keys is None:
        return "asnorm" if args.cohort_scp else "cosine"
    backend = "asnorm" if keys["cohort_size"] != "-" else "cosine"
    if backend == "asnorm" and keys["top_n"] != "-" and args.cohort_scp:
        from pytorch_modules.scoring.asnorm import effective_top_n
        top_n = effective_top_n(args.top_n, len(read_scp_lines(args.cohort_scp)))
        if str(top_n) != keys["top_n"]:
            raise RecipeError(f"the scores were AS-normalised with top-N {keys['top_n']}, not "
                              f"--top-n {args.top_n} (top-N {top_n} on this cohort).")
    if args.cohort_scp and keys["mean_subtracted"] != "-" and (
            (keys["mean_subtracted"] == "true") != bool(args.mean_scp)):
        raise RecipeError(f"the scores were scored with mean_subtracted "
                          f"{keys['mean_subtracted']}: give --mean-scp exactly when the mean "
                          f"was subtracted.")
    return backend


def features(args, groups, trials_path, enroll, test, frames_paths, enroll_scp, test_scp,
             enroll_spk2utt, cohort):
    """The quality measures of one trial list."""
    frames = means = None
    if "duration" in groups:
        frames = calibration.read_frames(frames_paths, enroll_spk2utt)
    if "cohort_mean" in groups:
        if not enroll_scp or not test_scp:
            raise RecipeError(f"the cohort_mean measure of {trials_path} needs the embeddings "
                              f"its trials were scored from.")
        means = calibration.cohort_means(list(enroll) + list(test), enroll_scp, test_scp,
                                         cohort, enroll_spk2utt)
    return calibration.trial_features(groups, enroll, test, frames, means, trials_path)


def main():
    args = parse_args()
    groups = calibration.parse_measures(args.quality_measures)
    cal_info_path = beside(args.cal_trials, "info")
    cal_info = dict(read_scp_lines(cal_info_path)) if os.path.isfile(cal_info_path) else {}
    cal_frames = args.cal_utt2num_frames or beside(args.cal_trials, "utt2num_frames")
    cal_embeddings = args.cal_embeddings or cal_info.get("xvector_scp")
    if "duration" in groups and not args.utt2num_frames:
        raise RecipeError("the duration measure needs --utt2num-frames for the evaluation ids "
                          "(e.g. data/voxceleb1_eval/utt2num_frames); or give "
                          "--quality-measures none.")
    cohort = None
    if args.cohort_scp:
        cohort = calibration.Cohort(args.cohort_scp, args.top_n, args.mean_scp)
    elif "cohort_mean" in groups:
        raise RecipeError("the cohort_mean measure needs --cohort-scp (the AS-norm cohort).")
    inputs = [args.trials, args.scores, args.cal_trials, args.cal_scores, args.enroll_spk2utt,
              args.utt2spk, args.cohort_scp, args.mean_scp]
    for path in filter(None, inputs):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the stage that makes it first.")
    backend = check_backends(args)
    if backend == "asnorm" and args.calibration_out and cohort is None:
        raise RecipeError("the scores are AS-normalised: --calibration-out needs --cohort-scp "
                          "(and --mean-scp when the mean was subtracted) so that verify can "
                          "normalise as they were.")

    cal_enroll, cal_test, cal_labels = read_trials(args.cal_trials)
    if cal_labels is None:
        raise RecipeError(f"{args.cal_trials} has no target/nontarget labels to fit on.")
    cal_scores = read_scores(args.cal_scores, cal_enroll, cal_test)
    enroll, test, labels = read_trials(args.trials)
    clusters = trial_outputs.bootstrap_clusters(args, enroll, test, labels,
                                                models_enrolled=bool(args.enroll_spk2utt))
    scores = read_scores(args.scores, enroll, test)

    cal_x = features(args, groups, args.cal_trials, cal_enroll, cal_test, [cal_frames],
                     cal_embeddings, cal_embeddings, None, cohort)
    x = features(args, groups, args.trials, enroll, test, args.utt2num_frames,
                 args.enroll_embeddings, args.test_embeddings, args.enroll_spk2utt, cohort)
    cal = calibration.fit(cal_scores, cal_labels, cal_x, groups, args.prior)
    cal.backend, cal.cohort = backend, cohort if (backend == "asnorm" or
                                                  "cohort_mean" in groups) else None
    from pytorch_modules.scoring.metrics import compute_cllr
    cal.info = {"calibration_trials": args.cal_trials, "calibration_scores": args.cal_scores,
                "calibration_targets": str(int(cal_labels.sum())),
                "calibration_nontargets": str(int((cal_labels == 0).sum())),
                "calibration_cllr": f"{compute_cllr(cal.llr(cal_scores, cal_x), cal_labels):.4f}"}
    print(f"{PROG}: {cal.formula()} (prior {cal.prior:g}, {cal_labels.size} calibration "
          f"trials, {backend} scores)", file=sys.stderr)
    llrs = cal.llr(scores, x)
    extra = {"calibration_backend": backend,
             "calibration_measures": ",".join(cal.measures) or "none",
             "calibration_prior": f"{cal.prior:g}", "calibration_trials": str(cal_labels.size)}
    trial_outputs.write(args, enroll, test, labels, llrs, clusters, extra, llr=True)
    if args.calibration_out:
        calibration.write(args.calibration_out, cal)
        print(f"{PROG}: calibration -> {args.calibration_out}", file=sys.stderr)


if __name__ == "__main__":
    run_entry_point(main, PROG)

"""What every entry point that scores a trial list shares (pytorch_modules.bin.score,
.fuse_scores, .calibrate_scores): the options naming the trials, the outputs and the bootstrap,
and the writing of the scores and results files from the scores."""
import os

import numpy as np

from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.cosine import evaluate, summary_line, trials_info


def add_arguments(parser, utt2spk_help) -> None:
    parser.add_argument("--trials", required=True,
                        help="Kaldi trials: enroll test [target|nontarget]")
    parser.add_argument("--scores-out", required=True, help="output: enroll test score")
    parser.add_argument("--results-out", required=True, help="output: key value lines")
    parser.add_argument("--name", help="set name in the results (default: the trials' folder name)")
    parser.add_argument("--utt2spk", help=utt2spk_help)
    parser.add_argument("--bootstrap-replicates", type=int, default=bootstrap.DEFAULT_REPLICATES,
                        help=f"bootstrap replicates of the 95%% intervals (default "
                        f"{bootstrap.DEFAULT_REPLICATES}; 0: no intervals)")
    parser.add_argument("--bootstrap-seed", type=int, default=bootstrap.DEFAULT_SEED,
                        help=f"seed of the bootstrap draws (default {bootstrap.DEFAULT_SEED})")


def add_embedding_arguments(parser) -> None:
    """The embeddings the trials are scored from (bin/score.py, bin/score_plda.py), and the
    utt2spk option worded for them."""
    add_arguments(parser, "speaker of every trial id, for the speaker-level bootstrap (default: "
                  "the utt2spk beside --trials when there is one and no --enroll-spk2utt; else "
                  "the enrollment models are resampled)")
    parser.add_argument("--enroll-scp", required=True, help="embeddings of the enrollment ids")
    parser.add_argument("--test-scp", required=True,
                        help="embeddings of the test ids (may be the same scp)")
    parser.add_argument("--enroll-spk2utt", help="enroll a model as the mean of its utterances' "
                        "embeddings (spk2utt: model utt ...); trials then name models as "
                        "enroll ids")


def check_arguments(parser, args) -> None:
    if args.bootstrap_replicates < 0 or args.bootstrap_replicates == 1:
        parser.error("--bootstrap-replicates takes 0 (no intervals) or at least 2")


def bootstrap_clusters(args, enroll_ids, test_ids, labels, models_enrolled=False):
    """What the bootstrap resamples (checked before any score is computed), or None."""
    if labels is None or args.bootstrap_replicates == 0:
        return None
    return bootstrap.trial_clusters(args.trials, enroll_ids, test_ids, labels, args.utt2spk,
                                    models_enrolled)


def write(args, enroll_ids, test_ids, labels, scores, clusters, extra=None, llr=False) -> None:
    """Writes the scores file and the results file (evaluate's keys, trials.info's, `extra`),
    each by rename, and prints the summary line.  `llr`: the scores are calibrated
    log-likelihood ratios (pytorch_modules.bin.calibrate_scores), whose results add actual DCF,
    Cllr and minCllr with their intervals."""
    name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.trials)))
    # The metrics are those of the scores file as written (6 decimals), so that anything that
    # reads it back (compare_systems, plots) finds the same EER; near-equal scores of a weak
    # model can otherwise tie after rounding and move the EER.
    texts = [f"{s:.6f}" for s in scores]
    results = evaluate(np.array(texts, dtype=np.float64), labels, name,
                       trials_path=args.trials, clusters=clusters,
                       replicates=args.bootstrap_replicates, seed=args.bootstrap_seed, llr=llr)
    results.update(trials_info(args.trials))
    results.update(extra or {})
    write_lines(args.scores_out, (f"{e} {t} {s}" for e, t, s in zip(enroll_ids, test_ids, texts)))
    write_lines(args.results_out, (f"{key} {value}" for key, value in results.items()))
    print(summary_line(results))

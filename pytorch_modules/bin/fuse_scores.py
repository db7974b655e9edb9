"""Fuses systems scored on the same trials into one, by the mean of their scores, and evaluates
it as pytorch_modules.bin.score evaluates a system (EER, minDCF, 95% bootstrap intervals).

    python -m pytorch_modules.bin.fuse_scores --trials data/vox1_o/trials \
        --scores-out exp/c/dam_softmax_fused/scores/vox1_o.scores \
        --results-out exp/c/dam_softmax_fused/scores/vox1_o.results \
        exp/c/dam_softmax_seed1/scores/vox1_o.scores exp/c/dam_softmax_seed2/scores/vox1_o.scores

The mean gives every system the same weight, which suits systems whose scores share a scale:
the cosine scores of one config trained with different seeds (an ensemble; the mean of the
cosines is also the cosine of the concatenated length-normalised embeddings).  Scores on other
scales (a GMM-UBM's log-likelihood ratios beside cosines) need calibrating first, or the widest
scale decides.  Every scores file must hold the trials' pairs in the trials' order, as
pytorch_modules.bin.score writes them; a line that does not is named.
"""
import argparse
import os

import numpy as np

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.cosine import evaluate, read_scores, summary_line, trials_info

PROG = "fuse_scores"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", required=True,
                        help="Kaldi trials: enroll test [target|nontarget]")
    parser.add_argument("--scores-out", required=True, help="output: enroll test score")
    parser.add_argument("--results-out", required=True, help="output: key value lines")
    parser.add_argument("--name", help="set name in the results (default: the trials' folder name)")
    parser.add_argument("--utt2spk", help="speaker of every trial id, for the speaker-level "
                        "bootstrap (default: the utt2spk beside --trials when there is one)")
    parser.add_argument("--bootstrap-replicates", type=int, default=bootstrap.DEFAULT_REPLICATES,
                        help=f"bootstrap replicates of the 95%% intervals (default "
                        f"{bootstrap.DEFAULT_REPLICATES}; 0: no intervals)")
    parser.add_argument("--bootstrap-seed", type=int, default=bootstrap.DEFAULT_SEED,
                        help=f"seed of the bootstrap draws (default {bootstrap.DEFAULT_SEED})")
    parser.add_argument("scores", nargs="+", help="scores files of the systems to fuse")
    args = parser.parse_args()
    if args.bootstrap_replicates < 0 or args.bootstrap_replicates == 1:
        parser.error("--bootstrap-replicates takes 0 (no intervals) or at least 2")
    return args


def main():
    args = parse_args()
    for path in [args.trials, *args.scores]:
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; score the systems first.")
    name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.trials)))
    enroll_ids, test_ids, labels = read_trials(args.trials)
    clusters = None
    if labels is not None and args.bootstrap_replicates:
        clusters = bootstrap.trial_clusters(args.trials, enroll_ids, test_ids, labels,
                                            args.utt2spk)
    fused = np.mean([read_scores(path, enroll_ids, test_ids) for path in args.scores], axis=0)
    # As bin/score: the metrics are those of the scores as written (6 decimals).
    texts = [f"{s:.6f}" for s in fused]
    results = evaluate(np.array(texts, dtype=np.float64), labels, name,
                       trials_path=args.trials, clusters=clusters,
                       replicates=args.bootstrap_replicates, seed=args.bootstrap_seed)
    results.update(trials_info(args.trials))
    results["fused_systems"] = str(len(args.scores))
    write_lines(args.scores_out, (f"{e} {t} {s}" for e, t, s in zip(enroll_ids, test_ids, texts)))
    write_lines(args.results_out, (f"{key} {value}" for key, value in results.items()))
    print(summary_line(results))


if __name__ == "__main__":
    run_entry_point(main, PROG)

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
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import trial_outputs
from pytorch_modules.scoring.cosine import read_scores

PROG = "fuse_scores"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trial_outputs.add_arguments(
        parser, "speaker of every trial id, for the speaker-level bootstrap (default: the "
        "utt2spk beside --trials when there is one; else the enrollment ids are resampled)")
    parser.add_argument("scores", nargs="+", help="scores files of the systems to fuse")
    args = parser.parse_args()
    trial_outputs.check_arguments(parser, args)
    return args


def main():
    args = parse_args()
    for path in [args.trials, *args.scores]:
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; score the systems first.")
    enroll_ids, test_ids, labels = read_trials(args.trials)
    clusters = trial_outputs.bootstrap_clusters(args, enroll_ids, test_ids, labels)
    fused = np.mean([read_scores(path, enroll_ids, test_ids) for path in args.scores], axis=0)
    trial_outputs.write(args, enroll_ids, test_ids, labels, fused, clusters,
                        {"fused_systems": str(len(args.scores))})


if __name__ == "__main__":
    run_entry_point(main, PROG)

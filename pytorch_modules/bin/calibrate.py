"""Chooses the decision threshold of a model on development trials and stores it beside it.

    python -m pytorch_modules.bin.calibrate --model exp/demo_dam/final.pt \
        --scores exp/demo_dam/scores/vox1_o.scores --trials data/vox1_o/trials \
        [--operating-point eer|mindcf0.01|mindcf0.001] [--name vox1_o] [--out FILE]

writes exp/demo_dam/final.threshold (--out to put it elsewhere), `key value` lines read by
pytorch_modules.bin.verify: threshold, operating_point, set, scores, trials and the error
rates there.  eer: the threshold of the equal-error-rate point; mindcfP: the threshold where the
normalised detection cost at p_target P is lowest.  Give plain cosine scores (steps/
score_cosine.sh), the scores verify computes; AS-norm scores are on another scale.
A threshold on cosine scores holds for this model only; a score calibration to
log-likelihood ratios (pytorch_modules.bin.calibrate_scores --calibration-out
exp/demo_dam/final.calibration) lets verify decide at the Bayes threshold of any target prior,
and verify prefers it when both sidecars are there.
"""
import argparse
import os

from pytorch_modules.deploy.verification import operating_threshold, threshold_path, write_threshold
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring.cosine import read_scores

PROG = "calibrate"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exp/<model>/final.pt")
    parser.add_argument("--scores", required=True, help="cosine scores of the trials")
    parser.add_argument("--trials", required=True, help="the trials, with target/nontarget")
    parser.add_argument("--operating-point", default="eer", help="eer (default) or mindcfP, "
                        "e.g. mindcf0.01")
    parser.add_argument("--name", help="set name (default: the scores file's name)")
    parser.add_argument("--out", help="sidecar path (default: the model's path with .threshold)")
    args = parser.parse_args()
    for path in (args.model, args.scores, args.trials):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; train and score first.")
    enroll, test, labels = read_trials(args.trials)
    if labels is None:
        raise RecipeError(f"{args.trials} has no target/nontarget labels to calibrate on.")
    scores = read_scores(args.scores, enroll, test)
    try:
        threshold, extra = operating_threshold(scores, labels, args.operating_point)
    except ValueError as e:  # metrics: e.g. trials of one class only
        raise RecipeError(f"{args.trials}: {e}") from None
    name = args.name or os.path.splitext(os.path.basename(args.scores))[0]
    out = args.out or threshold_path(args.model)
    write_threshold(out, {"threshold": f"{threshold:.6f}", "operating_point": args.operating_point,
                          "set": name, **extra, "scores": args.scores, "trials": args.trials})
    print(f"{PROG}: threshold {threshold:.6f} ({args.operating_point} on {name}) -> {out}")


if __name__ == "__main__":
    run_entry_point(main, PROG)

"""Draws the DET curves of one trial set, one or more systems on the same axes, as a PNG.

    python -m pytorch_modules.bin.plot_det --trials data/vox1_o/trials --out exp/det_vox1_o.png \
        [--title vox1_o] [--p-target 0.01] \
        AM=exp/demo_am/scores/vox1_o.scores DAM=exp/demo_dam/scores/vox1_o.scores

Each system is [LABEL=]SCORES, a scores file of pytorch_modules.bin.score (`enroll test score`
in trial order); without a label the file's path is the label.  Axes are normal deviates as
NIST draws them; each system's EER point (circle) and minDCF operating point (square, at
--p-target) are marked and listed in the legend, and printed.
"""
import argparse
import os

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.reports.plots import DetSystem, labelled_path, plot_det
from pytorch_modules.scoring.cosine import read_scores

PROG = "plot_det"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", required=True, help="Kaldi trials with target/nontarget")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--title", help="plot title (default: the trials' folder name)")
    parser.add_argument("--p-target", type=float, default=0.01,
                        help="p_target of the marked minDCF point (default 0.01)")
    parser.add_argument("systems", nargs="+", metavar="[LABEL=]SCORES")
    args = parser.parse_args()
    for path in [args.trials] + [labelled_path(s)[1] for s in args.systems]:
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the scoring stage first.")
    enroll, test, labels = read_trials(args.trials)
    if labels is None:
        raise RecipeError(f"{args.trials} has no target/nontarget labels, so there is no DET "
                          f"curve to draw.")
    systems = [DetSystem(label, read_scores(path, enroll, test), labels)
               for label, path in map(labelled_path, args.systems)]
    try:
        summaries = plot_det(systems, args.out, args.title or os.path.basename(
            os.path.dirname(os.path.abspath(args.trials))), args.p_target)
    except ValueError as e:  # metrics: e.g. trials of one class only
        raise RecipeError(f"{args.trials}: {e}") from None
    for label, s in summaries.items():
        print(f"{label}: EER {100 * s.eer:.2f}%  minDCF({args.p_target:g}) {s.min_dcf:.4f}")
    print(f"{PROG}: wrote {args.out}")


if __name__ == "__main__":
    run_entry_point(main, PROG)

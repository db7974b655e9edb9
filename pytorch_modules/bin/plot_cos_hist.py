"""Draws distributions of cos(theta_y) recorded during training (the paper's Fig 1) as a PNG.

    python -m pytorch_modules.bin.plot_cos_hist --out exp/demo_dam/cos_theta_hist.png \
        exp/demo_dam/cos_theta_hist.tsv
    python -m pytorch_modules.bin.plot_cos_hist --out am_vs_dam.png --epochs 40 \
        AM=exp/demo_am/cos_theta_hist.tsv DAM=exp/demo_dam/cos_theta_hist.tsv

Each input is [LABEL=]FILE in the format of pytorch_modules/reports/cos_histogram.py (`epoch bin_lo
bin_hi count` lines).  --epochs picks the epochs drawn (default: with one file, up to six
spread from the first to the last; with several, the last epoch of each).
"""
import argparse

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.reports.plots import plot_cos_histograms, select_histograms

PROG = "plot_cos_hist"


def parse_epochs(text):
    try:
        epochs = [int(e) for e in text.split(",") if e.strip()]
    except ValueError:
        raise RecipeError(f"--epochs takes epoch numbers separated by commas, e.g. 1,10,30; "
                          f"got {text!r}.") from None
    if not epochs:
        raise RecipeError("--epochs names no epoch.")
    return epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--epochs", help="epochs to draw, e.g. 1,10,30")
    parser.add_argument("--title")
    parser.add_argument("files", nargs="+", metavar="[LABEL=]FILE")
    args = parser.parse_args()
    histograms = select_histograms(args.files, parse_epochs(args.epochs) if args.epochs else None)
    plot_cos_histograms(histograms, args.out,
                        args.title or r"distribution of $\cos\theta_y$ during training")
    print(f"{PROG}: {len(histograms)} histogram(s) -> {args.out}")


if __name__ == "__main__":
    run_entry_point(main, PROG)

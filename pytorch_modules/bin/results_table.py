"""Prints a Markdown table of results files written by pytorch_modules.bin.score.

    python -m pytorch_modules.bin.results_table exp/*/scores/*.results

One row per file, in the order given; values a file lacks (unlabelled trials) show as '-'.
"""
import argparse
import os

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.scoring import read_results

PROG = "results_table"
# (results-file key, column heading); the file path comes first so rows of models differ.
COLUMNS = [("name", "set"), ("trials", "trials"), ("eer_percent", "EER (%)"),
           ("min_dcf_p0.01", "minDCF(0.01)"), ("min_dcf_p0.001", "minDCF(0.001)")]


def markdown_table(paths):
    """The table as a list of lines."""
    lines = ["| results | " + " | ".join(head for _, head in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for path in paths:
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the scoring stage first.")
        results = read_results(path)
        cells = [_format(path, key, results.get(key, "-")) for key, _ in COLUMNS]
        lines.append(f"| {path} | " + " | ".join(cells) + " |")
    return lines


def _format(path, key, value):
    """EER with 2 decimals, as papers quote it; everything else as written."""
    if key != "eer_percent" or value == "-":
        return value
    try:
        return f"{float(value):.2f}"
    except ValueError:
        raise RecipeError(
            f"{path}: eer_percent is {value!r}, not a number; rerun scoring.") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", metavar="RESULTS_FILE")
    args = parser.parse_args()
    print("\n".join(markdown_table(args.results)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

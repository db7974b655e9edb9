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


def read_paper_eers(path, train_set, loss):
    """{eval set: EER %} of the paper's rows for this training set and loss (local/paper_table1.txt)."""
    eers = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 4:
                raise RecipeError(f"{path}:{line_no}: expected 'TRAIN_SET LOSS EVAL_SET EER', "
                                  f"got {line!r}")
            if fields[0] == train_set and fields[1] == loss:
                eers[fields[2]] = fields[3]
    return eers


def markdown_table(paths, paper=None):
    """The table as a list of lines; `paper` ({set: EER}) adds the paper's EER column."""
    paper_head = " | paper EER (%)" if paper is not None else ""
    lines = ["| results | " + " | ".join(head for _, head in COLUMNS) + paper_head + " |",
             "|---|" + "---:|" * (len(COLUMNS) + (paper is not None))]
    for path in paths:
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the scoring stage first.")
        results = read_results(path)
        cells = [_format(path, key, results.get(key, "-")) for key, _ in COLUMNS]
        if paper is not None:
            cells.append(paper.get(results.get("name"), "-"))
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
    parser.add_argument("--paper-table", help="add the paper's EER for each set from this file "
                        "(local/paper_table1.txt), for --train-set and --loss")
    parser.add_argument("--train-set", default="", help="e.g. voxceleb1 or voxceleb2")
    parser.add_argument("--loss", default="", help="e.g. dam_softmax or am_softmax")
    parser.add_argument("results", nargs="+", metavar="RESULTS_FILE")
    args = parser.parse_args()
    paper = (read_paper_eers(args.paper_table, args.train_set, args.loss)
             if args.paper_table else None)
    print("\n".join(markdown_table(args.results, paper)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

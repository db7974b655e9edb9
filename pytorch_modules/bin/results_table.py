"""Prints a Markdown table of results files written by pytorch_modules.bin.score.

    python -m pytorch_modules.bin.results_table exp/*/scores/*.results \
        [--baselines exp/classical_voxceleb1_dev/*/scores/*.results]

One row per file, in the order given; values a file lacks (unlabelled trials) show as '-'.
Each row names its trial list and trial count; a set whose speakers the training set also
holds (Vox1-E/H when training on VoxCeleb1 dev) is marked "trained-on-test".
Where any file holds calibrated scores (pytorch_modules.bin.calibrate_scores), the table adds
their actual DCF at minDCF's operating points, Cllr and minCllr (pytorch_modules/scoring/
metrics.py); uncalibrated rows (cosine, AS-norm: not log-likelihood ratios) show them as '-'.
EER, minDCF, actDCF(0.01), Cllr and minCllr carry their 95% bootstrap interval in brackets when
the file has one.  "EER" is
the interpolated crossing of the DET curve, "EER Kaldi" the value of Kaldi's compute-eer
(pytorch_modules/scoring/metrics.py); they differ by up to about one target trial's share.  Rows of
--baselines (the classical systems scored on the same trials) follow, without a paper column
value: the paper's figures belong to the model's rows.
"""
import argparse
import os

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.scoring.cosine import read_results

PROG = "results_table"
# (results-file key, column heading); the file path comes first so rows of models differ.
COLUMNS = [("name", "set"), ("trial_list", "list"), ("trials", "trials"),
           ("eer_percent", "EER (%) [95% CI]"), ("eer_kaldi_percent", "EER Kaldi (%)"),
           ("min_dcf_p0.01", "minDCF(0.01) [95% CI]"), ("min_dcf_p0.001", "minDCF(0.001)")]
# The columns of calibrated scores, shown when a file has them.
LLR_COLUMNS = [("act_dcf_p0.01", "actDCF(0.01) [95% CI]"), ("act_dcf_p0.001", "actDCF(0.001)"),
               ("cllr", "Cllr [95% CI]"), ("min_cllr", "minCllr [95% CI]")]
# Digits shown: EER with 2 decimals, as papers quote it; the DCFs and Cllrs with 4 as written.
DIGITS = {"eer_percent": 2, "eer_kaldi_percent": 2, "min_dcf_p0.01": 4, "min_dcf_p0.001": 4,
          "act_dcf_p0.01": 4, "act_dcf_p0.001": 4, "cllr": 4, "min_cllr": 4}
# Shown without their interval, to keep the table narrow (the files hold it).
NO_INTERVAL = {"min_dcf_p0.001", "act_dcf_p0.001"}


def read_paper_eers(path, train_set, loss):
    """{eval set: EER %} of the paper's rows for this training set and loss
    (local/paper_table1.txt)."""
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


def markdown_table(paths, paper=None, baselines=()):
    """The table as a list of lines; `paper` ({set: EER}) adds the paper's EER column, which
    stays '-' on the rows of `baselines`."""
    paper_head = " | paper EER (%)" if paper is not None else ""
    rows = []
    for path in list(paths) + list(baselines):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the scoring stage first.")
        rows.append((path, read_results(path)))
    columns = COLUMNS + (LLR_COLUMNS if any("cllr" in r for _, r in rows) else [])
    lines = ["| results | " + " | ".join(head for _, head in columns) + paper_head + " |",
             "|---|" + "---:|" * (len(columns) + (paper is not None))]
    for path, results in rows:
        cells = [_cell(path, key, results) for key, _ in columns]
        if paper is not None:
            cells.append(paper.get(results.get("name"), "-") if path in paths else "-")
        lines.append(f"| {path} | " + " | ".join(cells) + " |")
    return lines


def _cell(path, key, results):
    """A value as written, or a metric with its digits and, when present, its interval."""
    value = results.get(key, "-")
    if key == "name" and results.get("speakers_in_training", "0") != "0":
        return (f"{value} **trained-on-test** ({results['speakers_in_training']} speakers "
                f"in training)")
    if key not in DIGITS or value == "-":
        return value
    digits = DIGITS[key]
    text = f"{_number(path, key, value):.{digits}f}"
    if key in NO_INTERVAL or f"{key}_ci_low" not in results:
        return text
    low = _number(path, f"{key}_ci_low", results[f"{key}_ci_low"])
    high = _number(path, f"{key}_ci_high", results.get(f"{key}_ci_high", "-"))
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def _number(path, key, value):
    try:
        return float(value)
    except ValueError:
        raise RecipeError(f"{path}: {key} is {value!r}, not a number; rerun scoring.") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper-table", help="add the paper's EER for each set from this file "
                        "(local/paper_table1.txt), for --train-set and --loss")
    parser.add_argument("--train-set", default="", help="e.g. voxceleb1 or voxceleb2")
    parser.add_argument("--loss", default="", help="e.g. dam_softmax or am_softmax")
    parser.add_argument("results", nargs="+", metavar="RESULTS_FILE")
    parser.add_argument("--baselines", nargs="+", default=[], metavar="RESULTS_FILE",
                        help="results of baseline systems on the same trials (rows after the "
                        "model's)")
    args = parser.parse_args()
    paper = (read_paper_eers(args.paper_table, args.train_set, args.loss)
             if args.paper_table else None)
    print("\n".join(markdown_table(args.results, paper, args.baselines)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

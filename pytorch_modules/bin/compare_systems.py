"""Compares systems scored on the same trials: mean and spread over training seeds, and a paired
speaker-bootstrap test of each system's EER against a reference system.

    python -m pytorch_modules.bin.compare_systems --trials data/vox1_o/trials \
        --reference am_softmax \
        am_softmax=exp/c/am_softmax_seed1/scores/vox1_o.scores,exp/c/am_softmax_seed2/... \
        dam_softmax=exp/c/dam_softmax_seed1/scores/vox1_o.scores,...

A system is NAME=SCORES[,SCORES...]: one scores file per training seed (written by
pytorch_modules.bin.score, in trial order).  Prints a Markdown table: per system the mean EER
and minDCF(0.01) over its seeds, their spread (sample standard deviation and range), and,
against --reference, the difference of the mean EERs with its 95% paired bootstrap interval and
two-sided p-value (pytorch_modules/scoring/bootstrap.py: the same speaker draws for every system;
each replicate's statistic is the mean EER over a system's seeds minus the reference's).
"""
import argparse
import os

import numpy as np

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.cosine import read_scores

PROG = "compare_systems"


def parse_system(text):
    name, sep, files = text.partition("=")
    if not sep or not name or not files:
        raise RecipeError(f"system {text!r}: expected NAME=SCORES[,SCORES...]")
    paths = files.split(",")
    for path in paths:
        if not os.path.isfile(path):
            raise RecipeError(f"system {name}: {path} does not exist; score that model first.")
    return name, paths


def spread(values):
    """'sd X, range A-B' of per-seed values (sd needs two seeds)."""
    values = np.asarray(values)
    sd = f"{values.std(ddof=1):.2f}" if values.size > 1 else "-"
    return sd, f"{values.min():.2f}-{values.max():.2f}"


def comparison_table(systems, scores, labels, clusters, reference, replicates, seed):
    """Markdown lines: one row per system (seeds, mean, spread, paired test vs reference)."""
    point = {name: bootstrap.replicate_point(scores[name], labels) for name, _ in systems}
    lines = [f"| system | seeds | EER (%) mean | EER sd | EER range | minDCF(0.01) mean | "
             f"EER - {reference} (%) [95% CI] | p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, paths in systems:
        eers = 100 * point[name][:, 0]
        sd, rng = spread(eers)
        if name == reference:
            test, p = "-", "-"
        else:
            d = bootstrap.paired_difference(scores[name], scores[reference], labels, clusters,
                                            replicates, seed)
            test = (f"{100 * d['difference']:+.2f} [{100 * d['ci_low']:+.2f}, "
                    f"{100 * d['ci_high']:+.2f}]")
            p = f"{d['p_value']:.3f}"
        lines.append(f"| {name} | {len(paths)} | {eers.mean():.2f} | {sd} | {rng} | "
                     f"{point[name][:, 1].mean():.4f} | {test} | {p} |")
    lines.append("")
    lines.append(f"Bootstrap: {replicates} replicates over {len(clusters.names)} "
                 f"{clusters.unit}s (seed {seed}); the EER of a system is the mean over its seeds.")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", required=True, help="Kaldi trials with target/nontarget")
    parser.add_argument("--utt2spk", help="speaker of every trial id (default: the utt2spk "
                        "beside --trials; without one the enrollment ids are resampled)")
    parser.add_argument("--reference", help="the system the others are tested against "
                        "(default: the first)")
    parser.add_argument("--replicates", type=int, default=bootstrap.DEFAULT_REPLICATES)
    parser.add_argument("--seed", type=int, default=bootstrap.DEFAULT_SEED)
    parser.add_argument("systems", nargs="+", metavar="NAME=SCORES[,SCORES...]")
    args = parser.parse_args()
    if args.replicates < 2:
        parser.error("--replicates must be at least 2")

    if not os.path.isfile(args.trials):
        raise RecipeError(f"{args.trials} does not exist")
    systems = [parse_system(s) for s in args.systems]
    names = [name for name, _ in systems]
    if len(set(names)) != len(names):
        raise RecipeError(f"system names must differ, got {', '.join(names)}")
    reference = args.reference or names[0]
    if reference not in names:
        raise RecipeError(f"--reference {reference} is not one of the systems "
                          f"({', '.join(names)})")
    enroll, test, labels = read_trials(args.trials)
    if labels is None:
        raise RecipeError(f"{args.trials} has no target/nontarget labels; nothing to compare")
    clusters = bootstrap.trial_clusters(args.trials, enroll, test, labels, args.utt2spk)
    scores = {name: [read_scores(p, enroll, test) for p in paths] for name, paths in systems}
    print("\n".join(comparison_table(systems, scores, labels, clusters, reference,
                                     args.replicates, args.seed)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

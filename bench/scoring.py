"""Scoring at Vox1-E scale: 145,000 embeddings of 1024 dims, 581,480 trials.

    python bench/scoring.py [--repeats 3] [--subset 20000] [--regenerate] [--no-asnorm]
                            [--utts 145000 --dim 1024 --trials 581480]

Times, end to end and per phase (read scp/arks, parse trials, score, metrics; writing the
scores file is shown apart) of the project's code as the score entry point calls it
(read_trials, load_table, cosine_score, evaluate; write_lines for the scores file), in a
fresh process per run.
References, in this process:
  (a) WeSpeaker's score.py: kaldiio into a dict, then sklearn cosine_similarity per trial
      (timed on --subset trials and extrapolated to all, which is said where printed);
  (b) a per-trial NumPy loop over a dict of length-normalised vectors (all trials).
Then the gather-and-dot rate in GB/s (two gathered vectors per trial) against a large NumPy
copy, and AS-norm (top-300 over a 6,000-speaker cohort): the project's asnorm.py (float32
cohort product), the same with a float64 product, and a float32 vectorised reference built
on torch.mm.  Generated inputs are cached in /tmp/bench_scoring (--regenerate).
Each figure is the best of --repeats runs; the load average is printed with it.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import common
import numpy as np
from scoring_data import scoring_inputs

from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.embedding_io import length_normalise, load_embeddings
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import asnorm
from pytorch_modules.scoring.cosine import evaluate, pair_scores, trial_rows

PHASES = ("read", "parse", "score", "metrics")


# ---------------------------------------------------------------- end-to-end runs (children)
def run_project(scp, trials, scores_out):
    """What pytorch_modules.bin.score does for one scp and labelled trials."""
    from pytorch_modules.fileio.embedding_io import load_table
    from pytorch_modules.scoring.cosine import cosine_score
    times = {}
    start = time.perf_counter()
    enroll, test, labels = read_trials(trials)
    times["parse"] = time.perf_counter() - start
    start = time.perf_counter()
    id_to_row, emb = load_table(scp, scp)
    times["read"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = cosine_score(enroll, test, id_to_row, emb, trials_path=trials)
    times["score"] = time.perf_counter() - start
    start = time.perf_counter()
    results = evaluate(scores, labels, "bench", trials_path=trials)
    times["metrics"] = time.perf_counter() - start
    start = time.perf_counter()
    write_lines(scores_out, (f"{e} {t} {s:.6f}" for e, t, s in zip(enroll, test, scores)))
    times["write"] = time.perf_counter() - start
    return times, results


def child_main(kind, scp, trials, scores_out):
    times, results = {"project": run_project}[kind](scp, trials, scores_out)
    print(json.dumps({"times": times, "results": results}))


def run_child(kind, scp, trials, repeats):
    """Best (by end-to-end time without writing) of `repeats` fresh processes."""
    best = None
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--child", kind, scp, trials,
                              f"/tmp/bench_scoring/{kind}.scores"],
                             capture_output=True, text=True, check=True).stdout
        run = json.loads(out.splitlines()[-1])
        run["total"] = sum(run["times"][p] for p in PHASES)
        if best is None or run["total"] < best["total"]:
            best = run
    return best


# ---------------------------------------------------------------- references (in process)
def wespeaker_style_dict(scp):
    """WeSpeaker's reading: every embedding into a dict through kaldiio."""
    import kaldiio
    return {utt: emb for utt, emb in kaldiio.load_scp_sequential(scp)}


def line_by_line_trials(path):
    with open(path) as f:
        return [line.strip().split() for line in f.readlines()]


def reference_a(emb_dict, trial_fields):
    """WeSpeaker score.py's loop: sklearn cosine_similarity of each pair."""
    from sklearn.metrics.pairwise import cosine_similarity
    return np.array([cosine_similarity(emb_dict[f[0]].reshape(1, -1),
                                       emb_dict[f[1]].reshape(1, -1))[0][0]
                     for f in trial_fields])


def reference_b(unit_dict, trial_fields):
    """A per-trial NumPy loop over a dict of length-normalised vectors."""
    return np.fromiter((np.dot(unit_dict[f[0]], unit_dict[f[1]]) for f in trial_fields),
                       dtype=np.float64, count=len(trial_fields))


def measure_references(scp, trials, subset, repeats):
    """Phase times of references (a) and (b); (a)'s scoring extrapolated from `subset`."""
    read, emb_dict = common.best_of(lambda: wespeaker_style_dict(scp), 1)
    parse, fields = common.best_of(lambda: line_by_line_trials(trials), repeats)
    normalise, unit_dict = common.best_of(
        lambda: {k: v / np.linalg.norm(v) for k, v in emb_dict.items()}, 1)
    part = fields[:subset]
    score_a_subset, _ = common.best_of(lambda: reference_a(emb_dict, part), repeats)
    score_b, scores_b = common.best_of(lambda: reference_b(unit_dict, fields), repeats)
    labels = np.array([f[2] == "target" for f in fields], dtype=np.int8)
    metrics, _ = common.best_of(lambda: evaluate(scores_b, labels, "ref"), repeats)
    score_a = score_a_subset * len(fields) / len(part)
    return {
        "a": {"read": read, "parse": parse, "score": score_a, "metrics": metrics,
              "subset_seconds": score_a_subset},
        "b": {"read": read, "parse": parse, "score": score_b + normalise, "metrics": metrics},
    }


# ---------------------------------------------------------------- gather bandwidth
def table_and_rows(scp, trials):
    """(embedding matrix, enroll rows, test rows) as the score entry point finds them."""
    ids, emb = load_embeddings(scp)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    enroll, test, _ = read_trials(trials)
    return (emb, id_to_row, enroll, test) + trial_rows(enroll, test, id_to_row)


def gather_rate(scp, trials, repeats):
    """(bytes moved, seconds) of the project's gather-and-dot (scoring.pair_scores) alone."""
    emb, _, _, _, enroll_rows, test_rows = table_and_rows(scp, trials)
    moved = 2 * emb.shape[1] * emb.itemsize * len(enroll_rows)
    seconds, _ = common.best_of(lambda: pair_scores(emb, enroll_rows, test_rows), repeats)
    return moved, seconds


# ---------------------------------------------------------------- AS-norm
def reference_asnorm(unit, enroll_rows, test_rows, raw, cohort_unit, top_n, chunk=4096):
    """AS-norm, vectorised: per unique id one row of a float32 cohort matmul (torch.mm, all
    threads) and np.argpartition's top-N; statistics and the normalisation in float64."""
    import torch
    used = np.union1d(enroll_rows, test_rows)
    cohort_t = torch.from_numpy(np.ascontiguousarray(cohort_unit, dtype=np.float32))
    means, stds = np.zeros(len(unit)), np.ones(len(unit))
    kth = cohort_unit.shape[0] - top_n
    for start in range(0, len(used), chunk):
        rows = used[start:start + chunk]
        scores = torch.mm(torch.from_numpy(unit[rows]), cohort_t.T).numpy()
        top_index = np.argpartition(scores, kth, axis=1)[:, kth:]
        top = np.take_along_axis(scores, top_index, axis=1).astype(np.float64)
        means[rows], stds[rows] = top.mean(axis=1), top.std(axis=1)
    return 0.5 * ((raw - means[enroll_rows]) / stds[enroll_rows]
                  + (raw - means[test_rows]) / stds[test_rows])


def measure_asnorm(scp, trials, cohort_size, top_n, dim):
    """Seconds of the project's asnorm_score (float32 cohort product), of the same with the
    cohort product in float64 throughout, and of the reference; the largest differences of
    the project's and the reference's scores from the float64 ones."""
    emb, id_to_row, enroll, test, enroll_rows, test_rows = table_and_rows(scp, trials)
    cohort = np.random.default_rng(1).standard_normal((cohort_size, dim), dtype=np.float32)
    seconds = {}
    start = time.perf_counter()
    project, raw = asnorm.asnorm_score(enroll, test, id_to_row, emb, cohort, top_n)
    seconds["project"] = time.perf_counter() - start
    original = asnorm.cohort_statistics
    asnorm.cohort_statistics = lambda emb, cohort_unit, n, rows: asnorm.top_statistics(
        emb, rows, np.asarray(cohort_unit, np.float64), n)
    try:
        start = time.perf_counter()
        exact, _ = asnorm.asnorm_score(enroll, test, id_to_row, emb, cohort, top_n)
        seconds["float64"] = time.perf_counter() - start
    finally:
        asnorm.cohort_statistics = original
    start = time.perf_counter()
    unit = length_normalise(emb)
    cohort_unit = length_normalise(cohort)
    reference = reference_asnorm(unit, enroll_rows, test_rows,
                                 pair_scores(unit, enroll_rows, test_rows), cohort_unit, top_n)
    seconds["reference"] = time.perf_counter() - start
    diffs = {"project": float(np.abs(project - exact).max()),
             "reference": float(np.abs(reference - exact).max())}
    return seconds, diffs


# ---------------------------------------------------------------- report
def print_phases(name, times, note=""):
    parts = "  ".join(f"{p} {times[p]:.2f}" for p in PHASES)
    total = sum(times[p] for p in PHASES)
    extra = f"  (+ write scores {times['write']:.2f})" if "write" in times else ""
    print(f"   {name:<22} {total:7.2f} s = {parts}{extra} {note}")
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=145000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--trials", type=int, default=581480)
    parser.add_argument("--arks", type=int, default=8, help="arks the embeddings are spread over")
    parser.add_argument("--subset", type=int, default=20000,
                        help="trials timed for reference (a), extrapolated to all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true", help="rewrite the cached inputs")
    parser.add_argument("--no-asnorm", action="store_true")
    parser.add_argument("--cohort", type=int, default=6000)
    parser.add_argument("--top-n", type=int, default=300)
    parser.add_argument("--child", nargs=4, metavar=("KIND", "SCP", "TRIALS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(*args.child)

    common.banner(f"scoring: {args.utts:,} embeddings x {args.dim} dims in {args.arks} arks, "
                  f"{args.trials:,} trials")
    start = time.perf_counter()
    scp, trials = scoring_inputs(args.utts, args.dim, args.trials, args.arks, args.regenerate)
    print(f"   inputs: {os.path.dirname(scp)} ({time.perf_counter() - start:.1f} s; cached)")

    print(f"-- end to end, fresh process each, best of {args.repeats} (seconds):")
    project = run_child("project", scp, trials, args.repeats)
    project_total = print_phases("project code", project["times"])
    print(f"   results: EER {project['results']['eer_percent']}%, "
          f"minDCF(0.01) {project['results']['min_dcf_p0.01']}")
    print(f"   {common.load_line()}")

    print("-- references (same data, this process; read = kaldiio into a dict, as WeSpeaker):")
    refs = measure_references(scp, trials, min(args.subset, args.trials), args.repeats)
    ref_a_total = print_phases("(a) sklearn per trial", refs["a"],
                               f"[score: {args.subset:,} trials took "
                               f"{refs['a']['subset_seconds']:.2f} s, extrapolated]")
    ref_b_total = print_phases("(b) numpy dict loop", refs["b"], "[all trials]")
    print(f"   {common.load_line()}")

    print("-- ratios (reference time / ours):")
    common.ratio("end to end vs (a)", project_total, ref_a_total, 50, False)
    common.ratio("end to end vs (b)", project_total, ref_b_total, 3, False)
    common.ratio("score phase vs (a)", project["times"]["score"], refs["a"]["score"], None,
                 False)
    common.ratio("score phase vs (b)", project["times"]["score"], refs["b"]["score"], None,
                 False)
    common.figure("end to end (issue target < 4 s)", project_total, "s")

    print("-- gather-and-dot bandwidth (bytes of the two gathered vectors per trial):")
    copy = common.copy_bandwidth()
    moved, seconds = gather_rate(scp, trials, args.repeats)
    common.figure("large NumPy copy (1 thread)", copy / 1e9, "GB/s")
    common.figure("scoring.pair_scores", moved / seconds / 1e9, "GB/s",
                  f"{moved / seconds / copy:.0%} of copy, {seconds:.2f} s")
    print(f"   {common.load_line()}")

    if not args.no_asnorm:
        print(f"-- AS-norm, top-{args.top_n} of a {args.cohort:,}-speaker cohort, "
              f"{args.trials:,} trials (issue target < 20 s):")
        flops = common.matmul_flops()
        seconds, diffs = measure_asnorm(scp, trials, args.cohort, args.top_n, args.dim)
        common.figure("project asnorm_score (float32 cohort product)", seconds["project"], "s",
                      f"max |difference| from float64 {diffs['project']:.1e}")
        common.figure("same with a float64 cohort product", seconds["float64"], "s")
        common.figure("reference (float32 torch.mm + argpartition)", seconds["reference"], "s",
                      f"max |difference| from float64 {diffs['reference']:.1e}")
        common.ratio("project vs reference", seconds["project"], seconds["reference"], None,
                     False)
        common.figure("torch.mm float32, all threads", flops / 1e9, "GFLOP/s")
        print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

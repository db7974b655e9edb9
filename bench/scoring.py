"""Scoring at Vox1-E scale: 145,000 embeddings of 1024 dims, 581,480 trials.

    python bench/scoring.py [--repeats 3] [--subset 20000] [--regenerate] [--no-asnorm]
                            [--utts 145000 --dim 1024 --trials 581480]

Times, end to end and per phase (read scp/arks, parse trials, score, metrics; writing the
scores file is shown apart), in a fresh process per run as `pytorch_modules.bin.score` runs:
  project   the project's own code, as the score entry point calls it (read_trials, load_table,
            cosine_score, evaluate; write_lines_atomic for the scores file);
  proposed  the changes proposed for scoring.py: pytorch_modules.fast_ark.read_vectors for the
            arks, one dict lookup per id through operator.itemgetter, norms taken once over the
            table, and trials sorted by enrollment row, scored in cache-sized chunks (the
            functions below marked PROPOSED); read_trials and evaluate are the project's (the
            time of the single DET sweep proposed for evaluate is printed apart).
References, in this process:
  (a) WeSpeaker's score.py: kaldiio into a dict, then sklearn cosine_similarity per trial
      (timed on --subset trials and extrapolated to all, which is said where printed);
  (b) a per-trial NumPy loop over a dict of length-normalised vectors (all trials).
Then the gather-and-dot rate in GB/s (two gathered vectors per trial) against a large NumPy
copy, and AS-norm (top-300 over a 6,000-speaker cohort): the project's asnorm.py and a float32
vectorised reference.  Generated inputs are cached in /tmp/bench_scoring (--regenerate).
Each figure is the best of --repeats runs; the load average is printed with it.
"""
import argparse
import json
import operator
import os
import subprocess
import sys
import time

import common  # noqa: F401  (puts the repository root on sys.path)
import numpy as np
from scoring_data import scoring_inputs

from pytorch_modules import fast_ark
from pytorch_modules.metrics import detection_error_tradeoff
from pytorch_modules.scoring import evaluate, pair_scores, read_trials, write_lines_atomic

PHASES = ("read", "parse", "score", "metrics")


# ---------------------------------------------------------------- PROPOSED for scoring.py
def proposed_rows(ids, id_to_row):
    """Rows of ids, or None when one is missing (scoring._rows then lists the missing ids)."""
    try:
        return np.array(operator.itemgetter(*ids)(id_to_row), dtype=np.int64).reshape(-1)
    except KeyError:
        return None


def proposed_load_embeddings(scp):
    """fast_ark.read_vectors, or the project's kaldiio reader when the scp is not simple."""
    fast = fast_ark.read_vectors(scp)
    if fast is not None:
        return fast
    from pytorch_modules.scoring import load_embeddings
    return load_embeddings(scp)


def proposed_pair_scores(unit, enroll_rows, test_rows):
    """The proposed gather-and-dot, now the project's own: scoring.pair_scores."""
    return pair_scores(unit, enroll_rows, test_rows)


def proposed_unit(emb):
    """Length-normalised rows, the norms taken once over the whole table (the project's
    unit_embeddings first gathers the used rows, a copy of the whole table, for their norms)."""
    norms = np.linalg.norm(emb, axis=1)
    if not (np.isfinite(norms).all() and (norms > 0).all()):
        return None  # the project's unit_embeddings names the bad id
    return emb / norms[:, None]


def proposed_write_scores(path, enroll, test, scores):
    """The scores file: the same `enroll test score` lines, formatted in one pass."""
    text = "\n".join(map("{} {} {:.6f}".format, enroll, test, scores.tolist()))
    write_lines_atomic(path, [text])


# ---------------------------------------------------------------- end-to-end runs (children)
def run_project(scp, trials, scores_out):
    """What pytorch_modules.bin.score does for one scp and labelled trials."""
    from pytorch_modules.bin.score import load_table
    from pytorch_modules.scoring import cosine_score
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
    write_lines_atomic(scores_out, (f"{e} {t} {s:.6f}" for e, t, s in zip(enroll, test, scores)))
    times["write"] = time.perf_counter() - start
    return times, results


def run_proposed(scp, trials, scores_out):
    times = {}
    start = time.perf_counter()
    ids, emb = proposed_load_embeddings(scp)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    times["read"] = time.perf_counter() - start
    start = time.perf_counter()
    enroll, test, labels = read_trials(trials)
    times["parse"] = time.perf_counter() - start
    start = time.perf_counter()  # ids -> rows counts as scoring, as in cosine_score
    enroll_rows, test_rows = proposed_rows(enroll, id_to_row), proposed_rows(test, id_to_row)
    unit = proposed_unit(emb)
    scores = proposed_pair_scores(unit, enroll_rows, test_rows)
    times["score"] = time.perf_counter() - start
    start = time.perf_counter()
    results = evaluate(scores, labels, "bench", trials_path=trials)
    times["metrics"] = time.perf_counter() - start
    start = time.perf_counter()
    detection_error_tradeoff(scores, labels)
    times["one_sweep"] = time.perf_counter() - start  # what metrics.patch leaves of "metrics"
    start = time.perf_counter()
    proposed_write_scores(scores_out, enroll, test, scores)
    times["write"] = time.perf_counter() - start
    return times, results


def child_main(kind, scp, trials, scores_out):
    times, results = {"project": run_project, "proposed": run_proposed}[kind](
        scp, trials, scores_out)
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
def gather_rate(scp, trials, repeats):
    """Bytes per second of the proposed and the project's gather-and-dot alone."""
    from pytorch_modules.scoring import pair_scores
    ids, emb = fast_ark.read_vectors(scp)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    enroll, test, _ = read_trials(trials)
    enroll_rows, test_rows = proposed_rows(enroll, id_to_row), proposed_rows(test, id_to_row)
    unit = proposed_unit(emb)
    moved = 2 * unit.shape[1] * unit.itemsize * len(enroll_rows)
    ours, _ = common.best_of(lambda: proposed_pair_scores(unit, enroll_rows, test_rows), repeats)
    theirs, _ = common.best_of(lambda: pair_scores(unit, enroll_rows, test_rows), repeats)
    return moved, ours, theirs


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


# Rows whose top-N cohort scores spread less than this are redone in float64 (see below).
FLOAT32_MIN_SPREAD = 0.005


def top_statistics(unit, cohort_unit, top_n, chunk=4096):
    """Mean and std (float64) of each row's top_n cohort scores; the product in the inputs'
    dtype, chunk rows at a time."""
    means, stds = np.empty(len(unit)), np.empty(len(unit))
    for start in range(0, len(unit), chunk):
        scores = unit[start:start + chunk] @ cohort_unit.T
        top = np.partition(scores, scores.shape[1] - top_n, axis=1)[:, -top_n:]
        top = top.astype(np.float64, copy=False)
        means[start:start + len(top)], stds[start:start + len(top)] = top.mean(1), top.std(1)
    return means, stds


def proposed_cohort_statistics(unit, cohort_unit, top_n):
    """PROPOSED for asnorm.cohort_statistics: the cohort product in float32 (the statistics
    stay float64); rows whose top-N spread is under FLOAT32_MIN_SPREAD, where float32 rounding
    divided by the spread could show, are done again in float64."""
    means, stds = top_statistics(np.asarray(unit, np.float32),
                                 np.asarray(cohort_unit, np.float32), top_n)
    narrow = np.flatnonzero(stds < FLOAT32_MIN_SPREAD)
    if narrow.size:
        means[narrow], stds[narrow] = top_statistics(
            np.asarray(unit, np.float64)[narrow], np.asarray(cohort_unit, np.float64), top_n)
    return means, stds


def measure_asnorm(scp, trials, cohort_size, top_n, dim):
    """Seconds of the project's asnorm_score, of the same with the proposed float32 cohort
    product, and of the reference; the largest differences of the latter two's scores from
    the project's."""
    from pytorch_modules import asnorm
    ids, emb = fast_ark.read_vectors(scp)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    enroll, test, _ = read_trials(trials)
    enroll_rows, test_rows = proposed_rows(enroll, id_to_row), proposed_rows(test, id_to_row)
    cohort = np.random.default_rng(1).standard_normal((cohort_size, dim), dtype=np.float32)
    cohort_unit = cohort / np.linalg.norm(cohort, axis=1, keepdims=True)
    seconds = {}
    start = time.perf_counter()
    project_scores, _ = asnorm.asnorm_score(enroll, test, id_to_row, emb, cohort, top_n)
    seconds["project"] = time.perf_counter() - start
    original = asnorm.cohort_statistics
    asnorm.cohort_statistics = proposed_cohort_statistics
    try:
        start = time.perf_counter()
        proposed_scores, _ = asnorm.asnorm_score(enroll, test, id_to_row, emb, cohort, top_n)
        seconds["proposed"] = time.perf_counter() - start
    finally:
        asnorm.cohort_statistics = original
    start = time.perf_counter()
    unit = proposed_unit(emb)
    raw = proposed_pair_scores(unit, enroll_rows, test_rows)
    reference = reference_asnorm(unit, enroll_rows, test_rows, raw, cohort_unit, top_n)
    seconds["reference"] = time.perf_counter() - start
    diffs = {"proposed": float(np.abs(proposed_scores - project_scores).max()),
             "reference": float(np.abs(reference - project_scores).max())}
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
    proposed = run_child("proposed", scp, trials, args.repeats)
    project_total = print_phases("project code", project["times"])
    proposed_total = print_phases("proposed changes", proposed["times"])
    same = all(project["results"][k] == proposed["results"][k] for k in project["results"])
    print(f"   (proposed metrics: evaluate sweeps the DET curve three times; one sweep, as "
          f"metrics.patch does, takes {proposed['times']['one_sweep']:.2f} s)")
    print(f"   results: EER {project['results']['eer_percent']}%, "
          f"minDCF(0.01) {project['results']['min_dcf_p0.01']}; proposed gives "
          f"{'the same results' if same else 'DIFFERENT results: ' + str(proposed['results'])}")
    print(f"   {common.load_line()}")

    print("-- references (same data, this process; read = kaldiio into a dict, as WeSpeaker):")
    refs = measure_references(scp, trials, min(args.subset, args.trials), args.repeats)
    ref_a_total = print_phases("(a) sklearn per trial", refs["a"],
                               f"[score: {args.subset:,} trials took "
                               f"{refs['a']['subset_seconds']:.2f} s, extrapolated]")
    ref_b_total = print_phases("(b) numpy dict loop", refs["b"], "[all trials]")
    print(f"   {common.load_line()}")

    print("-- ratios (reference time / ours):")
    for name, ours in (("project code", project), ("proposed changes", proposed)):
        total = sum(ours["times"][p] for p in PHASES)
        common.ratio(f"{name}: end to end vs (a)", total, ref_a_total, 50, False)
        common.ratio(f"{name}: end to end vs (b)", total, ref_b_total, 3, False)
        common.ratio(f"{name}: score phase vs (a)", ours["times"]["score"],
                     refs["a"]["score"], None, False)
        common.ratio(f"{name}: score phase vs (b)", ours["times"]["score"],
                     refs["b"]["score"], None, False)
    common.figure("project code end to end (issue target < 4 s)", project_total, "s")
    common.figure("proposed changes end to end (issue target < 4 s)", proposed_total, "s")

    print("-- gather-and-dot bandwidth (bytes of the two gathered vectors per trial):")
    copy = common.copy_bandwidth()
    moved, ours, theirs = gather_rate(scp, trials, args.repeats)
    common.figure("large NumPy copy (1 thread)", copy / 1e9, "GB/s")
    common.figure("proposed gather-and-dot", moved / ours / 1e9, "GB/s",
                  f"{moved / ours / copy:.0%} of copy, {ours:.2f} s")
    common.figure("project pair_scores", moved / theirs / 1e9, "GB/s",
                  f"{moved / theirs / copy:.0%} of copy, {theirs:.2f} s")
    print(f"   {common.load_line()}")

    if not args.no_asnorm:
        print(f"-- AS-norm, top-{args.top_n} of a {args.cohort:,}-speaker cohort, "
              f"{args.trials:,} trials (issue target < 20 s):")
        flops = common.matmul_flops()
        seconds, diffs = measure_asnorm(scp, trials, args.cohort, args.top_n, args.dim)
        common.figure("project asnorm_score (float64 cohort product)", seconds["project"], "s")
        common.figure("same, proposed float32 cohort product", seconds["proposed"], "s",
                      f"max |difference| {diffs['proposed']:.1e}")
        common.figure("reference (float32 torch.mm + argpartition)", seconds["reference"], "s",
                      f"max |difference| {diffs['reference']:.1e}")
        common.ratio("proposed vs project asnorm_score", seconds["proposed"],
                     seconds["project"], None, False)
        common.figure("torch.mm float32, all threads", flops / 1e9, "GFLOP/s")
        print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

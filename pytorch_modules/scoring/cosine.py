"""Cosine back-end: read and write embeddings, score trials, evaluate.

Embeddings are Kaldi vectors in arks indexed by an scp (`utt ark_path:offset`), as written by
kaldiio.  Trials (read by kaldi_data.read_trials) are Kaldi trials, `enroll test
target|nontarget`, or `enroll test` without labels (then scores are written but no EER/minDCF
can be computed).
"""

import operator
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.kaldi_data import read_scp_lines, read_trials
from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.metrics import (
    LlrTrials,
    compute_eer,
    compute_eer_kaldi,
    compute_min_dcf,
    detection_error_tradeoff,
)

# Trials scored per vectorised step: two gathered (chunk, dim) blocks of 4 MiB each for 1024-d
# float32 embeddings stay in cache (much larger blocks go through memory; bench/README.md).
SCORE_CHUNK = 1024
# Threads sharing the gather-and-dot: NumPy's take and einsum release the GIL; the work is
# memory-bound, so more threads than two gain nothing (bench/scoring.py, bench/README.md).
SCORE_THREADS = 2
# p_target values reported for minDCF (VoxCeleb / NIST SRE conventions).
DCF_P_TARGETS = (0.01, 0.001)
MAX_LISTED_IDS = 5


def read_scores(path, enroll, test):
    """The scores (float64) of a scores file of pytorch_modules.bin.score, whose lines must be
    the trials' (enroll, test) pairs in the trials' order."""
    scores = np.empty(len(enroll))
    line_no = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if line_no > len(enroll):
                raise RecipeError(f"{path} has more lines than the trials ({len(enroll)}); "
                                  f"score these trials again.")
            if (len(fields) != 3
                    or (fields[0], fields[1]) != (enroll[line_no - 1], test[line_no - 1])):
                raise RecipeError(
                    f"{path}:{line_no}: expected the score of trial {line_no} "
                    f"'{enroll[line_no - 1]} {test[line_no - 1]}', got {line.rstrip()!r}; "
                    f"give the scores of these trials, written in trial order by "
                    f"pytorch_modules.bin.score.")
            try:
                scores[line_no - 1] = float(fields[2])
            except ValueError:
                raise RecipeError(f"{path}:{line_no}: the score {fields[2]!r} is not a number."
                                  ) from None
    if line_no != len(enroll):
        raise RecipeError(f"{path} has {line_no} lines but the trials have {len(enroll)}; "
                          f"score these trials again.")
    return scores


def _rows(ids, id_to_row):
    """Row numbers of ids in the embedding matrix, -1 where an id has none."""
    try:  # one C-level lookup per id; a missing id raises and is handled below
        return np.array(operator.itemgetter(*ids)(id_to_row), dtype=np.int64).reshape(len(ids))
    except (KeyError, TypeError):  # TypeError: no ids at all
        return np.fromiter((id_to_row.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))


def trial_rows(enroll_ids, test_ids, id_to_row, trials_path="the trials"):
    """(enroll rows, test rows) of the trials' ids in the embedding matrix.  Ids without an
    embedding fail with one message (cosine and AS-norm scoring alike): the first trial line
    with one, that id and its side, then both sides' missing ids."""
    enroll_rows, test_rows = _rows(enroll_ids, id_to_row), _rows(test_ids, id_to_row)
    if (enroll_rows < 0).any() or (test_rows < 0).any():
        raise RecipeError(_missing_ids_message(enroll_ids, test_ids, enroll_rows, test_rows,
                                               trials_path))
    return enroll_rows, test_rows


def _missing_ids_message(enroll_ids, test_ids, enroll_rows, test_rows, trials_path):
    first = int(np.flatnonzero((enroll_rows < 0) | (test_rows < 0))[0])
    named, parts = [], []
    for side, ids, rows in (("enrollment", enroll_ids, enroll_rows),
                            ("test", test_ids, test_rows)):
        if rows[first] < 0:
            named.append(f"{side} id '{ids[first]}'")
        missing = sorted({ids[i] for i in np.flatnonzero(rows < 0)})
        if missing:
            shown = ", ".join(missing[:MAX_LISTED_IDS])
            more = (f" and {len(missing) - MAX_LISTED_IDS} more"
                    if len(missing) > MAX_LISTED_IDS else "")
            parts.append(f"{len(missing)} {side} id(s) ({shown}{more})")
    line = _trial_line(trials_path, enroll_ids, test_ids, first)
    where = f"{trials_path}:{line}" if line else f"{trials_path}, trial {first + 1}"
    return (f"{where}: {' and '.join(named)} {'has' if len(named) == 1 else 'have'} no "
            f"embedding; {' and '.join(parts)} of {trials_path} have no embedding. Check that "
            f"the trial list names utterances of this set (the embeddings' xvector.scp lists "
            f"every embedded utterance) or, if the set changed, rerun embedding extraction "
            f"(stage 4).")


def _trial_line(trials_path, enroll_ids, test_ids, index):
    """The line of trial `index` in the file trials_path, read again (only a failure needs
    it); None when that is not a readable trial list holding these trials."""
    try:
        enroll, test, _, lines = read_trials(trials_path, warn=lambda _: None, with_lines=True)
    except (OSError, ValueError, RecipeError):  # no such file, not UTF-8, malformed
        return None
    if len(enroll) != len(enroll_ids) or (enroll[index], test[index]) != (enroll_ids[index],
                                                                           test_ids[index]):
        return None
    return int(lines[index])


def row_norms(emb, id_to_row, used_rows):
    """Euclidean norms of all rows of emb, in its dtype; a used row that is zero or not finite
    is an error (its cosine is undefined), unused ones may be anything.  einsum makes no
    (n, dim) temporary, as np.linalg.norm does (600 MB of fresh memory for Vox1-E)."""
    with np.errstate(invalid="ignore", over="ignore"):  # unused non-finite rows: harmless
        norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))
    for rows in used_rows:
        used = norms[rows]
        bad = rows[~(np.isfinite(used) & (used > 0))]
        if bad.size:
            bad_id = next(i for i, row in id_to_row.items() if row == bad[0])
            raise RecipeError(
                f"the embedding of {bad_id} is zero or not finite, so its cosine score is "
                f"undefined; check that utterance's audio and rerun embedding extraction.")
    return norms


def pair_scores(unit, enroll_rows, test_rows):
    """Row-wise dot products unit[enroll_rows[i]] . unit[test_rows[i]] as float64, in trial
    order (cosines when the rows of unit have unit length).  Trials are visited sorted by enrollment
    row, so an enrollment vector comes from memory once and from cache for its other trials
    (same-speaker test vectors, stored next to it, often too); each step gathers SCORE_CHUNK trials
    into two reused cache-sized buffers.  Up to SCORE_THREADS threads each take a contiguous part of
    the sorted trials."""
    order = np.argsort(enroll_rows, kind="stable")
    enroll_sorted, test_sorted = enroll_rows[order], test_rows[order]
    sorted_scores = np.empty(len(order), dtype=np.float64)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, min(SCORE_THREADS, cores or 1, len(order) // SCORE_CHUNK))
    bounds = np.linspace(0, len(order), threads + 1).astype(np.int64)
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def score_part(part):
        _dot_rows(unit, enroll_sorted[part], test_sorted[part], sorted_scores[part])

    if threads == 1:
        score_part(parts[0])
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(score_part, parts))  # list(): re-raises a thread's error
    scores = np.empty_like(sorted_scores)
    scores[order] = sorted_scores
    return scores


def _dot_rows(unit, first_rows, second_rows, out):
    """out[i] = unit[first_rows[i]] . unit[second_rows[i]], SCORE_CHUNK rows at a time."""
    first = np.empty((min(SCORE_CHUNK, len(out)), unit.shape[1]), dtype=unit.dtype)
    second = np.empty_like(first)
    for start in range(0, len(out), SCORE_CHUNK):
        n = min(SCORE_CHUNK, len(out) - start)
        np.take(unit, first_rows[start:start + n], axis=0, out=first[:n])
        np.take(unit, second_rows[start:start + n], axis=0, out=second[:n])
        out[start:start + n] = np.einsum("ij,ij->i", first[:n], second[:n])


def cosine_score(enroll_ids, test_ids, id_to_row, emb, trials_path="the trials"):
    """Cosine similarity of each (enroll, test) pair; returns a float64 array in trial order.

    id_to_row maps an id to its row of emb (n, dim).  Each chunk of trials is one gather and
    one row-wise dot product of the raw rows, then divided by the two norms: normalising the
    table first would write a second copy of it (600 MB for Vox1-E), which cost more than
    the whole scoring of the trials."""
    enroll_rows, test_rows = trial_rows(enroll_ids, test_ids, id_to_row, trials_path)
    return row_cosines(emb, id_to_row, enroll_rows, test_rows)


def row_cosines(emb, id_to_row, enroll_rows, test_rows):
    """Cosine scores (float64) of the row pairs (enroll_rows[i], test_rows[i]) of emb."""
    emb = np.asarray(emb, dtype=np.float32)
    norms = row_norms(emb, id_to_row, (enroll_rows, test_rows)).astype(np.float64)
    return pair_scores(emb, enroll_rows, test_rows) / (norms[enroll_rows] * norms[test_rows])


def evaluate(scores, labels, name, trials_path="the trials", clusters=None,
             replicates=bootstrap.DEFAULT_REPLICATES, seed=bootstrap.DEFAULT_SEED, llr=False):
    """Results as an ordered dict of `key value` strings (the results-file format).

    `clusters` (bootstrap.Clusters) adds the 95% bootstrap interval of each metric
    (`<metric>_ci_low`, `<metric>_ci_high`) and how it was drawn.  `llr`: the scores are
    calibrated log-likelihood ratios, which adds their actual DCF at the minDCF operating
    points, Cllr and minCllr (LLR_METRICS, metrics.py), with intervals from the same draws."""
    results = {"name": name, "trials": str(len(scores))}
    if labels is None:
        return results
    try:
        curve = detection_error_tradeoff(scores, labels)  # once for EER and every minDCF
        eer, threshold = compute_eer(scores, labels, curve=curve)
    except ValueError as err:  # e.g. a trials file with only target trials
        raise RecipeError(f"{trials_path}: {err}") from None
    results["eer_percent"] = f"{100 * eer:.4f}"
    for p_target in DCF_P_TARGETS:
        min_dcf = compute_min_dcf(scores, labels, p_target, curve=curve)[0]
        results[f"min_dcf_p{p_target:g}"] = f"{min_dcf:.4f}"
    results["eer_threshold"] = f"{threshold:.6f}"
    # Kaldi's compute-eer convention, which most published VoxCeleb EERs use (metrics.py)
    results["eer_kaldi_percent"] = f"{100 * compute_eer_kaldi(scores, labels)[0]:.4f}"
    if llr:
        trials = LlrTrials(scores, labels)
        for key, value in zip(LLR_METRICS, llr_metrics(trials)):
            results[key] = f"{value:.4f}"
    if clusters is not None:
        results.update(bootstrap_intervals(scores, labels, clusters, replicates, seed))
        if llr:
            results.update(llr_bootstrap_intervals(trials, clusters, replicates, seed))
    return results


# Results keys of calibrated scores (evaluate(llr=True)), in this order.
LLR_METRICS = tuple(f"act_dcf_p{p:g}" for p in DCF_P_TARGETS) + ("cllr", "min_cllr")


def llr_metrics(trials: LlrTrials, weights=None):
    """The LLR_METRICS of LLRs under trial weights (None: each trial once)."""
    return ([trials.act_dcf(p, weights=weights) for p in DCF_P_TARGETS]
            + [trials.cllr(weights), trials.min_cllr(weights)])


def llr_bootstrap_intervals(trials: LlrTrials, clusters, replicates, seed):
    """`<metric>_ci_low/high` of the LLR_METRICS, from the draws of bootstrap_intervals (the
    same seed and clusters give the same replicates, bootstrap.draws); a draw that leaves no
    target or no nontarget is skipped, as there."""
    reps = np.full((replicates, len(LLR_METRICS)), np.nan)
    for r, counts in enumerate(bootstrap.draws(len(clusters.names), replicates, seed)):
        weights = clusters.weights(counts, trials.labels)
        if weights[trials.labels].sum() > 0 and weights[~trials.labels].sum() > 0:
            reps[r] = llr_metrics(trials, weights)
    keys = {}
    for k, metric in enumerate(LLR_METRICS):
        low, high = bootstrap.interval(reps[:, k])
        keys[f"{metric}_ci_low"], keys[f"{metric}_ci_high"] = f"{low:.4f}", f"{high:.4f}"
    return keys


def trials_info(trials_path):
    """What data preparation recorded beside the trials (trials.info: `list FILE`, the list
    they came from; `speakers_in_training N`, their speakers that training saw), as results
    keys trial_list and speakers_in_training; {} without that file."""
    path = os.path.join(os.path.dirname(os.path.abspath(trials_path)), "trials.info")
    if not os.path.isfile(path):
        return {}
    keys = {"list": "trial_list", "speakers_in_training": "speakers_in_training"}
    info = {}
    for key, value in read_scp_lines(path):
        if key not in keys:
            raise RecipeError(f"{path}: unknown key '{key}' (expected "
                              f"{' or '.join(keys)}); rerun data preparation (stage 1).")
        info[keys[key]] = value
    return info


def bootstrap_intervals(scores, labels, clusters, replicates, seed):
    """The `*_ci_low/high` and `bootstrap_*` results keys (see bootstrap.py)."""
    reps = bootstrap.replicate_metrics([scores], labels, clusters, replicates, seed)[:, 0]
    keys = {}
    for k, (metric, scale, digits) in enumerate(
            [("eer_percent", 100, 4)] + [(f"min_dcf_p{p:g}", 1, 4) for p in DCF_P_TARGETS]):
        low, high = bootstrap.interval(reps[:, k])
        keys[f"{metric}_ci_low"] = f"{scale * low:.{digits}f}"
        keys[f"{metric}_ci_high"] = f"{scale * high:.{digits}f}"
    keys.update(bootstrap_unit=clusters.unit.replace(" ", "_"),
                bootstrap_clusters=str(len(clusters.names)),
                bootstrap_replicates=str(replicates), bootstrap_seed=str(seed))
    return keys


def summary_line(results):
    """'vox1_o: EER 4.38%  minDCF(0.01) 0.4123  minDCF(0.001) 0.5321  (37611 trials)'."""
    if "eer_percent" not in results:
        return f"{results['name']}: {results['trials']} trials scored (unlabelled: no EER)"
    dcfs = "  ".join(f"minDCF({p:g}) {results[f'min_dcf_p{p:g}']}" for p in DCF_P_TARGETS)
    eer = f"EER {float(results['eer_percent']):.2f}%"
    if "eer_percent_ci_low" in results:
        eer += (f" [{float(results['eer_percent_ci_low']):.2f}, "
                f"{float(results['eer_percent_ci_high']):.2f}]")
    calibrated = ""
    if "cllr" in results:
        calibrated = "  " + "  ".join(
            [f"actDCF({p:g}) {results[f'act_dcf_p{p:g}']}" for p in DCF_P_TARGETS]
            + [f"Cllr {results['cllr']}", f"minCllr {results['min_cllr']}"])
    return f"{results['name']}: {eer}  {dcfs}{calibrated}  ({results['trials']} trials)"


def read_results(path):
    """Read a `key value` results file into a dict; malformed lines fail with file:line."""
    results = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise RecipeError(
                    f"{path}:{line_no}: malformed line {line.rstrip()!r}; expected 'KEY VALUE' "
                    f"as written by pytorch_modules.bin.score.")
            results[fields[0]] = fields[1]
    return results

"""Confidence intervals and paired tests for EER and minDCF: a speaker-level bootstrap.

Trials of one test speaker are not independent (the same voice, the same recordings), so
resampling trials would make intervals far too narrow on lists built from a few dozen speakers.
What is resampled is the speakers (Poh and Bengio's "subset bootstrap"): a replicate draws S
speakers with replacement from the S test speakers; speaker s drawn k_s times, trials count

    target trial of speaker s         k_s times
    nontarget trial of speakers a, b  k_a * k_b times

i.e. as in the trial list of a test set made of the drawn speakers (a speaker drawn twice
brings its targets twice and its impostor pairs with every copy of the other side).  EER and
minDCF of the replicate are those of the weighted DET sweep (metrics.SortedTrials), and the 95%
interval is the 2.5th and 97.5th percentile over the replicates.  Where the speakers of the
test side are unknown (SITW's test files), the enrollment models are resampled instead: a
trial counts k_m times for its model m.

Paired comparison: the same draws applied to two systems scored on the same trials give the
distribution of the EER difference; several training seeds of a system enter as the mean of
their EERs in each replicate.  Everything is a function of the seed: the same inputs give the
same interval.
"""
import os
from dataclasses import dataclass

import numpy as np

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.kaldi_data import read_scp_lines
from pytorch_modules.scoring.metrics import SortedTrials, compute_eer, compute_min_dcf

DEFAULT_REPLICATES = 1000
DEFAULT_SEED = 7
CONFIDENCE = 0.95
# Metrics of a replicate, in this order: EER (fraction), minDCF(0.01), minDCF(0.001).
METRICS = ("eer", "min_dcf_p0.01", "min_dcf_p0.001")
P_TARGETS = (0.01, 0.001)


@dataclass
class Clusters:
    """What a replicate resamples: cluster index of each trial's enrollment side and, for the
    speaker bootstrap, of its test side (None when only enrollment models are resampled)."""
    enroll: np.ndarray
    test: np.ndarray | None
    names: list[str]
    unit: str            # "speaker" or "enrollment model"

    def reordered(self, order: np.ndarray) -> "Clusters":
        """The same clusters with the trials taken in `order`."""
        return Clusters(self.enroll[order], None if self.test is None else self.test[order],
                        self.names, self.unit)

    def weights(self, counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each trial's weight for draw counts `counts` (one per cluster)."""
        enroll = counts[self.enroll].astype(np.float64)
        if self.test is None:
            return enroll
        return np.where(labels == 1, enroll, enroll * counts[self.test])


def speaker_clusters(enroll_ids, test_ids, labels, utt2spk: dict, trials_path="the trials",
                     utt2spk_path="utt2spk") -> Clusters:
    """Speaker bootstrap clusters; every id must have a speaker, and the speakers must agree
    with the labels (a target trial is one speaker, a nontarget trial two)."""
    missing = next((i for i in list(enroll_ids) + list(test_ids) if i not in utt2spk), None)
    if missing is not None:
        raise RecipeError(f"{missing} of {trials_path} has no speaker in {utt2spk_path}; give "
                          f"the utt2spk of the data dir the trials were made from.")
    names = sorted({utt2spk[i] for i in enroll_ids} | {utt2spk[i] for i in test_ids})
    index = {name: n for n, name in enumerate(names)}
    enroll = np.array([index[utt2spk[i]] for i in enroll_ids], dtype=np.int64)
    test = np.array([index[utt2spk[i]] for i in test_ids], dtype=np.int64)
    same = enroll == test
    bad = np.flatnonzero(same != (labels == 1))
    if bad.size:
        n = int(bad[0])
        kind = "a target trial of two speakers" if labels[n] == 1 else \
            "a nontarget trial of one speaker"
        raise RecipeError(f"{trials_path}:{n + 1}: {enroll_ids[n]} {test_ids[n]} is {kind} "
                          f"according to {utt2spk_path}; the utt2spk and the trials disagree.")
    return Clusters(enroll, test, names, "speaker")


def enrollment_clusters(enroll_ids) -> Clusters:
    """Clusters for lists whose test speakers are unknown: the enrollment models."""
    names = sorted(set(enroll_ids))
    index = {name: n for n, name in enumerate(names)}
    return Clusters(np.array([index[i] for i in enroll_ids], dtype=np.int64), None, names,
                    "enrollment model")


def trial_clusters(trials_path, enroll_ids, test_ids, labels, utt2spk_path=None,
                   models_enrolled=False) -> Clusters:
    """What the bootstrap of a trial list resamples: the speakers of `utt2spk_path`, by default
    those of the utt2spk beside the trials (data/vox1_o/utt2spk) when there is one and the
    enrollment ids are utterances; else (SITW's enrollment models, whose test files have no
    speaker labels) the enrollment models."""
    if utt2spk_path is None and not models_enrolled:
        beside = os.path.join(os.path.dirname(os.path.abspath(trials_path)), "utt2spk")
        utt2spk_path = beside if os.path.isfile(beside) else None
    if utt2spk_path is None:
        return enrollment_clusters(enroll_ids)
    if not os.path.isfile(utt2spk_path):
        raise RecipeError(f"{utt2spk_path} does not exist; give the utt2spk of the data dir "
                          f"the trials were made from.")
    return speaker_clusters(enroll_ids, test_ids, labels, dict(read_scp_lines(utt2spk_path)),
                            trials_path, utt2spk_path)


def draws(num_clusters: int, replicates: int, seed: int):
    """The draw counts of each replicate, (replicates, num_clusters): a function of the seed."""
    rng = np.random.default_rng([seed, num_clusters])
    picks = rng.integers(0, num_clusters, size=(replicates, num_clusters))
    return np.stack([np.bincount(p, minlength=num_clusters) for p in picks])


def replicate_metrics(score_sets, labels, clusters: Clusters, replicates=DEFAULT_REPLICATES,
                      seed=DEFAULT_SEED) -> np.ndarray:
    """(replicates, systems, 3) array of EER, minDCF(0.01), minDCF(0.001) of each system in
    each replicate, the same draws for every system.  A draw with no target or no nontarget
    trial left (one speaker drawn S times) is NaN for all systems."""
    labels = np.asarray(labels)
    sorted_sets = [SortedTrials(scores, labels) for scores in score_sets]
    # Each system's trials in its score order once, so that a replicate gathers its weights
    # straight into that order.
    in_order = [clusters.reordered(trials.order) for trials in sorted_sets]
    out = np.full((replicates, len(sorted_sets), len(METRICS)), np.nan)
    for r, counts in enumerate(draws(len(clusters.names), replicates, seed)):
        for j, trials in enumerate(sorted_sets):
            weights = in_order[j].weights(counts, trials.sorted_labels)
            try:
                curve = trials.curve(weights, presorted=True)
            except ValueError:
                break
            out[r, j, 0] = compute_eer(None, None, curve=curve)[0]
            for k, p_target in enumerate(P_TARGETS, 1):
                out[r, j, k] = compute_min_dcf(None, None, p_target, curve=curve)[0]
    return out


def interval(values: np.ndarray, confidence=CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the finite values."""
    values = values[np.isfinite(values)]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(a_sets, b_sets, labels, clusters: Clusters, replicates=DEFAULT_REPLICATES,
                      seed=DEFAULT_SEED, metric="eer") -> dict:
    """Mean `metric` of systems A minus that of systems B (each a list of score arrays, e.g.
    training seeds), on the full trials and over paired replicates.

    Returns {difference, ci_low, ci_high, p_value}: p_value is the two-sided bootstrap p of
    'no difference' (twice the smaller tail share at 0, at most 1)."""
    k = METRICS.index(metric)
    full = replicate_point(list(a_sets) + list(b_sets), labels)[:, k]
    difference = full[:len(a_sets)].mean() - full[len(a_sets):].mean()
    reps = replicate_metrics(list(a_sets) + list(b_sets), labels, clusters, replicates, seed)
    reps = reps[:, :, k]
    reps = reps[np.isfinite(reps).all(axis=1)]
    diffs = reps[:, :len(a_sets)].mean(axis=1) - reps[:, len(a_sets):].mean(axis=1)
    low, high = interval(diffs)
    p_value = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"difference": float(difference), "ci_low": low, "ci_high": high,
            "p_value": float(p_value), "replicates": int(diffs.size)}


def replicate_point(score_sets, labels) -> np.ndarray:
    """(systems, 3): the metrics on the full trials (every trial counted once)."""
    out = []
    for scores in score_sets:
        curve = SortedTrials(scores, labels).curve()
        out.append([compute_eer(None, None, curve=curve)[0]]
                   + [compute_min_dcf(None, None, p, curve=curve)[0] for p in P_TARGETS])
    return np.array(out)

"""Speaker-verification metrics: EER and minimum normalised DCF (numpy only).

Both metrics are read off one detection-error trade-off sweep, `detection_error_tradeoff`:

* A trial is accepted at threshold t when score >= t.  The operating points are "reject all"
  (t = +inf) and one point per unique score t, from the highest to the lowest; at the lowest
  unique score every trial is accepted, so that point is "accept all".  Trials with equal
  scores are therefore always accepted or rejected together (ties form one operating point).
* P_miss(t) = fraction of target trials with score < t;
  P_fa(t)   = fraction of nontarget trials with score >= t.

EER: P_miss - P_fa falls strictly from +1 (reject all) to -1 (accept all) along the points.
The EER is where the straight segment joining the two consecutive points that straddle
P_miss = P_fa (in (P_fa, P_miss) space) crosses that line; if a point lies exactly on it, its
P_miss.  The reported threshold is that of the nearer of the two points (the lower-threshold
point when the crossing is exactly half-way).

Kaldi's EER (compute_eer_kaldi), the convention of Kaldi's `compute-eer` and of most published
VoxCeleb numbers: with the target scores sorted ascending, walk k = 0, 1, ... and stop at the
first k where the nontarget score at position N - 1 - floor(N k / T) (sorted ascending) is below
the k-th target score; the EER is k / T.  It moves in steps of 1/T and can differ from the
interpolated crossing above by about one step.

minDCF (NIST SRE, as in Kaldi's compute_min_dcf.py):
  DCF(t) = c_miss * P_miss(t) * p_target + c_fa * P_fa(t) * (1 - p_target),
  normalised by min(c_miss * p_target, c_fa * (1 - p_target)), the cost of the better trivial
  system; minDCF is its minimum over the operating points, with the threshold achieving it
  (the highest such threshold on ties; +inf means "reject all" is best).
"""

from typing import NamedTuple

import numpy as np


class DetCurve(NamedTuple):
    """Operating points in order of decreasing threshold (P_fa rising, P_miss falling)."""
    p_miss: np.ndarray
    p_fa: np.ndarray
    thresholds: np.ndarray  # thresholds[0] = +inf ("reject all")


def _validated(scores, labels):
    """Return scores as float64 and labels as bool, or raise ValueError saying what is wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must be 1-D arrays of equal length; got shapes "
            f"{scores.shape} and {labels.shape}.")
    if scores.size == 0:
        raise ValueError("no trials: scores and labels are empty.")
    if not np.isfinite(scores).all():
        raise ValueError(
            f"{int((~np.isfinite(scores)).sum())} of {scores.size} scores are NaN or infinite; "
            f"check the embeddings for NaN or zero vectors.")
    if not np.isin(labels, (0, 1)).all():
        bad = labels[~np.isin(labels, (0, 1))][:5]
        raise ValueError(f"labels must be 1 (target) or 0 (nontarget); found e.g. {bad.tolist()}.")
    labels = labels.astype(bool)
    n_target = int(labels.sum())
    if n_target == 0 or n_target == labels.size:
        kind = "target" if n_target == 0 else "nontarget"
        raise ValueError(
            f"the {labels.size} trials hold no {kind} trials; EER and minDCF need both targets "
            f"and nontargets.")
    return scores, labels


def detection_error_tradeoff(scores, labels, weights=None):
    """Sweep the threshold over every unique score; return a DetCurve (see the module doc).

    scores: 1-D array of floats; labels: 1-D array of 1 (target) / 0 (nontarget); weights
    (optional, >= 0): how many times each trial counts, as the speaker bootstrap
    (bootstrap.py) weighs them; P_miss and P_fa are then fractions of the weighted counts.
    Sorts once and uses cumulative counts, so 10^6 trials take a fraction of a second."""
    return SortedTrials(scores, labels).curve(weights)


class SortedTrials:
    """Trials sorted by score once, for many sweeps with different trial weights."""

    def __init__(self, scores, labels):
        scores, labels = _validated(scores, labels)
        self.order = np.argsort(-scores, kind="stable")  # highest score first
        self.sorted_scores = scores[self.order]
        self.sorted_labels = labels[self.order]
        # Accepting at a unique score accepts its whole run of ties: use the run's last index.
        self.run_ends = np.flatnonzero(np.append(self.sorted_scores[1:] != self.sorted_scores[:-1],
                                                 True))

    def curve(self, weights=None, presorted=False) -> DetCurve:
        """The DET curve with trial i counted weights[i] times (weights in the caller's trial
        order, or in score order when `presorted`; None: once each).  Raises ValueError when
        the weights leave no target or no nontarget trial."""
        if weights is None:
            targets = np.cumsum(self.sorted_labels)
            nontargets = np.arange(1, self.sorted_labels.size + 1) - targets
        else:
            w = np.asarray(weights, dtype=np.float64)
            if not presorted:
                w = w[self.order]
            targets = np.cumsum(w * self.sorted_labels)
            nontargets = np.cumsum(w) - targets
        n_target, n_nontarget = targets[-1], nontargets[-1]
        if n_target <= 0 or n_nontarget <= 0:
            raise ValueError("the trial weights leave no target or no nontarget trial.")
        p_miss = (n_target - targets[self.run_ends]) / n_target
        p_fa = nontargets[self.run_ends] / n_nontarget
        return DetCurve(p_miss=np.concatenate(([1.0], p_miss)),
                        p_fa=np.concatenate(([0.0], p_fa)),
                        thresholds=np.concatenate(([np.inf], self.sorted_scores[self.run_ends])))


def compute_eer(scores, labels, curve=None):
    """Equal error rate (a fraction, not %) and its threshold; see the module doc.

    Returns (eer, threshold).  Raises ValueError on empty input, NaN/infinite scores, labels
    other than 0/1, or trials of only one class.  `curve`: the detection_error_tradeoff of
    these scores and labels when the caller has it already (each sweep sorts every score)."""
    if curve is None:
        curve = detection_error_tradeoff(scores, labels)
    gap = curve.p_miss - curve.p_fa  # falls from +1 to -1 (strictly, unless weights are 0)
    i = int(np.argmax(gap <= 0))     # first point on or past the crossing; i >= 1
    if gap[i] == 0:
        return float(curve.p_miss[i]), float(curve.thresholds[i])
    # Fraction of the way from point i-1 to point i where the segment meets P_miss = P_fa.
    alpha = gap[i - 1] / (gap[i - 1] - gap[i])
    eer = curve.p_fa[i - 1] + alpha * (curve.p_fa[i] - curve.p_fa[i - 1])
    threshold = curve.thresholds[i - 1] if alpha < 0.5 else curve.thresholds[i]
    return float(eer), float(threshold)


def compute_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0, curve=None):
    """Minimum normalised detection cost and its threshold; see the module doc.

    Returns (min_dcf, threshold).  p_target must lie strictly between 0 and 1.  `curve`: as
    for compute_eer."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must lie strictly between 0 and 1; got {p_target}.")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"c_miss and c_fa must be positive; got {c_miss} and {c_fa}.")
    if curve is None:
        curve = detection_error_tradeoff(scores, labels)
    dcf = c_miss * p_target * curve.p_miss + c_fa * (1 - p_target) * curve.p_fa
    dcf /= min(c_miss * p_target, c_fa * (1 - p_target))
    best = int(np.argmin(dcf))  # first minimum = highest threshold among equal costs
    return float(dcf[best]), float(curve.thresholds[best])


def compute_eer_kaldi(scores, labels):
    """The EER as Kaldi's compute-eer computes it (a fraction; see the module doc), and the
    threshold it stops at (a target score)."""
    scores, labels = _validated(scores, labels)
    targets, nontargets = np.sort(scores[labels]), np.sort(scores[~labels])
    t, n = targets.size, nontargets.size
    k = np.arange(t - 1)
    position = np.maximum(n - 1 - np.floor(n * k / t).astype(np.int64), 0)
    below = np.flatnonzero(nontargets[position] < targets[k])
    stop = int(below[0]) if below.size else t - 1
    return stop / t, float(targets[stop])

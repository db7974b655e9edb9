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

Metrics of calibrated scores, i.e. log-likelihood ratios (LLRs; scoring/calibration.py makes
them), as NIST and BOSARIS define them:

* actual DCF: the same normalised DCF, at the one threshold a calibrated LLR implies, the Bayes
  decision threshold log(c_fa (1 - p_target) / (c_miss p_target)) (= -logit(p_target) with
  unit costs): accept when llr >= it.  actDCF >= minDCF; the gap is the cost of miscalibration.
* Cllr = (mean over targets of log2(1 + e^-llr) + mean over nontargets of log2(1 + e^llr)) / 2,
  the cross-entropy of the LLRs at prior 0.5 in bits: 0 for perfect, 1 for the useless LLR 0.
* minCllr: Cllr after the optimal monotonic recalibration, the pool-adjacent-violators (PAV)
  fit of the target posterior to the scores at the list's own target share, turned back into
  LLRs by subtracting the logit of that share (Bruemmer and du Preez 2006, BOSARIS opt_loglr).
  Tied scores form one block, as in the DET sweep (a function of the score gives them one
  value); BOSARIS orders ties nontargets first instead, which can only lower its figure.
  Cllr - minCllr is the calibration loss.
Each takes trial weights (the speaker bootstrap's) like the DET sweep.
"""
import math
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



def bayes_threshold(p_target, c_miss=1.0, c_fa=1.0):
    """The LLR from which accepting costs less: log(c_fa (1 - p) / (c_miss p))."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must lie strictly between 0 and 1; got {p_target}.")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"c_miss and c_fa must be positive; got {c_miss} and {c_fa}.")
    return math.log(c_fa * (1 - p_target)) - math.log(c_miss * p_target)


class LlrTrials:
    """LLRs of labelled trials, prepared once for actual DCF, Cllr and minCllr under many
    trial weightings (the speaker bootstrap's); see the module doc.  Every figure is a few
    dot products over the trials, and minCllr a PAV over the unique scores."""

    def __init__(self, llrs, labels):
        self.llrs, self.labels = _validated(llrs, labels)
        self.is_target = self.labels.astype(np.float64)
        # log(1 + e^-llr) for a target, log(1 + e^llr) for a nontarget, without overflow
        self.costs = np.logaddexp(0.0, np.where(self.labels, -self.llrs, self.llrs))
        # PAV blocks: the unique scores, ascending (ties one block)
        self.unique, self.block = np.unique(self.llrs, return_inverse=True)
        self._below = {}

    def _class_weights(self, weights):
        """(target weights, nontarget weights, their sums), checked."""
        if weights is None:
            w = np.ones_like(self.llrs)
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != self.llrs.shape:
                raise ValueError(f"weights must have one entry per trial; got shape {w.shape} "
                                 f"for {self.llrs.size} trials.")
        target_w = w * self.is_target
        nontarget_w = w - target_w
        sums = target_w.sum(), nontarget_w.sum()
        if sums[0] <= 0 or sums[1] <= 0:
            raise ValueError("the trial weights leave no target or no nontarget trial.")
        return target_w, nontarget_w, sums

    def act_dcf(self, p_target, c_miss=1.0, c_fa=1.0, weights=None):
        threshold = bayes_threshold(p_target, c_miss, c_fa)
        target_w, nontarget_w, (n_tar, n_non) = self._class_weights(weights)
        if threshold not in self._below:
            self._below[threshold] = (self.llrs < threshold).astype(np.float64)
        below = self._below[threshold]
        p_miss = below @ target_w / n_tar
        p_fa = 1.0 - below @ nontarget_w / n_non
        dcf = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
        return float(dcf / min(c_miss * p_target, c_fa * (1 - p_target)))

    def cllr(self, weights=None):
        target_w, nontarget_w, (n_tar, n_non) = self._class_weights(weights)
        return float((self.costs @ target_w / n_tar + self.costs @ nontarget_w / n_non)
                     / (2 * math.log(2)))

    def _pav_blocks(self, target_w, nontarget_w):
        """(LLR of each block, its target weight, its nontarget weight); NaN for a block
        whose trials all have weight 0, +-inf for a block of one class."""
        from sklearn.isotonic import isotonic_regression  # pinned; PAV in compiled code
        targets = np.bincount(self.block, target_w, minlength=self.unique.size)
        nontargets = np.bincount(self.block, nontarget_w, minlength=self.unique.size)
        total = targets + nontargets
        used = total > 0
        posterior = np.full(self.unique.size, np.nan)
        posterior[used] = isotonic_regression(targets[used] / total[used],
                                              sample_weight=total[used], increasing=True)
        share = targets.sum() / total.sum()
        with np.errstate(divide="ignore"):
            llrs = (np.log(posterior) - np.log1p(-posterior)
                    - (math.log(share) - math.log1p(-share)))
        return llrs, targets, nontargets

    def pav_llrs(self, weights=None):
        """Each trial's LLR after the PAV recalibration of its score; +-inf in a block of one
        class (NaN in a block whose trials all have weight 0)."""
        target_w, nontarget_w, _ = self._class_weights(weights)
        return self._pav_blocks(target_w, nontarget_w)[0][self.block]

    def min_cllr(self, weights=None):
        target_w, nontarget_w, (n_tar, n_non) = self._class_weights(weights)
        llrs, targets, nontargets = self._pav_blocks(target_w, nontarget_w)
        # Per block: a class with no weight there adds nothing (its +-inf cost included).
        with np.errstate(invalid="ignore"):
            target_cost = np.where(targets > 0, targets * np.logaddexp(0.0, -llrs), 0.0)
            nontarget_cost = np.where(nontargets > 0, nontargets * np.logaddexp(0.0, llrs), 0.0)
        return float((target_cost.sum() / n_tar + nontarget_cost.sum() / n_non)
                     / (2 * math.log(2)))


def compute_act_dcf(llrs, labels, p_target, c_miss=1.0, c_fa=1.0, weights=None):
    """Actual normalised detection cost of LLRs at the Bayes threshold (module doc)."""
    return LlrTrials(llrs, labels).act_dcf(p_target, c_miss, c_fa, weights)


def compute_cllr(llrs, labels, weights=None):
    """Cllr in bits (module doc)."""
    return LlrTrials(llrs, labels).cllr(weights)


def compute_min_cllr(scores, labels, weights=None):
    """Cllr after the optimal monotonic (PAV) recalibration of the scores (module doc)."""
    return LlrTrials(scores, labels).min_cllr(weights)

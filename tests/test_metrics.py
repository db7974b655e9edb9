"""EER / minDCF against hand arithmetic, a brute-force sweep and sklearn's ROC; actual DCF,
Cllr and minCllr of log-likelihood ratios against their formulas, a PAV written out, and the
closed forms of perfectly calibrated Gaussian LLRs."""
import math

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from pytorch_modules.scoring.metrics import (
    LlrTrials,
    bayes_threshold,
    compute_act_dcf,
    compute_cllr,
    compute_eer,
    compute_eer_kaldi,
    compute_min_cllr,
    compute_min_dcf,
    detection_error_tradeoff,
)


def trials(targets, nontargets):
    """(scores, labels) with the targets first."""
    scores = np.array(list(targets) + list(nontargets), dtype=float)
    labels = np.array([1] * len(targets) + [0] * len(nontargets))
    return scores, labels


# targets [0.9, 0.8, 0.3], nontargets [0.5, 0.2, 0.1, 0.05]; operating points (accept >= t):
#   t     P_miss  P_fa   P_miss-P_fa
#   +inf   1       0       1
#   0.9    2/3     0       2/3
#   0.8    1/3     0       1/3
#   0.5    1/3     1/4     1/12
#   0.3    0       1/4    -1/4      <- crossing between t=0.5 and t=0.3
#   0.2    0       2/4
#   0.1    0       3/4
#   0.05   0       1
# alpha = (1/12) / (1/12 + 1/4) = 1/4; EER = 1/4 + 1/4 * (1/4 - 1/4) = 1/4
# (and on the P_miss side 1/3 + 1/4 * (0 - 1/3) = 1/4); alpha < 1/2, so threshold 0.5.
SIMPLE = trials([0.9, 0.8, 0.3], [0.5, 0.2, 0.1, 0.05])


def test_det_curve_of_simple_set():
    curve = detection_error_tradeoff(*SIMPLE)
    np.testing.assert_allclose(curve.thresholds, [np.inf, 0.9, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05])
    np.testing.assert_allclose(curve.p_miss, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0])
    np.testing.assert_allclose(curve.p_fa, [0, 0, 0, 1 / 4, 1 / 4, 2 / 4, 3 / 4, 1])


def test_eer_of_simple_set():
    eer, threshold = compute_eer(*SIMPLE)
    assert eer == pytest.approx(0.25)
    assert threshold == 0.5


def test_min_dcf_of_simple_set():
    # p_target 0.01: DCF / min(0.01, 0.99) = P_miss + 99 P_fa; over the points above:
    #   1, 2/3, 1/3, 1/3 + 24.75, 24.75, 49.5, ... -> minimum 1/3 at t = 0.8.
    assert compute_min_dcf(*SIMPLE, p_target=0.01) == (pytest.approx(1 / 3), 0.8)
    # p_target 0.001: P_miss + 999 P_fa -> the same minimum, 1/3 at t = 0.8.
    assert compute_min_dcf(*SIMPLE, p_target=0.001) == (pytest.approx(1 / 3), 0.8)


def test_min_dcf_with_costs():
    # c_miss 10, c_fa 1, p_target 0.5: (5 P_miss + 0.5 P_fa) / min(5, 0.5) = 10 P_miss + P_fa:
    #   10, 6.67, 3.33, 3.58, 0.25, 0.5, 0.75, 1 -> minimum 0.25 at t = 0.3.
    assert compute_min_dcf(*SIMPLE, p_target=0.5, c_miss=10, c_fa=1) == (pytest.approx(0.25), 0.3)


# targets [0.9, 0.7]; nontargets one at 0.8 and 199 at 0.1 (so one false alarm is P_fa 1/200):
#   t     P_miss  P_fa    P_miss + 99 P_fa (p 0.01)   P_miss + 999 P_fa (p 0.001)
#   +inf   1       0       1                           1
#   0.9    1/2     0       0.5                         0.5     <- minimum at p 0.001
#   0.8    1/2     1/200   0.5 + 0.495 = 0.995         0.5 + 4.995 = 5.495
#   0.7    0       1/200   0.495   <- minimum          4.995
#   0.1    0       1       99                          999
# EER: P_miss - P_fa = 1, 1/2, 0.495, -0.005, -1; alpha = 0.495 / 0.5 = 0.99 between 0.8 and 0.7:
# EER = 1/200 + 0.99 * 0 = 0.005, threshold 0.7 (alpha >= 1/2).
RARE_FA = trials([0.9, 0.7], [0.8] + [0.1] * 199)


def test_min_dcf_depends_on_p_target():
    assert compute_min_dcf(*RARE_FA, p_target=0.01) == (pytest.approx(0.495), 0.7)
    assert compute_min_dcf(*RARE_FA, p_target=0.001) == (pytest.approx(0.5), 0.9)


def test_eer_with_many_tied_nontargets():
    assert compute_eer(*RARE_FA) == (pytest.approx(0.005), 0.7)


# Ties across classes: targets [0.9, 0.5], nontargets [0.5, 0.1, 0.0].  At t = 0.5 the target
# and the nontarget at 0.5 are accepted together, so there is no point between them:
#   t     P_miss  P_fa   P_miss-P_fa
#   +inf   1       0      1
#   0.9    1/2     0      1/2
#   0.5    0       1/3   -1/3
# alpha = (1/2) / (1/2 + 1/3) = 3/5; EER = 0 + 3/5 * 1/3 = 1/5 (P_miss: 1/2 - 3/5 * 1/2 = 1/5);
# alpha >= 1/2, so threshold 0.5.
TIED = trials([0.9, 0.5], [0.5, 0.1, 0.0])


def test_ties_across_classes_form_one_operating_point():
    curve = detection_error_tradeoff(*TIED)
    np.testing.assert_allclose(curve.thresholds, [np.inf, 0.9, 0.5, 0.1, 0.0])
    np.testing.assert_allclose(curve.p_miss, [1, 1 / 2, 0, 0, 0])
    np.testing.assert_allclose(curve.p_fa, [0, 0, 1 / 3, 2 / 3, 1])
    assert compute_eer(*TIED) == (pytest.approx(0.2), 0.5)


def test_all_scores_tied():
    # Points +inf (1, 0) and 0.5 (0, 1): crossing half-way, EER 1/2, threshold the lower point.
    assert compute_eer([0.5, 0.5, 0.5], [1, 0, 0]) == (pytest.approx(0.5), 0.5)


def test_perfect_separation_gives_zero():
    # Accepting down to the lowest target score (0.6) misses nothing and accepts no nontarget.
    assert compute_eer(*trials([0.9, 0.6, 0.7], [0.1, 0.5])) == (0.0, 0.6)
    assert compute_min_dcf(*trials([0.9, 0.6, 0.7], [0.1, 0.5]), p_target=0.01) == (0.0, 0.6)


def test_reversed_scores_give_one():
    # Nontargets [0.8, 0.9] above targets [0.1, 0.2]: P_miss stays 1 until P_fa reaches 1 (t 0.8).
    assert compute_eer(*trials([0.1, 0.2], [0.8, 0.9])) == (1.0, 0.8)
    # Either trivial system costs the normalising constant: minDCF 1, best at "reject all".
    assert compute_min_dcf(*trials([0.1, 0.2], [0.8, 0.9]), p_target=0.01) == (1.0, math.inf)


def test_trial_order_does_not_matter():
    rng = np.random.default_rng(0)
    for scores, labels in (SIMPLE, TIED, RARE_FA, random_trials(rng, 500)):
        order = rng.permutation(len(scores))
        assert compute_eer(scores[order], labels[order]) == compute_eer(scores, labels)
        for p in (0.01, 0.001):
            assert (compute_min_dcf(scores[order], labels[order], p)
                    == compute_min_dcf(scores, labels, p))


def random_trials(rng, n, decimals=None):
    """Overlapping target/nontarget scores; rounding creates ties within and across classes."""
    labels = (rng.random(n) < 0.3).astype(int)
    scores = rng.normal(size=n) + 1.5 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores, labels


def brute_force(scores, labels, p_target):
    """Independent pure-Python sweep: (eer, min_dcf) by looping over every threshold."""
    targets = [s for s, l in zip(scores, labels) if l == 1]
    nontargets = [s for s, l in zip(scores, labels) if l == 0]
    points = []
    for t in [math.inf] + sorted(set(scores), reverse=True):
        p_miss = sum(1 for s in targets if s < t) / len(targets)
        p_fa = sum(1 for s in nontargets if s >= t) / len(nontargets)
        points.append((p_miss, p_fa))
    eer = None
    for (miss0, fa0), (miss1, fa1) in zip(points, points[1:]):
        if miss0 > fa0 and miss1 <= fa1:
            alpha = (miss0 - fa0) / ((miss0 - fa0) - (miss1 - fa1))
            eer = fa0 + alpha * (fa1 - fa0)
            break
    min_dcf = min(p_target * miss + (1 - p_target) * fa for miss, fa in points)
    return eer, min_dcf / min(p_target, 1 - p_target)


@pytest.mark.parametrize("seed,decimals", [(1, None), (2, 1), (3, 2), (4, 0)])
def test_agrees_with_brute_force(seed, decimals):
    scores, labels = random_trials(np.random.default_rng(seed), 400, decimals)
    for p_target in (0.01, 0.001, 0.3):
        eer, min_dcf = brute_force(scores.tolist(), labels.tolist(), p_target)
        assert compute_eer(scores, labels)[0] == pytest.approx(eer, abs=1e-12)
        assert compute_min_dcf(scores, labels, p_target)[0] == pytest.approx(min_dcf, abs=1e-12)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_agrees_with_the_crossing_of_sklearns_roc(seed):
    """sklearn's ROC points (every threshold kept) are our DET points; the EER is where the
    segment between the two that straddle P_miss = P_fa crosses it, to rounding."""
    scores, labels = random_trials(np.random.default_rng(seed), 2000)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    gap = (1 - tpr) - fpr
    i = int(np.argmax(gap <= 0))
    alpha = gap[i - 1] / (gap[i - 1] - gap[i])
    sklearn_eer = fpr[i - 1] + alpha * (fpr[i] - fpr[i - 1])
    assert compute_eer(scores, labels)[0] == pytest.approx(sklearn_eer, abs=1e-12)
    curve = detection_error_tradeoff(scores, labels)
    np.testing.assert_allclose(curve.p_fa, fpr, atol=1e-12)
    np.testing.assert_allclose(curve.p_miss, 1 - tpr, atol=1e-12)


@pytest.mark.parametrize("scores,labels,message", [
    ([], [], "empty"),
    ([0.1, 0.2], [1, 1], "no nontarget"),
    ([0.1, 0.2], [0, 0], "no target"),
    ([0.1, float("nan")], [1, 0], "NaN"),
    ([0.1, 0.2], [1, 2], "1 \\(target\\) or 0"),
    ([0.1, 0.2, 0.3], [1, 0], "equal length"),
])
def test_bad_input_is_a_clear_value_error(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        compute_eer(scores, labels)
    with pytest.raises(ValueError, match=message):
        compute_min_dcf(scores, labels, 0.01)


def test_p_target_must_be_a_probability():
    with pytest.raises(ValueError, match="p_target"):
        compute_min_dcf(*SIMPLE, p_target=1.0)


def test_kaldi_eer_walks_the_sorted_target_scores():
    # targets ascending [0.72, 0.96], nontargets ascending [0.16, 0.28, 0.52, 0.54, 0.97]
    # (T = 2, N = 5).  k = 0: the nontarget at 5 - 1 - floor(5 * 0 / 2) = 4 is 0.97, not below
    # 0.72; k = 1 = T - 1 ends the walk: EER 1/2 at threshold 0.96.  The interpolated crossing
    # is 0.2: from (P_fa, P_miss) = (0.2, 0.5) at 0.96 to (0.2, 0) at 0.72.
    scores, labels = trials([0.96, 0.72], [0.54, 0.28, 0.16, 0.97, 0.52])
    assert compute_eer_kaldi(scores, labels) == (0.5, 0.96)
    assert compute_eer(scores, labels)[0] == pytest.approx(0.2)


def test_kaldi_eer_stops_where_a_nontarget_falls_below_a_target():
    # targets [0.1, 0.6, 0.7, 0.8], nontargets [0.2, 0.3, 0.4, 0.5]: k = 0 compares 0.5 with
    # 0.1, k = 1 compares 0.4 (position 3 - 1) with 0.6, which is above it: EER 1/4
    scores, labels = trials([0.1, 0.6, 0.7, 0.8], [0.2, 0.3, 0.4, 0.5])
    assert compute_eer_kaldi(scores, labels) == (0.25, 0.6)


def test_kaldi_eer_of_separated_scores_is_zero():
    scores, labels = trials([0.9, 0.8, 0.7], [0.1, 0.2])
    assert compute_eer_kaldi(scores, labels) == (0.0, 0.7)


def kaldi_compute_eer(scores, labels):
    """Kaldi's compute-eer (src/ivectorbin/compute-eer.cc) transcribed loop for loop:
    (eer, threshold)."""
    targets = sorted(s for s, l in zip(scores, labels) if l == 1)
    nontargets = sorted(s for s, l in zip(scores, labels) if l == 0)
    position = 0
    while position + 1 < len(targets):
        n = int(len(nontargets) * position * 1.0 / len(targets))
        if nontargets[max(len(nontargets) - 1 - n, 0)] < targets[position]:
            break
        position += 1
    return position / len(targets), targets[position]


@pytest.mark.parametrize("seed", range(8))
def test_kaldi_eer_agrees_with_kaldis_loop_and_stays_within_a_step_of_the_crossing(seed):
    """On random lists of 10-400 trials: the EER of Kaldi's own loop, ties included; and,
    without ties, within one target trial's share (1/T) of the interpolated EER, as the
    module doc says (measured over 400 lists: at most 0.98 of a step; with ties up to 4)."""
    rng = np.random.default_rng(seed)
    for _ in range(25):
        m = int(rng.integers(10, 400))
        labels = (rng.random(m) < rng.uniform(0.1, 0.6)).astype(int)
        if labels.sum() in (0, m):
            continue
        scores = rng.normal(size=m) + rng.uniform(0, 3) * labels
        rounded = np.round(scores, 1)
        assert compute_eer_kaldi(rounded, labels) == kaldi_compute_eer(rounded.tolist(),
                                                                       labels.tolist())
        eer, threshold = compute_eer_kaldi(scores, labels)
        assert (eer, threshold) == kaldi_compute_eer(scores.tolist(), labels.tolist())
        assert abs(eer - compute_eer(scores, labels)[0]) < 1 / labels.sum()


# ---- metrics of log-likelihood ratios -----------------------------------------------------------

def cllr_formula(targets, nontargets):
    """Cllr written out: the mean of log2(1 + e^-llr) over targets and of log2(1 + e^llr) over
    nontargets, averaged; +-inf LLRs of their own class cost 0."""
    def cost(x):
        return 0.0 if math.isinf(x) and x > 0 else (math.inf if math.isinf(x) else
                                                     math.log2(1 + math.exp(-x)))
    return 0.5 * (sum(cost(x) for x in targets) / len(targets)
                  + sum(cost(-x) for x in nontargets) / len(nontargets))


def pav_by_hand(scores, labels, weights=None):
    """Pool adjacent violators written out: tied scores pooled first, then neighbouring blocks
    merged while a block's target rate exceeds the next one's.  Returns each trial's LLR: the
    logit of its block's rate minus the logit of the (weighted) target share."""
    weights = [1.0] * len(scores) if weights is None else list(weights)
    blocks = []   # [score, target weight, total weight]
    for score in sorted(set(scores)):
        tar = sum(w for s, l, w in zip(scores, labels, weights) if s == score and l == 1)
        tot = sum(w for s, w in zip(scores, weights) if s == score)
        if tot > 0:
            blocks.append([[score], tar, tot])
    merged = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][1] / merged[-2][2] > merged[-1][1] / merged[-1][2]:
            last = merged.pop()
            merged[-1] = [merged[-1][0] + last[0], merged[-1][1] + last[1],
                          merged[-1][2] + last[2]]
    share = sum(w for l, w in zip(labels, weights) if l == 1) / sum(weights)
    llr_of = {}
    for members, tar, tot in merged:
        rate = tar / tot
        llr = (math.inf if rate == 1 else -math.inf if rate == 0
               else math.log(rate / (1 - rate)) - math.log(share / (1 - share)))
        llr_of.update({m: llr for m in members})
    return [llr_of.get(s, math.nan) for s in scores]


# LLRs: targets [6, 5, 3], nontargets [4.7, 2, -1, -3].
#   p_target 0.01: Bayes threshold log(99) = 4.595; targets below: 3 -> P_miss 1/3; nontargets
#     at or above: 4.7 -> P_fa 1/4; actDCF = (0.01/3 + 0.99/4) / 0.01 = 1/3 + 24.75.
#   p_target 0.001: threshold log(999) = 6.907: every target below, no nontarget above -> 1.
#   p_target 0.5: threshold 0: no miss, P_fa 2/4 -> (0.5 * 1/2) / 0.5 = 1/2.
# PAV, scores ascending with labels: -3 n, -1 n, 2 n, 3 t, 4.7 n, 5 t, 6 t -> rates 0 0 0 1 0 1 1;
#   3 t and 4.7 n violate the order and pool at 1/2: rates 0 0 0 1/2 1/2 1 1.  Target share 3/7,
#   so the pooled block's LLR is logit(1/2) - logit(3/7) = log(4/3), the others -inf / +inf.
#   minCllr = (log2(1 + 3/4) / 3 + log2(1 + 4/3) / 4) / 2.
HAND_TAR, HAND_NON = [6.0, 5.0, 3.0], [4.7, 2.0, -1.0, -3.0]
HAND = trials(HAND_TAR, HAND_NON)


def test_actual_dcf_of_hand_made_llrs():
    assert bayes_threshold(0.01) == pytest.approx(math.log(99))
    assert compute_act_dcf(*HAND, p_target=0.01) == pytest.approx(1 / 3 + 24.75)
    assert compute_act_dcf(*HAND, p_target=0.001) == pytest.approx(1.0)
    assert compute_act_dcf(*HAND, p_target=0.5) == pytest.approx(0.5)
    # c_miss 10: threshold log(0.5 / 5) = -2.30: only -3 rejected; (0.5 * 3/4) / 0.5 = 3/4.
    assert compute_act_dcf(*HAND, p_target=0.5, c_miss=10) == pytest.approx(0.75)


def test_cllr_and_min_cllr_of_hand_made_llrs():
    assert compute_cllr(*HAND) == pytest.approx(cllr_formula(HAND_TAR, HAND_NON), abs=1e-12)
    expected = (math.log2(1 + 3 / 4) / 3 + math.log2(1 + 4 / 3) / 4) / 2
    assert compute_min_cllr(*HAND) == pytest.approx(expected, abs=1e-12)
    llrs = LlrTrials(*HAND).pav_llrs()
    np.testing.assert_allclose(llrs, [np.inf, np.inf, math.log(4 / 3), math.log(4 / 3),
                                      -np.inf, -np.inf, -np.inf])
    # the useless LLR 0 costs 1 bit; minCllr of scores that do not discriminate is 1 too
    assert compute_cllr(np.zeros(7), HAND[1]) == pytest.approx(1.0)
    assert compute_min_cllr(np.zeros(7), HAND[1]) == pytest.approx(1.0)


def test_min_cllr_pools_tied_scores():
    # targets [2, 1], nontargets [1, 0]: the tie at 1 is one block of rate 1/2 (LLR 0, as the
    # share is 1/2): minCllr = (1 + 1) / 2 / 2 = 1/2.  (Ordering the tie nontarget first, as
    # BOSARIS does, would call the scores perfectly separated: 0.)
    assert compute_min_cllr(*trials([2.0, 1.0], [1.0, 0.0])) == pytest.approx(0.5)


@pytest.mark.parametrize("seed,decimals", [(11, None), (12, 1), (13, 0)])
def test_llr_metrics_agree_with_their_formulas_on_random_lists(seed, decimals):
    rng = np.random.default_rng(seed)
    scores, labels = random_trials(rng, 300, decimals)
    scores = 3 * scores - 2
    tar, non = scores[labels == 1].tolist(), scores[labels == 0].tolist()
    assert compute_cllr(scores, labels) == pytest.approx(cllr_formula(tar, non), abs=1e-12)
    pav = pav_by_hand(scores.tolist(), labels.tolist())
    np.testing.assert_allclose(LlrTrials(scores, labels).pav_llrs(), pav, atol=1e-12)
    assert compute_min_cllr(scores, labels) == pytest.approx(
        cllr_formula([x for x, l in zip(pav, labels) if l], [x for x, l in zip(pav, labels)
                                                             if not l]), abs=1e-12)
    for p in (0.01, 0.001, 0.3):
        eta = math.log((1 - p) / p)
        p_miss = sum(x < eta for x in tar) / len(tar)
        p_fa = sum(x >= eta for x in non) / len(non)
        assert compute_act_dcf(scores, labels, p) == pytest.approx(
            (p * p_miss + (1 - p) * p_fa) / min(p, 1 - p), abs=1e-12)
    # minCllr never exceeds Cllr: PAV is the best monotonic recalibration
    assert compute_min_cllr(scores, labels) <= compute_cllr(scores, labels)


def test_weights_count_trials_as_repeats():
    """Trial weights (the speaker bootstrap's) count a trial k times: the same figures as the
    list with each trial repeated k times; weight 0 drops it."""
    rng = np.random.default_rng(21)
    scores, labels = random_trials(rng, 120, decimals=1)
    weights = rng.integers(0, 4, size=scores.size)
    repeated_scores, repeated_labels = np.repeat(scores, weights), np.repeat(labels, weights)
    trials_ = LlrTrials(scores, labels)
    assert trials_.cllr(weights) == pytest.approx(compute_cllr(repeated_scores, repeated_labels))
    assert trials_.min_cllr(weights) == pytest.approx(
        compute_min_cllr(repeated_scores, repeated_labels), abs=1e-12)
    np.testing.assert_allclose(
        np.array(trials_.pav_llrs(weights))[weights > 0],
        pav_by_hand(scores[weights > 0].tolist(), labels[weights > 0].tolist(),
                    weights[weights > 0].tolist()), atol=1e-12)
    for p in (0.01, 0.001):
        assert trials_.act_dcf(p, weights=weights) == pytest.approx(
            compute_act_dcf(repeated_scores, repeated_labels, p), abs=1e-12)


def calibrated_gaussian(mu, n, seed):
    """Perfectly calibrated LLRs: targets N(mu, 2 mu), nontargets N(-mu, 2 mu) (the density
    ratio of the two at x is e^x, so x is its own log-likelihood ratio)."""
    rng = np.random.default_rng(seed)
    sd = math.sqrt(2 * mu)
    return trials(rng.normal(mu, sd, n), rng.normal(-mu, sd, n))


def test_calibrated_gaussian_llrs():
    from scipy import integrate, stats
    mu, sd = 4.0, math.sqrt(8.0)
    scores, labels = calibrated_gaussian(mu, 100000, seed=0)
    # Cllr's closed form: E[log2(1 + e^-x)], x ~ N(mu, 2 mu) (the nontarget term is the same by
    # symmetry), by quadrature
    closed = integrate.quad(lambda x: stats.norm.pdf(x, mu, sd) * np.logaddexp(0, -x)
                            / math.log(2), -np.inf, np.inf)[0]
    assert compute_cllr(scores, labels) == pytest.approx(closed, abs=0.005)
    # calibrated: PAV has almost nothing left to gain
    assert 0 <= compute_cllr(scores, labels) - compute_min_cllr(scores, labels) < 0.005
    for p in (0.01, 0.001):
        # the Bayes threshold is the best one: actDCF is the expected minimum, and the list's
        # minDCF (its best threshold in hindsight) lies just below it
        eta = math.log((1 - p) / p)
        expected = (p * stats.norm.cdf((eta - mu) / sd)
                    + (1 - p) * stats.norm.sf((eta + mu) / sd)) / p
        act, best = compute_act_dcf(scores, labels, p), compute_min_dcf(scores, labels, p)[0]
        assert act == pytest.approx(expected, abs=0.02)
        assert best <= act < best + 0.01


@pytest.mark.parametrize("scale,shift", [(2.0, 3.0), (0.5, -1.0), (1.0, 2.0)])
def test_miscalibrated_llrs_cost_more_and_leave_the_minima_alone(scale, shift):
    scores, labels = calibrated_gaussian(4.0, 50000, seed=1)
    bad = scale * scores + shift
    assert compute_cllr(bad, labels) > compute_cllr(scores, labels) + 0.05
    assert compute_min_cllr(bad, labels) == pytest.approx(compute_min_cllr(scores, labels),
                                                          abs=1e-12)
    for p in (0.01, 0.001):
        assert compute_act_dcf(bad, labels, p) > compute_act_dcf(scores, labels, p) + 0.05
        assert compute_min_dcf(bad, labels, p)[0] == compute_min_dcf(scores, labels, p)[0]

"""The speaker-level bootstrap: weighted DET sweeps, trial weights, intervals, paired tests."""
import os
import subprocess
import sys

import numpy as np
import pytest

from pytorch_modules.errors import RecipeError
from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.metrics import (
    SortedTrials,
    compute_eer,
    compute_min_dcf,
    detection_error_tradeoff,
)

import reference_metrics as reference

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_integer_weights_give_the_curve_of_the_repeated_trials():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=40), 1)          # ties included
    labels = (rng.random(40) < 0.4).astype(int)
    weights = rng.integers(0, 4, size=40)
    weights[np.flatnonzero(labels == 1)[0]] = 0          # a weight-0 trial of each class ...
    weights[np.flatnonzero(labels == 0)[0]] = 0
    weights[np.flatnonzero(labels == 1)[1]] = 2          # ... and each class kept
    weights[np.flatnonzero(labels == 0)[1]] = 2
    repeated = detection_error_tradeoff(np.repeat(scores, weights), np.repeat(labels, weights))
    weighted = detection_error_tradeoff(scores, labels, weights)
    # The weighted sweep has a point for every unique score, also those of weight-0 trials;
    # at the repeated list's thresholds the two agree exactly.
    at = np.searchsorted(-weighted.thresholds, -repeated.thresholds)
    np.testing.assert_allclose(weighted.p_miss[at], repeated.p_miss)
    np.testing.assert_allclose(weighted.p_fa[at], repeated.p_fa)
    assert compute_eer(None, None, curve=weighted)[0] == pytest.approx(
        compute_eer(np.repeat(scores, weights), np.repeat(labels, weights))[0])
    assert compute_min_dcf(None, None, 0.01, curve=weighted)[0] == pytest.approx(
        compute_min_dcf(np.repeat(scores, weights), np.repeat(labels, weights), 0.01)[0])


def test_weights_that_leave_one_class_are_refused():
    with pytest.raises(ValueError, match="no target or no nontarget"):
        SortedTrials([0.9, 0.1], [1, 0]).curve([0, 3])


# Three speakers A, B, C with two utterances each; trials (enroll, test, label):
TRIALS = [("a1", "a2", 1), ("b1", "b2", 1), ("c1", "c2", 1),
          ("a1", "b1", 0), ("a2", "c1", 0), ("b2", "c2", 0)]
UTT2SPK = {u: u[0].upper() for u in ["a1", "a2", "b1", "b2", "c1", "c2"]}


def clusters():
    enroll, test, labels = zip(*TRIALS)
    return bootstrap.speaker_clusters(list(enroll), list(test), np.array(labels), UTT2SPK)


def test_a_target_trial_weighs_k_s_and_a_nontarget_trial_k_a_times_k_b():
    c = clusters()
    assert c.names == ["A", "B", "C"] and c.unit == "speaker"
    labels = np.array([t[2] for t in TRIALS])
    # A drawn twice, B never, C once.
    np.testing.assert_array_equal(c.weights(np.array([2, 0, 1]), labels),
                                  [2, 0, 1, 2 * 0, 2 * 1, 0 * 1])


def test_enrollment_clusters_weigh_each_trial_by_its_model():
    c = bootstrap.enrollment_clusters(["m2", "m1", "m2"])
    assert c.names == ["m1", "m2"] and c.test is None
    np.testing.assert_array_equal(c.weights(np.array([3, 1]), np.array([1, 0, 0])), [1, 3, 1])


def test_an_id_without_a_speaker_is_named():
    with pytest.raises(RecipeError, match="b2 of trials.txt has no speaker in u2s"):
        bootstrap.speaker_clusters(["a1", "b2"], ["a2", "a1"], np.array([1, 0]),
                                   {"a1": "A", "a2": "A"}, "trials.txt", "u2s")


@pytest.mark.parametrize("labels, kind", [([1, 1], "a target trial of two speakers"),
                                          ([1, 0], None), ([0, 0], "a nontarget trial of one")])
def test_labels_that_contradict_the_speakers_are_refused_with_the_line(labels, kind):
    args = (["a1", "a1"], ["a2", "b1"], np.array(labels), {"a1": "A", "a2": "A", "b1": "B"},
            "trials.txt", "u2s")
    if kind is None:
        bootstrap.speaker_clusters(*args)
        return
    line = 2 if labels[0] == 1 else 1
    with pytest.raises(RecipeError, match=f"trials.txt:{line}: .* is {kind}"):
        bootstrap.speaker_clusters(*args)


def test_draws_are_a_function_of_the_seed_and_sum_to_the_number_of_clusters():
    a = bootstrap.draws(25, 50, seed=3)
    assert a.shape == (50, 25) and (a.sum(axis=1) == 25).all()
    np.testing.assert_array_equal(a, bootstrap.draws(25, 50, seed=3))
    assert not np.array_equal(a, bootstrap.draws(25, 50, seed=4))


def synthetic_list(num_speakers, separation, rng, utts=4):
    """Trials of `num_speakers` speakers, targets `separation` higher on average.  As in real
    lists, trials of a speaker are correlated: each speaker has a score offset and an ease
    (some voices are easy, some hard), which scales how far its targets stand out."""
    ids, spk = [], {}
    for s in range(num_speakers):
        for u in range(utts):
            ids.append(f"s{s}-{u}")
            spk[ids[-1]] = f"s{s}"
    offset = {f"s{s}": rng.normal(scale=0.5) for s in range(num_speakers)}
    ease = {f"s{s}": rng.uniform(0, 2) for s in range(num_speakers)}
    enroll, test, labels, scores = [], [], [], []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            target = spk[a] == spk[b]
            enroll.append(a), test.append(b), labels.append(int(target))
            scores.append(rng.normal() + separation * ease[spk[a]] * target
                          + offset[spk[a]] + offset[spk[b]])
    return enroll, test, np.array(labels), np.array(scores), spk


def test_interval_covers_the_estimate_and_narrows_with_more_speakers():
    widths = []
    for n in (10, 40):
        enroll, test, labels, scores, spk = synthetic_list(n, 2.0, np.random.default_rng(n))
        c = bootstrap.speaker_clusters(enroll, test, labels, spk)
        reps = bootstrap.replicate_metrics([scores], labels, c, replicates=200, seed=1)[:, 0]
        low, high = bootstrap.interval(reps[:, 0])
        eer = compute_eer(scores, labels)[0]
        assert low < eer < high
        widths.append(high - low)
    # Four times the speakers: about half the width (1/sqrt(4)); allow for sampling noise.
    assert widths[1] < 0.75 * widths[0]


def test_speaker_intervals_are_wider_than_trial_intervals_would_be():
    """Trials of a speaker are correlated: resampling speakers must see that."""
    enroll, test, labels, scores, spk = synthetic_list(20, 2.0, np.random.default_rng(9), utts=8)
    c = bootstrap.speaker_clusters(enroll, test, labels, spk)
    by_speaker = bootstrap.replicate_metrics([scores], labels, c, 200, 1)[:, 0, 0]
    per_trial = bootstrap.Clusters(np.arange(labels.size), None,
                                   [str(i) for i in range(labels.size)], "trial")
    by_trial = bootstrap.replicate_metrics([scores], labels, per_trial, 200, 1)[:, 0, 0]
    assert np.std(by_speaker) > 1.5 * np.std(by_trial)


def test_interval_is_the_percentiles_of_the_finite_values():
    values = np.concatenate([np.arange(1.0, 101.0), [np.nan]])
    assert bootstrap.interval(values) == pytest.approx((3.475, 97.525))


def test_paired_difference_of_a_system_with_itself_is_exactly_zero():
    enroll, test, labels, scores, spk = synthetic_list(12, 2.0, np.random.default_rng(2))
    c = bootstrap.speaker_clusters(enroll, test, labels, spk)
    d = bootstrap.paired_difference([scores], [scores], labels, c, replicates=100, seed=1)
    assert (d["difference"], d["ci_low"], d["ci_high"], d["p_value"]) == (0, 0, 0, 1)


def test_paired_difference_finds_a_clearly_better_system():
    rng = np.random.default_rng(4)
    enroll, test, labels, scores, spk = synthetic_list(15, 1.0, rng)
    better = scores + 2.0 * labels                        # the same errors, targets moved up
    c = bootstrap.speaker_clusters(enroll, test, labels, spk)
    d = bootstrap.paired_difference([better], [scores], labels, c, replicates=200, seed=1)
    assert d["difference"] == pytest.approx(compute_eer(better, labels)[0]
                                            - compute_eer(scores, labels)[0])
    assert d["ci_high"] < 0 and d["p_value"] < 0.01


def test_paired_difference_of_seeds_is_the_difference_of_their_means():
    rng = np.random.default_rng(5)
    enroll, test, labels, scores, spk = synthetic_list(10, 1.5, rng)
    c = bootstrap.speaker_clusters(enroll, test, labels, spk)
    a = [scores + rng.normal(scale=0.3, size=scores.size) for _ in range(3)]
    b = [scores + rng.normal(scale=0.3, size=scores.size) for _ in range(2)]
    d = bootstrap.paired_difference(a, b, labels, c, replicates=50, seed=1)
    eer = lambda s: compute_eer(s, labels)[0]
    assert d["difference"] == pytest.approx(np.mean([eer(s) for s in a])
                                            - np.mean([eer(s) for s in b]))


def sklearn_eer_and_min_dcf(scores, labels, weights=None, p_target=0.01):
    """EER and minDCF from the points of scikit-learn's weighted ROC (tests/reference_metrics.py):
    an implementation independent of metrics.py."""
    eer, dcf = reference.eer_and_min_dcf(scores, labels, weights, p_targets=(p_target,))
    return eer, dcf


def reference_paired_test(a_sets, b_sets, labels, enroll_spk, test_spk, counts):
    """The paired speaker bootstrap written out from its definition, for draw counts
    `counts` (replicates, speakers): in replicate r a target trial of speaker s counts k_s
    times and a nontarget trial of speakers a, b k_a * k_b times (the trials of a list made of
    the drawn speakers); each replicate's statistic is the mean EER of A's seeds minus B's
    (replicates that leave no target or no nontarget are dropped); the 95% interval is the
    2.5th-97.5th percentile, p twice the smaller tail share at 0."""
    diffs = []
    for k in counts:
        weights = np.where(labels == 1, k[enroll_spk], k[enroll_spk] * k[test_spk])
        if weights[labels == 1].sum() == 0 or weights[labels == 0].sum() == 0:
            continue
        eer = lambda s: sklearn_eer_and_min_dcf(s, labels, weights)[0]
        diffs.append(np.mean([eer(s) for s in a_sets]) - np.mean([eer(s) for s in b_sets]))
    diffs = np.array(diffs)
    low, high = np.percentile(diffs, [2.5, 97.5])
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return low, high, p


def test_compare_systems_prints_mean_spread_and_the_paired_test(tmp_path):
    """Every figure of the table against an independent computation: EERs and minDCFs from
    scikit-learn's ROC, the interval and p from the bootstrap written out in the test.  Only
    the draws (bootstrap.draws: seeded counts, tested above) are the module's."""
    rng = np.random.default_rng(6)
    enroll, test, labels, scores, spk = synthetic_list(8, 1.5, rng)
    (tmp_path / "set").mkdir()
    (tmp_path / "set/trials").write_text("".join(
        f"{e} {t} {'target' if l else 'nontarget'}\n" for e, t, l in zip(enroll, test, labels)))
    (tmp_path / "set/utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(spk.items())))
    systems = {"a": [scores], "b": [scores + 1.0 * labels, scores + 0.5 * labels]}
    args = []
    for name, sets in systems.items():
        paths = []
        for k, s in enumerate(sets):
            path = tmp_path / f"{name}{k}.scores"
            path.write_text("".join(f"{e} {t} {v:.6f}\n" for e, t, v in zip(enroll, test, s)))
            paths.append(str(path))
        args.append(f"{name}={','.join(paths)}")
    proc = subprocess.run([sys.executable, "-m", "pytorch_modules.bin.compare_systems",
                           "--trials", str(tmp_path / "set/trials"), "--replicates", "100",
                           *args], cwd=repo, capture_output=True, text=True,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    header, _, row_a, row_b, _, note = proc.stdout.splitlines()
    assert header.startswith("| system | seeds |") and "EER - a (%)" in header
    rounded = {name: [np.round(s, 6) for s in sets] for name, sets in systems.items()}
    speakers = sorted(set(spk.values()))
    enroll_spk = np.array([speakers.index(spk[u]) for u in enroll])
    test_spk = np.array([speakers.index(spk[u]) for u in test])
    low, high, p = reference_paired_test(rounded["b"], rounded["a"], labels, enroll_spk,
                                         test_spk, bootstrap.draws(8, 100, seed=7))
    for row, name in ((row_a, "a"), (row_b, "b")):
        cells = row.split(" | ")
        eers, dcfs = zip(*(sklearn_eer_and_min_dcf(s, labels) for s in rounded[name]))
        eers = 100 * np.array(eers)
        assert cells[1] == str(len(eers))
        assert float(cells[2]) == pytest.approx(eers.mean(), abs=0.005 + 1e-9)
        if len(eers) > 1:
            assert float(cells[3]) == pytest.approx(eers.std(ddof=1), abs=0.005 + 1e-9)
        low_eer, high_eer = map(float, cells[4].split("-"))
        assert (low_eer, high_eer) == (pytest.approx(eers.min(), abs=0.005 + 1e-9),
                                       pytest.approx(eers.max(), abs=0.005 + 1e-9))
        assert float(cells[5]) == pytest.approx(np.mean(dcfs), abs=0.00005 + 1e-9)
    eers = {name: np.mean([sklearn_eer_and_min_dcf(s, labels)[0] for s in rounded[name]])
            for name in rounded}
    difference, interval = row_b.split(" | ")[6].split(" [")
    assert float(difference) == pytest.approx(100 * (eers["b"] - eers["a"]), abs=0.005 + 1e-9)
    printed = [float(v) for v in interval.rstrip("]").split(", ")]
    assert printed == [pytest.approx(100 * low, abs=0.005 + 1e-9),
                       pytest.approx(100 * high, abs=0.005 + 1e-9)]
    assert float(row_b.split(" | ")[7].rstrip(" |")) == pytest.approx(p, abs=0.0005 + 1e-9)
    assert low < 0 and high <= 0   # b moves the targets up: better in (almost) every draw
    assert row_a.split(" | ")[6:] == ["-", "- |"]
    assert note == "Bootstrap: 100 replicates over 8 speakers (seed 7); the EER of a system is " \
                   "the mean over its seeds."


def test_compare_systems_refuses_an_unknown_reference(tmp_path):
    (tmp_path / "trials").write_text("a b target\n")
    (tmp_path / "s").write_text("a b 0.5\n")
    proc = subprocess.run([sys.executable, "-m", "pytorch_modules.bin.compare_systems",
                           "--trials", str(tmp_path / "trials"), "--reference", "c",
                           f"x={tmp_path}/s"], cwd=repo, capture_output=True, text=True,
                          env=dict(os.environ))
    assert proc.returncode == 1 and "--reference c is not one of the systems (x)" in proc.stderr

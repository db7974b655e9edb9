"""What the recipe's score and results files should say, recomputed without the recipe's
scoring code: cosine scores with numpy, EER and minDCF from scikit-learn's ROC points, the
speaker-bootstrap interval written out from its definition (only the seeded draw counts,
bootstrap.draws, are the recipe's), AS-norm from its formula.  The whole-run tests compare the
files a run wrote with these."""
from pathlib import Path

import kaldiio
import numpy as np
from sklearn.metrics import roc_curve


def eer_and_min_dcf(scores, labels, weights=None, p_targets=(0.01, 0.001)):
    """(EER, minDCF at each p_target), fractions.  EER: where the segment between the two ROC
    points that straddle P_miss = P_fa crosses it; minDCF: the least of (p P_miss + (1 - p)
    P_fa) / min(p, 1 - p) over the points."""
    fpr, tpr, _ = roc_curve(labels, scores, sample_weight=weights, drop_intermediate=False)
    miss = 1 - tpr
    gap = miss - fpr
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0:
        eer = miss[i]
    else:
        alpha = gap[i - 1] / (gap[i - 1] - gap[i])
        eer = fpr[i - 1] + alpha * (fpr[i] - fpr[i - 1])
    dcfs = [((p * miss + (1 - p) * fpr) / min(p, 1 - p)).min() for p in p_targets]
    return float(eer), *map(float, dcfs)


def bootstrap_eer_interval(scores, labels, enroll_spk, test_spk, counts):
    """The 2.5th and 97.5th percentile of the EER over the replicates of draw counts `counts`
    (replicates, speakers): a target trial of speaker s counts k_s times, a nontarget trial of
    speakers a, b k_a * k_b times; replicates without a target or a nontarget are left out."""
    labels = np.asarray(labels)
    eers = []
    for k in counts:
        weights = np.where(labels == 1, k[enroll_spk], k[enroll_spk] * k[test_spk])
        if weights[labels == 1].sum() > 0 and weights[labels == 0].sum() > 0:
            eers.append(eer_and_min_dcf(scores, labels, weights)[0])
    return tuple(np.percentile(eers, [2.5, 97.5]))


def read_table(path: Path) -> dict:
    return dict(line.split(maxsplit=1) for line in Path(path).read_text().splitlines())


def read_trials(path: Path):
    """[(enroll, test, 1|0)] of a Kaldi trials file."""
    return [(e, t, int(label == "target")) for e, t, label in
            (line.split() for line in Path(path).read_text().splitlines())]


def read_scores(path: Path):
    """[(enroll, test, score)] of a scores file."""
    return [(e, t, float(s)) for e, t, s in
            (line.split() for line in Path(path).read_text().splitlines())]


def vectors(scp: Path) -> dict:
    return {k: np.asarray(v, dtype=np.float64) for k, v in kaldiio.load_scp(str(scp)).items()}


def cosine(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def asnorm(enroll, test, cohort, top_n) -> float:
    """AS-norm of one trial from its definition: s normalised by the mean and standard
    deviation of each side's top_n cosine scores against the cohort, averaged."""
    s = cosine(enroll, test)

    def top(v):
        best = sorted((cosine(v, c) for c in cohort), reverse=True)[:top_n]
        return np.mean(best), np.std(best)

    (mu_e, sd_e), (mu_t, sd_t) = top(enroll), top(test)
    return 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)


def check_results_file(results: Path, scores: Path, trials: Path, utt2spk: dict = None,
                       draws=None):
    """The figures of a .results file against the scores it was made from: EER and minDCF
    to the file's 4 decimals, and with `utt2spk` and `draws` (bootstrap.draws of the file's
    clusters, replicates and seed) the EER interval.  Returns the recomputed EER (%)."""
    table = read_table(results)
    listed = read_trials(trials)
    scored = read_scores(scores)
    assert [(e, t) for e, t, _ in scored] == [(e, t) for e, t, _ in listed]
    values = np.array([s for _, _, s in scored])
    labels = np.array([label for _, _, label in listed])
    eer, dcf2, dcf3 = eer_and_min_dcf(values, labels)
    assert int(table["trials"]) == len(listed)
    assert float(table["eer_percent"]) == approx(100 * eer, 5e-5), results
    assert float(table["min_dcf_p0.01"]) == approx(dcf2, 5e-5), results
    assert float(table["min_dcf_p0.001"]) == approx(dcf3, 5e-5), results
    if utt2spk is not None:
        speakers = sorted({utt2spk[u] for e, t, _ in listed for u in (e, t)})
        enroll = np.array([speakers.index(utt2spk[e]) for e, _, _ in listed])
        test = np.array([speakers.index(utt2spk[t]) for _, t, _ in listed])
        low, high = bootstrap_eer_interval(values, labels, enroll, test, draws(len(speakers)))
        assert float(table["eer_percent_ci_low"]) == approx(100 * low, 5e-5), results
        assert float(table["eer_percent_ci_high"]) == approx(100 * high, 5e-5), results
    return 100 * eer


def approx(value, tolerance):
    import pytest

    return pytest.approx(value, abs=tolerance + 1e-9)

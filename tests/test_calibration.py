"""Score calibration (pytorch_modules/scoring/calibration.py and its entry points): the
calibration list's properties, the fit against the BOSARIS objective minimised here with
scipy, true log-likelihood ratios recovered from scores whose LLR is known, the quality
measures against their definitions (AS-norm's top-N cohort mean written out), the calibration
file, and calibrate_scores / steps/calibrate_scores.sh end to end against formulas."""
import math
import os
import subprocess

import numpy as np
import pytest
from scipy.optimize import minimize

from pytorch_modules.errors import RecipeError
from pytorch_modules.scoring import bootstrap, calibration

from tiny_data import read_table, run_python, scratch_recipe, write_lines


def speakers(num_speakers, sessions, utts_per_session, prefix="id1"):
    """[(utt, speaker)] with VoxCeleb-style ids speaker-session-number."""
    return [(f"{prefix}{s:04d}-sess{k}-{u:05d}", f"{prefix}{s:04d}")
            for s in range(num_speakers) for k in range(sessions)
            for u in range(utts_per_session)]


# ---- the calibration list -----------------------------------------------------------------------

def test_calibration_list_is_balanced_cross_session_and_seeded():
    utt2spk = speakers(12, 3, 4)   # 12 speakers x 3 sessions x 4 utterances
    trials, info, notes = calibration.make_trials(utt2spk, num_trials=1000, target_share=0.5,
                                                  seed=3)
    speaker = dict(utt2spk)
    assert notes == [] and len(trials) == 1000
    assert (info["targets"], info["nontargets"], info["speakers_with_targets"]) == (
        "500", "500", "12")
    pairs = [tuple(sorted((e, t))) for e, t, _ in trials]
    assert len(set(pairs)) == len(pairs)   # no pair twice, in either order
    per_speaker = {}
    for e, t, label in trials:
        assert e != t
        if label == "target":
            assert speaker[e] == speaker[t] and calibration.session_of(e) != \
                calibration.session_of(t)
            per_speaker[speaker[e]] = per_speaker.get(speaker[e], 0) + 1
        else:
            assert speaker[e] != speaker[t]
    # 500 targets over 12 speakers (each has 3 * 4 * 4 * 2 / 2 = 48 cross-session pairs): 41 or 42
    assert sorted(set(per_speaker.values())) == [41, 42] and sum(per_speaker.values()) == 500
    assert trials == sorted(trials)
    again, _, _ = calibration.make_trials(utt2spk, num_trials=1000, target_share=0.5, seed=3)
    other, _, _ = calibration.make_trials(utt2spk, num_trials=1000, target_share=0.5, seed=4)
    assert again == trials and other != trials
    # both orders of a pair occur: which side is enrollment is drawn
    assert any(e > t for e, t, _ in trials) and any(e < t for e, t, _ in trials)


def test_calibration_list_short_of_targets_keeps_the_share():
    utt2spk = speakers(5, 2, 3)   # 5 speakers x 9 cross-session pairs = 45
    trials, info, notes = calibration.make_trials(utt2spk, num_trials=1000, target_share=0.25,
                                                  seed=1)
    assert (info["targets"], info["nontargets"]) == ("45", "135")
    assert notes == ["the speakers hold 45 cross-session target pairs, fewer than the 250 asked "
                     "for: all of them are taken, with 135 nontargets to keep the target "
                     "share 0.25"]
    _, info, _ = calibration.make_trials(utt2spk, num_trials=100, seed=1, cross_session=False)
    assert info["targets"] == "50"   # 5 x C(6, 2) = 75 pairs: enough
    with pytest.raises(RecipeError, match="has no session in its id"):
        calibration.make_trials([("a", "s1"), ("b", "s1"), ("c", "s2")])


def test_make_calibration_trials_entry_point(tmp_path):
    utt2spk = speakers(6, 2, 3)
    data = tmp_path / "train"
    data.mkdir()
    write_lines(data / "utt2spk", [f"{u} {s}" for u, s in utt2spk])
    write_lines(data / "utt2num_frames", [f"{u} {100 + n}" for n, (u, _) in enumerate(utt2spk)])
    # only the embedded utterances are paired: leave out the first speaker's
    embedded = [u for u, s in utt2spk if s != utt2spk[0][1]]
    write_lines(tmp_path / "xvector.scp", [f"{u} x.ark:{n}" for n, u in enumerate(embedded)])
    out = tmp_path / "cal"
    proc = run_python("-m", "pytorch_modules.bin.make_calibration_trials", "--num-trials", "60",
                      "--xvector-scp", tmp_path / "xvector.scp", data, out)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in (out / "trials").read_text().splitlines()]
    used = {u for e, t, _ in lines for u in (e, t)}
    assert len(lines) == 60 and used <= set(embedded)
    assert sum(label == "target" for *_, label in lines) == 30
    assert read_table(out / "utt2spk") == {u: s for u, s in utt2spk if u in used}
    frames = dict((u, str(100 + n)) for n, (u, _) in enumerate(utt2spk))
    assert read_table(out / "utt2num_frames") == {u: frames[u] for u in used}
    info = read_table(out / "info")
    assert (info["source"], info["xvector_scp"], info["speakers"]) == (
        str(data), str(tmp_path / "xvector.scp"), "5")
    proc = run_python("-m", "pytorch_modules.bin.make_calibration_trials", "--num-trials", "60",
                      "--xvector-scp", tmp_path / "xvector.scp", data, tmp_path / "cal2")
    assert (tmp_path / "cal2/trials").read_text() == (out / "trials").read_text()


# ---- the fit ------------------------------------------------------------------------------------

def bosaris_objective(params, x, labels, prior):
    """BOSARIS's train_linear_calibration objective, written out: the prior-weighted
    cross-entropy of llr + logit(prior), llr = params[0] + x @ params[1:]."""
    llr = params[0] + x @ params[1:]
    offset = math.log(prior / (1 - prior))
    tar = np.logaddexp(0, -(llr[labels] + offset)).mean()
    non = np.logaddexp(0, llr[~labels] + offset).mean()
    return prior * tar + (1 - prior) * non


def bosaris_fit(x, labels, prior):
    start = np.zeros(1 + x.shape[1])
    return minimize(bosaris_objective, start, args=(x, labels, prior), method="BFGS",
                    options={"gtol": 1e-10}).x


def scores_with_known_llr(n_tar, n_non, seed, scale=8.0, offset=-3.0, duration_weight=0.0):
    """Scores whose LLR is known: LLRs drawn calibrated (targets N(mu, 2 mu), nontargets
    N(-mu, 2 mu)), with a duration term folded in, mapped to scores by the inverse of
    llr = offset + scale * score + duration_weight * (log_frames_min + log_frames_max)."""
    rng = np.random.default_rng(seed)
    mu = 3.0
    llr = np.concatenate([rng.normal(mu, math.sqrt(2 * mu), n_tar),
                          rng.normal(-mu, math.sqrt(2 * mu), n_non)])
    labels = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    frames = rng.integers(200, 2000, size=(llr.size, 2))
    features = np.column_stack([np.log(frames.min(axis=1)), np.log(frames.max(axis=1))])
    scores = (llr - offset - duration_weight * features.sum(axis=1)) / scale
    return scores, labels, features


@pytest.mark.parametrize("prior", [None, 0.5, 0.01])
def test_fit_minimises_the_prior_weighted_objective(prior):
    scores, labels, features = scores_with_known_llr(300, 700, seed=5, duration_weight=0.4)
    scores = scores + np.random.default_rng(6).normal(0, 0.2, scores.size)  # not exactly linear
    cal = calibration.fit(scores, labels, features, ("duration",), prior)
    used_prior = 0.3 if prior is None else prior
    assert cal.prior == pytest.approx(used_prior)
    expected = bosaris_fit(np.column_stack([scores, features]), labels, used_prior)
    got = np.r_[cal.offset, cal.scale, cal.weights]
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)
    plain = calibration.fit(scores, labels, prior=prior)
    np.testing.assert_allclose([plain.offset, plain.scale],
                               bosaris_fit(scores[:, None], labels, used_prior),
                               atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("n_tar,n_non,prior", [(20000, 20000, None), (6000, 34000, None),
                                               (6000, 34000, 0.5)])
def test_fit_recovers_true_log_likelihood_ratios(n_tar, n_non, prior):
    """Whatever the list's target share and the prior weighting, the offset correction gives
    the true LLR back (the model is well specified here)."""
    scores, labels, features = scores_with_known_llr(n_tar, n_non, seed=7, scale=8.0,
                                                     offset=-3.0, duration_weight=0.4)
    cal = calibration.fit(scores, labels, features, ("duration",), prior)
    assert cal.scale == pytest.approx(8.0, rel=0.04)
    np.testing.assert_allclose(cal.weights, [0.4, 0.4], atol=0.12)
    # (the offset trades off against the duration weights: log frames lie near 6 to 7, so
    # the LLR itself is what is compared).  Without the -logit(prior) correction the LLRs of
    # the 15%-target list would be off by logit(0.15) = -1.7.
    truth = -3.0 + 8.0 * scores + 0.4 * features.sum(axis=1)
    error = cal.llr(scores, features) - truth
    assert abs(error.mean()) < 0.03 and np.abs(error).mean() < 0.1


def test_fit_refuses_what_it_cannot_fit():
    with pytest.raises(RecipeError, match="perfectly separated"):
        calibration.fit([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    with pytest.raises(RecipeError, match="log_frames_min takes one value"):
        calibration.fit([0.9, 0.3, 0.5, 0.1], [1, 1, 0, 0], np.ones((4, 2)), ("duration",))
    with pytest.raises(RecipeError, match="falls with the score"):
        calibration.fit([0.1, 0.3, 0.5, 0.45, 0.9, 0.4], [1, 1, 0, 1, 0, 0])


def test_calibration_file_round_trip(tmp_path):
    cal = calibration.Calibration(offset=-3.25, scale=24.125, groups=("duration", "cohort_mean"),
                                  weights=(0.5, -0.25, 12.0, 3.0), prior=0.5, backend="asnorm",
                                  cohort=calibration.Cohort("c/x.scp", 300, "c/mean.scp"),
                                  info={"calibration_targets": "7"})
    path = tmp_path / "final.calibration"
    calibration.write(path, cal)
    assert calibration.read(path) == cal
    text = path.read_text()
    assert "measures log_frames_min,log_frames_max,cohort_mean_min,cohort_mean_max\n" in text
    path.write_text(text.replace("backend asnorm", "backend plda"))
    with pytest.raises(RecipeError, match="backend 'plda' is not one of cosine, asnorm"):
        calibration.read(path)
    path.write_text(text.replace("scale 24.125\n", ""))
    with pytest.raises(RecipeError, match="holds no valid 'scale' line"):
        calibration.read(path)
    assert calibration.calibration_path("exp/m/final.pt").as_posix() == "exp/m/final.calibration"


# ---- quality measures ---------------------------------------------------------------------------

def test_cohort_means_are_asnorms_top_n_means(tmp_path):
    import kaldiio
    rng = np.random.default_rng(9)
    ids = [f"u{i}" for i in range(6)]
    vectors = {i: rng.normal(size=8).astype(np.float32) for i in ids}
    cohort = rng.normal(size=(10, 8)).astype(np.float32)
    mean = rng.normal(size=8).astype(np.float32)
    kaldiio.save_ark(str(tmp_path / "e.ark"), vectors, scp=str(tmp_path / "e.scp"))
    kaldiio.save_ark(str(tmp_path / "c.ark"), {f"c{i}": v for i, v in enumerate(cohort)},
                     scp=str(tmp_path / "c.scp"))
    kaldiio.save_ark(str(tmp_path / "m.ark"), {"mean": mean}, scp=str(tmp_path / "m.scp"))
    got = calibration.cohort_means(ids, tmp_path / "e.scp", tmp_path / "e.scp",
                                   calibration.Cohort(str(tmp_path / "c.scp"), 4,
                                                      str(tmp_path / "m.scp")))
    for i in ids:
        v = vectors[i].astype(np.float64) - mean
        cos = cohort @ v / np.linalg.norm(cohort, axis=1) / np.linalg.norm(v)
        assert got[i] == pytest.approx(np.sort(cos)[-4:].mean(), abs=1e-6)
    # the measures of a trial: the smaller and the larger of its two sides'
    x = calibration.trial_features(("duration", "cohort_mean"), ["u0", "u1"], ["u1", "u2"],
                                   {"u0": 100, "u1": 400, "u2": 50}, got)
    np.testing.assert_allclose(x[0], [math.log(100), math.log(400), min(got["u0"], got["u1"]),
                                      max(got["u0"], got["u1"])])
    np.testing.assert_allclose(x[1, :2], [math.log(50), math.log(400)])


def test_frames_of_enrollment_models_are_summed(tmp_path):
    write_lines(tmp_path / "utt2num_frames", ["a 100", "b 300", "c 50"])
    write_lines(tmp_path / "spk2utt", ["model1 a b"])
    frames = calibration.read_frames([tmp_path / "utt2num_frames"], tmp_path / "spk2utt")
    assert frames == {"a": 100, "b": 300, "c": 50, "model1": 400}
    with pytest.raises(RecipeError, match="does not exist; the duration measure needs"):
        calibration.read_frames([tmp_path / "none"])


# ---- calibrate_scores end to end ----------------------------------------------------------------

def write_list(folder, utt2spk, trials, scores, frames):
    """A trial set's folder: trials, utt2spk, utt2num_frames beside them, and a scores file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(folder / "trials", [f"{e} {t} {label}" for e, t, label in trials])
    write_lines(folder / "utt2spk", [f"{u} {s}" for u, s in sorted(utt2spk)])
    write_lines(folder / "utt2num_frames", [f"{u} {frames[u]}" for u, _ in sorted(utt2spk)])
    write_lines(folder / "list.scores",
                [f"{e} {t} {s:.6f}" for (e, t, _), s in zip(trials, scores)])


def synthetic_list(utt2spk, trials, seed):
    """Scores of a list whose LLR grows with the score and falls with the shorter side's
    duration; each utterance's frame count."""
    rng = np.random.default_rng(seed)
    frames = {u: int(rng.integers(150, 1500)) for u, _ in utt2spk}
    labels = np.array([label == "target" for *_, label in trials])
    shorter = np.array([min(frames[e], frames[t]) for e, t, _ in trials])
    scores = np.where(labels, 0.55, 0.15) + 0.02 * np.log(shorter / 500) * np.where(labels, 1, -1)
    return scores + rng.normal(0, 0.1, labels.size), frames, labels


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration")
    train = speakers(20, 2, 6)   # 36 cross-session target pairs per speaker
    cal_trials, _, _ = calibration.make_trials(train, num_trials=1400, seed=1)
    cal_scores, cal_frames, _ = synthetic_list(train, cal_trials, seed=2)
    write_list(root / "cal", train, cal_trials, cal_scores, cal_frames)
    test = speakers(15, 2, 4, prefix="id2")
    eval_trials, _, _ = calibration.make_trials(test, num_trials=1200, seed=5)
    scores, frames, labels = synthetic_list(test, eval_trials, seed=3)
    write_list(root / "vox1_o", test, eval_trials, scores, frames)
    return dict(root=root, cal_trials=cal_trials, cal_scores=cal_scores, cal_frames=cal_frames,
                trials=eval_trials, scores=scores, frames=frames, labels=labels, test=test)


def calibrate(root, *extra, name="vox1_o_cal"):
    return run_python(
        "-m", "pytorch_modules.bin.calibrate_scores", "--cal-trials", root / "cal/trials",
        "--cal-scores", root / "cal/list.scores", "--trials", root / "vox1_o/trials",
        "--scores", root / "vox1_o/list.scores",
        "--utt2num-frames", root / "vox1_o/utt2num_frames", "--bootstrap-replicates", "40",
        "--scores-out", root / f"{name}.scores", "--results-out", root / f"{name}.results",
        "--name", name, *extra)


def test_calibrate_scores_writes_llrs_and_their_metrics(lists):
    root = lists["root"]
    proc = calibrate(root, "--calibration-out", root / "final.calibration")
    assert proc.returncode == 0, proc.stderr
    cal = calibration.read(root / "final.calibration")
    assert (cal.backend, cal.groups, cal.prior) == ("cosine", ("duration",), 0.5)
    # the fit is the BOSARIS minimiser on the calibration list's scores (6 decimals) and measures
    cal_labels = np.array([label == "target" for *_, label in lists["cal_trials"]])
    cal_x = np.array([[math.log(min(lists["cal_frames"][e], lists["cal_frames"][t])),
                       math.log(max(lists["cal_frames"][e], lists["cal_frames"][t]))]
                      for e, t, _ in lists["cal_trials"]])
    cal_scores = np.round(lists["cal_scores"], 6)
    expected = bosaris_fit(np.column_stack([cal_scores, cal_x]), cal_labels, 0.5)
    np.testing.assert_allclose([cal.offset, cal.scale, *cal.weights], expected, atol=1e-3,
                               rtol=1e-4)
    # each LLR is the formula of the file applied to the trial's score and durations
    frames = lists["frames"]
    rows = [line.split() for line in (root / "vox1_o_cal.scores").read_text().splitlines()]
    assert [(e, t) for e, t, _ in rows] == [(e, t) for e, t, _ in lists["trials"]]
    llrs = np.array([float(s) for *_, s in rows])
    want = [cal.offset + cal.scale * round(s, 6)
            + cal.weights[0] * math.log(min(frames[e], frames[t]))
            + cal.weights[1] * math.log(max(frames[e], frames[t]))
            for (e, t, _), s in zip(lists["trials"], lists["scores"])]
    np.testing.assert_allclose(llrs, want, atol=2e-6)
    # the results: formulas on the written LLRs, intervals from the speaker bootstrap's draws
    results = read_table(root / "vox1_o_cal.results")
    labels = lists["labels"]
    tar, non = llrs[labels], llrs[~labels]
    cllr = 0.5 * (np.logaddexp(0, -tar).mean() + np.logaddexp(0, non).mean()) / math.log(2)
    assert float(results["cllr"]) == pytest.approx(cllr, abs=5e-5)
    for p in (0.01, 0.001):
        eta = math.log((1 - p) / p)
        act = (p * np.mean(tar < eta) + (1 - p) * np.mean(non >= eta)) / p
        assert float(results[f"act_dcf_p{p:g}"]) == pytest.approx(act, abs=5e-5)
    assert float(results["min_cllr"]) <= float(results["cllr"])
    assert (results["calibration_backend"], results["calibration_measures"],
            results["calibration_prior"], results["calibration_trials"]) == (
        "cosine", "log_frames_min,log_frames_max", "0.5", str(len(lists["cal_trials"])))
    speaker = dict(lists["test"])
    names = sorted(set(speaker.values()))
    enroll = np.array([names.index(speaker[e]) for e, _, _ in lists["trials"]])
    test = np.array([names.index(speaker[t]) for _, t, _ in lists["trials"]])
    cllrs = []
    for counts in bootstrap.draws(len(names), 40, bootstrap.DEFAULT_SEED):
        w = np.where(labels, counts[enroll], counts[enroll] * counts[test])
        if w[labels].sum() and w[~labels].sum():
            cllrs.append(0.5 * (np.logaddexp(0, -tar) @ w[labels] / w[labels].sum()
                                + np.logaddexp(0, non) @ w[~labels] / w[~labels].sum())
                         / math.log(2))
    low, high = np.percentile(cllrs, [2.5, 97.5])
    assert float(results["cllr_ci_low"]) == pytest.approx(low, abs=5e-5)
    assert float(results["cllr_ci_high"]) == pytest.approx(high, abs=5e-5)
    for key in ("act_dcf_p0.01", "act_dcf_p0.001", "min_cllr"):
        assert float(results[f"{key}_ci_low"]) <= float(results[key]) + 1e-4
        assert float(results[key]) <= float(results[f"{key}_ci_high"]) + 1e-4
    assert "Cllr " in proc.stdout and "actDCF(0.01) " in proc.stdout


def test_calibration_without_measures_leaves_the_ranking_alone(lists):
    root = lists["root"]
    proc = calibrate(root, "--quality-measures", "none", "--prior", "0.01", name="plain")
    assert proc.returncode == 0, proc.stderr
    results = read_table(root / "plain.results")
    from pytorch_modules.scoring.metrics import compute_eer, compute_min_dcf
    scores = np.round(lists["scores"], 6)
    assert float(results["eer_percent"]) == pytest.approx(
        100 * compute_eer(scores, lists["labels"])[0], abs=1e-4)
    assert float(results["min_dcf_p0.01"]) == pytest.approx(
        compute_min_dcf(scores, lists["labels"], 0.01)[0], abs=1e-4)
    assert results["calibration_prior"] == "0.01"


def test_calibrate_scores_errors_are_sentences(lists, tmp_path):
    root = lists["root"]
    (tmp_path / "frames").write_text("nobody 10\n")
    proc = run_python(
        "-m", "pytorch_modules.bin.calibrate_scores", "--cal-trials", root / "cal/trials",
        "--cal-scores", root / "cal/list.scores", "--trials", root / "vox1_o/trials",
        "--scores", root / "vox1_o/list.scores", "--utt2num-frames", tmp_path / "frames",
        "--scores-out", tmp_path / "s", "--results-out", tmp_path / "r")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "has no frame count; give the utt2num_frames" in proc.stderr
    # scores of two back-ends
    (tmp_path / "cal.scores").write_text((root / "cal/list.scores").read_text())
    (tmp_path / "cal.results").write_text("name calibration\ncohort_size 20\ntop_n 20\n"
                                          "mean_subtracted true\n")
    (tmp_path / "ev.scores").write_text((root / "vox1_o/list.scores").read_text())
    (tmp_path / "ev.results").write_text("name vox1_o\n")
    proc = run_python(
        "-m", "pytorch_modules.bin.calibrate_scores", "--cal-trials", root / "cal/trials",
        "--cal-scores", tmp_path / "cal.scores", "--trials", root / "vox1_o/trials",
        "--scores", tmp_path / "ev.scores", "--utt2num-frames", root / "vox1_o/utt2num_frames",
        "--scores-out", tmp_path / "s", "--results-out", tmp_path / "r")
    assert proc.returncode == 1 and "were scored by different back-ends" in proc.stderr
    assert not (tmp_path / "s").exists()


def test_steps_calibrate_scores_sh(lists, tmp_path):
    """The step script: <name>_cal.{scores,results} in the scores dir, fitted on
    <cal-name>.scores, equal to the entry point's."""
    root = lists["root"]
    recipe = scratch_recipe(tmp_path / "recipe")
    scores_dir = recipe / "exp/m/scores"
    scores_dir.mkdir(parents=True)
    (scores_dir / "calibration.scores").write_text((root / "cal/list.scores").read_text())
    (scores_dir / "vox1_o.scores").write_text((root / "vox1_o/list.scores").read_text())
    proc = subprocess.run(["steps/calibrate_scores.sh",
                           "--calibration-out", "exp/m/final.calibration",
                           str(root / "cal"), str(root / "vox1_o/trials"),
                           str(root / "vox1_o/utt2num_frames"), "exp/m/scores"],
                          cwd=recipe, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert (scores_dir / "vox1_o_cal.scores").is_file()
    direct = calibrate(root, name="direct")
    assert direct.returncode == 0, direct.stderr
    assert ((scores_dir / "vox1_o_cal.scores").read_text()
            == (root / "direct.scores").read_text())
    results = read_table(scores_dir / "vox1_o_cal.results")
    assert results["name"] == "vox1_o_cal" and results["bootstrap_replicates"] == "1000"
    assert calibration.read(recipe / "exp/m/final.calibration").groups == ("duration",)
    proc = subprocess.run(["steps/calibrate_scores.sh", "--name", "vox1_o_asnorm",
                           str(root / "cal"), str(root / "vox1_o/trials"),
                           str(root / "vox1_o/utt2num_frames"), "exp/m/scores"],
                          cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "exp/m/scores/calibration_asnorm.scores does not exist" in proc.stderr


def test_results_table_adds_the_calibrated_columns(lists, tmp_path):
    """A table with calibrated rows gains actDCF, Cllr and minCllr; the uncalibrated rows show
    '-' there; local/make_results_md.sh explains them under the table."""
    root = lists["root"]
    proc = calibrate(root, name="vox1_o_cal")
    assert proc.returncode == 0, proc.stderr
    cosine = tmp_path / "vox1_o.results"
    cosine.write_text("name vox1_o\ntrials 1200\neer_percent 5.0000\nmin_dcf_p0.01 0.5000\n"
                      "min_dcf_p0.001 0.7000\neer_kaldi_percent 5.0000\n")
    calibrated = root / "vox1_o_cal.results"
    proc = run_python("-m", "pytorch_modules.bin.results_table", cosine, calibrated)
    assert proc.returncode == 0, proc.stderr
    header, _, row_cos, row_cal = proc.stdout.splitlines()
    assert header.endswith("| minDCF(0.001) | actDCF(0.01) [95% CI] | actDCF(0.001) | "
                           "Cllr [95% CI] | minCllr [95% CI] |")
    assert row_cos.endswith("| 0.7000 | - | - | - | - |")
    r = read_table(calibrated)
    assert row_cal.endswith(
        f"| {r['act_dcf_p0.01']} [{r['act_dcf_p0.01_ci_low']}, {r['act_dcf_p0.01_ci_high']}] | "
        f"{r['act_dcf_p0.001']} | {r['cllr']} [{r['cllr_ci_low']}, {r['cllr_ci_high']}] | "
        f"{r['min_cllr']} [{r['min_cllr_ci_low']}, {r['min_cllr_ci_high']}] |")
    recipe = scratch_recipe(tmp_path / "recipe")
    (recipe / "exp/m").mkdir(parents=True)
    proc = subprocess.run(["local/make_results_md.sh", "exp/m", str(cosine), str(calibrated)],
                          cwd=recipe, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = (recipe / "exp/m/results.md").read_text()
    assert "actDCF, Cllr, minCllr: of the calibrated rows (*_cal)" in text
    assert "| - | - | - | - | - |" in text   # the paper column too

"""The classical baselines: MFCC front-end (VAD, sliding CMN), GMM-UBM supervectors, i-vectors,
the LDA and PLDA back-ends on them, their settings, and their entry point."""
import dataclasses
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch
import torchaudio
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from pytorch_modules.features.mfcc import (
    Mfcc,
    MfccOptions,
    parse_mfcc_options,
    sliding_mean_normalise,
    voiced_frames,
)
from pytorch_modules.features.spectrogram import FeatureConfigError
from pytorch_modules.models import classical
from pytorch_modules.scoring.metrics import compute_eer
from pytorch_modules.scoring.plda import PldaBackend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- MFCC front-end ---------------------------------------------------------------------------

def test_vad_keeps_frames_with_enough_energetic_neighbours():
    # threshold = 5.5 + 0.5 * mean(c0); c0 = [0]*6 + [20]*2 + [0]*6: mean 40/14 = 2.857,
    # threshold 6.93; frames 6 and 7 are above.  Context 2 (windows of 5, truncated at the
    # edges), proportion 0.12: a frame is voiced when at least 0.6 of its window (so one frame)
    # is above -> frames 4..9.
    c0 = np.array([0.0] * 6 + [20.0] * 2 + [0.0] * 6)
    voiced = voiced_frames(c0, MfccOptions())
    assert np.flatnonzero(voiced).tolist() == [4, 5, 6, 7, 8, 9]
    # With proportion 0.5 a frame needs 3 of its 5 neighbours above: none has.
    assert not voiced_frames(c0, MfccOptions(vad_proportion_threshold=0.5)).any()


def test_sliding_mean_is_the_mean_of_a_centred_window_kept_inside_the_utterance():
    x = np.random.default_rng(0).normal(size=(20, 3))
    out = sliding_mean_normalise(x, 6)
    for t in range(20):
        start = min(max(t - 3, 0), 20 - 6)
        np.testing.assert_allclose(out[t], x[t] - x[start:start + 6].mean(axis=0))
    # Shorter than the window: the whole utterance's mean.
    np.testing.assert_allclose(sliding_mean_normalise(x[:4], 6), x[:4] - x[:4].mean(axis=0))


def burst_between_pauses(seconds=1.0, rate=16000):
    """1 s of quiet noise, 1 s of loud noise (60 dB above), 1 s of quiet noise."""
    rng = np.random.default_rng(1)
    n = int(seconds * rate)
    quiet = 1e-4 * rng.normal(size=n)
    loud = 0.1 * rng.normal(size=n)
    return np.concatenate([quiet, loud, quiet]).astype(np.float32)


def test_mfcc_keeps_the_voiced_frames_with_deltas():
    o = MfccOptions()
    feats = Mfcc(o)(burst_between_pauses())
    assert feats.shape[1] == 3 * o.num_ceps
    # About the 100 frames of the loud second (the VAD's context adds a few at each edge).
    assert 95 <= len(feats) <= 110
    # The static part is torchaudio's Kaldi MFCC on the kept frames.
    samples = torch.from_numpy(burst_between_pauses())[None] * 32768
    static = torchaudio.compliance.kaldi.mfcc(
        samples, num_mel_bins=30, num_ceps=24, low_freq=20, high_freq=7600, snip_edges=False,
        dither=0.0, energy_floor=0.0, use_energy=True).numpy().astype(np.float64)
    kept = voiced_frames(static[:, 0], o)
    np.testing.assert_allclose(feats[:, :24], static[kept], rtol=1e-5, atol=1e-4)


def test_mfcc_config_errors_name_the_problem(tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("--num-mel-bins=20\n--num-ceps=24\n")
    with pytest.raises(FeatureConfigError, match="--num-ceps \\(24\\) cannot exceed"):
        parse_mfcc_options(conf)
    conf.write_text("--num-cepstra=24\n")
    with pytest.raises(FeatureConfigError, match=f"{conf}:1: unknown option --num-cepstra"):
        parse_mfcc_options(conf)


def test_the_shipped_mfcc_config_is_kaldis_voxceleb_v1():
    o = parse_mfcc_options(os.path.join(REPO, "conf/mfcc.conf"))
    assert (o.num_mel_bins, o.num_ceps, o.low_freq, o.high_freq, o.frame_length) == \
        (30, 24, 20, 7600, 25)


# -- GMM-UBM and LDA ----------------------------------------------------------------------------

def test_the_supervector_of_a_one_gaussian_ubm_is_the_shrunk_normalised_mean_shift():
    frames = np.random.default_rng(2).normal(loc=3.0, size=(40, 2))
    ubm = classical.GaussianMixture(1, covariance_type="diag").fit(
        np.random.default_rng(3).normal(size=(500, 2)))
    r = 10.0
    alpha = 40 / (40 + r)
    expected = alpha * (frames.mean(axis=0) - ubm.means_[0]) / np.sqrt(ubm.covariances_[0])
    np.testing.assert_allclose(classical.supervector(frames, ubm, r), expected)


def test_frame_sample_is_seeded_and_takes_about_the_asked_number():
    feats = [np.full((n, 2), float(n)) for n in (100, 300, 600)]
    a = classical.frame_sample(feats, 250, seed=1)
    assert 200 < len(a) < 300
    np.testing.assert_array_equal(a, classical.frame_sample(feats, 250, seed=1))
    assert len(classical.frame_sample(feats, 5000, seed=1)) == 1000   # all when fewer


def speaker_frames(num_speakers, utts, rng, dims=8, frames=150):
    """MFCC-like frames that only the right method tells apart.  Speaker s: a weak mean mu_s
    (sd 0.3) and, in dims 3-7, frames drawn from two modes at +-b_s (b_s sd 2): the speaker
    shows in the frames' spread and shape more than in their mean.  Each utterance (session)
    adds a channel offset (sd 3) and a gain (log sd 0.5) to dims 0-2 and a mean jitter (sd 0.3)
    to every dim, and 30% of its frames are background noise around a centre of its own (sd 4
    in dims 0-2): nuisances larger than the speaker differences, which only a projection
    fitted on the training speakers' within-speaker variation (the LDA) removes."""
    feats, speakers = [], []
    for s in range(num_speakers):
        mu = rng.normal(scale=0.3, size=dims)
        b = np.zeros(dims)
        b[3:] = rng.normal(scale=2.0, size=dims - 3)
        for _ in range(utts):
            offset, gain, noise_centre = np.zeros(dims), np.ones(dims), np.zeros(dims)
            offset[:3] = rng.normal(scale=3.0, size=3)
            jitter = rng.normal(scale=0.3, size=dims)
            gain[:3] = np.exp(rng.normal(scale=0.5, size=3))
            mode = rng.choice([-1.0, 1.0], size=(frames, 1))
            f = mu + offset + jitter + gain * (mode * b + rng.normal(size=(frames, dims)))
            noise = rng.random(frames) < 0.3
            noise_centre[:3] = rng.normal(scale=4.0, size=3)
            f[noise] = offset + noise_centre + 0.5 * rng.normal(size=(noise.sum(), dims))
            feats.append(f)
            speakers.append(f"spk{s}")
    return feats, speakers


def cosine_eer(vectors, speakers):
    """EER of every pair of rows scored by cosine (the test's own scoring)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    i, j = np.triu_indices(len(speakers), 1)
    labels = np.array([speakers[a] == speakers[b] for a, b in zip(i, j)], dtype=int)
    return compute_eer((unit @ unit.T)[i, j], labels)[0]


def stats(feats):
    return np.stack([np.concatenate([f.mean(axis=0), f.std(axis=0)]) for f in feats])


def settings(system, **changes):
    """The shipped settings of `system` (conf/classical.yaml), sized down for the tests."""
    return dataclasses.replace(classical.load_settings()[system], **changes)


def plda_eer(train, train_speakers, test, test_speakers):
    """EER of every pair of test rows scored by the PLDA back-end of stage 5 (steps/score_plda.sh)
    trained on the training rows."""
    backend = PldaBackend.fit(train, train_speakers)
    u = backend.prepare(test)
    n = len(u)
    llr = backend.plda.llr(np.repeat(u, n, axis=0), 1, np.tile(u, (n, 1))).reshape(n, n)
    i, j = np.triu_indices(n, 1)
    labels = np.array([test_speakers[a] == test_speakers[b] for a, b in zip(i, j)], dtype=int)
    return compute_eer(llr[i, j], labels)[0]


# The small systems of the tests (8 Gaussians, 5,000 UBM frames).
SMALL = {"mfcc_stats_lda": {},
         "gmm_ubm": dict(num_gauss=8, ubm_frames=5000, pca_dim=40),
         "ivector": dict(num_gauss=8, ubm_frames=20000, ivector_dim=10)}


@pytest.mark.parametrize("system", ["mfcc_stats_lda", "gmm_ubm"])
def test_each_system_separates_unseen_speakers_where_wrong_methods_do_not(system):
    """20 training and 10 unseen test speakers (780 trials, 60 of them target) of
    speaker_frames, each system with its cosine back-end (its own LDA).  The wrong methods are
    computed here with numpy and scikit-learn: cosine of the system's own input vectors
    (utterance mean+std, or GMM supervectors) without the LDA, a random projection of them to
    the LDA's size, and (mean+std) an LDA of the MFCC means alone.  Over data seeds 4-11 (this
    test uses 4): mfcc_stats_lda 0-4.7%, its wrong methods 33-49%; gmm_ubm 1.7-8.6%, its wrong
    methods 13.6-36%.  Hence < 10% for each system, > 25% and > 12% for the wrong methods."""
    rng = np.random.default_rng(4)
    train, train_spk = speaker_frames(20, 6, rng)
    test, test_spk = speaker_frames(10, 4, rng)
    o = settings(system, backend="cosine", cmn_window=0 if system == "mfcc_stats_lda" else 300,
                 **SMALL[system])
    vectors = classical.train_and_embed(system, train, train_spk, {"test": test}, o,
                                        log=lambda m: None)
    emb = vectors["test"]
    dim = min(o.lda_dim, 20 - 1, 16 if system == "mfcc_stats_lda" else o.pca_dim)
    assert emb.shape == (40, dim) and vectors[None].shape == (120, dim)
    assert cosine_eer(emb, test_spk) < 0.10

    # The wrong methods, on the vectors the system projects: utterance statistics, or the
    # supervectors of a UBM fitted as the system fits it (mean-normalised frames).
    if system == "mfcc_stats_lda":
        x_train, x_test = stats(train), stats(test)
        means_only = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(
            x_train[:, :8] - x_train[:, :8].mean(axis=0), train_spk)
        wrong = {"LDA of the means alone": means_only.transform(
            x_test[:, :8] - x_train[:, :8].mean(axis=0))}
    else:
        cmn = [sliding_mean_normalise(f, o.cmn_window) for f in train]
        ubm = classical.fit_ubm(classical.frame_sample(cmn, o.ubm_frames, o.seed), o.num_gauss,
                                o.ubm_iterations, o.seed)
        x_train, x_test = (np.stack([classical.supervector(sliding_mean_normalise(
            f, o.cmn_window), ubm, o.relevance) for f in feats]) for feats in (train, test))
        wrong = {}
    centred = x_test - x_train.mean(axis=0)
    wrong["cosine without the LDA"] = centred
    wrong["a random projection"] = centred @ np.random.default_rng(0).normal(
        size=(centred.shape[1], dim))
    floor = 0.25 if system == "mfcc_stats_lda" else 0.12
    for name, vectors in wrong.items():
        assert cosine_eer(vectors, test_spk) > floor, name


def test_gmm_ubm_with_the_plda_backend_writes_pca_vectors_that_plda_separates():
    """gmm_ubm's shipped back-end: its supervectors reduced by the PCA (not its LDA), which the
    stage-5 PLDA separates (seeds 4-7: 0.6-5.0%; the same vectors by cosine: 18-33%)."""
    rng = np.random.default_rng(4)
    train, train_spk = speaker_frames(20, 6, rng)
    test, test_spk = speaker_frames(10, 4, rng)
    o = settings("gmm_ubm", **SMALL["gmm_ubm"])
    assert o.backend == "plda"
    vectors = classical.train_and_embed("gmm_ubm", train, train_spk, {"test": test}, o,
                                        log=lambda m: None)
    assert vectors["test"].shape == (40, 40) and vectors[None].shape == (120, 40)
    # centred PCA coordinates: the training vectors' mean is 0
    np.testing.assert_allclose(vectors[None].mean(axis=0), 0, atol=1e-4)
    assert plda_eer(vectors[None], train_spk, vectors["test"], test_spk) < 0.10
    assert cosine_eer(vectors["test"], test_spk) > 0.15


def factor_frames(num_speakers, utts, rng, frames=300, dims=6, comps=8):
    """Frames of the model that i-vectors and PLDA are made for: 8 well-separated Gaussians
    (means sd 8, unit variance) whose means move per utterance by V_c y (speaker y ~ N(0, I_2))
    plus 2 U_c x (session x ~ N(0, I_2)), V_c and U_c fixed random and zero-mean over the
    Gaussians, so that neither moves the utterance's mean: the speaker shows only in where
    each Gaussian sits, under session shifts twice as large."""
    fixed = np.random.default_rng(123)
    mu = fixed.normal(scale=8.0, size=(comps, dims))
    v = fixed.normal(size=(comps, dims, 2))
    u = fixed.normal(size=(comps, dims, 2))
    v, u = v - v.mean(axis=0), u - u.mean(axis=0)
    feats, speakers = [], []
    for s in range(num_speakers):
        y = rng.normal(size=2)
        for _ in range(utts):
            means = mu + v @ y + 2.0 * u @ rng.normal(size=2)
            component = rng.integers(0, comps, size=frames)
            feats.append(means[component] + rng.normal(size=(frames, dims)))
            speakers.append(f"spk{s}")
    return feats, speakers


def test_ivectors_with_plda_separate_speakers_that_move_the_gaussians():
    """40 training and 10 test speakers of factor_frames (780 test trials, 60 target).  The
    i-vector system (8 Gaussians, 10-d i-vectors, no CMN) with the stage-5 PLDA separates
    them; cosine of its raw i-vectors (session dominates) and the PLDA on the utterances' MFCC
    mean+std (the speaker leaves the mean alone) do not.  Seeds 4-8: 3.6-7.5% against
    23-35% and 25-27%."""
    rng = np.random.default_rng(4)
    train, train_spk = factor_frames(40, 6, rng)
    test, test_spk = factor_frames(10, 4, rng)
    o = settings("ivector", cmn_window=0, **SMALL["ivector"])
    vectors = classical.train_and_embed("ivector", train, train_spk, {"test": test}, o,
                                        log=lambda m: None)
    assert vectors["test"].shape == (40, 10) and vectors[None].shape == (240, 10)
    assert plda_eer(vectors[None], train_spk, vectors["test"], test_spk) < 0.12
    assert cosine_eer(vectors["test"] - vectors[None].mean(axis=0), test_spk) > 0.20
    assert plda_eer(stats(train), train_spk, stats(test), test_spk) > 0.20
    # T trained on a random 100 of the 240 training utterances: every utterance still gets
    # its i-vector.
    notes = []
    subset = classical.train_and_embed("ivector", train, train_spk, {"test": test},
                                       dataclasses.replace(o, tv_utts=100), log=notes.append)
    assert subset[None].shape == (240, 10) and subset["test"].shape == (40, 10)
    assert "total variability: 10-d, trained on the statistics of 100 training utterances" \
        in notes


def hard_gmm(rng, comps=3, dims=2):
    """A full-covariance GMM whose components lie so far apart (about 100 sd) that every
    frame's posterior is 0 or 1, fitted by scikit-learn; a frame sampler of it (shifts: an
    offset of each of its components' means); and the Cholesky factors of its covariances."""
    means = 100.0 * rng.normal(size=(comps, dims))
    chol = [np.tril(0.5 * rng.normal(size=(dims, dims)), -1) + np.diag(rng.uniform(1, 2, dims))
            for _ in range(comps)]
    def sample(n, shifts=None):
        c = rng.integers(0, comps, size=n)
        z = rng.normal(size=(n, dims))
        x = means[c] + np.einsum("nij,nj->ni", np.array(chol)[c], z)
        if shifts is not None:
            x += shifts[c]
        return x, c
    ubm = classical.GaussianMixture(comps, covariance_type="full", random_state=0).fit(
        sample(3000)[0])
    return ubm, sample, np.array(chol)


def test_the_ivector_is_the_posterior_mean_of_w_given_the_frames():
    """With hard alignments, frames x_t of Gaussian c_t ~ N(mu_c + A_c w, Sigma_c), A_c =
    chol(Sigma_c) T_c (T in the whitened space) and w ~ N(0, I) give the posterior
    precision I + sum_t A_c' Sigma_c^-1 A_c and mean precision^-1 sum_t A_c' Sigma_c^-1
    (x_t - mu_c); computed here frame by frame from the UBM's covariances, against the
    statistics and extraction of classical.py."""
    rng = np.random.default_rng(0)
    ubm, sample, _ = hard_gmm(rng)
    model = classical.TotalVariability(3, 2, 4, seed=1)
    utterances = [sample(int(n))[0] for n in (5, 40, 200)]
    zeroth, first = classical.baum_welch_stats(utterances, ubm)
    ivectors = model.extract(zeroth, first)
    for frames, ivector in zip(utterances, ivectors):
        c = ubm.predict(frames)
        precision, linear = np.eye(4), np.zeros(4)
        for x, k in zip(frames, c):
            sigma = ubm.covariances_[k]
            a = np.linalg.cholesky(sigma) @ model.t[k]
            precision += a.T @ np.linalg.solve(sigma, a)
            linear += a.T @ np.linalg.solve(sigma, x - ubm.means_[k])
        np.testing.assert_allclose(ivector, np.linalg.solve(precision, linear), rtol=1e-4,
                                   atol=1e-5)
    np.testing.assert_allclose(zeroth.sum(axis=1), [5, 40, 200])


def test_total_variability_em_finds_the_subspace_the_utterances_were_drawn_from():
    """300 utterances of 30 frames of a 6-Gaussian, 8-dimensional UBM whose Gaussians move by
    chol(Sigma_c) T_c w with a random T (R = 2) and w ~ N(0, I).  After 10 EM iterations from
    a random start the i-vectors predict the true w almost perfectly (R^2 of a linear fit
    > 0.99; from the untrained start, a random 2-d view of the 48-d statistics, 0.49; over
    data seeds 2-4: 0.995-0.996 against 0.49-0.64),
    and minimum divergence has made their prior standard: the posterior means average 0 and
    their second moment (with the posterior covariances) is I."""
    rng = np.random.default_rng(2)
    ubm, sample, chol = hard_gmm(rng, comps=6, dims=8)
    true_t = rng.normal(size=(6, 8, 2))
    w = rng.normal(size=(300, 2))
    utterances = [sample(30, np.einsum("cij,cjr,r->ci", chol, true_t, wu))[0] for wu in w]
    zeroth, first = classical.baum_welch_stats(utterances, ubm)

    def r2(ivectors):
        x = np.hstack([ivectors, np.ones((len(w), 1))])
        fit = x @ np.linalg.lstsq(x, w, rcond=None)[0]
        return 1 - np.sum((w - fit) ** 2) / np.sum((w - w.mean(axis=0)) ** 2)

    model = classical.TotalVariability(6, 8, 2, seed=5)
    before = r2(model.extract(zeroth, first))
    model.train(zeroth, first, 10, log=lambda m: None)
    after = model.extract(zeroth, first)
    assert before < 0.6 and r2(after) > 0.99
    np.testing.assert_allclose(after.mean(axis=0), 0, atol=0.05)
    _, cov, _ = model._posterior(zeroth, first.astype(np.float64), model._precision_terms(),
                                 covariance=True)
    second = (cov + after[:, :, None] * after[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(second, np.eye(2), atol=0.05)


def test_the_ubm_is_made_smaller_when_the_frames_cannot_fit_it():
    notes = []
    assert classical.ubm_size(5000, 1024, notes.append) == 500
    assert notes == ["note: 5000 training frames fit a UBM of 500 Gaussians, not 1024 (at "
                     "least 10 frames each)"]
    assert classical.ubm_size(500_000, 1024, notes.append) == 1024 and len(notes) == 1
    with pytest.raises(classical.RecipeError, match="needs at least 1280 training frames"):
        classical.fit_ubm(np.zeros((100, 3)), 128, 20, 0)
    with pytest.raises(classical.RecipeError, match="a UBM needs at least 20 training frames"):
        classical.ubm_size(19, 8)


# -- settings -------------------------------------------------------------------------------------

def test_the_shipped_settings_files_differ_only_in_the_cmn_of_the_gmm_systems():
    kaldi = classical.load_settings(os.path.join(REPO, "conf/classical.yaml"))
    sitting = classical.load_settings(os.path.join(REPO, "conf/classical_one_sitting.yaml"))
    assert set(kaldi) == set(sitting) == set(classical.SYSTEMS)
    for system in classical.SYSTEMS:
        cmn = (kaldi[system].cmn_window, sitting[system].cmn_window)
        assert cmn == ((0, 0) if system == "mfcc_stats_lda" else (300, 0)), system
        assert dataclasses.replace(kaldi[system], cmn_window=0) == sitting[system], system
    assert (kaldi["ivector"].backend, kaldi["gmm_ubm"].backend,
            kaldi["mfcc_stats_lda"].backend) == ("plda", "plda", "cosine")


def test_settings_errors_name_the_file_and_key(tmp_path):
    text = open(os.path.join(REPO, "conf/classical.yaml")).read()
    path = tmp_path / "c.yaml"
    for change, message in [
            (("full_covariance:", "num_gaus: 3\n  full_covariance:"),
             "unknown key ivector.num_gaus"),
            (("  ivector_dim: 200 ", "  # "), "ivector.ivector_dim is missing"),
            (("ivector_dim: 200 ", "ivector_dim: 0 "), "ivector.ivector_dim takes 1 or more"),
            (("full_covariance: false", "full_covariance: 1"),
             "ivector.full_covariance takes true or false"),
            (("  backend: cosine", "  backend: svm"),
             "mfcc_stats_lda.backend takes cosine or plda"),
            (("relevance: 16.0", "relevance: -1"), "gmm_ubm.relevance takes a number above 0")]:
        assert change[0] in text, change
        path.write_text(text.replace(change[0], change[1], 1))
        with pytest.raises(classical.RecipeError, match=f"^{path}: {message}"):
            classical.load_settings(path)
    path.write_text(text + "svm:\n  c: 1\n")
    with pytest.raises(classical.RecipeError, match="unknown system 'svm'"):
        classical.load_settings(path)


# -- the entry point ------------------------------------------------------------------------------

def write_mfcc_dir(path, feats, speakers, prefix):
    path.mkdir(parents=True)
    ids = [f"{spk}-{prefix}{i:03d}" for i, spk in enumerate(speakers)]
    order = np.argsort(ids)
    with kaldiio.WriteHelper(f"ark,scp:{path}/feats.ark,{path}/feats.scp") as w:
        for i in order:
            w(ids[i], feats[i].astype(np.float32))
    (path / "utt2spk").write_text("".join(f"{ids[i]} {speakers[i]}\n" for i in order))
    return [ids[i] for i in order]


def run_entry_point(*args):
    return subprocess.run(
        [sys.executable, "-m", "pytorch_modules.bin.classical_baseline", *map(str, args)],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"})


def test_the_entry_point_writes_scoreable_embeddings_per_set_and_the_backend(tmp_path):
    rng = np.random.default_rng(5)
    train, train_spk = speaker_frames(20, 6, rng)
    test, test_spk = speaker_frames(10, 4, rng)
    train_ids = write_mfcc_dir(tmp_path / "train_mfcc", train, train_spk, "a")
    ids = write_mfcc_dir(tmp_path / "eval_mfcc", test, test_spk, "b")
    proc = run_entry_point("--system", "mfcc_stats_lda", tmp_path / "train_mfcc",
                           tmp_path / "exp", tmp_path / "eval_mfcc")
    assert proc.returncode == 0, proc.stderr
    vectors = dict(kaldiio.load_scp(str(tmp_path / "exp/embeddings_eval/xvector.scp")))
    assert sorted(vectors) == ids and {v.shape for v in vectors.values()} == {(16,)}
    train_vectors = kaldiio.load_scp(str(tmp_path / "exp/embeddings_train/xvector.scp"))
    assert sorted(train_vectors) == train_ids
    assert (tmp_path / "exp/backend").read_text() == "cosine\n"
    assert "wrote 16-d embeddings of train, eval" in proc.stdout
    # What was written is the projection that tells these speakers apart (see the test
    # above: wrong methods give over 25%), each vector under its own utterance's id.
    assert cosine_eer(np.stack([vectors[u] for u in ids]), [u.split("-")[0] for u in ids]) < 0.10


def test_the_entry_point_prints_the_settings_it_would_use(tmp_path):
    proc = run_entry_point("--system", "ivector", "--print-settings")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == classical.describe(classical.load_settings()["ivector"]) + "\n"
    assert proc.stdout.startswith("backend=plda num_gauss=256 full_covariance=False ")


def test_the_entry_point_names_a_data_dir_without_mfccs(tmp_path):
    (tmp_path / "train_mfcc").mkdir()
    proc = run_entry_point("--system", "gmm_ubm", tmp_path / "train_mfcc", tmp_path / "exp",
                           tmp_path / "eval")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path}/train_mfcc/feats.scp does not exist; run steps/make_mfcc.sh" in proc.stderr

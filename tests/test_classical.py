"""The classical baselines: MFCC front-end (VAD, sliding CMN), GMM-UBM supervectors, the LDA
systems, and their entry point."""
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch
import torchaudio
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from pytorch_modules.models import classical
from pytorch_modules.features.spectrogram import FeatureConfigError
from pytorch_modules.scoring.metrics import compute_eer
from pytorch_modules.features.mfcc import (Mfcc, MfccOptions, parse_mfcc_options,
                                           sliding_mean_normalise, voiced_frames)

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


@pytest.mark.parametrize("system", classical.SYSTEMS)
def test_each_system_separates_unseen_speakers_where_wrong_methods_do_not(system):
    """20 training and 10 unseen test speakers (780 trials, 60 of them target) of
    speaker_frames.  The wrong methods are computed here with numpy and scikit-learn: cosine
    of the system's own input vectors (utterance mean+std, or GMM supervectors) without the
    LDA, a random projection of them to the LDA's size, and (mean+std) an LDA of the MFCC
    means alone.  Over data seeds 4-11 (this test uses 4): mfcc_stats_lda 0-4.7%, its wrong
    methods 33-49%; gmm_ubm 1.7-8.6%, its wrong methods 13.6-36%.  Hence < 10% for each
    system, > 25% and > 12% for the wrong methods."""
    rng = np.random.default_rng(4)
    train, train_spk = speaker_frames(20, 6, rng)
    test, test_spk = speaker_frames(10, 4, rng)
    o = classical.Options(num_gauss=8, ubm_frames=5000, pca_dim=40)
    emb = classical.train_and_embed(system, train, train_spk, {"test": test}, o,
                                    log=lambda m: None)["test"]
    dim = min(o.lda_dim, 20 - 1, 16 if system == "mfcc_stats_lda" else o.pca_dim)
    assert emb.shape == (40, dim)
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
        ubm = classical.fit_ubm(classical.frame_sample(cmn, o.ubm_frames, o.seed), o)
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


def test_a_ubm_with_too_few_frames_is_refused_with_the_way_out():
    with pytest.raises(classical.RecipeError, match="needs at least 1280 training frames"):
        classical.fit_ubm(np.zeros((100, 3)), classical.Options(num_gauss=128))


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


def test_the_entry_point_writes_scoreable_embeddings_per_evaluation_set(tmp_path):
    rng = np.random.default_rng(5)
    train, train_spk = speaker_frames(20, 6, rng)
    test, test_spk = speaker_frames(10, 4, rng)
    write_mfcc_dir(tmp_path / "train_mfcc", train, train_spk, "a")
    ids = write_mfcc_dir(tmp_path / "eval_mfcc", test, test_spk, "b")
    proc = subprocess.run(
        [sys.executable, "-m", "pytorch_modules.bin.classical_baseline", "--system",
         "mfcc_stats_lda", str(tmp_path / "train_mfcc"), str(tmp_path / "exp"),
         str(tmp_path / "eval_mfcc")], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr
    scp = tmp_path / "exp/embeddings_eval/xvector.scp"
    vectors = dict(kaldiio.load_scp(str(scp)))
    assert sorted(vectors) == ids and {v.shape for v in vectors.values()} == {(16,)}
    assert "wrote 16-d embeddings of eval" in proc.stdout
    # What was written is the projection that tells these speakers apart (see the test
    # above: wrong methods give over 25%), each vector under its own utterance's id.
    assert cosine_eer(np.stack([vectors[u] for u in ids]), [u.split("-")[0] for u in ids]) < 0.10


def test_the_entry_point_names_a_data_dir_without_mfccs(tmp_path):
    (tmp_path / "train_mfcc").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pytorch_modules.bin.classical_baseline", "--system", "gmm_ubm",
         str(tmp_path / "train_mfcc"), str(tmp_path / "exp"), str(tmp_path / "eval")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path}/train_mfcc/feats.scp does not exist; run steps/make_mfcc.sh" in proc.stderr

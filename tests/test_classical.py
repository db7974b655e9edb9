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


def speaker_frames(num_speakers, utts, rng, dims=6):
    """MFCC-like frames: each speaker a mixture of two Gaussians of its own."""
    centres = rng.normal(scale=2.0, size=(num_speakers, 2, dims))
    feats, speakers = [], []
    for s in range(num_speakers):
        for _ in range(utts):
            which = rng.integers(0, 2, size=80)
            feats.append(centres[s, which] + rng.normal(size=(80, dims)))
            speakers.append(f"spk{s}")
    return feats, speakers


@pytest.mark.parametrize("system", classical.SYSTEMS)
def test_each_system_separates_speakers_it_was_not_trained_on(system):
    rng = np.random.default_rng(4)
    train, train_spk = speaker_frames(12, 6, rng)
    test, test_spk = speaker_frames(6, 4, rng)
    o = classical.Options(num_gauss=4, ubm_frames=5000, pca_dim=40)
    emb = classical.train_and_embed(system, train, train_spk, {"test": test}, o,
                                    log=lambda m: None)["test"]
    assert emb.shape == (24, min(o.lda_dim, 11))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    scores, labels = [], []
    for i in range(24):
        for j in range(i + 1, 24):
            scores.append(unit[i] @ unit[j])
            labels.append(int(test_spk[i] == test_spk[j]))
    # Chance is 50%; speakers this distinct are told apart almost always.
    assert compute_eer(np.array(scores), np.array(labels))[0] < 0.1


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
    train, train_spk = speaker_frames(8, 5, rng)
    test, test_spk = speaker_frames(3, 3, rng)
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
    assert sorted(vectors) == ids and {v.shape for v in vectors.values()} == {(7,)}
    assert "wrote 7-d embeddings of eval" in proc.stdout


def test_the_entry_point_names_a_data_dir_without_mfccs(tmp_path):
    (tmp_path / "train_mfcc").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pytorch_modules.bin.classical_baseline", "--system", "gmm_ubm",
         str(tmp_path / "train_mfcc"), str(tmp_path / "exp"), str(tmp_path / "eval")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path}/train_mfcc/feats.scp does not exist; run steps/make_mfcc.sh" in proc.stderr

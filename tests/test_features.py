"""The log spectrogram against torchaudio's Kaldi implementation and the paper's shapes."""
import numpy as np
import pytest
import torch
import torchaudio

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.spectrogram import Spectrogram, SpectrogramOptions, parse_options_file


def paper_options():
    return parse_options_file("conf/spectrogram.conf")


def test_paper_config_gives_161_bins_and_snip_edges_frames():
    o = paper_options()
    assert (o.window_samples, o.shift_samples, o.n_fft, o.num_bins) == (320, 160, 320, 161)
    samples = np.random.default_rng(0).standard_normal(16000 * 3 + 77).astype(np.float32) * 0.1
    feats = Spectrogram(o)(samples)
    assert feats.shape == (1 + (len(samples) - 320) // 160, 161)
    assert feats.dtype == np.float32


def test_matches_torchaudio_kaldi_spectrogram():
    o = paper_options()
    samples = np.random.default_rng(1).standard_normal(16000 * 2).astype(np.float32) * 0.05
    ours = Spectrogram(o)(samples)
    ref = torchaudio.compliance.kaldi.spectrogram(
        torch.from_numpy(samples)[None], frame_length=20.0, frame_shift=10.0,
        window_type="hamming", round_to_power_of_two=False, dither=0.0,
        preemphasis_coefficient=0.0, remove_dc_offset=False).numpy()
    # The shipped config stores the spectrum unnormalised (the model normalises, model.input_norm).
    # Kaldi replaces bin 0 by the log frame energy; bins 1..160 are the log power spectrum.
    np.testing.assert_allclose(ours[:, 1:], ref[:, 1:], atol=2e-4)


def test_mean_normalisation_and_pure_tone():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    feats = Spectrogram(SpectrogramOptions(normalize_mean=True))(tone)
    np.testing.assert_allclose(feats.mean(axis=0), 0, atol=1e-4)
    raw = Spectrogram(SpectrogramOptions(normalize_mean=False))(tone)
    # 1000 Hz at 50 Hz per bin is bin 20, the loudest of every frame
    assert (raw.argmax(axis=1) == 20).all()


def test_silence_stays_finite():
    feats = Spectrogram(SpectrogramOptions(normalize_mean=False))(np.zeros(1600, np.float32))
    assert np.isfinite(feats).all() and feats.max() == pytest.approx(np.log(1e-10), rel=1e-6)


def test_too_short_audio_is_refused():
    with pytest.raises(ValueError, match="shorter than one 20-ms window"):
        Spectrogram(paper_options())(np.zeros(100, np.float32))


@pytest.mark.parametrize("lines, message", [
    ("--frame-lenght=25", "spec.conf:3: unknown option --frame-lenght"),
    ("--normalize-mean=yes", "spec.conf:3: .*expected true or false"),
    ("--frame-length=abc", "spec.conf:3: .*expected a float"),
    ("frame-length=25", "spec.conf:3: expected --key=value"),
    # Checks of the options together name the file.
    ("--num-mel-bins=161", "spec.conf: --num-mel-bins must lie between 1 and 160"),
    ("--num-mel-bins=40\n--high-freq=9000",
     "spec.conf: .*0 <= --low-freq < --high-freq <= 8000 Hz"),
    ("--num-mel-bins=40\n--low-freq=7000\n--high-freq=-1500", "spec.conf: .*got 7000 and 6500 Hz"),
])
def test_bad_feature_config_names_file_and_line(tmp_path, lines, message):
    conf = tmp_path / "spec.conf"
    conf.write_text("# comment\n--sample-frequency=16000\n" + lines + "\n")
    with pytest.raises(RecipeError, match=message):
        parse_options_file(conf)


def test_mel_filterbank_matches_torchaudio_kaldi_fbank():
    o = parse_options_file("conf/fbank.conf")
    assert (o.window_samples, o.n_fft, o.num_linear_bins, o.num_bins) == (400, 512, 257, 80)
    samples = np.random.default_rng(2).standard_normal(16000 * 2).astype(np.float32) * 0.05
    ours = Spectrogram(o)(samples)
    ref = torchaudio.compliance.kaldi.fbank(
        torch.from_numpy(samples)[None] * 32768, frame_length=25.0, frame_shift=10.0,
        window_type="hamming", round_to_power_of_two=True, dither=0.0,
        preemphasis_coefficient=0.0, remove_dc_offset=False, num_mel_bins=80, low_freq=20.0,
        high_freq=7600.0).numpy()
    # Kaldi reads 16-bit sample values: its power is 32768^2 times ours, a constant in the log.
    assert ours.shape == ref.shape == (1 + (len(samples) - 400) // 160, 80)
    np.testing.assert_allclose(ours + 2 * np.log(32768), ref, atol=1e-3)


def test_mel_filters_sum_the_power_of_their_band():
    o = SpectrogramOptions(num_mel_bins=20, normalize_mean=False, high_freq=-400)
    assert o.high_freq_hz == 7600
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    feats = Spectrogram(o)(tone)
    # 20 filters evenly spaced on the mel scale from 20 to 7,600 Hz: 1 kHz is in filter 6's
    # band (mel(f) = 1127 ln(1 + f/700); centres every (mel(7600) - mel(20)) / 21).
    mel = lambda f: 1127 * np.log(1 + f / 700)
    centres = mel(20) + (mel(7600) - mel(20)) / 21 * np.arange(1, 21)
    assert (feats.argmax(axis=1) == np.argmin(abs(centres - mel(1000)))).all()

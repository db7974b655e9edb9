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


@pytest.mark.parametrize("line, message", [
    ("--frame-lenght=25", "unknown option --frame-lenght"),
    ("--normalize-mean=yes", "expected true or false"),
    ("--frame-length=abc", "expected a float"),
    ("frame-length=25", "expected --key=value"),
])
def test_bad_feature_config_names_file_and_line(tmp_path, line, message):
    conf = tmp_path / "spec.conf"
    conf.write_text("# comment\n--sample-frequency=16000\n" + line + "\n")
    with pytest.raises(RecipeError, match=rf"spec.conf:3: .*{message}"):
        parse_options_file(conf)

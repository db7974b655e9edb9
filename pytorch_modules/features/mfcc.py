"""MFCC front-end of the classical baselines (pytorch_modules/models/classical.py), as Kaldi's
voxceleb/v1 recipe computes it: MFCCs with deltas and an energy voice-activity detector that
keeps only the voiced frames.

    MFCC (torchaudio's Kaldi-compatible mfcc; c0 is the frame's log energy, Kaldi's default
    --use-energy=true, which the detector thresholds) -> + delta, delta-delta -> voiced frames
    only (Kaldi's compute-vad on c0, then select-voiced-frames)

The frames are stored without mean normalisation: the MFCC mean+std system uses the mean as it
is, and the GMM-UBM system applies Kaldi's sliding cepstral mean normalisation
(sliding_mean_normalise) to the voiced frames itself.

Options come from conf/mfcc.conf (`--key=value` lines, parsed, never executed) and are
Kaldi's option names.  The audio-selection options (--allow-resample, --min-rms-dbfs) behave as
in the spectrogram's config.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from pytorch_modules.features.spectrogram import FeatureConfigError, parse_options


@dataclass
class MfccOptions:
    sample_frequency: int = 16000
    frame_length: float = 25.0        # ms
    frame_shift: float = 10.0         # ms
    num_mel_bins: int = 30
    num_ceps: int = 24
    low_freq: float = 20.0
    high_freq: float = 7600.0
    delta_order: int = 2              # 0: static only; 1: + delta; 2: + delta-delta
    vad_energy_threshold: float = 5.5
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 2
    vad_proportion_threshold: float = 0.12
    allow_resample: bool = False
    min_rms_dbfs: float = -80.0

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_frequency * self.frame_length / 1000))

    def num_frames(self, num_samples: int) -> int:
        """Frames before voice-activity selection (snip-edges=false: one per shift)."""
        if num_samples < self.window_samples:
            return 0
        shift = int(round(self.sample_frequency * self.frame_shift / 1000))
        return (num_samples + shift // 2) // shift


def parse_mfcc_options(path) -> MfccOptions:
    options = parse_options(path, MfccOptions)
    if not 0 <= options.delta_order <= 2:
        raise FeatureConfigError(f"{path}: --delta-order must be 0, 1 or 2")
    if options.num_ceps > options.num_mel_bins:
        raise FeatureConfigError(f"{path}: --num-ceps ({options.num_ceps}) cannot exceed "
                                 f"--num-mel-bins ({options.num_mel_bins})")
    return options


def voiced_frames(c0: np.ndarray, o: MfccOptions) -> np.ndarray:
    """Kaldi's compute-vad: a frame is voiced when enough of the frames around it (within
    --vad-frames-context) have c0 (log energy) above threshold + mean_scale * mean(c0)."""
    threshold = o.vad_energy_threshold + o.vad_energy_mean_scale * c0.mean()
    above = (c0 > threshold).astype(np.float64)
    width = 2 * o.vad_frames_context + 1
    # Counts over the window, truncated at the edges as Kaldi truncates it.
    padded = np.concatenate([[0.0], np.cumsum(above)])
    t = np.arange(len(c0))
    lo = np.maximum(t - o.vad_frames_context, 0)
    hi = np.minimum(t + o.vad_frames_context + 1, len(c0))
    counts = padded[hi] - padded[lo]
    return counts >= o.vad_proportion_threshold * np.minimum(width, hi - lo)


def sliding_mean_normalise(feats: np.ndarray, window: int) -> np.ndarray:
    """Kaldi's apply-cmvn-sliding --center=true --norm-vars=false: minus the mean of a window
    of `window` frames centred on each frame (shifted to stay inside the utterance)."""
    n = len(feats)
    if n <= window:
        return feats - feats.mean(axis=0)
    cumsum = np.concatenate([np.zeros((1, feats.shape[1])), np.cumsum(feats, axis=0)])
    t = np.arange(n)
    start = np.clip(t - window // 2, 0, n - window)
    means = (cumsum[start + window] - cumsum[start]) / window
    return feats - means


class Mfcc:
    """Callable: float32 samples (N,) in [-1, 1] -> voiced frames (frames, dims) float32.

    Every frame is kept when the detector finds fewer than 10 voiced ones (a very quiet or
    very short recording), so that no utterance is left without frames."""

    MIN_VOICED = 10

    def __init__(self, options: MfccOptions):
        self.options = options

    def __call__(self, samples) -> np.ndarray:
        o = self.options
        # torchaudio's Kaldi routines expect 16-bit sample values, as Kaldi reads them.
        wave = torch.as_tensor(samples, dtype=torch.float32)[None] * 32768
        static = torchaudio.compliance.kaldi.mfcc(
            wave, sample_frequency=o.sample_frequency, frame_length=o.frame_length,
            frame_shift=o.frame_shift, num_mel_bins=o.num_mel_bins, num_ceps=o.num_ceps,
            low_freq=o.low_freq, high_freq=o.high_freq, snip_edges=False, dither=0.0,
            energy_floor=0.0, use_energy=True)
        parts = [static]
        for _ in range(o.delta_order):
            parts.append(torchaudio.functional.compute_deltas(parts[-1].T, win_length=5).T)
        feats = torch.cat(parts, dim=1).numpy()
        voiced = voiced_frames(static[:, 0].numpy(), o)
        if voiced.sum() >= self.MIN_VOICED:
            feats = feats[voiced]
        return feats.astype(np.float32)

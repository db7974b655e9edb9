"""The paper's input features: a 161-bin log spectrogram (of the power: ours).

16 kHz audio, 20-ms Hamming windows every 10 ms, a 320-point FFT -> 161 bins (the paper's
1 x 161 x T input), natural log of the power (ours: the paper says "log spectrogram", not of
what; the power is Kaldi's choice, and its log is twice that of the magnitude), and, when
--normalize-mean is true, per-utterance mean normalisation (ours, not in the paper; the
shipped conf/spectrogram.conf leaves it to the model, model.input_norm).  Frames
are taken as Kaldi does with snip-edges: only whole windows, 1 + (N - 320) // 160 frames.

With --num-mel-bins=N (ours; the paper's features keep 0), the power spectrum is summed through
N triangular mel filters between --low-freq and --high-freq before the log, as Kaldi's fbank and
the recipes built on it (WeSpeaker, 3D-Speaker: 80 filters) do: a log mel filterbank, the rest
of the pipeline unchanged.  The model's input is then N rows high (model.input_bins).

Options come from a Kaldi-style file of `--key=value` lines (conf/spectrogram.conf); the file is
parsed, never executed, and an unknown key is an error naming the file and line.  Two options
say which audio is used at all rather than how it is analysed: --allow-resample (audio at another
rate than --sample-frequency is resampled rather than refused) and --min-rms-dbfs (quieter
utterances are skipped as silent: their features would be the log floor, the same for every
speaker).
"""
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torchaudio

from pytorch_modules.errors import RecipeError


class FeatureConfigError(RecipeError):
    pass


@dataclass
class SpectrogramOptions:
    sample_frequency: int = 16000
    frame_length: float = 20.0        # ms
    frame_shift: float = 10.0         # ms
    window_type: str = "hamming"      # hamming | hanning | rectangular
    fft_length: int = 0               # 0: the window length in samples (320 -> 161 bins)
    preemphasis_coefficient: float = 0.0
    dither: float = 0.0               # stddev of Gaussian noise added to samples (-1..1 scale)
    log_floor: float = 1e-10          # power floor before the log: digital silence stays finite
    # Log mel filterbank instead of the linear bins (ours; 0 keeps the paper's spectrogram):
    num_mel_bins: int = 0             # triangular filters on the mel scale, as Kaldi's fbank
    low_freq: float = 20.0            # Hz, lowest edge of the first filter
    high_freq: float = 0.0            # Hz, highest edge of the last; <= 0: Nyquist + high_freq
    normalize_mean: bool = True       # per-utterance mean normalisation
    normalize_variance: bool = False
    # Which audio is used (pytorch_modules/features/feature_job.py):
    allow_resample: bool = False      # resample other rates to sample_frequency, else refuse them
    min_rms_dbfs: float = -80.0       # quieter utterances are skipped as silent; -inf keeps all

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_frequency * self.frame_length / 1000))

    @property
    def shift_samples(self) -> int:
        return int(round(self.sample_frequency * self.frame_shift / 1000))

    @property
    def n_fft(self) -> int:
        return self.fft_length or self.window_samples

    @property
    def num_linear_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def num_bins(self) -> int:
        """Feature dimension: the mel filters when there are any, else the linear bins."""
        return self.num_mel_bins or self.num_linear_bins

    @property
    def high_freq_hz(self) -> float:
        nyquist = self.sample_frequency / 2
        return self.high_freq if self.high_freq > 0 else nyquist + self.high_freq

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.window_samples:
            return 0
        return 1 + (num_samples - self.window_samples) // self.shift_samples


def _parse_value(raw: str, kind, where: str):
    if kind is bool:
        if raw not in ("true", "false"):
            raise FeatureConfigError(f"{where}: expected true or false, got '{raw}'")
        return raw == "true"
    try:
        return kind(raw)
    except ValueError:
        raise FeatureConfigError(f"{where}: expected a {kind.__name__}, got '{raw}'") from None


def parse_options(path, cls):
    """Reads `--key=value` lines ('#' starts a comment) into the options dataclass `cls`; an
    unknown key or a value of the wrong kind is an error naming the file and line."""
    kinds = {f.name: f.type for f in fields(cls)}
    kinds = {name: {"int": int, "float": float, "str": str, "bool": bool}.get(k, k)
             for name, k in kinds.items()}
    values = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if not line.startswith("--") or "=" not in line:
            raise FeatureConfigError(f"{where}: expected --key=value, got '{line}'")
        key, raw = line[2:].split("=", 1)
        name = key.replace("-", "_")
        if name not in kinds:
            known = ", ".join("--" + k.replace("_", "-") for k in kinds)
            raise FeatureConfigError(f"{where}: unknown option --{key} (known: {known})")
        values[name] = _parse_value(raw, kinds[name], where)
    return cls(**values)


def parse_options_file(path) -> SpectrogramOptions:
    """The spectrogram's options (conf/spectrogram.conf), checked."""
    options = parse_options(path, SpectrogramOptions)
    if options.window_type not in ("hamming", "hanning", "rectangular"):
        raise FeatureConfigError(f"{path}: --window-type must be hamming, hanning or rectangular")
    if options.n_fft < options.window_samples:
        raise FeatureConfigError(f"{path}: --fft-length {options.n_fft} is shorter than the "
                                 f"{options.window_samples}-sample window")
    if options.num_mel_bins:
        _check_mel_options(path, options)
    return options


def _check_mel_options(path, o: SpectrogramOptions) -> None:
    if not 0 < o.num_mel_bins < o.num_linear_bins:
        raise FeatureConfigError(f"{path}: --num-mel-bins must lie between 1 and "
                                 f"{o.num_linear_bins - 1} (the FFT's bins), or be 0 for the "
                                 f"linear spectrogram; got {o.num_mel_bins}")
    if not 0 <= o.low_freq < o.high_freq_hz <= o.sample_frequency / 2:
        raise FeatureConfigError(f"{path}: the mel filters need 0 <= --low-freq < --high-freq <= "
                                 f"{o.sample_frequency / 2:g} Hz (half the sample rate; a "
                                 f"--high-freq <= 0 counts down from it); got {o.low_freq:g} and "
                                 f"{o.high_freq_hz:g} Hz")


def mel_filters(o: SpectrogramOptions) -> torch.Tensor:
    """(linear bins, mel bins): Kaldi's triangular mel filters (torchaudio's Kaldi-compatible
    get_mel_banks, which leaves out the Nyquist bin; it gets weight 0 here, as in Kaldi)."""
    banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
        o.num_mel_bins, o.n_fft, float(o.sample_frequency), o.low_freq, o.high_freq,
        100.0, -500.0, 1.0)  # VTLN off: a warp factor of 1 leaves the filters as they are
    return torch.nn.functional.pad(banks, (0, 1)).T.contiguous()


def _window(options: SpectrogramOptions) -> torch.Tensor:
    n = options.window_samples
    if options.window_type == "hamming":
        # Symmetric, as in Kaldi and the textbook definition: 0.54 - 0.46 cos(2 pi i / (N - 1)).
        return torch.hamming_window(n, periodic=False)
    if options.window_type == "hanning":
        return torch.hann_window(n, periodic=False)
    return torch.ones(n)


class Spectrogram:
    """Callable: float32 samples (N,) in [-1, 1] -> float32 features (frames, bins)."""

    def __init__(self, options: SpectrogramOptions, seed: int = 0):
        self.options = options
        self.window = _window(options)
        self.mel = mel_filters(options) if options.num_mel_bins else None
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, samples) -> np.ndarray:
        o = self.options
        wave = torch.as_tensor(samples, dtype=torch.float32)
        if wave.shape[0] < o.window_samples:
            raise ValueError(f"{wave.shape[0]} samples is shorter than one "
                             f"{o.frame_length:g}-ms window")
        if o.dither > 0:
            wave = wave + o.dither * torch.randn(wave.shape, generator=self.generator)
        if o.preemphasis_coefficient > 0:
            wave = torch.cat([wave[:1] * (1 - o.preemphasis_coefficient),
                              wave[1:] - o.preemphasis_coefficient * wave[:-1]])
        # Kaldi's frames (snip-edges: whole windows only), each zero-padded at its end to
        # n_fft by rfft as Kaldi pads.  torch.stft would centre the window in n_fft-sample
        # frames instead, giving fewer frames than num_frames() when n_fft > the window, and
        # it copies and pads its input; abs() takes a square root only for square() to undo.
        frames = wave.unfold(0, o.window_samples, o.shift_samples) * self.window
        spec = torch.fft.rfft(frames, n=o.n_fft)
        power = spec.real.square() + spec.imag.square()
        if self.mel is not None:
            power = power @ self.mel
        logpow = power.clamp_min_(o.log_floor).log_()  # (frames, bins)
        if o.normalize_mean:
            logpow -= logpow.mean(dim=0, keepdim=True)
        if o.normalize_variance:
            logpow /= logpow.std(dim=0, keepdim=True).clamp_min(1e-5)
        return logpow.numpy()

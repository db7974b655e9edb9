"""Augmentation of training crops in the waveform domain (config `augment:`, ours: the paper
trains without; every recipe in use today adds noise, as Kaldi's voxceleb v2 and WeSpeaker do).

Each kind is applied to a crop with its own probability, before the spectrogram
(pytorch_modules/data/audio_crops.py), so it needs on-the-fly features:
  speed   tempo and pitch changed together by a factor from speed_factors (0.9 and 1.1, as
          Kaldi's and WeSpeaker's speed perturbation; here the speaker label is kept), by
          reading that many times the crop's samples and resampling them (audio_crops.py);
  reverb  convolution with a room impulse response from augment.rir_list (RIRS_NOISES'
          simulated_rirs, or rooms made by local/make_simulated_rirs.py), scaled to unit
          energy and aligned on its direct path (its largest sample), as Kaldi and WeSpeaker
          apply them; applied first, to the speech, as a room would;
  noise   a random stretch of a file of noise_list (MUSAN noise/, local/prepare_musan.py), or
          without one coloured Gaussian noise (power spectrum 1/f^beta, beta drawn from 0
          (white) to 2 (brown)), at an SNR drawn from noise_snr dB (Kaldi's: 0-15 dB);
  music   a random stretch of a file of music_list (MUSAN music/) at music_snr dB (5-15 dB);
  babble  the sum of 3-7 (babble_speakers) random stretches of the files of babble_list
          (MUSAN speech/), or without one of other training speakers' utterances, at an SNR
          drawn from babble_snr dB (Kaldi's: 13-20 dB).
and after the spectrogram, on the features (so on precomputed arks too):
  spec_mask  SpecAugment's masks (Park et al. 2019, as WeSpeaker's spec_aug): freq_masks bands
          of 1..freq_mask_bins bins and time_masks spans of 1..time_mask_frames frames, each
          set to its bins' mean over the crop, which the model's mean normalisation
          (model.input_norm: utterance_mean) turns into 0, the value SpecAugment masks with.
Every random choice comes from the generator the loader makes for the crop from (seed, epoch,
step, position in the global batch), so a resumed run and any number of workers or processes
see exactly the same augmented crops.
"""
import numpy as np

# A floor on signal power, so that a silent stretch does not make the noise infinite.
MIN_POWER = 1e-10


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`noise` scaled so that 10 log10(power(signal) / power(noise)) = snr_db."""
    signal_power = max(float(np.mean(np.square(signal, dtype=np.float64))), MIN_POWER)
    noise_power = max(float(np.mean(np.square(noise, dtype=np.float64))), MIN_POWER)
    return noise * np.float32(np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10))))


def coloured_noise(num_samples: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f^beta (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0   # keep the DC bin finite; it carries no colour
    noise = np.fft.irfft(spectrum / freqs ** (beta / 2), n=num_samples)
    return noise.astype(np.float32)


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`samples` convolved with `rir` scaled to unit energy, from its direct path (largest
    sample) on: the output starts when the direct sound arrives and has the input's length."""
    peak = int(np.argmax(np.abs(rir)))
    rir = rir.astype(np.float64) / max(np.sqrt(np.sum(np.square(rir, dtype=np.float64))), 1e-12)
    size = len(samples) + len(rir) - 1
    n_fft = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(samples, n_fft) * np.fft.rfft(rir, n_fft), n_fft)
    return wet[peak:peak + len(samples)].astype(np.float32)


def augment(samples: np.ndarray, rng: np.random.Generator, options, sources) -> np.ndarray:
    """`samples` with the augmentations of `options` (config.AugmentConfig) that the draws of
    `rng` pick.  `sources` gives the material (data.AugmentSources): room_response(rng),
    noise(n, rng) and music(n, rng) (None without a list), babble(count, n, rng)."""
    out = samples
    # Draw every decision first, in a fixed order, so each kind's draws do not depend on
    # whether another kind was applied.
    apply_reverb = rng.random() < options.reverb_prob
    apply_noise = rng.random() < options.noise_prob
    apply_music = rng.random() < options.music_prob
    apply_babble = rng.random() < options.babble_prob
    n = len(samples)
    if apply_reverb:
        out = samples = reverberate(samples, sources.room_response(rng))
    if apply_noise:
        noise = sources.noise(n, rng)
        if noise is None:
            noise = coloured_noise(n, rng.uniform(0.0, 2.0), rng)
        out = out + scale_to_snr(samples, noise, rng.uniform(*options.noise_snr))
    if apply_music:
        out = out + scale_to_snr(samples, sources.music(n, rng), rng.uniform(*options.music_snr))
    if apply_babble:
        low, high = options.babble_speakers
        babble = sources.babble(int(rng.integers(low, high + 1)), n, rng).sum(axis=0)
        out = out + scale_to_snr(samples, babble, rng.uniform(*options.babble_snr))
    return out.astype(np.float32, copy=False)


def spec_mask(feats: np.ndarray, rng: np.random.Generator, options) -> np.ndarray:
    """`feats` (frames, bins) with the masks of `options` (config.AugmentConfig) that the draws
    of `rng` place; a band or span is never wider than the crop."""
    out = feats.copy()
    mean = feats.mean(axis=0)
    frames, bins = feats.shape
    for _ in range(options.freq_masks):
        width = int(rng.integers(1, min(options.freq_mask_bins, bins) + 1))
        first = int(rng.integers(0, bins - width + 1))
        out[:, first:first + width] = mean[first:first + width]
    for _ in range(options.time_masks):
        width = int(rng.integers(1, min(options.time_mask_frames, frames) + 1))
        first = int(rng.integers(0, frames - width + 1))
        out[first:first + width] = mean
    return out

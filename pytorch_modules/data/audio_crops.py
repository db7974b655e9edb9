"""Training crops computed from the audio (config data.features: on_the_fly, ours).

Only the crop's samples are read: soundfile seeks to the crop's first sample and reads the
window_samples + (crop_frames - 1) * shift_samples samples its frames cover, so a 2-s crop of a
60-s file reads 2 s.  The features are the recipe's own Spectrogram
(pytorch_modules/features/spectrogram.py, the options of conf/spectrogram.conf), so on clean audio a
crop equals the ark features of the same frames: frame i of an utterance covers samples [i * shift,
i * shift + window), whether the utterance or the crop is analysed.  An utterance shorter than the
crop is read whole and its frames repeated, as the ark path pads it (features.frames.crop_or_pad).
"""
import dataclasses

import numpy as np
import soundfile

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.frames import crop_or_pad
from pytorch_modules.features.spectrogram import Spectrogram, SpectrogramOptions, parse_options_file
from pytorch_modules.fileio import audio, shards


def check_source(utt: str, source: str, wav_scp: str) -> None:
    """On-the-fly crops seek into files: a wav.scp command (a pipe) cannot seek."""
    if source.rstrip().endswith("|"):
        raise RecipeError(f"{wav_scp}: utterance {utt} is read through a command ('{source}'); "
                          f"on-the-fly features seek into audio files and cannot read pipes. "
                          f"Pack the data dir into shards, which decodes it once "
                          f"(steps/make_shards.sh, data.features: shards), convert the corpus "
                          f"to wav or flac files, or train on precomputed features "
                          f"(data.features: precomputed)")


def spectrogram_options(path) -> SpectrogramOptions:
    """The feature options of conf/spectrogram.conf, refused when they cannot give the ark's
    features crop by crop: normalisation over the utterance, or dither (random per run)."""
    options = parse_options_file(path)
    if options.normalize_mean or options.normalize_variance:
        raise RecipeError(f"{path}: on-the-fly features are computed per crop, so they cannot "
                          f"be normalised over the utterance (--normalize-mean/--normalize-"
                          f"variance); set them false and let the model normalise "
                          f"(model.input_norm)")
    if options.dither > 0:
        raise RecipeError(f"{path}: --dither={options.dither:g} would make on-the-fly features "
                          f"differ from run to run; set --dither=0")
    return options


_SPECTROGRAMS = {}   # options (as a tuple) -> Spectrogram, built once per process


def _spectrogram(options: SpectrogramOptions) -> Spectrogram:
    key = dataclasses.astuple(options)
    if key not in _SPECTROGRAMS:
        _SPECTROGRAMS[key] = Spectrogram(options)
    return _SPECTROGRAMS[key]


def audio_crop(utt: str, path: str, start: int, length: int, num_frames: int,
               options: SpectrogramOptions, transform=None, speed: float = 1.0) -> np.ndarray:
    """(length, bins) features of frames start..start+length of utterance `utt` in `path`,
    whose features have `num_frames` frames (utt2num_frames); `transform` (augmentation)
    changes the crop's samples before the spectrogram (crop_samples, then crop_features)."""
    samples = crop_samples(utt, path, start, length, num_frames, options, speed)
    if transform is not None:
        samples = transform(samples)
    return crop_features(samples, length, options)


def crop_samples(utt: str, path: str, start: int, length: int, num_frames: int,
                 options: SpectrogramOptions, speed: float = 1.0) -> np.ndarray:
    """The samples the frames start..start+length cover, or the whole utterance when it is
    shorter.  `speed` != 1 reads `speed` times the samples from about the same place and
    resamples them to the crop's length, as sox's speed effect (Kaldi's and WeSpeaker's speed
    perturbation) changes tempo and pitch together."""
    count = num_samples(length, options)
    need = int(np.ceil(count * speed))
    available = num_samples(num_frames, options)
    if available < need:        # shorter than the crop: read it whole, repeat its frames
        first, need = 0, -1
    else:
        first = min(int(start * options.shift_samples * speed), available - need)
    samples = read_samples(utt, path, first, need, options.sample_frequency)
    if speed != 1.0:
        samples = change_speed(samples, speed, options.sample_frequency)[:count]
    return samples


def crop_features(samples: np.ndarray, length: int, options: SpectrogramOptions) -> np.ndarray:
    """(length, bins) features of a crop's samples; a shorter utterance's frames repeated."""
    return crop_or_pad(_spectrogram(options)(samples), 0, length)


def change_speed(samples: np.ndarray, speed: float, rate: int) -> np.ndarray:
    """`samples` played `speed` times faster: taken as audio at rate * speed and resampled
    (band-limited) to `rate`, so there are about len / speed of them."""
    return audio.resample(np.ascontiguousarray(samples), int(round(rate * speed)), rate)


def num_samples(num_frames: int, options: SpectrogramOptions) -> int:
    """The samples an utterance of `num_frames` frames holds at least (its frames' span)."""
    return options.window_samples + (num_frames - 1) * options.shift_samples


def read_samples(utt: str, path: str, first: int, count: int, rate: int) -> np.ndarray:
    """`count` mono samples (all with -1) from sample `first`, float32 in [-1, 1], as the
    feature stage reads them (audio.read_samples).  `path` may name a
    member of a shard (shards.member_spec), whose bytes are read from the tar."""
    member = shards.parse_member_spec(path)
    try:
        with (shards.open_member(utt, member) if member else soundfile.SoundFile(path)) as f:
            if f.samplerate != rate or f.channels != 1:
                raise RecipeError(f"utterance {utt}: '{path}' is {f.channels}-channel audio at "
                                  f"{f.samplerate} Hz; on-the-fly features need mono audio at "
                                  f"{rate} Hz (the feature config's), as stage 2 does")
            if count > 0 and first + count > f.frames:
                raise RecipeError(f"utterance {utt}: '{path}' ends {first + count - f.frames} "
                                  f"samples before the crop does; the file changed after "
                                  f"utt2num_frames was written: rerun the feature stage")
            f.seek(first)
            samples = audio.read_samples(f, count)[:, 0]
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise RecipeError(f"cannot read the audio of utterance {utt} from '{path}' ({e}); check "
                          f"the file, then rerun the feature stage, which drops unreadable "
                          f"audio") from None
    if count > 0 and len(samples) < count:   # a header that promises more than the file holds
        raise RecipeError(f"utterance {utt}: '{path}' ends {count - len(samples)} samples "
                          f"before the crop does; the file is truncated: rerun the feature "
                          f"stage, which drops it")
    return samples

"""Where training crops come from (config data.features): the three sources behind one
interface, the only thing that differs between them in data/training_set.py's chain
crop -> augment -> features -> masks.

  ArkSource     precomputed: frames of the stage-2 feature arks (feats.scp); its crops are
                features already, so no waveform augmentation applies
  AudioSource   on_the_fly: samples of the audio files of wav.scp, turned into features per crop
                (data/audio_crops.py: only the crop's samples are read)
  ShardSource   shards: the same from the tar shards of shards.list (steps/make_shards.sh),
                whose batch plan streams the shards (training_set.ShardBatches)

A source reads crop `index` of its utterances:
  read(utt, index, start, length, num_frames, speed) -> the crop's raw material: samples read
      at `speed` (audio) or `length` frames (arks);
  features(x, length) -> (length, bins) features of what read() gave (after augmentation);
  waveform: whether read() gives samples, which waveform augmentation can change;
  bins(), identity() (what the training fingerprint records of it) and batches() (the plan).
"""
import dataclasses
import hashlib
import os

import kaldiio
import numpy as np

from pytorch_modules.data import audio_crops
from pytorch_modules.data.batch_plan import EpochBatches, ShardBatches
from pytorch_modules.errors import RecipeError
from pytorch_modules.features.frames import crop_or_pad
from pytorch_modules.features.spectrogram import SpectrogramOptions
from pytorch_modules.fileio import shards


@dataclasses.dataclass
class ArkSource:
    paths: list[str]             # ark rxspecifiers (feats/raw_spec.1.ark:1234), per utterance
    waveform = False

    def read(self, utt, index, start, length, num_frames, speed=1.0) -> np.ndarray:
        try:
            feats = kaldiio.load_mat(self.paths[index])
        except Exception as e:  # kaldiio raises several types for a damaged ark
            raise RecipeError(f"cannot read the features of utterance {utt} from "
                              f"{self.paths[index]}: {e}; rerun feature extraction") from None
        return crop_or_pad(feats, start, length)

    def features(self, frames: np.ndarray, length: int) -> np.ndarray:
        return frames

    def bins(self) -> int:
        """The width of the first utterance's ark matrix."""
        return self.read("the first utterance", 0, 0, 1, 1).shape[1]

    def identity(self) -> str:
        """The stage-2 fingerprint of each ark's job (or its size and time)."""
        return "".join(f"{ark} {container_identity(ark)}\n"
                       for ark in sorted({path.rsplit(":", 1)[0] for path in self.paths}))

    def batches(self, num_frames, batch_size, crop_frames, seed, shuffle_buffer):
        return EpochBatches(num_frames, batch_size, crop_frames, seed)


@dataclasses.dataclass
class AudioSource:
    paths: list[str]             # audio files (or shard members), per utterance
    options: SpectrogramOptions  # the features computed from them
    waveform = True

    def read(self, utt, index, start, length, num_frames, speed=1.0) -> np.ndarray:
        return audio_crops.crop_samples(utt, self.paths[index], start, length, num_frames,
                                        self.options, speed)

    def features(self, samples: np.ndarray, length: int) -> np.ndarray:
        return audio_crops.crop_features(samples, length, self.options)

    def bins(self) -> int:
        return self.options.num_bins

    def identity(self) -> str:
        return repr(dataclasses.astuple(self.options))

    def batches(self, num_frames, batch_size, crop_frames, seed, shuffle_buffer):
        return EpochBatches(num_frames, batch_size, crop_frames, seed)


@dataclasses.dataclass
class ShardSource(AudioSource):
    shard_sizes: list[int] = dataclasses.field(default_factory=list)  # members per shard

    def identity(self) -> str:
        tars = sorted({shards.parse_member_spec(path)[0] for path in self.paths})
        return super().identity() + "".join(f"{tar} {container_identity(tar)}\n" for tar in tars)

    def batches(self, num_frames, batch_size, crop_frames, seed, shuffle_buffer):
        return ShardBatches(num_frames, batch_size, crop_frames, seed, self.shard_sizes,
                            shuffle_buffer)


def container_identity(path: str) -> str:
    """What identifies the content of an ark or shard: the stage-2 job's input fingerprint
    beside it (X.ark -> X.scp.inputs, utils/pending_jobs.sh), else the file's size and time."""
    stem, ext = os.path.splitext(path)
    inputs = f"{stem}.scp.inputs"
    if ext == ".ark" and os.path.isfile(inputs):
        with open(inputs, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    return f"{info.st_size} {info.st_mtime_ns}"

"""Training data: random fixed-length crops of features read on demand through feats.scp, or
computed from the audio through wav.scp (data.features: on_the_fly, pytorch_modules/data/audio_crops.py).

Only the scp index (utterance -> ark offset or audio file) and the frame counts are held in
memory, so memory does not grow with the corpus; every crop is read when needed.

Every random choice is a pure function of (seed, epoch, position in the epoch): the order of
utterances in an epoch and each crop's start.  A run resumed in the middle of an epoch therefore
sees exactly the batches the uninterrupted run would have seen, and the data a rank sees does not
depend on how many DataLoader workers there are.
"""
import dataclasses
import functools
import hashlib
import os
from dataclasses import dataclass

import kaldiio
import numpy as np
import torch

from pytorch_modules.data import audio_crops, augment
from pytorch_modules.fileio import shards
from pytorch_modules.data.augment_sources import AugmentSources, read_lists
from pytorch_modules.errors import RecipeError
from pytorch_modules.features.frames import crop_or_pad
from pytorch_modules.features.spectrogram import SpectrogramOptions
from pytorch_modules.fileio.kaldi_data import read_scp_lines


@dataclass
class TrainingSet:
    utts: list[str]
    feats: list[str]         # ark rxspecifiers (feats/raw_spec.1.ark:1234), or audio files
    num_frames: np.ndarray   # (n,) int64
    labels: np.ndarray       # (n,) int64 speaker indices
    speakers: list[str]      # index -> speaker id
    # The feature options when `feats` are audio files (on-the-fly features), else None.
    spectrogram: SpectrogramOptions | None = None
    augment: object = None   # config.AugmentConfig when crops are augmented, else None
    augment_files: dict | None = None   # its file lists (augment_sources.read_lists)
    shard_sizes: list[int] | None = None   # shards: members per shard, in shards.list order

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def num_classes(self) -> int:
        """Classes of the training head: the speakers, times 1 + the speed factors when
        augment.speed_new_speakers makes each sped-up speaker a speaker of its own."""
        if self.augment is not None and self.augment.speed_new_speakers:
            return len(self.speakers) * (1 + len(self.augment.speed_factors))
        return len(self.speakers)

    def feature_bins(self) -> int:
        """Rows of a crop's features: the feature options' bins when computed from the audio,
        else the width of the first utterance's ark matrix."""
        if self.spectrogram is not None:
            return self.spectrogram.num_bins
        return self.ark_crop(0, 0, 1).shape[1]

    def fingerprint(self) -> str:
        """sha256 of what training reads: every utterance's speaker, frame count and source
        (ark offset, audio file or shard member), and where the features come from: the
        stage-2 fingerprint of each ark's job (its split wav.scp, feature options and command,
        steps/make_spectrogram.sh), the feature options of audio and shards, or, for arks made
        outside the recipe, their size and time.  Another utterance, speaker or feature
        computation gives another fingerprint; the arks themselves are not read."""
        digest = hashlib.sha256()
        for utt, label, frames, source in zip(self.utts, self.labels, self.num_frames,
                                               self.feats):
            digest.update(f"{utt} {self.speakers[label]} {frames} {source}\n".encode())
        if self.spectrogram is not None:
            digest.update(repr(dataclasses.astuple(self.spectrogram)).encode())
        for path in sorted({container(source) for source in self.feats}
                           if self.spectrogram is None or self.shard_sizes is not None else ()):
            digest.update(f"{path} {container_identity(path)}\n".encode())
        return digest.hexdigest()

    def crop(self, index: int, start: int, length: int, rng=None) -> np.ndarray:
        """(length, bins) features of utterance `index` from frame `start`, augmented with the
        draws of `rng` when the set is augmented."""
        return self.labelled_crop(index, start, length, rng)[0]

    def labelled_crop(self, index: int, start: int, length: int, rng=None):
        """crop() and its class: the speaker's index, or with augment.speed_new_speakers
        that of the sped-up speaker (speaker + (i + 1) x speakers for speed_factors[i])."""
        label = int(self.labels[index])
        if self.spectrogram is None:
            feats = self.ark_crop(index, start, length)
        else:
            feats, label = self.audio_crop(index, start, length, rng, label)
        # Masks go last, on the features: the draws before them stay those of a config
        # without masks.
        if (self.augment is not None and rng is not None and self.augment.spec_mask_prob > 0
                and rng.random() < self.augment.spec_mask_prob):
            feats = augment.spec_mask(feats, rng, self.augment)
        return feats, label

    def audio_crop(self, index: int, start: int, length: int, rng, label: int):
        """labelled_crop() computed from the audio, with the waveform augmentations."""
        transform, speed = None, 1.0
        if self.augment is not None and rng is not None:
            # Speed first: it decides how many samples are read.
            if rng.random() < self.augment.speed_prob:
                factor = int(rng.integers(len(self.augment.speed_factors)))
                speed = float(self.augment.speed_factors[factor])
                if self.augment.speed_new_speakers:
                    label += (factor + 1) * len(self.speakers)
            transform = functools.partial(augment.augment, rng=rng, options=self.augment,
                                          sources=AugmentSources(self, self.labels[index]))
        feats = audio_crops.audio_crop(self.utts[index], self.feats[index], start, length,
                                       int(self.num_frames[index]), self.spectrogram,
                                       transform, speed)
        return feats, label

    def ark_crop(self, index: int, start: int, length: int) -> np.ndarray:
        """crop() of precomputed features (feats.scp)."""
        try:
            feats = kaldiio.load_mat(self.feats[index])
        except Exception as e:  # kaldiio raises several types for a damaged ark
            raise RecipeError(f"cannot read the features of utterance {self.utts[index]} from "
                              f"{self.feats[index]}: {e}; rerun feature extraction") from None
        return crop_or_pad(feats, start, length)


def container(source: str) -> str:
    """The file holding a crop source: the tar of a shard member, the ark of an rxspecifier."""
    member = shards.parse_member_spec(source)
    return member[0] if member else source.rsplit(":", 1)[0]


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


def read_training_set(data_dir: str, features: str = "precomputed",
                      spectrogram_config: str = "conf/spectrogram.conf",
                      augment_config=None) -> TrainingSet:
    """Reads feats.scp (wav.scp for on_the_fly features), utt2spk and utt2num_frames of a
    Kaldi data dir (validated by the caller), or for shards its shards.list and their indexes;
    `augment_config` (config.AugmentConfig, on the fly and shards only) augments the crops
    when any of its kinds is on."""
    augment_options = dict(
        augment=augment_config if augment_config is not None and augment_config.enabled else None,
        augment_files=read_lists(augment_config) if augment_config is not None else None)
    if features == "shards":
        return read_shards(data_dir, audio_crops.spectrogram_options(spectrogram_config),
                           **augment_options)
    table = "feats.scp" if features == "precomputed" else "wav.scp"
    feats = dict(read_scp_lines(f"{data_dir}/{table}"))
    utt2spk = dict(read_scp_lines(f"{data_dir}/utt2spk"))
    frames = dict(read_scp_lines(f"{data_dir}/utt2num_frames"))
    utts = sorted(feats)
    missing = [u for u in utts if u not in utt2spk or u not in frames]
    if missing:
        raise RecipeError(f"{data_dir}: {len(missing)} utterance(s) of {table} are missing from "
                          f"utt2spk or utt2num_frames (first: {missing[0]}); "
                          f"run utils/fix_data_dir.sh {data_dir}")
    spectrogram = None
    if features == "on_the_fly":
        for utt in utts:
            audio_crops.check_source(utt, feats[utt], f"{data_dir}/wav.scp")
        spectrogram = audio_crops.spectrogram_options(spectrogram_config)
    speakers = sorted({utt2spk[u] for u in utts})
    index = {spk: i for i, spk in enumerate(speakers)}
    return TrainingSet(
        utts=utts,
        feats=[feats[u] for u in utts],
        num_frames=np.array([int(frames[u]) for u in utts], dtype=np.int64),
        labels=np.array([index[utt2spk[u]] for u in utts], dtype=np.int64),
        speakers=speakers,
        spectrogram=spectrogram,
        **augment_options,
    )


def read_shards(data_dir: str, spectrogram: SpectrogramOptions, **augment_options) -> TrainingSet:
    """The training set of DATA_DIR/shards.list (steps/make_shards.sh), from the indexes."""
    path = f"{data_dir}/shards.list"
    if not os.path.isfile(path):
        raise RecipeError(f"{path} does not exist; pack the data dir first: "
                          f"steps/make_shards.sh {data_dir} <shard-dir>")
    with open(path) as f:
        tars = [line.strip() for line in f if line.strip()]
    utts, feats, samples, spks, sizes = [], [], [], [], []
    for tar in tars:
        rows = shards.read_index(tar)
        sizes.append(len(rows))
        for utt, spk, offset, size, num_samples in rows:
            utts.append(utt)
            spks.append(spk)
            feats.append(shards.member_spec(tar, offset, size))
            samples.append(num_samples)
    speakers = sorted(set(spks))
    index = {spk: i for i, spk in enumerate(speakers)}
    return TrainingSet(
        utts=utts, feats=feats,
        num_frames=np.array([spectrogram.num_frames(n) for n in samples], dtype=np.int64),
        labels=np.array([index[s] for s in spks], dtype=np.int64), speakers=speakers,
        spectrogram=spectrogram, shard_sizes=sizes, **augment_options)


def epoch_batches(data: TrainingSet, batch_size: int, crop_frames: int, seed: int,
                  shuffle_buffer: int = 1000):
    """The batch plan of a training set: ShardBatches for shards, else EpochBatches."""
    if data.shard_sizes is not None:
        return ShardBatches(data.num_frames, batch_size, crop_frames, seed, data.shard_sizes,
                            shuffle_buffer)
    return EpochBatches(data.num_frames, batch_size, crop_frames, seed)


class EpochBatches:
    """The global batches of one epoch, each a list of (utterance index, crop start).

    The global batch is split over `world_size` ranks by taking every world_size-th item, so
    the union over ranks of a step is exactly the single-process batch.
    """

    def __init__(self, num_frames: np.ndarray, batch_size: int, crop_frames: int, seed: int):
        if batch_size > len(num_frames):   # the trainer says so in words first
            raise ValueError(f"batch of {batch_size} from {len(num_frames)} utterances")
        self.num_frames, self.batch_size = num_frames, batch_size
        self.crop_frames, self.seed = crop_frames, seed

    def steps_per_epoch(self) -> int:
        # Drop the last partial batch: BatchNorm and the per-step lr rule assume full batches.
        return len(self.num_frames) // self.batch_size

    def order(self, epoch: int) -> np.ndarray:
        """The utterances (indices) in the order the epoch takes them."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.num_frames))

    def batch(self, epoch: int, step: int, rank: int = 0, world_size: int = 1):
        order = self.order(epoch)
        chosen = order[step * self.batch_size:(step + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, epoch, step, 1])
        slack = np.maximum(self.num_frames[chosen] - self.crop_frames, 0)
        starts = (rng.random(len(chosen)) * (slack + 1)).astype(np.int64)
        pairs = list(zip(chosen.tolist(), starts.tolist()))
        return pairs[rank::world_size]


class ShardBatches(EpochBatches):
    """EpochBatches whose order streams the shards (shards.stream_order): shards in a seeded
    order, members in tar order through a shuffle buffer, so reads go front to back through
    each shard; still a function of (seed, epoch), so resuming mid-epoch is exact."""

    def __init__(self, num_frames, batch_size, crop_frames, seed, shard_sizes, shuffle_buffer):
        super().__init__(num_frames, batch_size, crop_frames, seed)
        self.shard_sizes, self.shuffle_buffer = list(shard_sizes), shuffle_buffer
        self._cached = (None, None)

    def order(self, epoch: int) -> np.ndarray:
        if self._cached[0] != epoch:   # every step of an epoch asks: simulate the buffer once
            self._cached = (epoch, shards.stream_order(self.shard_sizes, self.shuffle_buffer,
                                                       self.seed, epoch))
        return self._cached[1]


class CropDataset(torch.utils.data.Dataset):
    """Item = one step's batch for this rank: (features (B, bins, frames), labels (B,))."""

    def __init__(self, data: TrainingSet, batches: EpochBatches, epoch: int, first_step: int,
                 rank: int = 0, world_size: int = 1):
        self.data, self.batches, self.epoch = data, batches, epoch
        self.first_step, self.rank, self.world_size = first_step, rank, world_size

    def __len__(self) -> int:
        return self.batches.steps_per_epoch() - self.first_step

    def __getitem__(self, i: int):
        step = self.first_step + i
        pairs = self.batches.batch(self.epoch, step, self.rank, self.world_size)
        crops, labels = [], []
        for k, (index, start) in enumerate(pairs):
            # The augmentation draws of a crop depend on its place in the global batch only.
            position = self.rank + k * self.world_size
            rng = (np.random.default_rng([self.batches.seed, self.epoch, step, position, 3])
                   if self.data.augment is not None else None)
            crop, label = self.data.labelled_crop(index, start, self.batches.crop_frames, rng)
            crops.append(crop)
            labels.append(label)
        feats = torch.from_numpy(np.stack(crops)).transpose(1, 2).contiguous()
        return feats, torch.from_numpy(np.array(labels, dtype=np.int64))


def epoch_loader(data: TrainingSet, batches: EpochBatches, epoch: int, first_step: int,
                 num_workers: int, rank: int = 0, world_size: int = 1, pin_memory: bool = False):
    """This rank's batches of `epoch` from `first_step` on (pin_memory: for copies to a GPU)."""
    dataset = CropDataset(data, batches, epoch, first_step, rank, world_size)
    # batch_size=None: each dataset item is already a whole batch (reads are per utterance).
    # A generator of its own: the loader draws its workers' base seed from it, which would
    # otherwise advance the global torch RNG once per epoch started, and a resumed run starts
    # one more (our crops do not use that seed: they are functions of (seed, epoch, step)).
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       persistent_workers=False,
                                       prefetch_factor=4 if num_workers else None,
                                       generator=torch.Generator().manual_seed(batches.seed))

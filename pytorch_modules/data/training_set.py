"""Training data: random fixed-length crops of the training set's utterances, through one
chain whatever the source (data.features, data/crop_sources.py: feature arks, audio files or
tar shards):

    crop (the source reads the crop's samples or frames) -> augment (the waveform kinds, when
    the source gives samples) -> features (the source's) -> masks (SpecAugment, on features)

Only the index of each utterance's source (ark offset, audio file, shard member) and the frame
counts are held in memory, so memory does not grow with the corpus; every crop is read when
needed.  Every random choice is a pure function of (seed, epoch, position in the epoch): the
order of utterances (data/batch_plan.py), each crop's start and each crop's augmentation draws,
so a resumed run sees exactly the crops of the uninterrupted one.
"""
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from pytorch_modules.data import audio_crops, augment
from pytorch_modules.data.augment_sources import AugmentSources, read_lists
from pytorch_modules.data.batch_plan import EpochBatches
from pytorch_modules.data.crop_sources import ArkSource, AudioSource, ShardSource
from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio import shards
from pytorch_modules.fileio.kaldi_data import read_scp_lines


@dataclass
class TrainingSet:
    utts: list[str]
    num_frames: np.ndarray   # (n,) int64
    labels: np.ndarray       # (n,) int64 speaker indices
    speakers: list[str]      # index -> speaker id
    source: ArkSource | AudioSource | ShardSource
    augment: object = None   # config.AugmentConfig when crops are augmented, else None
    augment_files: dict | None = None   # its file lists (augment_sources.read_lists)

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
        """Rows of a crop's features."""
        return self.source.bins()

    def fingerprint(self) -> str:
        """sha256 of what training reads: every utterance's speaker, frame count and source
        (ark offset, audio file or shard member), and what the source's features come from
        (crop_sources: the stage-2 fingerprint of each ark's job, or the feature options and
        the shards).  Another utterance, speaker or feature computation gives another
        fingerprint; the arks themselves are not read."""
        digest = hashlib.sha256()
        for utt, label, frames, path in zip(self.utts, self.labels, self.num_frames,
                                             self.source.paths):
            digest.update(f"{utt} {self.speakers[label]} {frames} {path}\n".encode())
        digest.update(self.source.identity().encode())
        return digest.hexdigest()

    def crop(self, index: int, start: int, length: int, rng=None) -> np.ndarray:
        """(length, bins) features of utterance `index` from frame `start`, augmented with the
        draws of `rng` when the set is augmented."""
        return self.labelled_crop(index, start, length, rng)[0]

    def labelled_crop(self, index: int, start: int, length: int, rng=None):
        """crop() and its class: the speaker's index, or with augment.speed_new_speakers
        that of the sped-up speaker (speaker + (i + 1) x speakers for speed_factors[i])."""
        label = int(self.labels[index])
        augmenting = self.augment is not None and rng is not None
        waveform = augmenting and self.source.waveform
        # Speed first: it decides how many samples are read.
        speed, label = self.draw_speed(rng, label) if waveform else (1.0, label)
        x = self.source.read(self.utts[index], index, start, length,
                             int(self.num_frames[index]), speed)
        if waveform:
            x = augment.augment(x, rng, self.augment, AugmentSources(self, self.labels[index]))
        feats = self.source.features(x, length)
        # Masks go last, on the features: the draws before them stay those of a config
        # without masks.
        if (augmenting and self.augment.spec_mask_prob > 0
                and rng.random() < self.augment.spec_mask_prob):
            feats = augment.spec_mask(feats, rng, self.augment)
        return feats, label

    def draw_speed(self, rng, label: int) -> tuple[float, int]:
        """(speed factor, label) of a crop: 1 and the speaker, or a drawn speed_factors[i] and,
        with augment.speed_new_speakers, the sped-up speaker's class."""
        if rng.random() >= self.augment.speed_prob:
            return 1.0, label
        factor = int(rng.integers(len(self.augment.speed_factors)))
        if self.augment.speed_new_speakers:
            label += (factor + 1) * len(self.speakers)
        return float(self.augment.speed_factors[factor]), label


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
    paths = dict(read_scp_lines(f"{data_dir}/{table}"))
    utt2spk = dict(read_scp_lines(f"{data_dir}/utt2spk"))
    frames = dict(read_scp_lines(f"{data_dir}/utt2num_frames"))
    utts = sorted(paths)
    missing = [u for u in utts if u not in utt2spk or u not in frames]
    if missing:
        raise RecipeError(f"{data_dir}: {len(missing)} utterance(s) of {table} are missing from "
                          f"utt2spk or utt2num_frames (first: {missing[0]}); "
                          f"run utils/fix_data_dir.sh {data_dir}")
    if features == "on_the_fly":
        for utt in utts:
            audio_crops.check_source(utt, paths[utt], f"{data_dir}/wav.scp")
        source = AudioSource([paths[u] for u in utts],
                             audio_crops.spectrogram_options(spectrogram_config))
    else:
        source = ArkSource([paths[u] for u in utts])
    speakers = sorted({utt2spk[u] for u in utts})
    index = {spk: i for i, spk in enumerate(speakers)}
    return TrainingSet(
        utts=utts,
        num_frames=np.array([int(frames[u]) for u in utts], dtype=np.int64),
        labels=np.array([index[utt2spk[u]] for u in utts], dtype=np.int64),
        speakers=speakers, source=source, **augment_options)


def read_shards(data_dir: str, options, **augment_options) -> TrainingSet:
    """The training set of DATA_DIR/shards.list (steps/make_shards.sh), from the indexes."""
    path = f"{data_dir}/shards.list"
    if not os.path.isfile(path):
        raise RecipeError(f"{path} does not exist; pack the data dir first: "
                          f"steps/make_shards.sh {data_dir} <shard-dir>")
    with open(path) as f:
        tars = [line.strip() for line in f if line.strip()]
    utts, members, samples, spks, sizes = [], [], [], [], []
    for tar in tars:
        rows = shards.read_index(tar)
        sizes.append(len(rows))
        for utt, spk, offset, size, num_samples in rows:
            utts.append(utt)
            spks.append(spk)
            members.append(shards.member_spec(tar, offset, size))
            samples.append(num_samples)
    speakers = sorted(set(spks))
    index = {spk: i for i, spk in enumerate(speakers)}
    return TrainingSet(
        utts=utts,
        num_frames=np.array([options.num_frames(n) for n in samples], dtype=np.int64),
        labels=np.array([index[s] for s in spks], dtype=np.int64), speakers=speakers,
        source=ShardSource(members, options, sizes), **augment_options)


def epoch_batches(data: TrainingSet, batch_size: int, crop_frames: int, seed: int,
                  shuffle_buffer: int = 1000) -> EpochBatches:
    """The batch plan of a training set (its source's: shards stream theirs)."""
    return data.source.batches(data.num_frames, batch_size, crop_frames, seed, shuffle_buffer)


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

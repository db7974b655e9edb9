"""Shards: a training set packed into tar files of about 1,000 utterances each (FLAC, 16-bit),
so that a corpus of a million small files is read as a few hundred large ones (WeSpeaker's
shard format does the same).  steps/make_shards.sh writes them; data.features: shards reads them.

A shard is `shard_NNNNNN.tar` with one member `<utt>.flac` per utterance, and beside it
`shard_NNNNNN.tar.index`: `utt speaker offset size num_samples` per member, where offset and
size locate the member's bytes in the tar.  The index is written last, by rename: a shard with
an index is complete.  Which utterances go into which shard is fixed by a seeded shuffle of the
whole set (each shard mixes speakers) and does not depend on the number of jobs.

Reading (ShardBatches, data/training_set.py): the training plan is made from the indexes alone: each
epoch takes the shards in a seeded order, streams their members in tar order through a shuffle
buffer (its size: data.shuffle_buffer), and cuts the output into batches.  The plan is a function of
(seed, epoch), so a run resumed mid-epoch sees the same batches; reads follow the stream, so each
shard is read front to back within a window of the buffer's size.
"""
import io
import os
import tarfile

import numpy as np
import soundfile

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import write_lines


def shard_plan(utts: list[str], shard_size: int, seed: int) -> list[list[str]]:
    """The utterances of each shard: a seeded shuffle of `utts`, cut every shard_size."""
    order = np.random.default_rng([seed, 17]).permutation(len(utts))
    shuffled = [utts[i] for i in order]
    return [shuffled[k:k + shard_size] for k in range(0, len(shuffled), shard_size)]


def write_shard(path: str, members) -> int:
    """Writes the tar `path` and its index from (utt, speaker, samples at `rate`, rate)
    tuples; returns the number of members.  Both appear by rename, the index last."""
    written = []
    tmp = f"{path}.tmp"
    with tarfile.open(tmp, "w") as tar:
        for utt, speaker, samples, rate in members:
            flac = io.BytesIO()
            soundfile.write(flac, samples, rate, format="FLAC", subtype="PCM_16")
            info = tarfile.TarInfo(f"{utt}.flac")
            info.size = flac.getbuffer().nbytes   # not tell(): the writer seeks back at the end
            flac.seek(0)
            tar.addfile(info, flac)
            written.append((utt, speaker, len(samples)))
    with tarfile.open(tmp) as tar:   # where each member's bytes start, as a reader finds them
        where = {m.name: (m.offset_data, m.size) for m in tar}
    lines = [f"{utt} {speaker} {where[utt + '.flac'][0]} {where[utt + '.flac'][1]} {n}"
             for utt, speaker, n in written]
    os.replace(tmp, path)
    write_lines(f"{path}.index", lines)
    return len(lines)


def read_index(tar: str) -> list[tuple[str, str, int, int, int]]:
    """(utt, speaker, offset, size, num_samples) of each member of a shard, in tar order."""
    index = f"{tar}.index"
    if not os.path.isfile(index):
        raise RecipeError(f"shard {tar} has no index ({index}); it is incomplete: rerun "
                          f"steps/make_shards.sh, which redoes it")
    rows = []
    with open(index) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 5 or not all(x.isdigit() for x in fields[2:]):
                raise RecipeError(f"{index} line {number}: expected 'utt speaker offset size "
                                  f"num_samples', got '{line.strip()}'")
            rows.append((fields[0], fields[1], *map(int, fields[2:])))
    return rows


def member_spec(tar: str, offset: int, size: int) -> str:
    """How a TrainingSet names a shard member: TAR@OFFSET+SIZE."""
    return f"{tar}@{offset}+{size}"


def parse_member_spec(spec: str):
    """(tar, offset, size) of a member spec, or None for a plain path."""
    tar, at, rest = spec.rpartition("@")
    if not at or "+" not in rest:
        return None
    offset, _, size = rest.partition("+")
    return (tar, int(offset), int(size)) if offset.isdigit() and size.isdigit() else None


def open_member(utt: str, spec) -> soundfile.SoundFile:
    """The member's audio, opened from its bytes in the tar; a truncated or damaged shard
    names itself and the member."""
    tar, offset, size = spec
    try:
        with open(tar, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) < size:
            raise OSError(f"the file ends {size - len(data)} bytes into the member")
        return soundfile.SoundFile(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise RecipeError(f"shard {tar} is truncated or damaged: cannot read member {utt}.flac "
                          f"({e}); delete it and its .index and rerun steps/make_shards.sh, "
                          f"which makes it again") from None


def stream_order(shard_sizes: list[int], buffer: int, seed: int, epoch: int) -> np.ndarray:
    """The order (indices into the concatenation of the shards, as listed) in which an epoch
    yields the utterances: shards in a seeded order, each member in tar order into a buffer of
    `buffer` items, a random one of which leaves whenever the buffer is full (then the rest)."""
    rng = np.random.default_rng([seed, epoch, 29])
    starts = np.concatenate([[0], np.cumsum(shard_sizes)[:-1]]).astype(np.int64)
    stream = np.concatenate([np.arange(starts[s], starts[s] + shard_sizes[s])
                             for s in rng.permutation(len(shard_sizes))])
    pool, out = [], []
    for item in stream:
        pool.append(item)
        if len(pool) >= buffer:
            k = int(rng.integers(len(pool)))
            pool[k], pool[-1] = pool[-1], pool[k]
            out.append(pool.pop())
    out.extend(np.asarray(pool)[rng.permutation(len(pool))].tolist())
    return np.asarray(out, dtype=np.int64)

"""The batch plan of an epoch: which utterances and crop starts each global batch holds, a pure
function of (seed, epoch, step), so a run resumed in the middle of an epoch sees exactly the
batches the uninterrupted run would have seen, and what a rank sees does not depend on the
number of processes or DataLoader workers."""
import numpy as np

from pytorch_modules.fileio import shards


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

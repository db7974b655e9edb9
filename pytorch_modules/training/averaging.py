"""Checkpoint averaging (optim.average_last: N): final.pt holds the mean of the model's weights
at the end of the last N epochs, BatchNorm running statistics included, as WeSpeaker's recipes
average their last 10 epochs' models.

The sum is kept as the epochs end (in float64) and saved in every checkpoint, so a resumed run
averages exactly the epochs an uninterrupted one would, and no extra files are kept.  Integer
buffers (BatchNorm's num_batches_tracked) are counters, not weights: the last epoch's value is
kept.
"""
import torch


class WeightAverage:
    def __init__(self, last: int, epochs: int):
        self.first_epoch = epochs - last + 1
        self.sum: dict | None = None
        self.count = 0

    def add(self, epoch: int, weights: dict) -> None:
        """Adds the weights at the end of `epoch` (1-based) when it is one of the last N."""
        if epoch < self.first_epoch:
            return
        if self.sum is None:
            self.sum = {name: torch.zeros_like(w, dtype=torch.float64) if w.is_floating_point()
                        else w.detach().clone() for name, w in weights.items()}
        for name, w in weights.items():
            if w.is_floating_point():
                self.sum[name] += w.detach().double()
            else:
                self.sum[name].copy_(w)
        self.count += 1

    def state(self) -> dict:
        return {"first_epoch": self.first_epoch, "count": self.count, "sum": self.sum}

    def load(self, state: dict) -> None:
        self.first_epoch, self.count, self.sum = state["first_epoch"], state["count"], state["sum"]

    def mean(self, like: dict) -> dict:
        """The averaged weights, in the dtypes and on the devices of `like` (a state dict)."""
        if not self.count:
            raise RuntimeError("no epoch was averaged")
        return {name: (self.sum[name] / self.count).to(w.dtype).to(w.device)
                if w.is_floating_point() else self.sum[name].to(w.device)
                for name, w in like.items()}

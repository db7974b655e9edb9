"""Histograms of cos(theta_y) during training (the paper's Fig 1): accumulate, write, read.

File format (exp/<model>/cos_theta_hist.tsv), tab-separated, one line per bin per epoch:

    # epoch	bin_lo	bin_hi	count
    1	-1.000000	-0.980000	0
    1	-0.980000	-0.960000	3
    ...

Bins of one epoch are contiguous and in increasing order; counts are the training samples of
that epoch (all processes together) whose target cosine fell in [bin_lo, bin_hi) (the last bin
also holds cos = 1).  Writing an epoch drops the lines of that epoch and of later ones, so a
resumed or rerun training leaves exactly one histogram per epoch.
"""
import os

import numpy as np
import torch

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import written_whole

NUM_BINS = 100
HEADER = "# epoch\tbin_lo\tbin_hi\tcount"


def bin_edges(num_bins=NUM_BINS):
    """num_bins equal bins over [-1, 1], the range of a cosine."""
    return np.linspace(-1.0, 1.0, num_bins + 1)


class CosThetaHistogram:
    """Counts of cos(theta_y) over an epoch, on the training device (no host sync per step).

    Usage in training: hist.add(out.target_cos) every step; at the end of an epoch, sum
    hist.counts over processes (all_reduce), then write_epoch(path, epoch, hist.edges,
    hist.counts) on rank 0, and hist.reset()."""

    def __init__(self, num_bins=NUM_BINS, device="cpu"):
        self.edges = bin_edges(num_bins)
        self.counts = torch.zeros(num_bins, dtype=torch.float64, device=device)

    def add(self, target_cos: torch.Tensor) -> None:
        values = target_cos.detach().float().clamp(-1.0, 1.0)  # rounding can pass +-1
        self.counts += torch.histc(values, bins=len(self.counts), min=-1.0, max=1.0).double()

    def reset(self) -> None:
        self.counts.zero_()


def _lines_before(path, epoch):
    """The data lines of an existing file for epochs before `epoch`."""
    if not os.path.exists(path):
        return []
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            if int(line.split("\t", 1)[0]) < epoch:
                kept.append(line.rstrip("\n"))
    return kept


def write_epoch(path, epoch, edges, counts):
    """Add (or replace) the histogram of `epoch`; the file is replaced by rename."""
    counts = np.asarray(counts.cpu() if isinstance(counts, torch.Tensor) else counts)
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(counts)} counts need {len(counts) + 1} bin edges, "
                         f"got {len(edges)}")
    lines = [HEADER] + _lines_before(path, epoch) + [
        f"{epoch}\t{lo:.6f}\t{hi:.6f}\t{int(round(float(n)))}"
        for lo, hi, n in zip(edges[:-1], edges[1:], counts)]
    with written_whole(path, "free some space and rerun training to resume") as tmp, \
            open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def read_histograms(path):
    """{epoch: (bin edges, counts)} of a cos_theta_hist.tsv, epochs in increasing order."""
    rows = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise RecipeError(f"cannot read {path}: {e.strerror}; training writes it when an epoch "
                          f"ends.") from None
    with f:
        for line_no, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            try:
                epoch, lo, hi, count = (int(fields[0]), float(fields[1]), float(fields[2]),
                                        int(fields[3]))
                if len(fields) != 4 or count < 0 or hi <= lo:
                    raise ValueError
            except (ValueError, IndexError):
                raise RecipeError(f"{path}:{line_no}: expected 'EPOCH BIN_LO BIN_HI COUNT' with "
                                  f"BIN_LO < BIN_HI and a count >= 0, got "
                                  f"{line.rstrip()!r}") from None
            rows.setdefault(epoch, []).append((lo, hi, count, line_no))
    if not rows:
        raise RecipeError(f"{path} holds no histogram lines.")
    return {epoch: _as_histogram(path, bins) for epoch, bins in sorted(rows.items())}


def _as_histogram(path, bins):
    """(edges, counts) of one epoch's lines; the bins must be contiguous."""
    for (_, hi, _, _), (lo, _, _, line_no) in zip(bins, bins[1:]):
        if abs(lo - hi) > 1e-6:
            raise RecipeError(f"{path}:{line_no}: bin starts at {lo} but the previous bin of "
                              f"this epoch ends at {hi}; the bins of an epoch must be contiguous.")
    edges = np.array([b[0] for b in bins] + [bins[-1][1]])
    return edges, np.array([b[2] for b in bins], dtype=np.int64)

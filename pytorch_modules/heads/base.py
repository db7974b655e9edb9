"""What every classification head shares: its output, the paper's s and m, the option ranges
common to the cosine heads, and the normalised class weights of the margin heads.

A head is an nn.Module built as Head(embedding_dim, num_classes, **options) whose forward(x,
labels) returns a HeadOutput.  Its constructor's keyword arguments are the config's `loss:`
keys (config.py reads their types and defaults from the signature), and their defaults are
the published settings; its class attributes say what the config checks need:
  OPTION_RANGES     option -> (test, the allowed range in words), checked when a config loads
  SCHEDULED_MARGIN  True when the margin warm-up (optim.margin_warmup_epochs) applies
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The paper's settings (Sec 2 and 4) shared by AM- and DAM-Softmax.
PAPER_MARGIN = 0.2      # m
PAPER_SCALE = 30.0      # s

# Ranges of options several heads have; a value outside is refused when the config is loaded,
# so that a run never trains uselessly to the end (s = 0 leaves every logit at 0).
SCALE_RANGE = (lambda v: v > 0, "> 0")
COSINE_MARGIN_RANGE = (lambda v: 0 <= v < 1, "in [0, 1) (a cosine margin)")


@dataclass
class HeadOutput:
    loss: torch.Tensor        # scalar, mean over the batch
    logits: torch.Tensor      # (batch, classes), the values the softmax saw
    target_cos: torch.Tensor  # (batch,), cos(theta_y), detached


class Head(nn.Module):
    """The interface: the ranges of the options the config may set."""
    OPTION_RANGES: dict = {}
    SCHEDULED_MARGIN = False


class CosineHead(Head):
    """Shared part of the margin heads: normalised class weights and cosines."""

    def __init__(self, embedding_dim: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_normal_(self.weight)

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x), F.normalize(self.weight))

    @staticmethod
    def replace_target(logits: torch.Tensor, labels: torch.Tensor,
                       target_logit: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
        return logits + one_hot * (target_logit - logits.gather(1, labels[:, None]).squeeze(1))[:, None]



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
ANGULAR_MARGIN_RANGE = (lambda v: 0 <= v < 1, "in [0, 1) (an angle in radians)")
SUB_CENTERS_RANGE = (lambda v: v >= 1, ">= 1 (weight vectors per class)")


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
    """Shared part of the margin heads: normalised class weights and cosines.

    Sub-centres (Deng et al., "Sub-center ArcFace", ECCV 2020): with sub_centers K > 1 each
    class has K weight vectors, and the cosine to a class is the largest over its K centres,
    cos(theta_j) = max_k <x/|x|, W_jk/|W_jk|>; the gradient reaches only the winning centre.
    The weight is (num_classes * K, dim), class j's centres in rows jK .. jK + K - 1 (the
    layout of insightface and WeSpeaker); K = 1 is the plain (num_classes, dim) weight,
    initialised exactly as before, so checkpoints and seeds are unchanged.
    """

    def __init__(self, embedding_dim: int, num_classes: int, sub_centers: int = 1):
        super().__init__()
        if int(sub_centers) != sub_centers or sub_centers < 1:
            raise ValueError(f"sub_centers must be an integer >= 1, got {sub_centers}")
        self.sub_centers = int(sub_centers)
        self.weight = nn.Parameter(torch.empty(num_classes * self.sub_centers, embedding_dim))
        nn.init.xavier_normal_(self.weight)

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, num_classes): the cosine of each embedding to each class."""
        cos = F.linear(F.normalize(x), F.normalize(self.weight))
        if self.sub_centers == 1:
            return cos
        # max(dim), not amax: on a tie the gradient goes to one centre, not split among them
        return cos.view(cos.shape[0], -1, self.sub_centers).max(dim=2).values

    @staticmethod
    def replace_target(logits: torch.Tensor, labels: torch.Tensor,
                       target_logit: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
        return logits + one_hot * (target_logit
                                   - logits.gather(1, labels[:, None]).squeeze(1))[:, None]

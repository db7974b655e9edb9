"""ResNet34 r-vector (`model.type: resnet34`): the ResNet of WeSpeaker's and 3D-Speaker's
VoxCeleb recipes (Zeinali et al. 2019, "BUT system description to VoxCeleb Speaker Recognition
Challenge 2019"; WeSpeaker, Wang et al., ICASSP 2023).

Input: log mel filterbank batches (batch, bins=80, frames) treated as one-channel images:

    3x3 conv (1 -> w, stride 1) -> stage 1 (w, stride 1) -> stage 2 (2w, stride 2)
    -> stage 3 (4w, stride 2) -> stage 4 (8w, stride 2) -> statistics pooling -> linear

A stage is `blocks[i]` basic residual blocks (two 3x3 convolutions, BatchNorm after each, ReLU
after the first and after the addition); its first block changes the width and the stride, and
its shortcut is then a 1x1 convolution + BatchNorm (a projection), else the identity.  The
stages' widths are width x 1, 2, 4, 8 (32-64-128-256 for the published model), one stage per
entry of `blocks` ([3, 4, 6, 3]: ResNet34).  Unlike the ResCNN (and ImageNet ResNets), the
first stage runs at the input's full resolution; only the later stages halve both axes.

Statistics pooling: the last stage's maps keep their frequency rows apart (8w x F' channels,
F' = 10 for 80 bins), and their mean and standard deviation over time are concatenated
(2 x 8w x F' values: 5,120); a linear layer maps them to the embedding (256-d).  The standard
deviation is sqrt(variance + 1e-8) with the population variance (ours: WeSpeaker takes the
sample variance, which is undefined for one frame; the epsilon keeps the gradient finite when
a map is constant over time).

With width 32, blocks [3, 4, 6, 3], 80 bins and a 256-d embedding this is 6.63 M parameters
(6,634,336), WeSpeaker's published 6.63 M for ResNet34-TSTP-emb256; the classification head is
not part of the backbone (the recipe's loss head is separate).

embedding_bn (default off, as WeSpeaker: its ResNet34 has no BatchNorm on the embedding; the
BatchNorm1d it defines sits only between the two embedding layers of its two_emb_layer
variant): a BatchNorm1d without affine parameters on the linear layer's output, as the ResCNN
has (models/rescnn.py says why).  fc_output() is the linear layer's output (the embedding before
that BatchNorm); without it, forward() and fc_output() are the same.

input_norm (as the ResCNN): utterance_mean subtracts each bin's mean over the input's frames
(WeSpeaker's cepstral mean normalisation of its fbank), none leaves the features as they are.
"""
import torch
from torch import nn

from pytorch_modules.models.embedding_network import INPUT_NORMS, EmbeddingNetwork


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm; identity or projection shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        # No conv biases: the BatchNorm shift that follows each convolution makes them redundant.
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def halved(size: int, times: int) -> int:
    """A size after `times` 3x3 stride-2 convolutions with padding 1."""
    for _ in range(times):
        size = (size - 1) // 2 + 1
    return size


def statistics_pooling(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, frames) -> (batch, 2 channels): mean and standard deviation over time."""
    mean = x.mean(dim=2)
    std = torch.sqrt(x.var(dim=2, unbiased=False) + 1e-8)
    return torch.cat([mean, std], dim=1)


class ResNet34(EmbeddingNetwork):
    """Maps (batch, bins, frames) features to (batch, embedding_dim) speaker embeddings.

    The constructor's keyword arguments are the config's `model:` keys; the defaults are the
    published ResNet34 (WeSpeaker, 3D-Speaker)."""
    OPTION_RANGES = {
        "width": (lambda v: v > 0, "> 0"),
        "blocks": (lambda v: all(b > 0 for b in v), "all > 0 (one entry per stage)"),
        "embedding_dim": (lambda v: v > 0, "> 0"),
        "input_bins": (lambda v: v > 0, "> 0"),
        "input_norm": (lambda v: v in INPUT_NORMS, f"one of {', '.join(INPUT_NORMS)}"),
    }

    def __init__(self, width: int = 32, blocks: list[int] = (3, 4, 6, 3),
                 embedding_dim: int = 256, embedding_bn: bool = False, input_bins: int = 80,
                 input_norm: str = "utterance_mean"):
        super().__init__()
        if not blocks or any(b < 1 for b in blocks):
            raise ValueError(f"ResNet34 blocks must be one count >= 1 per stage, got {blocks}")
        self.input_options(input_bins, input_norm)
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_ch = width
        for stage, count in enumerate(blocks):
            out_ch = width * 2 ** stage
            for i in range(count):
                layers.append(BasicBlock(in_ch, out_ch, 2 if stage > 0 and i == 0 else 1))
                in_ch = out_ch
        self.trunk = nn.Sequential(*layers)
        pooled = 2 * in_ch * halved(input_bins, len(blocks) - 1)
        self.embedding_layer(pooled, embedding_dim, embedding_bn)

    def fc_output(self, feats: torch.Tensor) -> torch.Tensor:
        """The embedding before the embedding BatchNorm (the same as forward without one)."""
        x = self.trunk(self.normalised_input(feats).unsqueeze(1))            # (batch, C, F', T')
        return self.fc(statistics_pooling(x.flatten(1, 2)))

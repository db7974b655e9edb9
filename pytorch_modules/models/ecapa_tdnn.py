"""ECAPA-TDNN (`model.type: ecapa_tdnn`): Desplanques, Thienpondt and Demuynck, "ECAPA-TDNN:
Emphasized Channel Attention, Propagation and Aggregation in TDNN Based Speaker Verification",
Interspeech 2020 (Fig 1 and 2).

Input: log mel filterbank batches (batch, bins=80, frames); the bins are the channels of 1-D
convolutions over time, and every layer keeps the number of frames:

    Conv1D (k=5) + ReLU + BN                                   bins -> C
    SE-Res2Block (k=3, dilation 2), (k=3, 3), (k=3, 4)         C -> C each (`dilations`),
        each fed the sum of the front layer's and the preceding blocks' outputs
    concatenation of the three blocks' outputs, Conv1D (k=1) + ReLU   3C -> 1536 (`mfa_channels`)
    attentive statistics pooling + BN                          1536 x T -> 3072
    FC + BN                                                    3072 -> 192 (`embedding_dim`)

SE-Res2Block: Conv1D (k=1) + ReLU + BN; a Res2Net dilated convolution of `scale` (8) groups of
C/scale channels: the first group passes through, each next one is convolved (k=3, the block's
dilation) + ReLU + BN after the previous group's output is added to it; Conv1D (k=1) + ReLU +
BN; a squeeze-excitation (the channels' means over time -> FC to 128 -> ReLU -> FC to C ->
sigmoid, which scales each channel); and the block's input added (the residual).

The sum feeding each block is the paper's "multi-layer feature aggregation and summation"
(section 3.4; `summed_inputs`, default on): the second block gets front + block 1, the third
front + block 1 + block 2.  SpeechBrain's and WeSpeaker's ECAPA-TDNN chain the blocks instead
(each gets the previous one's output: summed_inputs: false); the parameters are the same.

Attentive statistics pooling, channel- and context-dependent: each frame's 1536 values are
concatenated with their mean and standard deviation over the whole input (the global context),
a 1x1 convolution maps them to 128 (`attention_channels`), tanh, a second maps those back to
1536 scores per frame, a softmax over time makes them weights per channel and frame, and the
weighted mean and standard deviation of every channel are concatenated.

With C = 512 this is 6.19 M parameters (6,190,720; the paper: 6.2 M) and with C = 1024
14.66 M (14,657,088; the paper: 14.7 M), 80 bins and a 192-d embedding; the classification
head is not part of the backbone.  (SpeechBrain's C = 1024 model aggregates to 3C = 3072
channels and has 20.8 M; the paper's MFA layer has 1536 for both sizes.)

Ours: the convolutions keep their biases (SpeechBrain and WeSpeaker do; a ReLU sits between
each and its BatchNorm); the final BN (embedding_bn, default on, the paper's "FC + BN") has no
affine parameters, as the ResCNN's (models/rescnn.py), so fc_output(), the FC output in front
of it, and forward() differ only by that normalisation.  input_norm as the ResCNN:
utterance_mean subtracts each bin's mean over the input's frames (the mean normalisation
SpeechBrain and WeSpeaker apply to their fbank).
"""
import torch
from torch import nn

from pytorch_modules.models.embedding_network import INPUT_NORMS, EmbeddingNetwork


class ConvReluBn(nn.Module):
    """Conv1d + ReLU + BatchNorm1d, the time length kept (padding = dilation x (kernel - 1) / 2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)
        self.relu = nn.ReLU(inplace=True)
        self.bn = nn.BatchNorm1d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.relu(self.conv(x)))


class Res2Conv(nn.Module):
    """Res2Net's hierarchical convolution: `scale` groups, each (but the first) convolved after
    the previous group's output is added to it."""

    def __init__(self, channels: int, scale: int, dilation: int):
        super().__init__()
        self.width = channels // scale
        self.convs = nn.ModuleList(ConvReluBn(self.width, self.width, 3, dilation)
                                   for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)
        out = [groups[0]]
        previous = groups[0]
        for i, conv in enumerate(self.convs):
            previous = conv(groups[i + 1] if i == 0 else groups[i + 1] + previous)
            out.append(previous)
        return torch.cat(out, dim=1)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, bottleneck)
        self.fc2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, scale: int, dilation: int, se_channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvReluBn(channels, channels),
                                  Res2Conv(channels, scale, dilation),
                                  ConvReluBn(channels, channels),
                                  SqueezeExcitation(channels, se_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentiveStatsPooling(nn.Module):
    """Channel- and context-dependent attentive statistics: (batch, C, T) -> (batch, 2C)."""

    def __init__(self, channels: int, attention_channels: int):
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(3 * channels, attention_channels, 1), nn.Tanh(),
                                       nn.Conv1d(attention_channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        mean = x.mean(dim=2, keepdim=True)
        std = torch.sqrt(x.var(dim=2, keepdim=True, unbiased=False).clamp(min=1e-10))
        context = torch.cat([x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)], dim=1)
        weights = torch.softmax(self.attention(context), dim=2)
        mean = (weights * x).sum(dim=2)
        var = (weights * (x - mean.unsqueeze(2)) ** 2).sum(dim=2)
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-10))], dim=1)


class ECAPATDNN(EmbeddingNetwork):
    """Maps (batch, bins, frames) features to (batch, embedding_dim) speaker embeddings.

    The constructor's keyword arguments are the config's `model:` keys; the defaults are the
    paper's C = 512 model."""
    OPTION_RANGES = {
        "channels": (lambda v: v > 0, "> 0"),
        "scale": (lambda v: v >= 2, ">= 2"),
        "dilations": (lambda v: all(d > 0 for d in v), "all > 0 (one per SE-Res2Block)"),
        "mfa_channels": (lambda v: v > 0, "> 0"),
        "attention_channels": (lambda v: v > 0, "> 0"),
        "se_channels": (lambda v: v > 0, "> 0"),
        "embedding_dim": (lambda v: v > 0, "> 0"),
        "input_bins": (lambda v: v > 0, "> 0"),
        "input_norm": (lambda v: v in INPUT_NORMS, f"one of {', '.join(INPUT_NORMS)}"),
    }

    @staticmethod
    def options_problem(options: dict) -> str | None:
        """What is wrong with a combination of options (config.py asks before building)."""
        if options["channels"] % options["scale"]:
            return (f"model.channels ({options['channels']}) must be a multiple of model.scale "
                    f"({options['scale']}): the Res2Net convolution splits the channels into "
                    f"scale equal groups")
        return None

    def __init__(self, channels: int = 512, scale: int = 8, dilations: list[int] = (2, 3, 4),
                 mfa_channels: int = 1536, attention_channels: int = 128,
                 se_channels: int = 128, embedding_dim: int = 192, embedding_bn: bool = True,
                 input_bins: int = 80, input_norm: str = "utterance_mean",
                 summed_inputs: bool = True):
        super().__init__()
        problem = self.options_problem({"channels": channels, "scale": scale})
        if problem:
            raise ValueError(problem.replace("model.", "ECAPATDNN "))
        self.input_options(input_bins, input_norm)
        self.summed_inputs = summed_inputs
        self.front = ConvReluBn(input_bins, channels, kernel=5)
        self.blocks = nn.ModuleList(SERes2Block(channels, scale, d, se_channels)
                                    for d in dilations)
        self.mfa = nn.Sequential(nn.Conv1d(len(dilations) * channels, mfa_channels, 1),
                                 nn.ReLU(inplace=True))
        self.pooling = AttentiveStatsPooling(mfa_channels, attention_channels)
        self.pooling_bn = nn.BatchNorm1d(2 * mfa_channels)
        self.embedding_layer(2 * mfa_channels, embedding_dim, embedding_bn)

    def fc_output(self, feats: torch.Tensor) -> torch.Tensor:
        """The embedding before the embedding BatchNorm (the same as forward without one)."""
        x = self.front(self.normalised_input(feats))
        outputs = []
        for block in self.blocks:
            out = block(x)
            outputs.append(out)
            x = x + out if self.summed_inputs else out
        x = self.mfa(torch.cat(outputs, dim=1))
        return self.fc(self.pooling_bn(self.pooling(x)))

"""ResCNN of the paper (Zhou et al., Interspeech 2020, Fig 4/5).

Input: log spectrogram batches of shape (batch, freq=161, frames).  The network treats them as
one-channel images:

    Conv1 -> Res1 (3 blocks) -> Conv2 -> Res2 (4) -> Conv3 -> Res3 (6) -> Conv4 -> Res4 (3)
    -> pooling -> FC -> embedding

Conv2..Conv4 are the paper's 5x5 stride-2 "link" convolutions that change the width; Conv1 is
one too (ours: the paper gives no kernel or stride for Conv1), so that every stage halves both
axes.  A residual block is two 3x3 stride-1 convolutions with an identity shortcut.  BatchNorm +
ReLU follow every convolution (in a block the second ReLU comes after the addition, as in ResNet).
With widths 64-128-256-512 and a 1024-d embedding this gives 27.5 M parameters and 33.8 GFLOPs per
3-s crop; the widths are not given in the paper, so they are a config value.

Input normalisation (`model.input_norm`, ours: the paper does not say): utterance_mean
subtracts each bin's mean over the input's frames (the whole utterance at test time, the crop
in training), so a fixed channel or recording level drops out, as Kaldi's and WeSpeaker's
cepstral mean normalisation does; none leaves the log spectrum as it is, so the network also
sees each speaker's long-term spectrum and channel (see README, "Small real corpora").  The
feature arks hold the spectrum without normalisation; the model applies its own, so that
verification and the exported models need no separate feature setting.

Pooling (`model.pooling`):
  avg    2-D average over frequency and time of the last stage's maps (C values): the
         paper's "average pooling".
  stats  (ours) statistics pooling as in x-vectors and WeSpeaker's ResNets: the maps' frequency
         rows are kept apart (C x F' channels, F' = 11 for 161 bins), and their mean and
         standard deviation over time are concatenated (2 C F' values).  The standard deviation
         says how the voice varies, which an average cannot; it needs the number of input bins
         (`input_bins`) to size the FC.

embedding_bn (ours, default on): a BatchNorm1d on the FC output.  The pooled trunk output is
post-ReLU, so every utterance's vector shares a large positive common component; the FC maps
it to embeddings that all point the same way (mean pairwise cosine 0.97 at initialisation,
0.999 after a few steps), and a cosine-margin head cannot separate them: training with
AM/DAM-Softmax then stalls at chance.  Normalising each embedding dimension over the batch
removes that common component.  It has no parameters (no affine), only running statistics,
and at test time it centres and scales each dimension with them, so the recipe's cosine score
is the cosine of the normalised FC output, not of the FC output itself.  Embedding extraction
can take either (`--layer bn`, the default, or `--layer fc`); docs/results_so762.md, "Which
vector is scored", gives the measurement behind the default.
"""
import torch
from torch import nn

from pytorch_modules.models.embedding_network import INPUT_NORMS, EmbeddingNetwork


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Sequential:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut (widths are unchanged inside a stage)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


POOLINGS = ("avg", "stats")


def downsampled(size: int, stages: int) -> int:
    """A size after `stages` 5x5 stride-2 convolutions with padding 2."""
    for _ in range(stages):
        size = (size - 1) // 2 + 1
    return size


class ResCNN(EmbeddingNetwork):
    """Maps (batch, freq, frames) features to (batch, embedding_dim) speaker embeddings.

    The constructor's keyword arguments are the config's `model:` keys (config.py reads their
    types and defaults from the signature and their ranges from OPTION_RANGES); the defaults
    are the paper's model."""
    OPTION_RANGES = {
        "widths": (lambda v: all(w > 0 for w in v), "all > 0"),
        "blocks": (lambda v: all(b >= 0 for b in v), "all >= 0"),
        "embedding_dim": (lambda v: v > 0, "> 0"),
        "input_bins": (lambda v: v > 0, "> 0"),
        "pooling": (lambda v: v in POOLINGS, f"one of {', '.join(POOLINGS)}"),
        "input_norm": (lambda v: v in INPUT_NORMS, f"one of {', '.join(INPUT_NORMS)}"),
    }

    @staticmethod
    def options_problem(options: dict) -> str | None:
        """What is wrong with a combination of options (config.py asks before building)."""
        if len(options["widths"]) != len(options["blocks"]):
            return (f"model.widths and model.blocks need the same length (one width per "
                    f"stage), got {options['widths']} and {options['blocks']}")
        return None

    def __init__(self, widths: list[int] = (64, 128, 256, 512),
                 blocks: list[int] = (3, 4, 6, 3), embedding_dim: int = 1024,
                 embedding_bn: bool = True, pooling: str = "avg", input_bins: int = 161,
                 input_norm: str = "utterance_mean"):
        super().__init__()
        problem = self.options_problem({"widths": widths, "blocks": blocks})
        if problem:
            raise ValueError(problem.replace("model.", "ResCNN "))
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling '{pooling}' (choose one of {', '.join(POOLINGS)})")
        self.input_options(input_bins, input_norm)
        stages = []
        in_ch = 1
        for width, num_blocks in zip(widths, blocks):
            stages.append(conv_bn_relu(in_ch, width, kernel=5, stride=2))
            stages.extend(ResidualBlock(width) for _ in range(num_blocks))
            in_ch = width
        self.trunk = nn.Sequential(*stages)
        self.pooling = pooling
        pooled = in_ch if pooling == "avg" else 2 * in_ch * downsampled(input_bins, len(widths))
        self.embedding_layer(pooled, embedding_dim, embedding_bn)

    def fc_output(self, feats: torch.Tensor) -> torch.Tensor:
        """The embedding before the embedding BatchNorm (the same as forward without one)."""
        # average pooling takes features of any height
        feats = self.normalised_input(feats, check_bins=self.pooling == "stats")
        x = self.trunk(feats.unsqueeze(1))
        # Over time (and frequency, for avg): any utterance length maps to one vector.
        if self.pooling == "avg":
            x = x.mean(dim=(2, 3))
        else:
            x = x.flatten(1, 2)                       # (batch, C F', T')
            x = torch.cat([x.mean(dim=2), x.std(dim=2, unbiased=False)], dim=1)
        return self.fc(x)

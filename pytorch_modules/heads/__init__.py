"""Classification heads and losses of the paper (Zhou et al., Interspeech 2020, Eq 1-10).

Each head maps embeddings x (batch, dim) and speaker labels y to a scalar loss.  The margin
heads normalise the class weights W_j and the embeddings, so cos(theta_j) = <x/|x|, W_j/|W_j|>.

  softmax      (Eq 1)    logit_j = W_j^T x + b_j
  a_softmax    (Eq 3-4)  logit_y = |x| psi(theta_y),  psi(theta) = (-1)^k cos(m theta) - 2k,
                         theta in [k pi/m, (k+1) pi/m];  logit_j = |x| cos(theta_j) otherwise
  am_softmax   (Eq 5-6)  logit_y = s (cos(theta_y) - m),       logit_j = s cos(theta_j)
  dam_softmax  (Eq 7-10) logit_y = s (cos(theta_y) - m_i),     m_i = m exp(1 - cos(theta_y)) / lambda

The dynamic margin m_i grows as the target cosine falls: with m = 0.2 and lambda = 2 it is 0.1
at cos = 1 and 0.2718 at cos = 0 (the paper's Fig 3), so hard samples get a larger margin.

Gradient through the dynamic margin (option `margin_grad`).  Written as in Eq 7-10, m_i is a
function of cos(theta_y), and autograd then gives d logit_y / d cos = s (1 + m_i): hard samples
are also pulled harder.  With margin_grad false, m_i is treated as a per-sample constant
(detached), the loss is then AM-Softmax with a per-sample margin.  The paper's equations define
the first; it is the default, and the second is there for comparison.

Every head returns a HeadOutput whose `logits` give the classification accuracy and whose
`target_cos` is cos(theta_y) (for margin heads; the plain softmax reports it from its weights),
recorded during training to draw the paper's Fig 1.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The paper's settings (Sec 2 and 4), their one home: the heads' defaults, the default config
# (config.LossConfig) and the loss comparison (bin/loss_variant_config.py) read them here.
PAPER_MARGIN = 0.2      # m of AM- and DAM-Softmax
PAPER_SCALE = 30.0      # s
PAPER_LAMBDA = 2.0      # lambda of DAM-Softmax (Eq 8-10)
PAPER_A_SOFTMAX_M = 4   # A-Softmax's integer m, as in SphereFace
PAPER_OPTIONS = {
    "softmax": {},
    "a_softmax": {"margin": PAPER_A_SOFTMAX_M},
    "am_softmax": {"margin": PAPER_MARGIN, "scale": PAPER_SCALE},
    "dam_softmax": {"margin": PAPER_MARGIN, "scale": PAPER_SCALE, "lam": PAPER_LAMBDA},
}

LOSS_TYPES = ("softmax", "a_softmax", "am_softmax", "dam_softmax")
# Heads whose margin follows the margin warm-up of the training schedule (margin_scale).
SCHEDULED_MARGIN_TYPES = ("am_softmax", "dam_softmax")


@dataclass
class HeadOutput:
    loss: torch.Tensor        # scalar, mean over the batch
    logits: torch.Tensor      # (batch, classes), the values the softmax saw
    target_cos: torch.Tensor  # (batch,), cos(theta_y), detached


def dynamic_margin(cos_target: torch.Tensor, margin: float, lam: float) -> torch.Tensor:
    """m_i = m * exp(1 - cos(theta_y)) / lambda (Eq 8-10)."""
    return margin * torch.exp(1.0 - cos_target) / lam


def chebyshev_cos_multiple(cos: torch.Tensor, m: int) -> torch.Tensor:
    """cos(m theta) as a polynomial in cos(theta) (Chebyshev T_m).

    Avoids acos in the differentiable path: d acos / d cos is infinite at cos = +-1.
    """
    t_prev, t_cur = torch.ones_like(cos), cos
    if m == 0:
        return t_prev
    for _ in range(m - 1):
        t_prev, t_cur = t_cur, 2 * cos * t_cur - t_prev
    return t_cur


class SoftmaxHead(nn.Module):
    """Plain softmax over a linear layer with bias (Eq 1)."""

    def __init__(self, embedding_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(embedding_dim, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        logits = self.fc(x)
        with torch.no_grad():
            cos = F.linear(F.normalize(x), F.normalize(self.fc.weight))
            target_cos = cos.gather(1, labels[:, None]).squeeze(1)
        return HeadOutput(F.cross_entropy(logits, labels), logits, target_cos)


class CosineHead(nn.Module):
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


class AMSoftmaxHead(CosineHead):
    """Additive margin: logit_y = s (cos(theta_y) - m) (Eq 5-6).

    margin_scale (in [0, 1]) multiplies the margin: the trainer sets it each step from the
    margin warm-up schedule (training.margin_scale); 1, the paper's loss, unless warmed up.
    A tensor, not a float, so that a compiled step does not recompile for every new value;
    not saved in checkpoints (it is a function of the training position).
    """

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = PAPER_MARGIN,
                 scale: float = PAPER_SCALE):
        super().__init__(embedding_dim, num_classes)
        self.margin, self.scale = margin, scale
        self.register_buffer("margin_scale", torch.ones(()), persistent=False)

    def target_margin(self, target_cos: torch.Tensor) -> torch.Tensor:
        return torch.full_like(target_cos, self.margin_scale * self.margin)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        cos = self.cosines(x)
        target_cos = cos.gather(1, labels[:, None]).squeeze(1)
        phi = target_cos - self.target_margin(target_cos)
        logits = self.scale * self.replace_target(cos, labels, phi)
        return HeadOutput(F.cross_entropy(logits, labels), logits, target_cos.detach())


class DAMSoftmaxHead(AMSoftmaxHead):
    """Dynamic additive margin: m_i = m exp(1 - cos(theta_y)) / lambda (Eq 7-10)."""

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = PAPER_MARGIN,
                 scale: float = PAPER_SCALE, lam: float = PAPER_LAMBDA,
                 margin_grad: bool = True):
        super().__init__(embedding_dim, num_classes, margin, scale)
        if lam <= 0:
            raise ValueError(f"DAM-Softmax needs lambda > 0, got {lam}")
        self.lam, self.margin_grad = lam, margin_grad

    def target_margin(self, target_cos: torch.Tensor) -> torch.Tensor:
        source = target_cos if self.margin_grad else target_cos.detach()
        return dynamic_margin(source, self.margin_scale * self.margin, self.lam)


class ASoftmaxHead(CosineHead):
    """Angular margin (SphereFace): logit_y = |x| psi(theta_y), psi = (-1)^k cos(m theta) - 2k.

    SphereFace trains this with an annealed mix f = (lambda cos + psi) / (1 + lambda), lambda =
    max(lambda_min, lambda_base (1 + gamma * step)^-power); without it a large m rarely
    converges.  lambda_base = 0 gives Eq 3-4 exactly from the first step.
    """

    def __init__(self, embedding_dim: int, num_classes: int, margin: int = PAPER_A_SOFTMAX_M,
                 lambda_base: float = 1000.0, lambda_min: float = 5.0,
                 lambda_gamma: float = 0.12, lambda_power: float = 1.0):
        super().__init__(embedding_dim, num_classes)
        if int(margin) != margin or margin < 1:
            raise ValueError(f"A-Softmax needs an integer margin m >= 1, got {margin}")
        self.m = int(margin)
        self.lambda_base, self.lambda_min = lambda_base, lambda_min
        self.lambda_gamma, self.lambda_power = lambda_gamma, lambda_power
        # The annealing clock is part of the state so that a resumed run continues it.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def current_lambda(self) -> float:
        if self.lambda_base <= 0:
            return 0.0
        decayed = self.lambda_base * (1 + self.lambda_gamma * float(self.step)) ** -self.lambda_power
        return max(self.lambda_min, decayed)

    def psi(self, cos: torch.Tensor) -> torch.Tensor:
        cos = cos.clamp(-1.0, 1.0)
        with torch.no_grad():
            k = torch.floor(self.m * torch.acos(cos) / math.pi)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)  # (-1)^k
        return sign * chebyshev_cos_multiple(cos, self.m) - 2.0 * k

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        cos = self.cosines(x)
        norm = x.norm(dim=1, keepdim=True)
        target_cos = cos.gather(1, labels[:, None]).squeeze(1)
        lam = self.current_lambda()
        phi = (lam * target_cos + self.psi(target_cos)) / (1.0 + lam)
        logits = norm * self.replace_target(cos, labels, phi)
        if self.training:
            self.step += 1
        return HeadOutput(F.cross_entropy(logits, labels), logits, target_cos.detach())


# The values each head option may take, checked when a config is loaded (config.py), so that a
# run never trains uselessly to the end (s = 0 leaves every logit at 0, chance for ever):
# option -> (test, the range in words); (loss type, option) entries override a plain option.
OPTION_RANGES = {
    "scale": (lambda v: v > 0, "> 0"),
    "margin": (lambda v: 0 <= v < 1, "in [0, 1) (a cosine margin)"),
    ("a_softmax", "margin"): (lambda v: v >= 1, ">= 1 (an integer multiple of the angle)"),
    "lam": (lambda v: v > 0, "> 0"),
    "lambda_base": (lambda v: v >= 0, ">= 0"),
    "lambda_min": (lambda v: v >= 0, ">= 0"),
    "lambda_gamma": (lambda v: v >= 0, ">= 0"),
    "lambda_power": (lambda v: v >= 0, ">= 0"),
}


def option_range_error(loss_type: str, name: str, value) -> str | None:
    """The allowed range of option `name` of `loss_type` when `value` lies outside it, else
    None (options without a range, such as margin_grad, are never out of range)."""
    test, words = OPTION_RANGES.get((loss_type, name), OPTION_RANGES.get(name, (None, None)))
    if test is None or isinstance(value, bool):
        return None
    return None if test(value) else words


HEADS = {"softmax": SoftmaxHead, "a_softmax": ASoftmaxHead,
         "am_softmax": AMSoftmaxHead, "dam_softmax": DAMSoftmaxHead}


def build_head(loss_type: str, embedding_dim: int, num_classes: int, **options) -> nn.Module:
    """The classification head for `loss_type` with its options (see conf/*.yaml, loss:)."""
    if loss_type not in HEADS:
        raise ValueError(f"unknown loss type '{loss_type}': choose one of {', '.join(LOSS_TYPES)}")
    return HEADS[loss_type](embedding_dim, num_classes, **options)

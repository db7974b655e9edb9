"""A-Softmax (SphereFace; the paper's Eq 3-4): an angular margin, the multiple m of theta_y."""
import math

import torch
import torch.nn.functional as F

from pytorch_modules.heads.base import SUB_CENTERS_RANGE, CosineHead, HeadOutput

PAPER_A_SOFTMAX_M = 4   # the integer m, as in SphereFace


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


class ASoftmaxHead(CosineHead):
    """Angular margin (SphereFace): logit_y = |x| psi(theta_y), psi = (-1)^k cos(m theta) - 2k.

    SphereFace trains this with an annealed mix f = (lambda cos + psi) / (1 + lambda), lambda =
    max(lambda_min, lambda_base (1 + gamma * step)^-power); without it a large m rarely
    converges.  lambda_base = 0 gives Eq 3-4 exactly from the first step.
    sub_centers: K weight vectors per class, theta_j the smallest angle (base.CosineHead).
    """
    OPTION_RANGES = {
        "margin": (lambda v: v >= 1, ">= 1 (an integer multiple of the angle)"),
        **{name: (lambda v: v >= 0, ">= 0")
           for name in ("lambda_base", "lambda_min", "lambda_gamma", "lambda_power")},
        "sub_centers": SUB_CENTERS_RANGE,
    }

    def __init__(self, embedding_dim: int, num_classes: int, margin: int = PAPER_A_SOFTMAX_M,
                 lambda_base: float = 1000.0, lambda_min: float = 5.0,
                 lambda_gamma: float = 0.12, lambda_power: float = 1.0, sub_centers: int = 1):
        super().__init__(embedding_dim, num_classes, sub_centers)
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
        decayed = (self.lambda_base
                   * (1 + self.lambda_gamma * float(self.step)) ** -self.lambda_power)
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

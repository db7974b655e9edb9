"""DAM-Softmax, the paper's loss (Eq 7-10): AM-Softmax whose margin grows as the target cosine
falls, m_i = m exp(1 - cos(theta_y)) / lambda."""
import torch

from pytorch_modules.heads.am_softmax import AMSoftmaxHead
from pytorch_modules.heads.base import PAPER_MARGIN, PAPER_SCALE

PAPER_LAMBDA = 2.0      # lambda (Eq 8-10)


def dynamic_margin(cos_target: torch.Tensor, margin: float, lam: float) -> torch.Tensor:
    """m_i = m * exp(1 - cos(theta_y)) / lambda (Eq 8-10)."""
    return margin * torch.exp(1.0 - cos_target) / lam


class DAMSoftmaxHead(AMSoftmaxHead):
    """Dynamic additive margin: m_i = m exp(1 - cos(theta_y)) / lambda (Eq 7-10)."""
    OPTION_RANGES = {**AMSoftmaxHead.OPTION_RANGES, "lam": (lambda v: v > 0, "> 0")}

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = PAPER_MARGIN,
                 scale: float = PAPER_SCALE, lam: float = PAPER_LAMBDA,
                 margin_grad: bool = True, sub_centers: int = 1):
        super().__init__(embedding_dim, num_classes, margin, scale, sub_centers)
        if lam <= 0:
            raise ValueError(f"DAM-Softmax needs lambda > 0, got {lam}")
        self.lam, self.margin_grad = lam, margin_grad

    def target_margin(self, target_cos: torch.Tensor) -> torch.Tensor:
        source = target_cos if self.margin_grad else target_cos.detach()
        return dynamic_margin(source, self.margin_scale * self.margin, self.lam)

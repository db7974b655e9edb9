"""DAM-AAM-Softmax (ours; no published version): the paper's dynamic margin (Eq 8-10) used as
an angle, logit_y = s cos(theta_y + m_i), m_i = m exp(1 - cos(theta_y)) / lambda."""
import torch

from pytorch_modules.heads.aam_softmax import AAM_MARGIN, AAM_SCALE, angular_margin_logit
from pytorch_modules.heads.base import ANGULAR_MARGIN_RANGE
from pytorch_modules.heads.dam_softmax import PAPER_LAMBDA, DAMSoftmaxHead


class DAMAAMSoftmaxHead(DAMSoftmaxHead):
    """Dynamic additive angular margin: logit_y = s cos(theta_y + m_i),
    m_i = m exp(1 - cos(theta_y)) / lambda (dam_softmax.dynamic_margin), in radians.

    Where theta_y + m_i passes pi, s (cos(theta_y) - (1 - cos m_i)), as aam_softmax does.
    margin_grad as in DAM-Softmax: true lets the gradient flow through m_i (a function of
    cos(theta_y)), false treats m_i as a per-sample constant (AAM with a per-sample margin).
    margin_scale (the warm-up) multiplies m, hence m_i; sub_centers as in base.CosineHead.
    m_i is an angle and is not capped: m e^2 / lambda (its value at cos = -1) below pi keeps it
    a margin everywhere (0.739 with the defaults).
    """
    OPTION_RANGES = {**DAMSoftmaxHead.OPTION_RANGES, "margin": ANGULAR_MARGIN_RANGE}
    SCHEDULED_MARGIN = True

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = AAM_MARGIN,
                 scale: float = AAM_SCALE, lam: float = PAPER_LAMBDA,
                 margin_grad: bool = True, sub_centers: int = 1):
        super().__init__(embedding_dim, num_classes, margin, scale, lam, margin_grad,
                         sub_centers)

    def target_logit(self, target_cos: torch.Tensor) -> torch.Tensor:
        target_cos = target_cos.to(torch.promote_types(target_cos.dtype, torch.float32))
        return angular_margin_logit(target_cos, self.target_margin(target_cos))

"""AAM-Softmax (ArcFace, Deng et al., CVPR 2019): an additive angular margin, cos(theta_y + m).

Past pi.  cos(theta + m) stops falling once theta + m passes pi (theta > pi - m) and would
reward a worse target angle, so there the target logit / s is instead
    cos(theta) - (1 - cos m)            (for cos(theta) <= cos(pi - m) = -cos m)
as WeSpeaker's ArcMarginProduct computes it with easy_margin false (wespeaker/models/
projections.py, `cosine - mmm`, mmm = 1 + cos(pi - m)).  It equals cos(theta + m) = -1 at
theta = pi - m, so the target logit is continuous and monotonic in cos(theta) over all of
[-1, 1].  (insightface's arcface_torch subtracts sin(pi - m) m there instead: monotonic too,
but with a step of m sin m at the threshold.)  ArcFace's "easy margin" (no margin at all where
cos(theta) < 0) is not offered.

The margin arithmetic runs in at least float32: under autocast the cosines come in bf16/fp16,
whose rounding near cos = 1 would make sin(theta) = sqrt(1 - cos^2) coarse.  1 - cos^2 is
floored at the dtype's smallest normal number, so cos(theta) = +-1 (or a rounding just past
it) gives the exact value and a finite gradient, cos m (d cos(theta + m) / d cos(theta) =
cos m + sin m cos(theta) / sin(theta) is unbounded there; the floor drops the second term).
"""
import torch

from pytorch_modules.heads.am_softmax import AMSoftmaxHead
from pytorch_modules.heads.base import ANGULAR_MARGIN_RANGE, PAPER_MARGIN

# WeSpeaker's ResNet34 VoxCeleb recipe (examples/voxceleb/v2/conf/resnet.yaml: arc_margin,
# scale 32, final_margin 0.2).
AAM_MARGIN = PAPER_MARGIN   # m = 0.2 (radians)
AAM_SCALE = 32.0            # s


def angular_margin_logit(cos: torch.Tensor, margin) -> torch.Tensor:
    """cos(theta + m) where theta + m <= pi, else cos(theta) - (1 - cos m) (module docstring);
    margin a number or a tensor shaped like cos (a margin per sample).  Float32 at least."""
    cos = cos.to(torch.promote_types(cos.dtype, torch.float32))
    margin = torch.as_tensor(margin, dtype=cos.dtype, device=cos.device)
    cos_m, sin_m = torch.cos(margin), torch.sin(margin)
    sin = torch.sqrt((1.0 - cos * cos).clamp(min=torch.finfo(cos.dtype).tiny))
    shifted = cos * cos_m - sin * sin_m        # cos(theta + m)
    past_pi = cos - (1.0 - cos_m)
    return torch.where(cos > -cos_m, shifted, past_pi)   # -cos m = cos(pi - m)


class AAMSoftmaxHead(AMSoftmaxHead):
    """Additive angular margin (ArcFace): logit_y = s cos(theta_y + m), logit_j = s cos(theta_j).

    Past pi, s (cos(theta_y) - (1 - cos m)) (module docstring).  margin_scale, the margin
    warm-up, multiplies m (the angle), as WeSpeaker's margin scheduler does; sub_centers as in
    base.CosineHead (with K = 3, Sub-center ArcFace).
    """
    OPTION_RANGES = {**AMSoftmaxHead.OPTION_RANGES, "margin": ANGULAR_MARGIN_RANGE}
    SCHEDULED_MARGIN = True

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = AAM_MARGIN,
                 scale: float = AAM_SCALE, sub_centers: int = 1):
        super().__init__(embedding_dim, num_classes, margin, scale, sub_centers)

    def target_logit(self, target_cos: torch.Tensor) -> torch.Tensor:
        target_cos = target_cos.to(torch.promote_types(target_cos.dtype, torch.float32))
        return angular_margin_logit(target_cos, self.target_margin(target_cos))

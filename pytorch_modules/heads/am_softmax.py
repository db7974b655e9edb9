"""AM-Softmax (the paper's Eq 5-6): an additive cosine margin m for every sample."""
import torch
import torch.nn.functional as F

from pytorch_modules.heads.base import (
    COSINE_MARGIN_RANGE,
    PAPER_MARGIN,
    PAPER_SCALE,
    SCALE_RANGE,
    SUB_CENTERS_RANGE,
    CosineHead,
    HeadOutput,
)


class AMSoftmaxHead(CosineHead):
    """Additive margin: logit_y = s (cos(theta_y) - m) (Eq 5-6).

    margin_scale (in [0, 1]) multiplies the margin: the trainer sets it each step from the
    margin warm-up schedule (training.margin_scale); 1, the paper's loss, unless warmed up.
    A tensor, not a float, so that a compiled step does not recompile for every new value;
    not saved in checkpoints (it is a function of the training position).
    sub_centers: K weight vectors per class, the cosine to a class the largest (base.CosineHead).
    """
    OPTION_RANGES = {"scale": SCALE_RANGE, "margin": COSINE_MARGIN_RANGE,
                     "sub_centers": SUB_CENTERS_RANGE}
    SCHEDULED_MARGIN = True

    def __init__(self, embedding_dim: int, num_classes: int, margin: float = PAPER_MARGIN,
                 scale: float = PAPER_SCALE, sub_centers: int = 1):
        super().__init__(embedding_dim, num_classes, sub_centers)
        self.margin, self.scale = margin, scale
        self.register_buffer("margin_scale", torch.ones(()), persistent=False)

    def target_margin(self, target_cos: torch.Tensor) -> torch.Tensor:
        return torch.full_like(target_cos, self.margin_scale * self.margin)

    def target_logit(self, target_cos: torch.Tensor) -> torch.Tensor:
        """The target's logit / s: cos(theta_y) - m (angular heads override it)."""
        return target_cos - self.target_margin(target_cos)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        cos = self.cosines(x)
        target_cos = cos.gather(1, labels[:, None]).squeeze(1)
        phi = self.target_logit(target_cos)
        logits = self.scale * self.replace_target(cos, labels, phi)
        return HeadOutput(F.cross_entropy(logits, labels), logits, target_cos.detach())

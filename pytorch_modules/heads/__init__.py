"""Classification heads and losses of the paper (Zhou et al., Interspeech 2020, Eq 1-10).

Each head maps embeddings x (batch, dim) and speaker labels y to a scalar loss.  The margin
heads normalise the class weights W_j and the embeddings, so cos(theta_j) = <x/|x|, W_j/|W_j|>.

  softmax      (Eq 1)    logit_j = W_j^T x + b_j
  a_softmax    (Eq 3-4)  logit_y = |x| psi(theta_y),  psi(theta) = (-1)^k cos(m theta) - 2k,
                         theta in [k pi/m, (k+1) pi/m];  logit_j = |x| cos(theta_j) otherwise
  am_softmax   (Eq 5-6)  logit_y = s (cos(theta_y) - m),       logit_j = s cos(theta_j)
  dam_softmax  (Eq 7-10) logit_y = s (cos(theta_y) - m_i),
                         m_i = m exp(1 - cos(theta_y)) / lambda
  aam_softmax  (ArcFace) logit_y = s cos(theta_y + m)
  dam_aam_softmax (ours) logit_y = s cos(theta_y + m_i),      m_i as dam_softmax's, an angle

The two angular heads (aam_softmax.py) replace cos(theta_y + m) by cos(theta_y) - (1 - cos m)
where theta_y + m would pass pi, as WeSpeaker does, so the target logit keeps falling with the
angle.  Every cosine head (all but softmax) takes sub_centers K (Sub-center ArcFace): K weight
vectors per class, the cosine to a class the largest of its K (base.CosineHead).

The dynamic margin m_i grows as the target cosine falls: with m = 0.2 and lambda = 2 it is 0.1
at cos = 1 and 0.2718 at cos = 0 (the paper's Fig 3), so hard samples get a larger margin.

Gradient through the dynamic margin (option `margin_grad`).  Written as in Eq 7-10, m_i is a
function of cos(theta_y), and autograd then gives d logit_y / d cos = s (1 + m_i): hard samples
are also pulled harder.  With margin_grad false, m_i is treated as a per-sample constant
(detached), the loss is then AM-Softmax with a per-sample margin.  The paper's equations define
the first; it is the default, and the second is there for comparison.

One head per file (base.py holds what they share); HEADS below names them for the config's
`loss.type`, so a new head is one file and one line here.

Every head returns a HeadOutput whose `logits` give the classification accuracy and whose
`target_cos` is cos(theta_y) (for margin heads; the plain softmax reports it from its weights),
recorded during training to draw the paper's Fig 1.
"""
from pytorch_modules.heads.a_softmax import PAPER_A_SOFTMAX_M, ASoftmaxHead
from pytorch_modules.heads.aam_softmax import AAMSoftmaxHead, angular_margin_logit
from pytorch_modules.heads.am_softmax import AMSoftmaxHead
from pytorch_modules.heads.base import PAPER_MARGIN, PAPER_SCALE, Head, HeadOutput
from pytorch_modules.heads.dam_aam_softmax import DAMAAMSoftmaxHead
from pytorch_modules.heads.dam_softmax import PAPER_LAMBDA, DAMSoftmaxHead, dynamic_margin
from pytorch_modules.heads.softmax import SoftmaxHead

# The registry: config loss.type -> head class.
HEADS: dict[str, type[Head]] = {"softmax": SoftmaxHead, "a_softmax": ASoftmaxHead,
                                "am_softmax": AMSoftmaxHead, "dam_softmax": DAMSoftmaxHead,
                                "aam_softmax": AAMSoftmaxHead,
                                "dam_aam_softmax": DAMAAMSoftmaxHead}

__all__ = ["HEADS", "scheduled_margin_types", "PAPER_MARGIN", "PAPER_SCALE", "PAPER_LAMBDA",
           "PAPER_A_SOFTMAX_M", "HeadOutput", "SoftmaxHead", "AMSoftmaxHead", "DAMSoftmaxHead",
           "ASoftmaxHead", "AAMSoftmaxHead", "DAMAAMSoftmaxHead", "dynamic_margin",
           "angular_margin_logit", "build_head"]


def build_head(loss_type: str, embedding_dim: int, num_classes: int, **options) -> Head:
    """The classification head for `loss_type` with its options (see conf/*.yaml, loss:)."""
    if loss_type not in HEADS:
        raise ValueError(f"unknown loss type '{loss_type}': choose one of {', '.join(HEADS)}")
    return HEADS[loss_type](embedding_dim, num_classes, **options)


def scheduled_margin_types() -> list[str]:
    """The loss types whose margin follows the margin warm-up of the training schedule
    (margin_scale), read from the registry each time, so a head registered later counts."""
    return [name for name, head in HEADS.items() if head.SCHEDULED_MARGIN]

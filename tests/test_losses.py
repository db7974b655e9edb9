"""The four heads against the paper's equations, on numbers worked out by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

from pytorch_modules.heads import (AMSoftmaxHead, ASoftmaxHead, DAMSoftmaxHead, SoftmaxHead,
                                   build_head, dynamic_margin)
from pytorch_modules.heads.a_softmax import chebyshev_cos_multiple
from pytorch_modules.heads.base import CosineHead, HeadOutput


def unit_weight_head(head):
    """Class weights = the two axes of the plane, so cos(theta_j) = x_j / |x|."""
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    return head


# x = 5 * (0.6, 0.8): cos(theta_0) = 0.6, cos(theta_1) = 0.8, |x| = 5; label 0 (a hard sample).
X = torch.tensor([[3.0, 4.0]])
Y = torch.tensor([0])


def test_dynamic_margin_matches_figure_3():
    # m = 0.2, lambda = 2: m_i = 0.2 e^(1 - cos) / 2
    cos = torch.tensor([1.0, 0.0, 0.6, -1.0])
    expected = [0.1, 0.2718281828, 0.1 * math.exp(0.4), 0.1 * math.exp(2.0)]
    assert dynamic_margin(cos, 0.2, 2.0).tolist() == pytest.approx(expected, abs=1e-7)
    assert dynamic_margin(torch.tensor(0.0), 0.2, 2.0).item() == pytest.approx(0.2718, abs=1e-4)


def test_am_softmax_loss_by_hand():
    head = unit_weight_head(AMSoftmaxHead(2, 2, margin=0.2, scale=30.0))
    out = head(X, Y)
    # logits: 30 (0.6 - 0.2) = 12 for the target, 30 * 0.8 = 24 for the other class
    assert out.logits[0].tolist() == pytest.approx([12.0, 24.0], abs=1e-4)
    # loss = -log(e^12 / (e^12 + e^24)) = log(1 + e^12)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(12.0)), abs=1e-4)
    assert out.target_cos.tolist() == pytest.approx([0.6], abs=1e-6)


def test_dam_softmax_loss_by_hand():
    head = unit_weight_head(DAMSoftmaxHead(2, 2, margin=0.2, scale=30.0, lam=2.0))
    out = head(X, Y)
    # m_i = 0.2 e^(1 - 0.6) / 2 = 0.1 e^0.4 = 0.149182; target logit 30 (0.6 - 0.149182) = 13.5245
    target = 30 * (0.6 - 0.1 * math.exp(0.4))
    assert target == pytest.approx(13.52453, abs=1e-5)
    assert out.logits[0].tolist() == pytest.approx([target, 24.0], abs=1e-4)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(24.0 - target)), abs=1e-4)


def test_dam_margin_exceeds_am_for_hard_and_undercuts_for_easy_samples():
    # The dynamic margin equals AM's 0.2 where e^(1-cos) = 2, i.e. cos = 1 - ln 2 = 0.3069.
    am = AMSoftmaxHead(2, 2, margin=0.2)
    dam = DAMSoftmaxHead(2, 2, margin=0.2, lam=2.0)
    cos = torch.tensor([0.9, 1 - math.log(2), 0.1])
    assert dam.target_margin(cos).tolist() == pytest.approx([0.1105171, 0.2, 0.2459603], abs=1e-6)
    assert am.target_margin(cos).tolist() == pytest.approx([0.2, 0.2, 0.2])


@pytest.mark.parametrize("margin_grad, slope", [(True, 1 + 0.1 * math.exp(0.4)), (False, 1.0)])
def test_dam_margin_gradient_option(margin_grad, slope):
    # d(cos - m_i)/d cos = 1 + m_i when the margin passes gradient (d m_i / d cos = -m_i).
    head = DAMSoftmaxHead(2, 2, margin=0.2, lam=2.0, margin_grad=margin_grad)
    cos = torch.tensor(0.6, requires_grad=True)
    (cos - head.target_margin(cos)).backward()
    assert cos.grad.item() == pytest.approx(slope, abs=1e-6)


def test_softmax_loss_by_hand():
    head = SoftmaxHead(2, 2)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        head.fc.bias.copy_(torch.tensor([0.5, -0.5]))
    out = head(X, Y)
    # logits = W x + b = (3.5, 3.5): loss = log 2
    assert out.logits[0].tolist() == pytest.approx([3.5, 3.5])
    assert out.loss.item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_chebyshev_gives_cos_of_multiple_angle():
    theta = torch.linspace(0, math.pi, 50, dtype=torch.float64)
    for m in range(0, 6):
        assert torch.allclose(chebyshev_cos_multiple(torch.cos(theta), m), torch.cos(m * theta))


def test_a_softmax_psi_by_hand():
    head = ASoftmaxHead(2, 2, margin=4, lambda_base=0.0)
    cos = torch.tensor([1.0, math.cos(math.pi / 4), 0.5, 0.0, -1.0], dtype=torch.float64)
    # theta = 0: k 0, cos 0 = 1; pi/4: k 1, -cos(pi) - 2 = -1; pi/3: k 1, -cos(4pi/3) - 2 = -1.5;
    # pi/2: k 2, cos(2pi) - 4 = -3; pi: k 4, cos(4pi) - 8 = -7
    assert head.psi(cos).tolist() == pytest.approx([1.0, -1.0, -1.5, -3.0, -7.0], abs=1e-6)


def test_a_softmax_loss_by_hand():
    head = unit_weight_head(ASoftmaxHead(2, 2, margin=2, lambda_base=0.0))
    out = head(X, Y)
    # theta_0 = acos 0.6 (k = floor(2 theta / pi) = 0): psi = cos(2 theta) = 2 (0.36) - 1 = -0.28
    # logits = |x| (psi, cos theta_1) = 5 (-0.28, 0.8) = (-1.4, 4)
    assert out.logits[0].tolist() == pytest.approx([-1.4, 4.0], abs=1e-5)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(5.4)), abs=1e-5)


def test_a_softmax_annealing_mixes_cos_and_psi():
    head = unit_weight_head(ASoftmaxHead(2, 2, margin=2, lambda_base=9.0, lambda_gamma=0.0,
                                         lambda_min=1.0))
    out = head(X, Y)
    # lambda = 9: f = (9 * 0.6 + (-0.28)) / 10 = 0.512; logit 5 * 0.512 = 2.56
    assert out.logits[0, 0].item() == pytest.approx(2.56, abs=1e-5)
    assert head.step.item() == 1


@pytest.mark.parametrize("loss_type, options", [
    ("softmax", {}), ("am_softmax", {}), ("dam_softmax", {}),
    ("a_softmax", {"lambda_base": 0.0}),
])
def test_gradients_match_finite_differences(loss_type, options):
    # (DAM with margin_grad false is left out on purpose: finite differences see the margin
    # move, the detached gradient does not; test_dam_margin_gradient_option covers it.)
    torch.manual_seed(0)
    head = build_head(loss_type, 6, 4, **options).double()
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(lambda inp: head(inp, y).loss, (x,), eps=1e-6, atol=1e-5)


def test_margin_heads_loss_is_cross_entropy_of_logits():
    torch.manual_seed(1)
    head = build_head("dam_softmax", 8, 5)
    x, y = torch.randn(7, 8), torch.randint(0, 5, (7,))
    out = head(x, y)
    assert out.loss.item() == pytest.approx(F.cross_entropy(out.logits, y).item(), abs=1e-6)
    cos = F.linear(F.normalize(x), F.normalize(head.weight))
    off_target = out.logits / 30 - cos
    off_target[torch.arange(7), y] = 0
    assert off_target.abs().max().item() < 1e-5  # only the target logit carries a margin


def test_unknown_loss_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown loss type 'arcface'"):
        build_head("arcface", 4, 2)
    with pytest.raises(ValueError, match="lambda > 0"):
        build_head("dam_softmax", 4, 2, lam=0.0)
    with pytest.raises(ValueError, match="integer margin"):
        build_head("a_softmax", 4, 2, margin=1.5)


class _ArcFaceLikeHead(CosineHead):
    """A head defined outside the package, as a user's new file would define one."""
    PAPER_OPTIONS = {"margin": 0.3}
    OPTION_RANGES = {"margin": (lambda v: 0 <= v < 1, "in [0, 1)")}
    SCHEDULED_MARGIN = True

    def __init__(self, embedding_dim, num_classes, margin: float = 0.3):
        super().__init__(embedding_dim, num_classes)
        self.margin = margin
        self.register_buffer("margin_scale", torch.ones(()), persistent=False)

    def forward(self, x, labels):
        cos = self.cosines(x)
        target = cos.gather(1, labels[:, None]).squeeze(1)
        phi = torch.cos(torch.acos(target.clamp(-1 + 1e-6, 1 - 1e-6)) + self.margin)
        logits = 30 * self.replace_target(cos, labels, phi)
        return HeadOutput(F.cross_entropy(logits, labels), logits, target.detach())


def test_a_new_head_is_one_class_and_one_registry_entry(monkeypatch):
    """The config, its checks and build_head read the registry: registering a class is all a
    new head needs (its options come from its signature, their ranges from OPTION_RANGES)."""
    from pytorch_modules import heads
    from pytorch_modules.config import ConfigError, config_from_dict
    monkeypatch.setitem(heads.HEADS, "arc_like", _ArcFaceLikeHead)
    config = config_from_dict({"loss": {"type": "arc_like", "margin": 0.25},
                               "optim": {"margin_warmup_epochs": 1}})
    assert config.loss.options == {"margin": 0.25}
    head = build_head(config.loss.type, 8, 3, **config.loss.options)
    out = head(torch.randn(4, 8), torch.tensor([0, 1, 2, 0]))
    assert isinstance(head, _ArcFaceLikeHead) and out.logits.shape == (4, 3)
    with pytest.raises(ConfigError, match=r"loss.margin is 1.5, but arc_like needs it in \[0, 1\)"):
        config_from_dict({"loss": {"type": "arc_like", "margin": 1.5}})
    with pytest.raises(ConfigError, match="key 'scale' does not apply to arc_like"):
        config_from_dict({"loss": {"type": "arc_like", "scale": 30}})

"""The heads against their equations (the paper's, ArcFace's, ours), on numbers worked out by
hand: hand-made weights and embeddings give known cosines, and logits, losses and gradients
are compared with values computed here with math/NumPy, not with the heads' own functions."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytorch_modules.heads import (
    HEADS,
    AAMSoftmaxHead,
    AMSoftmaxHead,
    ASoftmaxHead,
    DAMAAMSoftmaxHead,
    DAMSoftmaxHead,
    SoftmaxHead,
    build_head,
    dynamic_margin,
    scheduled_margin_types,
)
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
    ("a_softmax", {"lambda_base": 0.0}), ("aam_softmax", {}), ("dam_aam_softmax", {}),
    ("am_softmax", {"sub_centers": 3}), ("dam_softmax", {"sub_centers": 3}),
    ("aam_softmax", {"sub_centers": 3}), ("dam_aam_softmax", {"sub_centers": 3}),
    ("a_softmax", {"lambda_base": 0.0, "sub_centers": 3}),
    ("aam_softmax", {"margin": 0.9}),   # some targets past pi - m (theta_y > 2.24)
])
def test_gradients_match_finite_differences(loss_type, options):
    # (DAM with margin_grad false is left out on purpose: finite differences see the margin
    # move, the detached gradient does not; test_dam_margin_gradient_option covers it.)
    torch.manual_seed(0)
    head = build_head(loss_type, 6, 4, **options).double()
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(lambda inp: head(inp, y).loss, (x,), eps=1e-6, atol=1e-5)
    if loss_type != "softmax":   # and into the class weights (all K centres of each class)
        weight = head.weight.detach().clone().requires_grad_(True)
        assert torch.autograd.gradcheck(
            lambda w: torch.func.functional_call(head, {"weight": w}, (x.detach(), y)).loss,
            (weight,), eps=1e-6, atol=1e-5)


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


# -- the angular heads (ArcFace and ours), sub-centres, the margin warm-up ---------------------

def arc_target(c, m):
    """The angular heads' target logit / s, from the angle: cos(theta + m) while theta + m <=
    pi, else cos(theta) - (1 - cos m) (WeSpeaker's treatment past pi)."""
    theta = math.acos(c)
    return math.cos(theta + m) if theta + m <= math.pi else c - (1 - math.cos(m))


def unit_vector_at(angle, norm=1.0):
    """An embedding at `angle` from the first axis: with unit_weight_head, cos(theta_0) =
    cos(angle) and cos(theta_1) = sin(angle)."""
    return torch.tensor([[norm * math.cos(angle), norm * math.sin(angle)]], dtype=torch.float64)


def test_aam_softmax_loss_by_hand():
    head = unit_weight_head(AAMSoftmaxHead(2, 2, margin=0.2, scale=32.0))
    out = head(X, Y)
    # theta_0 = acos 0.6 = 0.9273: target 32 cos(1.1273) = 32 (0.6 cos 0.2 - 0.8 sin 0.2)
    target = 32 * (0.6 * math.cos(0.2) - 0.8 * math.sin(0.2))
    assert target == pytest.approx(13.73134, abs=1e-5)
    assert out.logits[0].tolist() == pytest.approx([target, 25.6], abs=1e-4)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(25.6 - target)), abs=1e-4)
    assert out.target_cos.tolist() == pytest.approx([0.6], abs=1e-6)


def test_dam_aam_softmax_loss_by_hand():
    head = unit_weight_head(DAMAAMSoftmaxHead(2, 2, margin=0.2, scale=32.0, lam=2.0))
    out = head(X, Y)
    # m_i = 0.1 e^0.4 = 0.149182 (radians); target 32 cos(0.927295 + 0.149182) = 15.1818
    m_i = 0.1 * math.exp(0.4)
    target = 32 * math.cos(math.acos(0.6) + m_i)
    assert target == pytest.approx(15.18182, abs=1e-4)
    assert out.logits[0].tolist() == pytest.approx([target, 25.6], abs=1e-4)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(25.6 - target)), abs=1e-4)


def test_the_new_heads_defaults_and_registration():
    """Published settings (WeSpeaker's ResNet34 VoxCeleb recipe: ArcFace s 32, m 0.2) and the
    paper's lambda; both follow the margin warm-up."""
    from pytorch_modules.config import config_from_dict
    assert HEADS["aam_softmax"] is AAMSoftmaxHead and HEADS["dam_aam_softmax"] is DAMAAMSoftmaxHead
    assert config_from_dict({"loss": {"type": "aam_softmax"}}).loss.options == {
        "margin": 0.2, "scale": 32.0, "sub_centers": 1}
    assert config_from_dict({"loss": {"type": "dam_aam_softmax"}}).loss.options == {
        "margin": 0.2, "scale": 32.0, "lam": 2.0, "margin_grad": True, "sub_centers": 1}
    assert {"am_softmax", "dam_softmax", "aam_softmax", "dam_aam_softmax"} == set(
        scheduled_margin_types())


@pytest.mark.parametrize("loss, words", [
    ({"type": "aam_softmax", "margin": 1.5},
     r"loss.margin is 1.5, but aam_softmax needs it in \[0, 1\) \(an angle in radians\)"),
    ({"type": "dam_aam_softmax", "lambda": 0},
     "loss.lambda is 0, but dam_aam_softmax needs it > 0"),
    ({"type": "am_softmax", "sub_centers": 0},
     r"loss.sub_centers is 0, but am_softmax needs it >= 1 \(weight vectors per class\)"),
    ({"type": "dam_softmax", "sub_centers": 1.5}, "loss.sub_centers"),
    ({"type": "softmax", "sub_centers": 3}, "key 'sub_centers' does not apply to softmax"),
])
def test_bad_options_of_the_new_keys_are_refused(loss, words):
    from pytorch_modules.config import ConfigError, config_from_dict
    with pytest.raises(ConfigError, match=words):
        config_from_dict({"loss": loss})
    with pytest.raises(ValueError, match="sub_centers must be an integer >= 1, got 0"):
        build_head("aam_softmax", 4, 2, sub_centers=0)


@pytest.mark.parametrize("head_type", [AAMSoftmaxHead, DAMAAMSoftmaxHead])
def test_angular_target_past_pi_by_hand(head_type):
    """theta_y + m past pi: the target logit is s (cos(theta_y) - (1 - cos m)) (WeSpeaker),
    continuous at theta_y = pi - m and never rising as theta_y grows."""
    head = unit_weight_head(head_type(2, 2, margin=0.2, scale=32.0)).double()

    def margin(c):   # the margin at cos(theta_y) = c, computed here
        return 0.2 if head_type is AAMSoftmaxHead else 0.2 * math.exp(1 - c) / 2.0

    # theta_y = 3.0 > pi - 0.2 (AAM) and > pi - 0.731 (DAM-AAM: m_i = 0.1 e^(1 - cos 3))
    c = math.cos(3.0)
    assert 3.0 + margin(c) > math.pi
    out = head(unit_vector_at(3.0, norm=7.0), Y)
    expected = 32 * (c - (1 - math.cos(margin(c))))
    assert out.logits[0].tolist() == pytest.approx([expected, 32 * math.sin(3.0)], abs=1e-9)
    assert out.loss.item() == pytest.approx(
        math.log1p(math.exp(32 * math.sin(3.0) - expected)), abs=1e-9)
    # just short of pi: still cos(theta + m)
    c = math.cos(2.0)
    assert 2.0 + margin(c) < math.pi
    assert head(unit_vector_at(2.0), Y).logits[0, 0].item() == pytest.approx(
        32 * math.cos(2.0 + margin(c)), abs=1e-9)
    # over the whole range of angles, against the angle-side formula (acos, not sqrt)
    angles = np.linspace(0.0, math.pi, 2001)
    x = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    logits = head(x, torch.zeros(len(angles), dtype=torch.long)).logits[:, 0].detach().numpy()
    reference = [32 * arc_target(math.cos(a), margin(math.cos(a))) for a in angles]
    np.testing.assert_allclose(logits, reference, atol=1e-7)
    assert np.all(np.diff(logits) <= 1e-9)   # monotonic: a larger angle never scores higher
    # at theta = pi - m itself both sides give -1: no step (insightface's form steps by m sin m)
    if head_type is AAMSoftmaxHead:
        edge = math.pi - 0.2
        near = [head(unit_vector_at(edge + d), Y).logits[0, 0].item() for d in (-1e-7, 1e-7)]
        assert near == pytest.approx([-32.0, -32.0], abs=1e-4)


@pytest.mark.parametrize("head_type", [AAMSoftmaxHead, DAMAAMSoftmaxHead])
def test_angular_heads_stay_finite_at_cos_one_and_minus_one(head_type):
    """cos(theta_y) = +-1 (or a rounding just past 1): d cos(theta + m) / d cos is unbounded
    there; the loss and its gradients stay finite."""
    head = unit_weight_head(head_type(2, 2)).double()
    for x in ([[2.0, 0.0]], [[-2.0, 0.0]], [[1.0, 1e-9]]):
        x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out = head(x, Y)
        out.loss.backward()
        assert torch.isfinite(out.loss) and torch.isfinite(x.grad).all()
        assert torch.isfinite(head.weight.grad).all()
        head.weight.grad = None
    # at cos = 1: cos(0 + m) = cos m (m_i = 0.1 for DAM-AAM), and d/dcos = cos m there
    m = 0.2 if head_type is AAMSoftmaxHead else 0.1
    assert head(torch.tensor([[1.0, 0.0]], dtype=torch.float64), Y).logits[0, 0].item() == \
        pytest.approx(32 * math.cos(m), abs=1e-6)
    if head_type is AAMSoftmaxHead:
        cos = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        head.target_logit(cos).backward()
        assert cos.grad.item() == pytest.approx(math.cos(0.2), abs=1e-7)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):   # under autocast too
        cos = torch.tensor([1.0, -1.0, 0.5], dtype=dtype, requires_grad=True)
        head.target_logit(cos).sum().backward()
        assert torch.isfinite(cos.grad).all(), dtype


@pytest.mark.parametrize("cos_y", [0.6, -0.3, -0.99])
@pytest.mark.parametrize("margin_grad", [True, False])
def test_dam_aam_target_gradient_by_hand(cos_y, margin_grad):
    """d logit_y/s / d cos(theta_y), analytic: with theta = acos c and m_i = 0.1 e^(1 - c),
    d theta / dc = -1 / sin theta and d m_i / dc = -m_i.  Before pi, d cos(theta + m_i) / dc
    = sin(theta + m_i) (1 / sin theta + m_i) (without margin_grad, the m_i term drops out);
    past pi, d (c - 1 + cos m_i) / dc = 1 + m_i sin m_i (without margin_grad, 1)."""
    head = DAMAAMSoftmaxHead(2, 2, margin=0.2, lam=2.0, margin_grad=margin_grad)
    theta, m_i = math.acos(cos_y), 0.1 * math.exp(1 - cos_y)
    dm = m_i if margin_grad else 0.0
    if theta + m_i <= math.pi:
        slope = math.sin(theta + m_i) * (1 / math.sin(theta) + dm)
    else:
        slope = 1 + dm * math.sin(m_i)
    assert (theta + m_i > math.pi) == (cos_y == -0.99)
    cos = torch.tensor(cos_y, dtype=torch.float64, requires_grad=True)
    head.target_logit(cos).backward()
    assert cos.grad.item() == pytest.approx(slope, rel=1e-7)   # m * margin_scale is float32


@pytest.mark.parametrize("cos_y", [0.6, -0.99])
def test_aam_target_gradient_by_hand(cos_y):
    """d cos(theta + m) / dc = cos m + sin m cos theta / sin theta; past pi, 1."""
    head = AAMSoftmaxHead(2, 2, margin=0.2)
    theta = math.acos(cos_y)
    slope = (math.cos(0.2) + math.sin(0.2) * cos_y / math.sin(theta)
             if theta + 0.2 <= math.pi else 1.0)
    cos = torch.tensor(cos_y, dtype=torch.float64, requires_grad=True)
    head.target_logit(cos).backward()
    assert cos.grad.item() == pytest.approx(slope, rel=1e-7)   # m * margin_scale is float32


@pytest.mark.parametrize("scale_of_margin", [0.0, 0.5, 1.0])
def test_margin_warmup_scales_each_margin(scale_of_margin):
    """margin_scale (set by the trainer's warm-up) multiplies m: AM and DAM subtract
    f m, resp. f m e^(1 - cos) / lambda, from the cosine; AAM and DAM-AAM add them to the angle.
    f = 0 is the plain cosine softmax for all four."""
    f, c, theta = scale_of_margin, 0.6, math.acos(0.6)
    dyn = f * 0.2 * math.exp(1 - c) / 2.0
    expected = {AMSoftmaxHead: 30 * (c - f * 0.2), DAMSoftmaxHead: 30 * (c - dyn),
                AAMSoftmaxHead: 32 * math.cos(theta + f * 0.2),
                DAMAAMSoftmaxHead: 32 * math.cos(theta + dyn)}
    for head_type, target in expected.items():
        head = unit_weight_head(head_type(2, 2, margin=0.2))
        head.margin_scale.fill_(f)
        out = head(X, Y)
        other = 30 * 0.8 if head_type in (AMSoftmaxHead, DAMSoftmaxHead) else 32 * 0.8
        assert out.logits[0].tolist() == pytest.approx([target, other], abs=1e-4), head_type
        assert out.loss.item() == pytest.approx(math.log1p(math.exp(other - target)), abs=1e-4)
    assert "margin_scale" not in head.state_dict()   # a function of the training position


# Sub-centres, K = 3, rows jK .. jK + K - 1 belong to class j.  With x = (3, 4) / 5:
# class 0: (2, 0) -> 0.6, (0, -1) -> -0.8, (-4, 3) -> 0         max 0.6 (centre 0)
# class 1: (0, -2) -> -0.8, (-1, 0) -> -0.6, (0, 3) -> 0.8      max 0.8 (centre 2)
# so the class cosines are those of the one-centre tests: (0.6, 0.8).
SUB_CENTRE_WEIGHTS = [[2.0, 0.0], [0.0, -1.0], [-4.0, 3.0], [0.0, -2.0], [-1.0, 0.0], [0.0, 3.0]]
WINNERS = [0, 5]


def sub_centre_head(head_type, **options):
    head = head_type(2, 2, sub_centers=3, **options).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(SUB_CENTRE_WEIGHTS))
    return head


def test_sub_centre_cosines_are_the_max_over_each_class():
    head = sub_centre_head(AMSoftmaxHead)
    assert head.weight.shape == (6, 2)
    x = torch.tensor([[3.0, 4.0], [-4.0, 3.0]], dtype=torch.float64)
    # second row x = (-4, 3)/5: class 0 cosines (-0.8, -0.6, 1.0), class 1 (-0.6, 0.8, 0.6)
    cos = head.cosines(x).detach().numpy()
    np.testing.assert_allclose(cos, [[0.6, 0.8], [1.0, 0.8]], atol=1e-12)
    w = np.array(SUB_CENTRE_WEIGHTS)
    all_cos = (x.numpy() / 5) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    np.testing.assert_allclose(cos, all_cos.reshape(2, 2, 3).max(axis=2))


@pytest.mark.parametrize("head_type, target, other", [
    (AMSoftmaxHead, 30 * (0.6 - 0.2), 30 * 0.8),
    (DAMSoftmaxHead, 30 * (0.6 - 0.1 * math.exp(0.4)), 30 * 0.8),
    (AAMSoftmaxHead, 32 * math.cos(math.acos(0.6) + 0.2), 32 * 0.8),
    (DAMAAMSoftmaxHead, 32 * math.cos(math.acos(0.6) + 0.1 * math.exp(0.4)), 32 * 0.8),
])
def test_sub_centre_heads_by_hand_and_gradient_only_into_the_winners(head_type, target, other):
    head = sub_centre_head(head_type, margin=0.2)
    x = X.double()
    out = head(x, Y)
    assert out.logits[0].tolist() == pytest.approx([target, other], abs=1e-9)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(other - target)), abs=1e-9)
    out.loss.backward()
    grad = head.weight.grad
    losers = [r for r in range(6) if r not in WINNERS]
    assert torch.all(grad[losers] == 0) and torch.all(grad[WINNERS].abs().sum(1) > 0)
    # the winners' gradient, against central differences of the loss in each weight entry
    with torch.no_grad():
        for row in WINNERS:
            for col in range(2):
                loss_at = []
                for step in (1e-6, -1e-6):
                    moved = head.weight.clone()
                    moved[row, col] += step
                    loss_at.append(torch.func.functional_call(head, {"weight": moved},
                                                              (x, Y)).loss.item())
                assert grad[row, col].item() == pytest.approx(
                    (loss_at[0] - loss_at[1]) / 2e-6, abs=1e-6)


def test_sub_centre_winner_follows_the_embedding():
    """x = (-4, 3): class 0's third centre (-4, 3) wins (cos 1) and alone takes class 0's
    gradient."""
    head = sub_centre_head(AMSoftmaxHead)
    out = head(torch.tensor([[-4.0, 3.0]], dtype=torch.float64), Y)
    assert out.target_cos.tolist() == pytest.approx([1.0])
    out.loss.backward()
    assert [bool(r.abs().sum() > 0) for r in head.weight.grad] == [
        False, False, True, False, True, False]   # class 1: centre 1 (cos 0.8) wins


@pytest.mark.parametrize("loss_type", ["a_softmax", "am_softmax", "dam_softmax", "aam_softmax",
                                       "dam_aam_softmax"])
def test_one_sub_centre_is_exactly_the_plain_head(loss_type):
    """sub_centers 1 (the default): the weight has today's shape, is drawn by the same call
    from the same seed, and the cosines are F.linear of the normalised vectors, bit for bit,
    so existing checkpoints load and seeded runs repeat."""
    torch.manual_seed(7)
    head = build_head(loss_type, 16, 5)
    torch.manual_seed(7)
    weight = torch.empty(5, 16)
    nn.init.xavier_normal_(weight)
    assert torch.equal(head.weight, weight)
    assert [k for k in head.state_dict() if k != "step"] == ["weight"]
    x = torch.randn(4, 16)
    assert torch.equal(head.cosines(x), F.linear(F.normalize(x), F.normalize(weight)))
    head.load_state_dict({"weight": weight, **({"step": head.step} if loss_type == "a_softmax"
                                                else {})})


def test_angular_margin_is_computed_in_float32_under_low_precision():
    """Under autocast the cosines arrive in bf16; the angle arithmetic is done in float32."""
    head = AAMSoftmaxHead(2, 2)
    cos = torch.tensor([0.6, 0.999], dtype=torch.bfloat16)
    phi = head.target_logit(cos)
    assert phi.dtype == torch.float32
    c = cos.float().tolist()
    assert phi.tolist() == pytest.approx([arc_target(v, 0.2) for v in c], abs=1e-6)

"""ResCNN structure against the paper's Fig 4/5 and its size (27.5 M parameters, 33.8 GFLOPs)."""
import pytest
import torch
from torch import nn

from pytorch_modules.models import ResCNN
from pytorch_modules.models.rescnn import ResidualBlock


def conv_flops(model: ResCNN, freq: int, frames: int) -> int:
    """Multiply-adds x 2 of every convolution for one (freq, frames) input, by hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += 2 * k * module.in_channels * output.shape[1] * output.shape[2] * output.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, freq, frames))
    for h in handles:
        h.remove()
    return total


def test_paper_size_parameters_and_flops():
    model = ResCNN()  # widths 64-128-256-512, blocks 3-4-6-3, 1024-d
    params = sum(p.numel() for p in model.parameters())
    assert params == pytest.approx(27.48e6, rel=0.002)
    # 33.8 GFLOPs forward for a 3-s crop (161 x 300), counted by hand from the layer shapes
    assert conv_flops(model, 161, 300) / 1e9 == pytest.approx(33.8, rel=0.01)


def test_stage_layout_follows_the_paper_and_conv1_is_a_link_conv_too():
    # Conv2..Conv4 are the paper's 5x5 stride-2 link convolutions; Conv1 like them is ours.
    model = ResCNN(widths=(4, 8, 16, 32), embedding_dim=10)
    link_convs = [m for m in model.trunk.modules()
                  if isinstance(m, nn.Conv2d) and m.kernel_size == (5, 5)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in link_convs] == [
        (1, 4, (2, 2)), (4, 8, (2, 2)), (8, 16, (2, 2)), (16, 32, (2, 2))]
    blocks = [m for m in model.trunk if isinstance(m, ResidualBlock)]
    assert len(blocks) == 3 + 4 + 6 + 3
    # every conv is followed by BatchNorm
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms) == 4 + 2 * 16


@pytest.mark.parametrize("frames", [20, 200, 731])
def test_any_length_gives_one_embedding(frames):
    model = ResCNN(widths=(4, 8, 16, 32), embedding_dim=24).eval()
    assert model(torch.randn(3, 161, frames)).shape == (3, 24)


def test_residual_block_is_identity_plus_residual():
    block = ResidualBlock(3).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    x = torch.rand(1, 3, 5, 5)  # non-negative: relu(x + 0) = x
    assert torch.allclose(block(x), x)


def test_mismatched_widths_and_blocks_are_refused():
    with pytest.raises(ValueError, match="one width per stage"):
        ResCNN(widths=(8, 16), blocks=(3, 4, 6))


def test_stats_pooling_is_mean_and_std_over_time_of_each_channel_and_frequency_row():
    model = ResCNN(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1), embedding_dim=6,
                   embedding_bn=False, pooling="stats", input_bins=161, input_norm="none").eval()
    # 161 bins -> 81 -> 41 -> 21 -> 11 rows after the four stride-2 link convolutions.
    assert model.fc.in_features == 2 * 8 * 11
    feats = torch.randn(2, 161, 90)
    with torch.no_grad():
        maps = model.trunk(feats.unsqueeze(1)).flatten(1, 2)        # (2, 88, T')
        pooled = torch.cat([maps.mean(2), maps.var(2, unbiased=False).sqrt()], dim=1)
        assert torch.allclose(model(feats), model.fc(pooled), atol=1e-6)


def test_stats_pooling_refuses_features_of_another_size():
    model = ResCNN(widths=(4, 8), blocks=(1, 1), embedding_dim=6, pooling="stats",
                   input_bins=161).eval()
    with pytest.raises(ValueError, match="built for 161-bin features, got 80 bins"):
        model(torch.randn(1, 80, 50))


def test_average_pooling_does_not_depend_on_the_number_of_bins():
    model = ResCNN(widths=(4, 8), blocks=(1, 1), embedding_dim=6).eval()
    assert model(torch.randn(1, 80, 50)).shape == model(torch.randn(1, 161, 50)).shape


def test_utterance_mean_normalisation_removes_a_fixed_channel_and_none_keeps_it():
    feats = torch.randn(2, 161, 60)
    channel = torch.linspace(-3, 3, 161)[None, :, None]      # a per-bin gain in the log domain
    for norm, same in (("utterance_mean", True), ("none", False)):
        torch.manual_seed(0)
        model = ResCNN(widths=(4, 8), blocks=(1, 1), embedding_dim=6, embedding_bn=False,
                       input_norm=norm).eval()
        with torch.no_grad():
            assert torch.allclose(model(feats), model(feats + channel), atol=1e-5) == same


class _MeanPoolBackbone(nn.Module):
    """A backbone defined outside the package, as a user's new file would define one."""

    def __init__(self, embedding_dim: int, input_bins: int = 161):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.fc = nn.Linear(input_bins, embedding_dim)

    def forward(self, feats):
        return self.fc(feats.mean(dim=2))


def test_the_backbone_is_picked_by_model_type_from_the_registry(monkeypatch):
    """`model.type` names a BACKBONES entry: the config check and build_model read the registry,
    so a new backbone is a class and one entry; an unknown type is refused by name."""
    from pytorch_modules import models
    from pytorch_modules.config import ConfigError, config_from_dict
    assert isinstance(models.build_model(config_from_dict({}).model), ResCNN)
    monkeypatch.setitem(models.BACKBONES, "mean_pool", _MeanPoolBackbone)
    config = config_from_dict({"model": {"type": "mean_pool", "embedding_dim": 16,
                                         "input_bins": 20}})
    model = models.build_model(config.model)
    assert isinstance(model, _MeanPoolBackbone)
    assert model(torch.randn(3, 20, 50)).shape == (3, 16)
    with pytest.raises(ConfigError, match="model.type must be one of rescnn, resnet34, "
                                          "ecapa_tdnn, mean_pool, got .tdnn."):
        config_from_dict({"model": {"type": "tdnn"}})
    # a key without a default must be given, and its type comes from the annotation
    with pytest.raises(ConfigError, match="model: mean_pool needs key 'embedding_dim'"):
        config_from_dict({"model": {"type": "mean_pool"}})
    with pytest.raises(ConfigError, match="model.input_bins must be an integer, got 2.5"):
        config_from_dict({"model": {"type": "mean_pool", "embedding_dim": 4, "input_bins": 2.5}})

"""The ResNet34 and ECAPA-TDNN backbones (models/resnet.py, models/ecapa_tdnn.py): their sizes
against the published figures and against parameter-count formulas written out from the
architectures, output shapes, each option reaching the network, the config, exact resume
through the Trainer, full-length extraction, TorchScript/ONNX export of 80-bin models, and
verify/embed with an 80-bin feature config.  The networks built are tiny (seconds on one core),
except the full-size ones whose parameters are counted."""
import re
import shutil

import numpy as np
import pytest
import soundfile
import torch

from pytorch_modules.config import ConfigError, config_from_dict
from pytorch_modules.deploy.export import onnx_embeddings, torchscript_embeddings
from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file
from pytorch_modules.inference import MIN_FRAMES, Embedder, embed, load_embedding_model
from pytorch_modules.models import BACKBONES, ECAPATDNN, ResNet34, build_model
from pytorch_modules.training import checkpoints
from pytorch_modules.training.trainer import Trainer

from test_training import BINS as TRAINING_BINS
from test_training import assert_states_identical, run_to_the_end, tiny_data  # noqa: F401
from tiny_model import ROOT, run_module, write_voice

FBANK_BINS = 80
TINY = {
    "resnet34": {"width": 4, "blocks": [1, 1, 1, 1], "embedding_dim": 16,
                 "embedding_bn": True},
    "ecapa_tdnn": {"channels": 16, "scale": 4, "mfa_channels": 24, "attention_channels": 8,
                   "se_channels": 8, "embedding_dim": 16},
}
TYPES = sorted(TINY)


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(kind, **options):
    torch.manual_seed(0)
    return BACKBONES[kind](**{**TINY[kind], **options})


def randomise_batchnorm(model, seed=0):
    """Running statistics away from their initial 0 and 1, so that a network run in training
    mode, or exported without its statistics, would not give the same embeddings."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model


# -- parameter counts: formulas written from the architectures --------------------------------

def halved(size, times):
    for _ in range(times):
        size = -(-size // 2)       # a 3x3 stride-2 convolution with padding 1: ceil(size / 2)
    return size


def resnet_parameters(width, blocks, embedding_dim, input_bins):
    """Stem 3x3 conv + BN; per block two 3x3 convs + 2 BNs, a 1x1 conv + BN on the shortcut
    where the width changes; stats pooling of 8w x F' rows; the linear layer (weights + bias).
    The embedding BatchNorm has no affine parameters."""
    total = 9 * width + 2 * width
    in_ch = width
    for stage, count in enumerate(blocks):
        c = width * 2 ** stage
        for i in range(count):
            total += 9 * in_ch * c + 9 * c * c + 4 * c
            if in_ch != c:
                total += in_ch * c + 2 * c
            in_ch = c
    pooled = 2 * in_ch * halved(input_bins, len(blocks) - 1)
    return total + pooled * embedding_dim + embedding_dim


def ecapa_parameters(channels, scale, dilations, mfa_channels, attention_channels, se_channels,
                     embedding_dim, input_bins):
    """Convolutions and linear layers with biases, BatchNorms with weight and bias."""
    c, m, w = channels, mfa_channels, channels // scale
    front = 5 * input_bins * c + c + 2 * c
    block = (2 * (c * c + c + 2 * c)                       # the two 1x1 conv + ReLU + BN
             + (scale - 1) * (3 * w * w + w + 2 * w)        # the Res2Net group convolutions
             + (c * se_channels + se_channels + se_channels * c + c))   # squeeze-excitation
    mfa = len(dilations) * c * m + m
    attention = 3 * m * attention_channels + attention_channels + attention_channels * m + m
    return (front + len(dilations) * block + mfa + attention + 2 * 2 * m
            + 2 * m * embedding_dim + embedding_dim)


ECAPA_DEFAULTS = dict(scale=8, dilations=[2, 3, 4], mfa_channels=1536, attention_channels=128,
                      se_channels=128, embedding_dim=192, input_bins=80)


def test_resnet34_has_the_published_size_without_a_speaker_head():
    """WeSpeaker's ResNet34-TSTP-emb256: 6.63 M (their table counts the backbone; the
    recipe's margin head, 256 x 5,994 for VoxCeleb2, is a separate module)."""
    model = ResNet34()
    assert params(model) == resnet_parameters(32, [3, 4, 6, 3], 256, 80) == 6_634_336
    assert params(model) == pytest.approx(6.63e6, rel=0.02)
    assert model.fc.in_features == 2 * 256 * 10 and model.embedding_dim == 256


@pytest.mark.parametrize("channels, published", [(512, 6.2e6), (1024, 14.7e6)])
def test_ecapa_tdnn_has_the_papers_sizes(channels, published):
    """Desplanques et al. 2020, Table 1: 6.2 M (C = 512) and 14.7 M (C = 1024)."""
    model = ECAPATDNN(channels=channels)
    assert params(model) == ecapa_parameters(channels, **ECAPA_DEFAULTS)
    assert params(model) == pytest.approx(published, rel=0.02)
    assert model.embedding_dim == 192


@pytest.mark.parametrize("options", [
    {"width": 8}, {"width": 3}, {"blocks": [2, 1, 3]}, {"blocks": [1, 1, 1, 1, 1]},
    {"embedding_dim": 40}, {"input_bins": 161}, {"input_bins": 41}])
def test_every_size_option_of_resnet34_changes_the_count_as_the_formula_says(options):
    sizes = {"width": 4, "blocks": [1, 1, 1, 1], "embedding_dim": 16, "input_bins": 80,
             **options}
    model = ResNet34(**sizes)
    assert params(model) == resnet_parameters(**sizes)
    assert model(torch.randn(2, sizes["input_bins"], 45)).shape == (2, sizes["embedding_dim"])


@pytest.mark.parametrize("options", [
    {"channels": 32}, {"scale": 2}, {"scale": 8}, {"dilations": [1, 2]},
    {"dilations": [2, 3, 4, 5]}, {"mfa_channels": 40}, {"attention_channels": 5},
    {"se_channels": 3}, {"embedding_dim": 7}, {"input_bins": 40}])
def test_every_size_option_of_ecapa_tdnn_changes_the_count_as_the_formula_says(options):
    sizes = {"channels": 16, "scale": 4, "dilations": [2, 3, 4], "mfa_channels": 24,
             "attention_channels": 8, "se_channels": 8, "embedding_dim": 16,
             "input_bins": 80, **options}
    model = ECAPATDNN(**sizes)
    assert params(model) == ecapa_parameters(**sizes)
    assert model(torch.randn(2, sizes["input_bins"], 45)).shape == (2, sizes["embedding_dim"])


# -- shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [MIN_FRAMES, 33, 57, 200, 437])
def test_any_length_from_32_frames_gives_one_embedding_per_utterance(kind, batch, frames):
    model = randomise_batchnorm(tiny(kind)).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, FBANK_BINS, frames))
    assert out.shape == (batch, 16) and torch.isfinite(out).all()


@pytest.mark.parametrize("kind", TYPES)
def test_training_mode_step_gives_finite_gradients_at_the_shortest_length(kind):
    model = tiny(kind).train()
    out = model(torch.randn(4, FBANK_BINS, MIN_FRAMES))
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("kind", TYPES)
def test_features_of_another_height_are_refused(kind):
    with pytest.raises(ValueError, match="built for 80-bin features, got 161 bins"):
        tiny(kind).eval()(torch.randn(1, 161, 50))


# -- options reach the network ---------------------------------------------------------------

def test_resnet34_stages_follow_the_published_layout():
    """Stem at full resolution, stage widths w x 1, 2, 4, 8, strides 1, 2, 2, 2, projection
    shortcuts exactly where the width changes."""
    model = ResNet34(width=8, blocks=[3, 4, 6, 3])
    convs = [m for m in model.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    strided = [(c.in_channels, c.out_channels) for c in convs if c.stride == (2, 2)]
    # each stage's first 3x3 convolution and its 1x1 projection shortcut
    assert strided == [(8, 16), (8, 16), (16, 32), (16, 32), (32, 64), (32, 64)]
    assert sum(c.kernel_size == (1, 1) for c in convs) == 3
    assert len(convs) == 1 + 2 * 16 + 3
    with torch.no_grad():
        maps = model.eval().trunk(torch.randn(1, 1, 80, 200))
    assert maps.shape == (1, 64, 10, 25)


def test_resnet34_pooling_is_mean_and_std_over_time_of_every_channel_and_row():
    model = ResNet34(**TINY["resnet34"] | {"embedding_bn": False}).eval()
    feats = torch.randn(2, 80, 70)
    with torch.no_grad():
        maps = model.trunk((feats - feats.mean(2, keepdim=True)).unsqueeze(1)).flatten(1, 2)
        # the standard deviation as sqrt(population variance + 1e-8)
        pooled = torch.cat([maps.mean(2), (maps.var(2, unbiased=False) + 1e-8).sqrt()], dim=1)
        np.testing.assert_allclose(model(feats), model.fc(pooled), atol=1e-6)


@pytest.mark.parametrize("kind", TYPES)
def test_utterance_mean_removes_a_fixed_channel_and_none_keeps_it(kind):
    feats = torch.randn(2, FBANK_BINS, 60)
    channel = torch.linspace(-3, 3, FBANK_BINS)[None, :, None]   # a per-bin gain (log domain)
    for norm, same in (("utterance_mean", True), ("none", False)):
        model = randomise_batchnorm(tiny(kind, input_norm=norm)).eval()
        with torch.no_grad():
            assert torch.allclose(model(feats), model(feats + channel), atol=1e-4) == same


@pytest.mark.parametrize("kind", TYPES)
def test_embedding_bn_normalises_fc_output_with_running_statistics(kind):
    feats = torch.randn(3, FBANK_BINS, 64)
    model = randomise_batchnorm(tiny(kind, embedding_bn=True)).eval()
    bn = model.embedding_bn
    with torch.no_grad():
        fc = model.fc_output(feats)
        expected = (fc - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        np.testing.assert_allclose(model(feats), expected, atol=1e-5)
    plain = tiny(kind, embedding_bn=False).eval()
    with torch.no_grad():
        assert torch.equal(plain(feats), plain.fc_output(feats))
    assert params(model) == params(plain)   # no affine parameters


def test_embedding_bn_defaults_follow_the_published_models():
    assert not isinstance(ResNet34().embedding_bn, torch.nn.BatchNorm1d)      # WeSpeaker
    assert isinstance(ECAPATDNN().embedding_bn, torch.nn.BatchNorm1d)         # "FC + BN"


def test_ecapa_blocks_use_their_dilations_and_keep_the_length():
    model = ECAPATDNN(**TINY["ecapa_tdnn"], dilations=[2, 5])
    for block, dilation in zip(model.blocks, [2, 5]):
        convs = [m for m in block.modules()
                 if isinstance(m, torch.nn.Conv1d) and m.kernel_size == (3,)]
        assert len(convs) == 4 - 1                               # scale - 1 groups convolved
        assert {(c.dilation, c.padding) for c in convs} == {((dilation,), (dilation,))}
    # the same weights with other dilations give other frame-level outputs, of the same length
    other = ECAPATDNN(**TINY["ecapa_tdnn"], dilations=[1, 1])
    other.load_state_dict(model.state_dict())
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        for block, changed in zip(model.eval().blocks, other.eval().blocks):
            assert block(x).shape == changed(x).shape == x.shape
            assert (block(x) - changed(x)).abs().max() > 0.1


def test_each_ecapa_block_gets_the_sum_of_the_front_and_the_preceding_blocks():
    """The paper's multi-layer feature aggregation and summation; summed_inputs: false chains
    the blocks (SpeechBrain, WeSpeaker).  The MFA layer sees the blocks' outputs in order."""
    feats = torch.randn(2, 80, 50)
    for summed in (True, False):
        model = tiny("ecapa_tdnn", summed_inputs=summed).eval()
        seen = {}
        hooks = [model.front.register_forward_hook(lambda m, i, o: seen.update(front=o))]
        for n, block in enumerate(model.blocks):
            hooks.append(block.register_forward_hook(
                lambda m, i, o, n=n: seen.update({f"in{n}": i[0], f"out{n}": o})))
        hooks.append(model.mfa.register_forward_hook(lambda m, i, o: seen.update(mfa=i[0])))
        with torch.no_grad():
            model(feats)
        for hook in hooks:
            hook.remove()
        if summed:
            torch.testing.assert_close(seen["in1"], seen["front"] + seen["out0"])
            torch.testing.assert_close(seen["in2"], seen["front"] + seen["out0"] + seen["out1"])
        else:
            assert torch.equal(seen["in1"], seen["out0"]) and torch.equal(seen["in2"],
                                                                          seen["out1"])
        assert torch.equal(seen["mfa"], torch.cat([seen["out0"], seen["out1"], seen["out2"]], 1))


def test_ecapa_attentive_pooling_with_uniform_weights_is_plain_statistics():
    """With the attention's last layer at zero every frame gets weight 1/T: the pooled vector
    is then the mean and the (population) standard deviation over time of each channel."""
    model = tiny("ecapa_tdnn")
    with torch.no_grad():
        model.pooling.attention[2].weight.zero_()
        model.pooling.attention[2].bias.zero_()
        x = torch.randn(2, 24, 40)
        expected = torch.cat([x.mean(2), x.var(2, unbiased=False).sqrt()], dim=1)
        torch.testing.assert_close(model.pooling(x), expected)


# -- the config ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, published", [("resnet34", 6.63e6), ("ecapa_tdnn", 6.2e6)])
def test_config_type_alone_builds_the_published_model(kind, published):
    config = config_from_dict({"model": {"type": kind}})
    model = build_model(config.model)
    assert isinstance(model, BACKBONES[kind])
    assert params(model) == pytest.approx(published, rel=0.02)
    assert config.model.input_bins == 80
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()   # round trip


@pytest.mark.parametrize("model, message", [
    ({"type": "resnet34", "width": 0}, "model.width is 0, but resnet34 needs it > 0"),
    ({"type": "resnet34", "blocks": [3, 0]},
     "model.blocks is [3, 0], but resnet34 needs it all > 0"),
    ({"type": "resnet34", "input_norm": "cmvn"}, "model.input_norm is 'cmvn', but resnet34"),
    ({"type": "resnet34", "widths": [8, 16]}, "key 'widths' does not apply to resnet34"),
    ({"type": "ecapa_tdnn", "channels": -1}, "model.channels is -1, but ecapa_tdnn needs it > 0"),
    ({"type": "ecapa_tdnn", "scale": 1}, "model.scale is 1, but ecapa_tdnn needs it >= 2"),
    ({"type": "ecapa_tdnn", "dilations": [2, 0]}, "model.dilations is [2, 0], but ecapa_tdnn"),
    ({"type": "ecapa_tdnn", "channels": 500},
     "model.channels (500) must be a multiple of model.scale (8)"),
    ({"type": "ecapa_tdnn", "embedding_dim": 1.5}, "model.embedding_dim must be an integer"),
])
def test_config_refuses_an_out_of_range_option_naming_the_key(model, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict({"model": model})


# -- exact resume ----------------------------------------------------------------------------

def resume_config(kind):
    """tests/test_training.py's tiny run (161-bin generated features) with this backbone, the
    lr and margin warm-ups on, and a checkpoint after every step."""
    return config_from_dict({
        "model": {"type": kind, **TINY[kind], "input_bins": TRAINING_BINS},
        "loss": {"type": "dam_softmax", "margin": 0.2, "scale": 30, "lambda": 2},
        "data": {"crop_frames": 50, "batch_size": 8, "num_workers": 0},
        "optim": {"epochs": 2, "lr": 0.01, "final_lr": 0.001, "warmup_epochs": 1.0,
                  "margin_warmup_start": 0.2, "margin_warmup_epochs": 1.0},
        "training": {"seed": 3, "device": "cpu", "checkpoint_every_steps": 1,
                     "keep_checkpoints": 20, "log_every_steps": 100},
    }, "test config")


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.slow
def test_resuming_mid_epoch_ends_bit_identical_to_an_uninterrupted_run(
        tiny_data, tmp_path, kind):  # noqa: F811 (the fixture imported from test_training)
    config = resume_config(kind)
    whole = run_to_the_end(config, tiny_data, tmp_path / "whole")
    resumed_dir = tmp_path / "resumed/checkpoints"
    resumed_dir.mkdir(parents=True)
    for name in ("epoch_001_step_000001.pt", "epoch_001_step_000002.pt"):
        shutil.copy(tmp_path / "whole/checkpoints" / name, resumed_dir / name)
    trainer = Trainer(config, tiny_data, str(tmp_path / "resumed"), log=lambda *_: None)
    trainer.resume()
    assert (trainer.position.epoch, trainer.position.step) == (1, 2)
    trainer.train()
    assert_states_identical(whole, trainer.state())
    # the run trained: the weights moved away from the initial ones
    torch.manual_seed(config.training.seed)
    initial = build_model(config.model).state_dict()
    assert any(not torch.equal(initial[k], whole["model"][k]) for k in initial
               if initial[k].is_floating_point())
    assert checkpoints.list_checkpoints(tmp_path / "resumed/checkpoints")


# -- trained-model files: extraction, export, verify, embed ----------------------------------

def make_model_file(path, kind, seed=0):
    """A final.pt-shaped file of a tiny 80-bin model trained on conf/fbank.conf features;
    returns the eval-mode network."""
    config = config_from_dict({
        "model": {"type": kind, **TINY[kind], "input_bins": FBANK_BINS},
        "loss": {"type": "dam_softmax", "margin": 0.2, "lambda": 2.0},
        "data": {"spectrogram_config": "conf/fbank.conf"}})
    torch.manual_seed(seed)
    model = randomise_batchnorm(build_model(config.model), seed)
    torch.save({"model": model.state_dict(), "config": config.to_dict(),
                "speakers": ["id00001", "id00002"]}, path)
    return model.eval()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    files = {kind: (root / kind / "final.pt") for kind in TYPES}
    models = {}
    for kind, path in files.items():
        path.parent.mkdir()
        models[kind] = make_model_file(path, kind)
    audio = {"a": write_voice(root / "a.wav", seed=0), "b": write_voice(root / "b.wav", seed=1)}
    return dict(root=root, files=files, models=models, audio=audio)


@pytest.mark.parametrize("kind", TYPES)
def test_full_length_extraction_embeds_the_whole_utterance(model_files, kind):
    model = load_embedding_model(model_files["files"][kind])
    rng = np.random.default_rng(0)
    for frames in (437, MIN_FRAMES):
        feats = rng.standard_normal((frames, FBANK_BINS)).astype(np.float32)
        with torch.no_grad():
            whole = torch.from_numpy(feats.T.copy())[None]
            np.testing.assert_allclose(embed(model, feats), model(whole)[0], atol=1e-5)
            np.testing.assert_allclose(embed(model, feats, layer="fc"),
                                       model.fc_output(whole)[0], atol=1e-5)
    # shorter than MIN_FRAMES: repeated up to it
    short = rng.standard_normal((20, FBANK_BINS)).astype(np.float32)
    repeated = np.concatenate([short, short])[:MIN_FRAMES]
    np.testing.assert_allclose(embed(model, short), embed(model, repeated), atol=1e-6)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.slow
def test_export_of_an_80_bin_model_matches_pytorch(model_files, kind, tmp_path):
    out = tmp_path / "export"
    proc = run_module("pytorch_modules.bin.export_model", "--model", model_files["files"][kind],
                      "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert "both match PyTorch" in proc.stdout
    info = dict(line.split(" ", 1) for line in (out / "info").read_text().splitlines())
    assert info["input"] == f"feats float32 (batch, {FBANK_BINS}, frames>={MIN_FRAMES})"
    assert info["output"] == "embedding float32 (batch, 16)"
    assert (out / "spectrogram.conf").read_text() == (ROOT / "conf/fbank.conf").read_text()
    model = model_files["models"][kind]
    for frames in (MIN_FRAMES, 151, 437):
        feats = torch.randn(3, FBANK_BINS, frames, generator=torch.Generator().manual_seed(frames))
        with torch.inference_mode():
            reference = model(feats).numpy()
        np.testing.assert_allclose(torchscript_embeddings(out / "embedding.ts.pt", feats.numpy()),
                                   reference, atol=1e-4)
        np.testing.assert_allclose(onnx_embeddings(out / "embedding.onnx", feats.numpy()),
                                   reference, atol=1e-4)


def test_export_refuses_features_of_another_height(model_files, tmp_path):
    proc = run_module("pytorch_modules.bin.export_model", "--model",
                      model_files["files"]["resnet34"], "--out-dir", tmp_path / "export",
                      "--feat-config", ROOT / "conf/spectrogram.conf")
    assert proc.returncode != 0
    assert "161-bin features, but the model was trained on 80 bins" in proc.stderr


def fbank_embedding(model, wav):
    samples, rate = soundfile.read(wav, dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    feats = Spectrogram(parse_options_file(ROOT / "conf/fbank.conf"))(samples)
    assert feats.shape[1] == FBANK_BINS
    return embed(model, feats)


@pytest.mark.parametrize("kind", TYPES)
def test_verify_scores_the_cosine_of_the_80_bin_pipelines_embeddings(model_files, kind,
                                                                     monkeypatch):
    path, model = model_files["files"][kind], model_files["models"][kind]
    a, b = model_files["audio"]["a"], model_files["audio"]["b"]
    ea, eb = fbank_embedding(model, a), fbank_embedding(model, b)
    monkeypatch.chdir(ROOT)        # the training config names conf/fbank.conf
    got, _ = Embedder(path).embed_file(a)
    np.testing.assert_allclose(got, ea, atol=1e-5)
    proc = run_module("pytorch_modules.bin.verify", "--model", path, "--threshold", "0.5", a, b)
    assert proc.returncode == 0, proc.stderr
    score = float(proc.stdout.splitlines()[0].split()[1])
    assert score == pytest.approx(float(ea @ eb / np.linalg.norm(ea) / np.linalg.norm(eb)),
                                  abs=1e-5)


@pytest.mark.parametrize("kind", TYPES)
def test_embed_writes_the_80_bin_pipelines_embeddings(model_files, kind, tmp_path):
    path, model = model_files["files"][kind], model_files["models"][kind]
    a, b = model_files["audio"]["a"], model_files["audio"]["b"]
    proc = run_module("pytorch_modules.bin.embed", "--model", path, "--format", "npy",
                      "--out-dir", tmp_path / "npy", a, b)
    assert proc.returncode == 0, proc.stderr
    matrix = np.load(tmp_path / "npy/embeddings.npy")
    assert matrix.shape == (2, 16)
    np.testing.assert_allclose(matrix, np.stack([fbank_embedding(model, a),
                                                 fbank_embedding(model, b)]), atol=1e-5)

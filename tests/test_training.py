"""The training loop's rules: the learning-rate schedule and its batch scaling, checkpoint names
and pruning, a resume from a mid-epoch checkpoint that ends bit for bit where an uninterrupted
run ends, and how CPU runs treat the GPU-only options (training.amp, training.channels_last).

Everything runs in this process on a tiny model and a tiny generated data dir.
"""
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from pytorch_modules.config import ConfigError, config_from_dict, margin_warmup_unused
from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.errors import RecipeError
from pytorch_modules.heads import build_head
from pytorch_modules.training import checkpoints, distributed
from pytorch_modules.training.trainer import Trainer, learning_rate, lr_scale, margin_scale

BINS = 161


def write_tiny_data_dir(data: Path, speakers: int = 4, utts_per_speaker: int = 6,
                        seed: int = 0) -> Path:
    """feats.scp (+ ark), utt2spk, spk2utt, utt2num_frames of random features.

    Lengths of 40 to 120 frames, so that some utterances are shorter than a 50-frame crop.
    """
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    feats = {}
    for s in range(speakers):
        for u in range(utts_per_speaker):
            frames = int(rng.integers(40, 120))
            feats[f"spk{s}-utt{u}"] = (rng.standard_normal((frames, BINS))
                                       + 0.3 * s).astype(np.float32)
    utts = sorted(feats)
    kaldiio.save_ark(str(data / "feats.ark"), {u: feats[u] for u in utts},
                     scp=str(data / "feats.scp"))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (data / "utt2num_frames").write_text("".join(f"{u} {len(feats[u])}\n" for u in utts))
    by_speaker = {}
    for u in utts:
        by_speaker.setdefault(u.split("-")[0], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n"
                                          for s, us in sorted(by_speaker.items())))
    return data


def tiny_config(**sections):
    """The tiny model of the distributed tests; `sections` override keys, e.g. optim={...}."""
    data = {
        "model": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "embedding_dim": 16},
        "loss": {"type": "dam_softmax", "margin": 0.2, "scale": 30, "lambda": 2},
        "data": {"crop_frames": 50, "batch_size": 8, "num_workers": 0},
        "optim": {"epochs": 2, "lr": 0.01, "final_lr": 0.001},
        "training": {"seed": 3, "log_every_steps": 1, "device": "cpu"},
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return config_from_dict(data, "test config")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return read_training_set(str(write_tiny_data_dir(tmp_path_factory.mktemp("data"))))


# -- learning rate --------------------------------------------------------------------------

def test_warmup_rises_linearly_to_lr_then_decays_to_final_lr():
    config = tiny_config(optim={"epochs": 2, "lr": 0.1, "final_lr": 0.001,
                                "warmup_epochs": 0.5})
    steps = 10                      # per epoch: 5 warm-up steps, then 15 decay steps
    assert [learning_rate(config, s, steps) for s in range(5)] == \
        pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert learning_rate(config, 5, steps) == pytest.approx(0.1)      # decay starts at lr
    # Exponential: equal ratios per step; after all 15 decay steps it would be final_lr.
    assert learning_rate(config, 19, steps) == pytest.approx(0.1 * 0.01 ** (14 / 15))
    assert learning_rate(config, 20, steps) == pytest.approx(0.001)
    ratios = [learning_rate(config, s + 1, steps) / learning_rate(config, s, steps)
              for s in range(5, 19)]
    assert ratios == pytest.approx([0.01 ** (1 / 15)] * 14)


def test_without_warmup_the_first_step_uses_lr():
    config = tiny_config(optim={"epochs": 3, "lr": 0.1, "final_lr": 0.01})
    assert learning_rate(config, 0, 7) == pytest.approx(0.1)
    assert learning_rate(config, 21, 7) == pytest.approx(0.01)
    assert learning_rate(config, 10, 7) == pytest.approx(0.1 * 0.1 ** (10 / 21))


# -- margin warm-up -------------------------------------------------------------------------

def test_margin_warmup_holds_zero_then_rises_linearly_to_the_full_margin():
    config = tiny_config(optim={"epochs": 4, "margin_warmup_start": 1.0,
                                "margin_warmup_epochs": 2.0})
    steps = 10                      # per epoch: steps 0-9 at 0, 10-29 rising, 30- at 1
    scales = [margin_scale(config, s, steps) for s in range(40)]
    assert scales[:11] == [0.0] * 11
    assert scales[11:30] == pytest.approx([k / 20 for k in range(1, 20)])
    assert scales[30:] == [1.0] * 10


def test_without_margin_warmup_the_margin_is_full_from_step_0():
    config = tiny_config()
    assert [margin_scale(config, s, 7) for s in (0, 1, 100)] == [1.0, 1.0, 1.0]


def test_margin_warmup_with_no_hold_starts_rising_at_step_0():
    config = tiny_config(optim={"margin_warmup_epochs": 0.5})
    assert [margin_scale(config, s, 8) for s in range(6)] == [0, 0.25, 0.5, 0.75, 1, 1]


@pytest.mark.parametrize("loss_type", ["am_softmax", "dam_softmax"])
def test_the_margin_scale_multiplies_the_margin_of_the_head(loss_type):
    head = build_head(loss_type, 4, 3, margin=0.2, scale=30.0)
    cos = torch.tensor([0.0, 0.5, 1.0])
    full = head.target_margin(cos)
    head.margin_scale.fill_(0.25)
    assert head.target_margin(cos) == pytest.approx(0.25 * full)
    assert "margin_scale" not in head.state_dict()      # a function of the step, not state


@pytest.mark.parametrize("loss_type", ["softmax", "a_softmax"])
def test_margin_warmup_on_a_head_without_an_additive_margin_is_said_once(loss_type):
    """A grid over losses (--set loss.type=softmax on a DAM config) keeps the schedule; the
    warm-up then does nothing, and the training log says so instead of staying silent."""
    data = tiny_config(optim={"margin_warmup_epochs": 1.0}).to_dict()
    data["loss"] = {"type": loss_type}
    note = margin_warmup_unused(config_from_dict(data, "test config"))
    assert note.startswith(f"note: optim.margin_warmup_start/margin_warmup_epochs do nothing "
                           f"for {loss_type}")
    assert margin_warmup_unused(tiny_config(optim={"margin_warmup_epochs": 1.0})) is None


@pytest.mark.parametrize("key", ["margin_warmup_start", "margin_warmup_epochs", "warmup_epochs"])
def test_negative_warmups_are_refused(key):
    with pytest.raises(ConfigError, match=f"optim.{key} is -1.0, but it must be >= 0"):
        tiny_config(optim={key: -1.0})


@pytest.mark.parametrize("scaling, factor", [("none", 1.0), ("linear", 4.0), ("sqrt", 2.0)])
def test_lr_scaling_multiplies_the_whole_schedule(scaling, factor):
    config = tiny_config(data={"batch_size": 256},
                         optim={"lr": 0.1, "final_lr": 0.001, "lr_scaling": scaling,
                                "lr_reference_batch": 64, "warmup_epochs": 1.0})
    assert lr_scale(config) == pytest.approx(factor)
    steps = 10
    assert learning_rate(config, 0, steps) == pytest.approx(factor * 0.01)    # warm-up
    assert learning_rate(config, 10, steps) == pytest.approx(factor * 0.1)    # peak
    assert learning_rate(config, 20, steps) == pytest.approx(factor * 0.001)  # end


def test_lr_scaling_at_the_reference_batch_changes_nothing():
    config = tiny_config(data={"batch_size": 64}, optim={"lr_scaling": "linear"})
    assert lr_scale(config) == 1.0
    config = tiny_config(data={"batch_size": 32},
                         optim={"lr_scaling": "sqrt", "lr_reference_batch": 128})
    assert lr_scale(config) == pytest.approx(0.5)


@pytest.mark.parametrize("section, key, value", [
    ("optim", "lr_scaling", "quadratic"), ("training", "device", "tpu"),
    ("training", "dist_backend", "mpi"), ("training", "amp", "fp8"),
])
def test_unknown_choices_are_config_errors_that_list_the_choices(section, key, value):
    with pytest.raises(ConfigError,
                       match=rf"{section}\.{key} is '{value}', but it must be one of "):
        tiny_config(**{section: {key: value}})


def test_new_keys_have_their_documented_defaults():
    config = tiny_config()
    assert (config.optim.lr_scaling, config.optim.lr_reference_batch) == ("none", 64)
    t = config.training
    assert (t.dist_backend, t.sync_batchnorm, t.amp, t.channels_last, t.compile) == \
        ("auto", False, "none", False, False)
    assert config_from_dict(config.to_dict()) == config


# -- checkpoints ----------------------------------------------------------------------------

def test_checkpoint_names_sort_by_training_position(tmp_path):
    assert checkpoints.checkpoint_name(3) == "epoch_003.pt"
    assert checkpoints.checkpoint_name(4, 150) == "epoch_004_step_000150.pt"
    names = ["epoch_010.pt", "epoch_002_step_000100.pt", "epoch_002.pt", "epoch_001.pt",
             "epoch_002_step_000020.pt", "notes.txt", ".epoch_003.pt.tmp", "final.pt"]
    for name in names:
        (tmp_path / name).write_text("")
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path)] == [
        "epoch_001.pt", "epoch_002_step_000020.pt", "epoch_002_step_000100.pt",
        "epoch_002.pt", "epoch_010.pt"]
    checkpoints.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["epoch_002.pt", "epoch_010.pt", "notes.txt", ".epoch_003.pt.tmp", "final.pt"])


# -- resuming -------------------------------------------------------------------------------

def run_to_the_end(config, data, exp_dir: Path) -> dict:
    trainer = Trainer(config, data, str(exp_dir), log=lambda *_: None)
    trainer.resume()
    trainer.train()
    return trainer.state()


def assert_states_identical(a: dict, b: dict) -> None:
    for part in ("model", "head"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    momentum_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    momentum_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(momentum_a, momentum_b, strict=True))
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])


# With the warm-ups on, the resumed run must pick up the lr and the margin mid-ramp; the
# second case also has every other option of the small-corpus configs on.
@pytest.mark.parametrize("model, optim", [
    ({}, {}),
    ({"pooling": "stats", "input_norm": "none"},
     {"warmup_epochs": 1.0, "margin_warmup_start": 0.2, "margin_warmup_epochs": 1.0})])
@pytest.mark.slow
def test_resuming_mid_epoch_ends_bit_identical_to_an_uninterrupted_run(tiny_data, tmp_path,
                                                                      model, optim):
    config = tiny_config(training={"seed": 3, "device": "cpu", "checkpoint_every_steps": 1,
                                   "keep_checkpoints": 20, "log_every_steps": 100},
                         model=model, optim=optim)
    whole = run_to_the_end(config, tiny_data, tmp_path / "whole")
    names = [p.name for p in checkpoints.list_checkpoints(tmp_path / "whole/checkpoints")]
    assert "epoch_001_step_000002.pt" in names and "epoch_002.pt" in names
    trainer, messages = resume_after_step_2_of_epoch_1(config, tiny_data, tmp_path)
    assert any("resuming from" in m and "epoch_001_step_000002.pt" in m for m in messages)
    trainer.train()
    assert_states_identical(whole, trainer.state())


def resume_after_step_2_of_epoch_1(config, data, tmp_path):
    """A trainer in tmp_path/resumed holding what an interrupted run of tmp_path/whole leaves,
    the checkpoints up to step 2 of epoch 1, resumed from them; and its log messages."""
    resumed_dir = tmp_path / "resumed/checkpoints"
    resumed_dir.mkdir(parents=True)
    for name in ("epoch_001_step_000001.pt", "epoch_001_step_000002.pt"):
        shutil.copy(tmp_path / "whole/checkpoints" / name, resumed_dir / name)
    messages = []
    trainer = Trainer(config, data, str(tmp_path / "resumed"), log=messages.append)
    trainer.resume()
    assert (trainer.position.epoch, trainer.position.step) == (1, 2)
    return trainer, messages


# -- checkpoint averaging (optim.average_last) ----------------------------------------------

def test_final_model_is_the_mean_of_the_last_epochs_weights(tiny_data, tmp_path):
    """Against the epoch checkpoints themselves: final.pt's weights, BatchNorm running
    statistics included, are the mean of the model at the end of epochs 2 and 3."""
    config = tiny_config(optim={"epochs": 3, "average_last": 2},
                         training={"seed": 3, "device": "cpu", "keep_checkpoints": 5,
                                   "log_every_steps": 100})
    trainer = Trainer(config, tiny_data, str(tmp_path), log=lambda *_: None)
    trainer.train()
    trainer.write_final_model(tmp_path / "final.pt")
    final = torch.load(tmp_path / "final.pt", weights_only=True)["model"]
    ends = [torch.load(tmp_path / f"checkpoints/epoch_00{e}.pt", weights_only=True)["model"]
            for e in (2, 3)]
    assert "embedding_bn.running_var" in final
    for name, value in final.items():
        if value.is_floating_point():
            expected = (ends[0][name].double() + ends[1][name].double()) / 2
            assert torch.allclose(value.double(), expected, rtol=1e-6, atol=1e-7), name
            assert value.dtype == ends[1][name].dtype
        else:   # counters: the last epoch's
            assert torch.equal(value, ends[1][name]), name
    assert not torch.equal(final["fc.weight"], ends[1]["fc.weight"])


@pytest.mark.slow
def test_averaging_resumes_exactly_from_a_checkpoint_inside_its_epochs(tiny_data, tmp_path):
    config = tiny_config(optim={"epochs": 3, "average_last": 2},
                         training={"seed": 3, "device": "cpu", "keep_checkpoints": 5,
                                   "log_every_steps": 100})
    straight = Trainer(config, tiny_data, str(tmp_path / "straight"), log=lambda *_: None)
    straight.train()
    straight.write_final_model(tmp_path / "straight/final.pt")
    # What a run stopped after epoch 2 leaves: the sum of epoch 2's weights is in it.
    (tmp_path / "resumed/checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "straight/checkpoints/epoch_002.pt",
                tmp_path / "resumed/checkpoints/epoch_002.pt")
    resumed = Trainer(config, tiny_data, str(tmp_path / "resumed"), log=lambda *_: None)
    resumed.resume()
    assert resumed.position.epoch == 3
    resumed.train()
    resumed.write_final_model(tmp_path / "resumed/final.pt")
    a = torch.load(tmp_path / "straight/final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed/final.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_averaging_checkpoints_afterwards_gives_the_trained_average(tiny_data, tmp_path,
                                                                     monkeypatch):
    """bin/average_checkpoints over the kept epoch checkpoints of a run without averaging gives
    what optim.average_last would have written (the same trajectory: averaging does not touch
    training), and refuses checkpoints of two runs."""
    import runpy
    import sys
    options = dict(training={"seed": 3, "device": "cpu", "keep_checkpoints": 5,
                             "log_every_steps": 100})
    for name, average_last in (("plain", 1), ("averaged", 2)):
        config = tiny_config(optim={"epochs": 3, "average_last": average_last}, **options)
        trainer = Trainer(config, tiny_data, str(tmp_path / name), log=lambda *_: None)
        trainer.train()
        trainer.write_final_model(tmp_path / name / "final.pt")
    kept = [str(tmp_path / f"plain/checkpoints/epoch_00{e}.pt") for e in (2, 3)]
    monkeypatch.setattr(sys, "argv", ["average_checkpoints", "--out", str(tmp_path / "avg.pt"),
                                      *kept])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("pytorch_modules.bin.average_checkpoints", run_name="__main__")
    assert exited.value.code == 0
    made = torch.load(tmp_path / "avg.pt", weights_only=True)["model"]
    trained = torch.load(tmp_path / "averaged/final.pt", weights_only=True)["model"]
    assert all(torch.allclose(made[k].double(), trained[k].double(), atol=1e-7) for k in made)
    monkeypatch.setattr(sys, "argv", ["average_checkpoints", "--out", str(tmp_path / "x.pt"),
                                      kept[0], str(tmp_path / "averaged/checkpoints/epoch_003.pt")])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("pytorch_modules.bin.average_checkpoints", run_name="__main__")
    assert exited.value.code == 1 and not (tmp_path / "x.pt").exists()


def test_averaging_more_epochs_than_trained_is_refused():
    with pytest.raises(ConfigError, match="optim.average_last is 5, but there are only 3 epochs"):
        tiny_config(optim={"epochs": 3, "average_last": 5})


# -- starting from a trained model (training.init_model) -------------------------------------

@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A final.pt of the tiny config, trained 1 epoch on tiny_data."""
    exp = tmp_path_factory.mktemp("trained")
    trainer = Trainer(tiny_config(optim={"epochs": 1}), tiny_data, str(exp), log=lambda *_: None)
    trainer.train()
    trainer.write_final_model(exp / "final.pt")
    return exp / "final.pt"


@pytest.mark.slow
def test_a_model_on_the_same_speakers_gives_its_network_and_its_head(tiny_data, trained,
                                                                      tmp_path):
    """Large-margin fine-tuning starts from the model as it was, head included."""
    config = tiny_config(training={"seed": 9, "device": "cpu", "init_model": str(trained)},
                         loss={"margin": 0.5})
    messages = []
    trainer = Trainer(config, tiny_data, str(tmp_path), log=messages.append)
    trainer.resume()
    saved = torch.load(trained, weights_only=True)
    assert all(torch.equal(v, saved["model"][k]) for k, v in trainer.model.state_dict().items())
    assert all(torch.equal(v, saved["head"][k]) for k, v in trainer.head.state_dict().items())
    assert messages == [f"initialised from {trained}: its network and its dam_softmax head "
                        f"(the same 4 speakers)"]


def test_a_model_of_other_speakers_gives_its_network_and_a_new_head(tmp_path, trained):
    other = read_training_set(str(write_tiny_data_dir(tmp_path / "other", speakers=3, seed=4)))
    config = tiny_config(training={"seed": 9, "device": "cpu", "init_model": str(trained)})
    messages = []
    trainer = Trainer(config, other, str(tmp_path / "exp"), log=messages.append)
    fresh_head = {k: v.clone() for k, v in trainer.head.state_dict().items()}
    trainer.resume()
    saved = torch.load(trained, weights_only=True)
    assert all(torch.equal(v, saved["model"][k]) for k, v in trainer.model.state_dict().items())
    assert all(torch.equal(v, fresh_head[k]) for k, v in trainer.head.state_dict().items())
    assert trainer.head.weight.shape[0] == 3
    assert messages == [f"initialised from {trained}: its network; a new dam_softmax head, "
                        f"since its 4 training speakers are not these 3"]


def test_a_model_of_another_network_is_refused_naming_what_differs(tiny_data, trained, tmp_path):
    config = tiny_config(model={"embedding_dim": 32},
                         training={"device": "cpu", "init_model": str(trained)})
    trainer = Trainer(config, tiny_data, str(tmp_path), log=lambda *_: None)
    with pytest.raises(RecipeError, match=r"is another network than this config's \(model."
                                          r"embedding_dim: 16 there, 32 here\)"):
        trainer.resume()


@pytest.mark.slow
def test_a_frozen_network_keeps_its_weights_and_statistics_while_the_head_learns(
        tmp_path, trained):
    other = read_training_set(str(write_tiny_data_dir(tmp_path / "other", speakers=3, seed=4)))
    config = tiny_config(optim={"epochs": 2, "freeze_backbone_epochs": 1},
                         training={"seed": 9, "device": "cpu", "init_model": str(trained),
                                   "keep_checkpoints": 5, "log_every_steps": 100})
    trainer = Trainer(config, other, str(tmp_path / "exp"), log=lambda *_: None)
    trainer.resume()
    start = torch.load(trained, weights_only=True)["model"]
    head_start = {k: v.clone() for k, v in trainer.head.state_dict().items()}
    trainer.train()
    after_one = torch.load(tmp_path / "exp/checkpoints/epoch_001.pt", weights_only=True)
    assert all(torch.equal(v, start[k]) for k, v in after_one["model"].items()), \
        "the network (BatchNorm statistics included) moved while frozen"
    assert not torch.equal(after_one["head"]["weight"], head_start["weight"])
    after_two = torch.load(tmp_path / "exp/checkpoints/epoch_002.pt", weights_only=True)
    assert not torch.equal(after_two["model"]["fc.weight"], start["fc.weight"])
    # the frozen weights got no momentum either (SGD's state holds buffers for the head's
    # parameters only, which come after the network's): the first thawed step starts at rest
    network_params = sum(1 for _ in trainer.model.parameters())
    assert after_one["optimizer"]["state"] and \
        min(after_one["optimizer"]["state"]) >= network_params


@pytest.mark.slow
def test_fine_tuning_resumes_mid_epoch_bit_identical_to_an_uninterrupted_run(
        tiny_data, trained, tmp_path):
    """A run from training.init_model, the network frozen for its first epoch, killed in that
    epoch: the rerun continues from its own checkpoint (not from the model again) and ends
    where the uninterrupted run ends, through the thaw at the epoch boundary."""
    config = tiny_config(optim={"epochs": 2, "freeze_backbone_epochs": 1},
                         loss={"margin": 0.5},
                         training={"seed": 5, "device": "cpu", "init_model": str(trained),
                                   "checkpoint_every_steps": 1, "keep_checkpoints": 20,
                                   "log_every_steps": 100})
    whole = run_to_the_end(config, tiny_data, tmp_path / "whole")
    trainer, messages = resume_after_step_2_of_epoch_1(config, tiny_data, tmp_path)
    assert not any("initialised from" in m for m in messages)
    trainer.train()
    assert_states_identical(whole, trainer.state())


def test_freezing_needs_a_model_to_start_from():
    with pytest.raises(ConfigError, match="optim.freeze_backbone_epochs keeps the network of "
                                          "training.init_model fixed, but training.init_model "
                                          "is empty"):
        tiny_config(optim={"freeze_backbone_epochs": 1})


# -- GPU-only options on the CPU ------------------------------------------------------------

@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cpu_runs_refuse_mixed_precision_with_a_sentence(tiny_data, tmp_path, amp):
    config = tiny_config(training={"device": "cpu", "amp": amp})
    with pytest.raises(RecipeError, match=rf"training\.amp is {amp}, but this run is on the "
                                          rf"CPU.*Set training\.amp: none"):
        Trainer(config, tiny_data, str(tmp_path))


def test_cpu_runs_ignore_channels_last_and_say_so(tiny_data, tmp_path):
    trainer = Trainer(tiny_config(training={"device": "cpu", "channels_last": True}),
                      tiny_data, str(tmp_path))
    assert "training.channels_last is ignored on the CPU" in trainer.setup_summary()
    weight = next(trainer.model.parameters())
    assert weight.is_contiguous()   # the ordinary layout was kept


def test_cpu_runs_ignore_compile_and_say_so(tiny_data, tmp_path):
    trainer = Trainer(tiny_config(training={"device": "cpu", "compile": True}),
                      tiny_data, str(tmp_path))
    assert "training.compile is ignored on the CPU" in trainer.setup_summary()
    assert trainer.forward is trainer.step_module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_is_an_error_naming_the_way_out():
    with pytest.raises(RecipeError, match=r"training\.device is cuda but this process sees no "
                                          r"CUDA GPU.*training\.device: cpu"):
        distributed.choose_device("cuda")
    assert distributed.choose_device("auto") == torch.device("cpu")


def test_nccl_on_the_cpu_is_an_error():
    with pytest.raises(RecipeError, match="nccl, which only moves GPU tensors"):
        distributed.choose_backend("nccl", torch.device("cpu"))
    assert distributed.choose_backend("auto", torch.device("cpu")) == "gloo"
    assert distributed.choose_backend("auto", torch.device("cuda", 0)) == "nccl"


def test_a_global_batch_that_does_not_split_evenly_is_refused(tiny_data, tmp_path):
    three = distributed.Context(rank=0, world_size=3)
    with pytest.raises(RecipeError, match=r"data\.batch_size 8 .* cannot be split evenly over "
                                          r"3 processes"):
        Trainer(tiny_config(), tiny_data, str(tmp_path), context=three)


def test_single_process_log_names_the_device_and_precision(tiny_data, tmp_path):
    trainer = Trainer(tiny_config(), tiny_data, str(tmp_path))
    assert trainer.setup_summary() == "1 process on cpu; float32"

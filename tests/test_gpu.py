"""The CUDA training path: bf16 autocast, channels-last and torch.compile on a real GPU.

Skipped where no GPU is visible (CI has none); run on a GPU machine with
`python -m pytest tests/test_gpu.py`.  bench/gpu.py measures the speed of the same options.
"""
import kaldiio
import numpy as np
import pytest
import torch

from pytorch_modules.data.training_set import epoch_loader
from pytorch_modules.training import checkpoints
from pytorch_modules.training.trainer import Trainer

import tiny_data as data_files
from test_training import tiny_config, tiny_data  # noqa: F401  (tiny_data is a fixture)

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def first_step_loss(config, data, tmp_path):
    """The loss of the first training step (same seed, weights and batch whatever the device)."""
    trainer = Trainer(config, data, str(tmp_path), log=lambda *_: None)
    feats, labels = next(iter(epoch_loader(data, trainer.batches, 1, 0, 0)))
    feats, labels = feats.to(trainer.device), labels.to(trainer.device)
    with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype,
                        enabled=trainer.amp_dtype is not None):
        return float(trainer.forward(feats, labels).loss)


def test_gpu_float32_and_bf16_first_losses_agree_with_the_cpu(tiny_data, tmp_path):  # noqa: F811
    cpu = first_step_loss(tiny_config(training={"device": "cpu"}), tiny_data, tmp_path / "c")
    gpu = first_step_loss(tiny_config(training={"device": "cuda"}), tiny_data, tmp_path / "g")
    bf16 = first_step_loss(tiny_config(training={"device": "cuda", "amp": "bf16",
                                                 "channels_last": True}),
                           tiny_data, tmp_path / "b")
    assert abs(gpu - cpu) / abs(cpu) < 2e-3     # TF32 convolutions: about 1e-3 at most
    assert abs(bf16 - cpu) / abs(cpu) < 2e-2    # bf16 operands: 1e-3 to 1e-2


def test_bf16_channels_last_compiled_training_runs_checkpoints_and_resumes(
        tiny_data, tmp_path):  # noqa: F811
    config = tiny_config(training={"device": "cuda", "amp": "bf16", "channels_last": True,
                                   "compile": True, "checkpoint_every_steps": 1,
                                   "keep_checkpoints": 20, "log_every_steps": 1})
    messages = []
    trainer = Trainer(config, tiny_data, str(tmp_path), log=messages.append)
    assert trainer.setup_summary() == ("1 process on cuda:0; amp bf16; channels-last memory "
                                       "layout; torch.compile")
    trainer.train()
    losses = [float(m.split("loss ")[1].split()[0]) for m in messages if "loss " in m]
    assert len(losses) == 2 * trainer.steps_per_epoch and all(map(torch.isfinite,
                                                                  torch.tensor(losses)))
    # A checkpoint written on the GPU resumes (in a new Trainer) at its position.
    keep = {"epoch_001_step_000001.pt", "epoch_001_step_000002.pt"}
    for path in checkpoints.list_checkpoints(tmp_path / "checkpoints"):
        if path.name not in keep:
            path.unlink()
    resumed = Trainer(config, tiny_data, str(tmp_path), log=lambda *_: None)
    resumed.resume()
    assert (resumed.position.epoch, resumed.position.step) == (1, 2)
    resumed.train()
    assert resumed.position.epoch == 3
    assert next(resumed.model.parameters()).is_cuda


def test_embeddings_extracted_on_the_gpu_match_the_cpu_ones(tmp_path):
    recipe = data_files.scratch_recipe(tmp_path / "recipe")
    data_files.write_feature_dir(recipe / "data/x", 2, 3)
    data_files.write_tiny_model(recipe / "exp/m/final.pt")
    vectors = {}
    for use_gpu in ("false", "true"):
        result = data_files.run_script(recipe, "steps/extract_embeddings.sh", "--nj", "2",
                                      "--use-gpu", use_gpu, "exp/m/final.pt", "data/x",
                                      f"exp/m/emb_{use_gpu}")
        assert result.returncode == 0, result.stderr
        vectors[use_gpu] = dict(kaldiio.load_scp(str(recipe / f"exp/m/emb_{use_gpu}/xvector.scp")))
    assert vectors["true"].keys() == vectors["false"].keys() and len(vectors["true"]) == 6
    for utt, cpu in vectors["false"].items():
        gpu = vectors["true"][utt]
        assert np.abs(gpu - cpu).max() <= 2e-3 * np.abs(cpu).max(), utt   # TF32 convolutions

"""A tiny trained-model file and audio for the tests of verify, embed, calibrate and export.

The model is a ResCNN with random weights saved in final.pt's shape (what
Trainer.write_final_model writes: {"model": state_dict, "config": config dict, "speakers": [...]}).
Its BatchNorm running statistics are set away from the defaults, so that a network exported or
run in training mode by mistake would not give the same embeddings.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch

from pytorch_modules.config import config_from_dict
from pytorch_modules.models import ResCNN

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"widths": [4, 8, 8, 16], "blocks": [1, 1, 1, 1], "embedding_dim": 16}


def make_model_file(path, seed=0):
    """Writes a final.pt-shaped file at `path`; returns the eval-mode network."""
    torch.manual_seed(seed)
    config = config_from_dict({"model": TINY_MODEL,
                               "loss": {"type": "dam_softmax", "margin": 0.2, "lambda": 2.0}})
    model = ResCNN(**TINY_MODEL)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
    torch.save({"model": model.state_dict(), "config": config.to_dict(),
                "speakers": ["id00001", "id00002"]}, path)
    return model.eval()


def write_voice(path, seconds=1.2, rate=16000, channels=1, seed=0):
    """A buzzy harmonic tone with noise, like a voiced sound; returns the path."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * seed
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    wave = 0.3 * wave / np.abs(wave).max() + 0.01 * rng.normal(size=t.size)
    data = np.stack([wave * (0.8 + 0.2 * c) for c in range(channels)], axis=1)
    soundfile.write(path, data.astype(np.float32), rate, subtype="PCM_16")
    return str(path)


def run_module(module, *args):
    """python -m module args, from the recipe root, in path.sh's environment."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True)

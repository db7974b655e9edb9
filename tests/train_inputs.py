"""Training through the entry point (pytorch_modules.bin.train, a subprocess with the recipe's
environment) while recording what the model is given at every step: the features and labels
that reach TrainStep.forward.  Tests compare them with the crops the config should produce,
which a run that only writes final.pt cannot show."""
import subprocess
import sys
from pathlib import Path

import numpy as np

import tiny_data

RECORDER = """\
import sys
import numpy as np
from pytorch_modules.training import trainer
from pytorch_modules.bin import train

out, args = sys.argv[1], sys.argv[2:]
seen = []
forward = trainer.TrainStep.forward

def recording(self, feats, labels):
    seen.append((feats.detach().cpu().numpy().copy(), labels.cpu().numpy().copy()))
    return forward(self, feats, labels)

trainer.TrainStep.forward = recording
sys.argv = ["train", *args]
train.main()
np.savez(out, **{f"feats{i}": f for i, (f, _) in enumerate(seen)},
         **{f"labels{i}": l for i, (_, l) in enumerate(seen)})
"""


def train_recording_inputs(config: Path, data: Path, exp: Path):
    """Trains as `python -m pytorch_modules.bin.train --config CONFIG DATA EXP` does; returns
    (the completed process, [(features (B, bins, frames), labels (B,)) of each step])."""
    out = exp.parent / f"{exp.name}.inputs.npz"
    result = subprocess.run([sys.executable, "-c", RECORDER, str(out), "--config", str(config),
                             str(data), str(exp)], cwd=tiny_data.ROOT, env=tiny_data.env(),
                            capture_output=True, text=True)
    steps = []
    if result.returncode == 0:
        recorded = np.load(out)
        steps = [(recorded[f"feats{i}"], recorded[f"labels{i}"])
                 for i in range(len(recorded.files) // 2)]
    return result, steps

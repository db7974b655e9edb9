"""Why the cosine-margin heads collapse at the paper's lr 0.1, and what stops it: short training
runs of one model on one data dir, each with one change to the schedule, printing per epoch
what the training log shows (loss, accuracy, cos(theta_y)) and what it does not: the largest
non-target cosine, the mean pairwise cosine of a batch's embeddings, the share of pooled trunk
outputs that are 0 (dead ReLU channels), the spread of the FC output before the embedding
BatchNorm, the mean norm of the class weights, and the gradient norm of the trunk.

    python bench/collapse.py data/voxceleb1_dev [--epochs 10] [--variants a b ...]
        [--base-config conf/demo_dam.yaml]

Every variant starts from the same seed and sees the same batches; the base is the model of
--base-config (default conf/demo_dam.yaml) at batch 64 and lr 0.1 decaying to 0.01, with no
warm-up.  Nothing is asserted; the
figures measured on a real corpus are in bench/README.md and README.md.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from pytorch_modules.config import config_from_dict
from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
# name: overrides of the base config (section.key: value)
VARIANTS = {
    "lr0.1": {},
    "lr0.005": {"optim.lr": 0.005, "optim.final_lr": 0.0005},
    "momentum0": {"optim.momentum": 0.0},
    "weight_decay0": {"optim.weight_decay": 0.0},
    "no_embedding_bn": {"model.embedding_bn": False},
    "margin0": {"loss.margin": 0.0},
    "dam_margin_detached": {"loss.margin_grad": False},
    "am_softmax": {"loss": {"type": "am_softmax", "margin": 0.2, "scale": 30}},
    "softmax": {"loss": {"type": "softmax"}},
    "lr_warmup2": {"optim.warmup_epochs": 2.0},
    "lr_warmup5": {"optim.warmup_epochs": 5.0},
    "lr_warmup10": {"optim.warmup_epochs": 10.0},
    "margin_warmup3": {"optim.margin_warmup_epochs": 3.0},
    "both_short": {"optim.warmup_epochs": 2.0, "optim.margin_warmup_epochs": 3.0},
    "both_long": {"optim.warmup_epochs": 5.0, "optim.margin_warmup_epochs": 5.0},
    "lr_warmup5_margin0_then_ramp5": {"optim.warmup_epochs": 5.0,
                                      "optim.margin_warmup_start": 5.0,
                                      "optim.margin_warmup_epochs": 5.0},
}
COLUMNS = ["loss", "acc", "target_cos", "nontarget_max", "pairwise_cos", "dead_pooled",
           "fc_out_std", "class_w_norm", "trunk_grad"]


def base_config(path: Path, epochs: int) -> dict:
    data = yaml.safe_load(path.read_text())
    data["data"]["batch_size"] = 64
    data["optim"].update(lr=0.1, final_lr=0.01, epochs=epochs, lr_reference_batch=64,
                         lr_scaling="none", warmup_epochs=0.0, margin_warmup_start=0.0,
                         margin_warmup_epochs=0.0)
    data["training"].update(log_every_steps=10 ** 6, threads=2)
    return data


def variant_config(name: str, base: Path, epochs: int):
    data = base_config(base, epochs)
    for key, value in VARIANTS[name].items():
        if key == "loss":
            data["loss"] = value
            continue
        section, field = key.split(".")
        data[section][field] = value
    return config_from_dict(data, f"variant {name}")


class Probe:
    """Hooks on the model, the head and the optimizer that record one row per step."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.rows, self.current = trainer, [], {}
        trainer.model.fc.register_forward_hook(self.after_fc)
        head_forward = trainer.head.forward
        trainer.head.forward = lambda x, labels: self.after_head(x, labels,
                                                                 head_forward(x, labels))
        step = trainer.optimizer.step
        trainer.optimizer.step = lambda *a, **k: (self.before_step(), step(*a, **k))[1]

    def after_fc(self, module, inputs, output):
        pooled = inputs[0].detach()
        self.current["dead_pooled"] = (pooled <= 1e-6).float().mean().item()
        self.current["fc_out_std"] = output.detach().std(0).mean().item()

    def after_head(self, x, labels, out):
        with torch.no_grad():
            unit = F.normalize(x)
            self.current["pairwise_cos"] = (unit @ unit.T).mean().item()
            head = self.trainer.head
            weight = head.weight if hasattr(head, "weight") else head.fc.weight
            self.current["class_w_norm"] = weight.norm(dim=1).mean().item()
            cos = F.linear(unit, F.normalize(weight))
            cos[torch.arange(len(labels)), labels] = -2.0
            self.current["nontarget_max"] = cos.max(1).values.mean().item()
            self.current["target_cos"] = out.target_cos.mean().item()
            self.current["loss"] = out.loss.item()
            self.current["acc"] = (out.logits.argmax(1) == labels).float().mean().item()
        return out

    def before_step(self):
        grads = [p.grad.norm() ** 2 for p in self.trainer.model.parameters() if p.grad is not None]
        self.current["trunk_grad"] = float(torch.stack(grads).sum().sqrt())
        self.rows.append(self.current)
        self.current = {}


def run(name: str, data, base: Path, epochs: int):
    config = variant_config(name, base, epochs)
    with tempfile.TemporaryDirectory() as exp:
        trainer = Trainer(config, data, exp, log=lambda *a: None)
        probe = Probe(trainer)
        start = time.time()
        trainer.train()
    steps = trainer.steps_per_epoch
    print(f"\n{name} ({time.time() - start:.0f} s): {VARIANTS[name] or 'the base'}")
    print("epoch " + " ".join(f"{c:>13}" for c in COLUMNS))
    for epoch in range(epochs):
        rows = probe.rows[epoch * steps:(epoch + 1) * steps]
        print(f"{epoch + 1:5d} " + " ".join(f"{np.mean([r[c] for r in rows]):13.3f}"
                                          for c in COLUMNS))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="a training data dir with feats.scp (stage 2 output)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--base-config", type=Path, default=ROOT / "conf/demo_dam.yaml",
                        help="the model, loss and crops of every variant (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = read_training_set(args.data_dir)
    print(f"{len(data)} utterances of {len(data.speakers)} speakers; the model of "
          f"{args.base_config}, batch 64, lr 0.1 -> 0.01 over {args.epochs} epochs; means over "
          f"each epoch's steps")
    for name in args.variants:
        run(name, data, args.base_config, args.epochs)


if __name__ == "__main__":
    main()

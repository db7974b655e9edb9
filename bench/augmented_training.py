"""Training speed with augmentation against training from arks: the whole training entry point
(pytorch_modules.bin.train) on one data dir, once with the config as it is (crops from the
stage-2 arks, data.features: precomputed) and once with the crops computed from the audio and
augmented as --augment-config's `augment:` section says (conf/small_dam_aug.yaml's mix by
default), everything else equal.

    python bench/augmented_training.py data/voxceleb1_dev [--config conf/demo_dam.yaml]
                                       [--augment-config conf/small_dam_aug.yaml] [--epochs 2]

Prints utterances/s of each run (the trainer's own figure over its last epoch: data loading
included, with the config's data.num_workers) and their ratio, against the target of the
audio-pipeline issue: augmented training at no less than 70% of the ark-fed speed on a 2-core
machine.  The two runs take turns, so machine load hits both alike; rerun when the load line
shows other work.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import common
import yaml

from pytorch_modules.config import load_config

TARGET = 0.70


def train_rate(config: dict, data_dir: str, work: str, name: str) -> float:
    """utt/s of the last epoch of a training run of `config` (a config dict)."""
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    exp = os.path.join(work, name)
    result = subprocess.run([sys.executable, "-m", "pytorch_modules.bin.train", "--config", path,
                             data_dir, exp], capture_output=True, text=True,
                            env=dict(os.environ))
    if result.returncode != 0:
        sys.exit(f"training {name} failed:\n{result.stderr[-2000:]}")
    # The trainer logs to its output (steps/train.sh sends that to log/train.log).
    rates = re.findall(r"\| ([0-9.]+) utt/s \|", result.stdout + result.stderr)
    return float(rates[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="a data dir after stage 2 (feats.scp and wav.scp)")
    parser.add_argument("--config", default="conf/demo_dam.yaml")
    parser.add_argument("--augment-config", default="conf/small_dam_aug.yaml",
                        help="the config whose augment: section is applied")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    arks = load_config(args.config).to_dict()
    arks["optim"]["epochs"] = args.epochs
    arks["training"]["log_every_steps"] = 10 ** 6
    arks["data"]["features"] = "precomputed"
    augmented = yaml.safe_load(yaml.safe_dump(arks))
    augmented["data"]["features"] = "on_the_fly"
    augmented["augment"] = load_config(args.augment_config).to_dict()["augment"]
    kinds = {k: v for k, v in augmented["augment"].items() if k.endswith("_prob") and v > 0}
    print(f"{args.config} on {args.data_dir}, {args.epochs} epoch(s) each; augmentation of "
          f"{args.augment_config}: {kinds}")
    with tempfile.TemporaryDirectory(prefix="bench_augmented_") as work:
        ark_rate = train_rate(arks, args.data_dir, work, "arks")
        aug_rate = train_rate(augmented, args.data_dir, work, "augmented")
    ratio = aug_rate / ark_rate
    print(f"  from arks:                 {ark_rate:8.1f} utt/s")
    print(f"  from audio, augmented:     {aug_rate:8.1f} utt/s")
    print(f"  ratio {ratio:.2f} (target >= {TARGET:.2f}: "
          f"{'met' if ratio >= TARGET else 'not met'})")
    print(common.load_line())


if __name__ == "__main__":
    main()

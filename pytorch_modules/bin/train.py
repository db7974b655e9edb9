"""Trains the ResCNN speaker-embedding network on a Kaldi data dir with features.

    python -m pytorch_modules.bin.train --config conf/rescnn_dam.yaml data/train exp/rescnn_dam

Continues from the newest checkpoint in EXP_DIR/checkpoints when there is one, and writes
EXP_DIR/final.pt (the embedding network alone) when training is complete.
"""
import argparse
from pathlib import Path

import torch

from pytorch_modules.config import load_config
from pytorch_modules.data import read_training_set
from pytorch_modules.errors import run_entry_point
from pytorch_modules.training import Trainer, write_config_copy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("data_dir")
    parser.add_argument("exp_dir")
    args = parser.parse_args()

    config = load_config(args.config)
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    Path(args.exp_dir).mkdir(parents=True, exist_ok=True)
    write_config_copy(config, args.exp_dir)
    data = read_training_set(args.data_dir)
    short = int((data.num_frames < config.data.crop_frames).sum())
    if short:
        print(f"train: {short} of {len(data)} utterances are shorter than the "
              f"{config.data.crop_frames}-frame crop; they are repeat-padded, not dropped")
    trainer = Trainer(config, data, args.exp_dir)
    trainer.resume()
    trainer.train()
    trainer.write_final_model(Path(args.exp_dir) / "final.pt")
    print(f"train: wrote {args.exp_dir}/final.pt")


if __name__ == "__main__":
    run_entry_point(main, "train")

"""Trains the ResCNN speaker-embedding network on a Kaldi data dir with features.

    python -m pytorch_modules.bin.train --config conf/rescnn_dam.yaml [--set optim.lr=0.05 ...] \
        data/train exp/rescnn_dam
    torchrun --nproc-per-node 4 -m pytorch_modules.bin.train --config ... data/train exp/rescnn_dam

Continues from the newest checkpoint in EXP_DIR/checkpoints when there is one, and writes
EXP_DIR/final.pt (the embedding network alone) when training is complete.  --set section.key=VALUE
overrides a key of the config (repeatable, checked as the file is); EXP_DIR/config.yaml records
the config trained with.  Under torchrun every
process trains on its share of each batch (pytorch_modules/training/distributed.py); steps/train.sh
builds the torchrun command.
"""
import argparse
import contextlib
from pathlib import Path

import torch

from pytorch_modules.config import load_config
from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio import dir_lock
from pytorch_modules.training import distributed
from pytorch_modules.training.trainer import Trainer, write_config_copy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config key (repeatable)")
    parser.add_argument("data_dir")
    parser.add_argument("exp_dir")
    args = parser.parse_args()

    notes = []
    config = load_config(args.config, args.set, notes)
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    context = distributed.setup(config.training)
    if context.is_main:
        for note in notes:
            print(f"train: note: {note}")
    train(config, args.data_dir, args.exp_dir, context)
    # Only after train() has returned, so that its DDP wrapper is gone (see teardown); after an
    # error the process exits instead, and torchrun stops the other processes.
    distributed.teardown(context)


def train(config, data_dir: str, exp_dir: str, context: distributed.Context) -> None:
    # Rank 0 alone writes files and the log; the others wait for its config check.
    log = print if context.is_main else (lambda *_: None)
    if context.is_main:
        Path(exp_dir).mkdir(parents=True, exist_ok=True)
    # Rank 0 holds the exp dir while it trains: a second trainer there stops at once.
    with dir_lock.hold(exp_dir) if context.is_main else contextlib.nullcontext():
        train_locked(config, data_dir, exp_dir, context, log)


def train_locked(config, data_dir: str, exp_dir: str, context: distributed.Context, log) -> None:
    if context.is_main:
        write_config_copy(config, exp_dir)
    distributed.barrier(context)
    data = read_training_set(data_dir, config.data.features, config.data.spectrogram_config,
                             config.augment)
    bins = data.feature_bins()   # reads the first ark of precomputed features: once
    if bins != config.model.input_bins:
        raise RecipeError(
            f"{data_dir}: its features are {bins} bins high, but the training "
            f"config's model.input_bins is {config.model.input_bins}; set model.input_bins to "
            f"{bins}, or compute the features with the options the config names "
            f"(data.spectrogram_config: {config.data.spectrogram_config}; run.sh's stage 2 does)")
    short = int((data.num_frames < config.data.crop_frames).sum())
    if short:
        log(f"train: {short} of {len(data)} utterances are shorter than the "
            f"{config.data.crop_frames}-frame crop; they are repeat-padded, not dropped")
    trainer = Trainer(config, data, exp_dir, log=log, context=context)
    trainer.resume()
    trainer.train()
    trainer.write_final_model(Path(exp_dir) / "final.pt")
    log(f"train: wrote {exp_dir}/final.pt")


if __name__ == "__main__":
    run_entry_point(main, "train")

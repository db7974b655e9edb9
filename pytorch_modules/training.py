"""The training loop: SGD over random crops, a per-step learning-rate rule, checkpoints.

Resuming is exact: the data order and crops are functions of (seed, epoch, step) (data.py), and
a checkpoint holds the model, the head, the optimizer, the position and the RNG states, so a run
continued from a checkpoint computes the same updates as one that never stopped.
"""
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from pytorch_modules import checkpoints
from pytorch_modules.config import Config
from pytorch_modules.data import EpochBatches, TrainingSet, epoch_loader
from pytorch_modules.errors import RecipeError
from pytorch_modules.losses import build_head
from pytorch_modules.models import ResCNN


def learning_rate(config: Config, global_step: int, steps_per_epoch: int) -> float:
    """Linear warm-up to optim.lr, then exponential decay reaching optim.final_lr at the end."""
    o = config.optim
    total = o.epochs * steps_per_epoch
    warmup = int(o.warmup_epochs * steps_per_epoch)
    if global_step < warmup:
        return o.lr * (global_step + 1) / warmup
    progress = (global_step - warmup) / max(1, total - warmup)
    return o.lr * (o.final_lr / o.lr) ** progress


def build_model(config: Config) -> ResCNN:
    return ResCNN(config.model.widths, config.model.blocks, config.model.embedding_dim,
                  config.model.embedding_bn)


@dataclass
class Position:
    epoch: int = 1   # 1-based epoch in progress
    step: int = 0    # steps of that epoch already done


class Trainer:
    def __init__(self, config: Config, data: TrainingSet, exp_dir: str, log=print):
        self.config, self.data, self.log = config, data, log
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        torch.manual_seed(config.training.seed)
        self.model = build_model(config)
        self.head = build_head(config.loss.type, config.model.embedding_dim,
                               len(data.speakers), **config.loss.options)
        params = list(self.model.parameters()) + list(self.head.parameters())
        o = config.optim
        self.optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum,
                                         nesterov=o.nesterov, weight_decay=o.weight_decay)
        self.batches = EpochBatches(data.num_frames, config.data.batch_size,
                                    config.data.crop_frames, config.training.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch()
        self.position = Position()

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.position.epoch,
            "step": self.position.step,
            "config": self.config.to_dict(),
            "speakers": self.data.speakers,
            "torch_rng": torch.get_rng_state(),
        }

    def save(self, finished_epoch: bool) -> None:
        p = self.position
        name = (checkpoints.checkpoint_name(p.epoch - 1) if finished_epoch
                else checkpoints.checkpoint_name(p.epoch, p.step))
        checkpoints.save_atomic(self.state(), self.ckpt_dir / name)
        checkpoints.prune(self.ckpt_dir, self.config.training.keep_checkpoints)

    def resume(self) -> None:
        found = checkpoints.list_checkpoints(self.ckpt_dir)
        if not found:
            return
        state = checkpoints.load(found[-1])
        if state["speakers"] != self.data.speakers:
            raise RecipeError(f"{found[-1]} was trained on other speakers than this training set; "
                              f"use a new exp dir or delete {self.ckpt_dir}")
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.position = Position(state["epoch"], state["step"])
        self.log(f"resuming from {found[-1]} (epoch {self.position.epoch}, "
                 f"step {self.position.step} of {self.steps_per_epoch})")

    # -- training ----------------------------------------------------------------------------
    def train(self) -> None:
        total_steps = self.config.optim.epochs * self.steps_per_epoch
        self.log(f"training on {len(self.data)} utterances of {len(self.data.speakers)} speakers: "
                 f"{self.config.optim.epochs} epochs of {self.steps_per_epoch} steps, batch "
                 f"{self.config.data.batch_size}, crops of {self.config.data.crop_frames} frames")
        self.log(f"model: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M "
                 f"parameters; head {self.config.loss.type} {self.config.loss.options}")
        clock = Throughput(total_steps, self.global_step())
        while self.position.epoch <= self.config.optim.epochs:
            self.train_epoch(clock)
            self.position = Position(self.position.epoch + 1, 0)
            self.save(finished_epoch=True)

    def global_step(self) -> int:
        return (self.position.epoch - 1) * self.steps_per_epoch + self.position.step

    def train_epoch(self, clock: "Throughput") -> None:
        self.model.train()
        self.head.train()
        c = self.config
        loader = epoch_loader(self.data, self.batches, self.position.epoch, self.position.step,
                              c.data.num_workers)
        sums = RunningSums()
        for feats, labels in loader:
            lr = learning_rate(c, self.global_step(), self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            out = self.head(self.model(feats), labels)
            if not torch.isfinite(out.loss):
                last = checkpoints.list_checkpoints(self.ckpt_dir)
                raise RecipeError(
                    f"the loss became {out.loss.item()} at epoch {self.position.epoch} step "
                    f"{self.position.step + 1} (global step {self.global_step() + 1}); "
                    f"nothing after the last good checkpoint "
                    f"({last[-1] if last else 'none yet'}) was saved. Lower optim.lr or check "
                    f"the features, then rerun to resume")
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            self.position.step += 1
            sums.add(out, labels)
            clock.tick(len(labels))
            if self.position.step % c.training.log_every_steps == 0 or \
                    self.position.step == self.steps_per_epoch:
                self.log(f"epoch {self.position.epoch}/{c.optim.epochs} step "
                         f"{self.position.step}/{self.steps_per_epoch} | {sums.report()} "
                         f"lr {lr:.5f} | {clock.report(self.global_step())}")
            every = c.training.checkpoint_every_steps
            if every and self.position.step % every == 0 and self.position.step < self.steps_per_epoch:
                self.save(finished_epoch=False)

    def write_final_model(self, path) -> None:
        """The embedding network alone, for extraction and verification."""
        checkpoints.save_atomic({
            "model": self.model.state_dict(),
            "config": self.config.to_dict(),
            "speakers": self.data.speakers,
        }, path)


class RunningSums:
    """Loss, accuracy and mean cos(theta_y) since the last report."""

    def __init__(self):
        self.loss = self.correct = self.cos = 0.0
        self.count = 0

    def add(self, out, labels) -> None:
        n = len(labels)
        self.loss += out.loss.item() * n
        self.correct += (out.logits.argmax(1) == labels).sum().item()
        self.cos += out.target_cos.sum().item()
        self.count += n

    def report(self) -> str:
        n = max(self.count, 1)
        text = (f"loss {self.loss / n:.3f} acc {100 * self.correct / n:.1f}% "
                f"cos(theta_y) {self.cos / n:.3f}")
        self.__init__()
        return text


class Throughput:
    """Utterances per second and time left, measured over this process's steps."""

    def __init__(self, total_steps: int, start_step: int):
        self.total_steps, self.start_step = total_steps, start_step
        self.start = time.time()
        self.utts = 0

    def tick(self, utts: int) -> None:
        self.utts += utts

    def report(self, global_step: int) -> str:
        elapsed = time.time() - self.start
        done = max(global_step - self.start_step, 1)
        left = elapsed / done * (self.total_steps - global_step)
        return (f"{self.utts / max(elapsed, 1e-9):.1f} utt/s | elapsed {format_duration(elapsed)} "
                f"left {format_duration(left)}")


def format_duration(seconds: float) -> str:
    seconds = int(math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def write_config_copy(config: Config, exp_dir) -> None:
    """exp/<model>/config.yaml: what this model was trained with; a resume must match it."""
    path = Path(exp_dir) / "config.yaml"
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
    if path.exists() and path.read_text() != text:
        raise RecipeError(f"{path} differs from the config given now: this exp dir was trained "
                          f"with another config. Use a new exp dir, or delete {exp_dir} to "
                          f"start over")
    path.write_text(text)

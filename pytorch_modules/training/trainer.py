"""The training loop: SGD over random crops, a per-step learning-rate rule, checkpoints.

Resuming is exact: the data order and crops are functions of (seed, epoch, step)
(data/training_set.py), and a checkpoint holds the model, the head, the optimizer, the position and
the RNG states, so a run continued from a checkpoint computes the same updates as one that never
stopped.

The same loop runs as one process or as several under torchrun (distributed.py): each process
takes its share of every global batch, DDP averages the gradients, rank 0 alone writes the log,
the checkpoints and final.pt, and the reported loss and accuracy are over the global batch.
"""
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pytorch_modules.config import Config, config_from_dict, load_yaml, margin_warmup_unused
from pytorch_modules.data.training_set import TrainingSet, epoch_batches, epoch_loader
from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio import checkpoint_file
from pytorch_modules.heads import HeadOutput, build_head, scheduled_margin_types
from pytorch_modules.models import build_model
from pytorch_modules.reports.cos_histogram import CosThetaHistogram, write_epoch
from pytorch_modules.training import checkpoints, distributed, initial_model
from pytorch_modules.training.averaging import WeightAverage


def lr_scale(config: Config) -> float:
    """The factor optim.lr_scaling puts on the whole schedule for this global batch size."""
    ratio = config.data.batch_size / config.optim.lr_reference_batch
    return {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[config.optim.lr_scaling]


def learning_rate(config: Config, global_step: int, steps_per_epoch: int) -> float:
    """Linear warm-up to optim.lr, then exponential decay reaching optim.final_lr at the end.

    Both ends are multiplied by lr_scale(config) (1 unless optim.lr_scaling says otherwise).
    """
    o = config.optim
    total = o.epochs * steps_per_epoch
    warmup = int(o.warmup_epochs * steps_per_epoch)
    if global_step < warmup:
        return lr_scale(config) * o.lr * (global_step + 1) / warmup
    progress = (global_step - warmup) / max(1, total - warmup)
    return lr_scale(config) * o.lr * (o.final_lr / o.lr) ** progress


def margin_scale(config: Config, global_step: int, steps_per_epoch: int) -> float:
    """The fraction of the margin in force at `global_step` (0-based): 0 for the first
    optim.margin_warmup_start epochs, then a linear rise reaching 1 after a further
    optim.margin_warmup_epochs; 1 throughout when both are 0."""
    o = config.optim
    start = o.margin_warmup_start * steps_per_epoch
    ramp = o.margin_warmup_epochs * steps_per_epoch
    if global_step < start:
        return 0.0
    if global_step >= start + ramp:
        return 1.0
    return (global_step - start) / ramp


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training.amp on `device`, or None for float32 throughout."""
    if amp == "none":
        return None
    if device.type != "cuda":
        raise RecipeError(f"training.amp is {amp}, but this run is on the CPU; mixed precision "
                          f"is only used on CUDA GPUs, and a CPU run would quietly differ from "
                          f"the GPU run the config asks for. Set training.amp: none to train "
                          f"on the CPU in float32, or run on a GPU")
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise RecipeError(f"training.amp is bf16, but {torch.cuda.get_device_name(device)} has "
                          f"no bfloat16 support; use training.amp: fp16 (with loss scaling) "
                          f"or none")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


class TrainStep(nn.Module):
    """The embedding network and the loss head as one module.

    One module, so that DDP averages the gradients of both.  Under autocast the trunk may run
    in half precision, but the head runs in float32: the margins (0.1 to 0.27) and
    exp(1 - cos) lose digits in fp16/bf16, and the scaled logits (s = 30) go into a softmax.
    """

    def __init__(self, model: nn.Module, head: nn.Module):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> HeadOutput:
        embeddings = self.model(feats)
        # half -> float32; float32 (and float64) stay as they are.
        embeddings = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
        with torch.autocast(feats.device.type, enabled=False):
            return self.head(embeddings, labels)


@dataclass
class Position:
    epoch: int = 1   # 1-based epoch in progress
    step: int = 0    # steps of that epoch already done


def _silent(*args, **kwargs) -> None:
    """The log of ranks other than 0: their messages would repeat rank 0's."""


class Trainer:
    def __init__(self, config: Config, data: TrainingSet, exp_dir: str, log=print,
                 context: distributed.Context | None = None):
        t = config.training
        self.ctx = context or distributed.Context(
            device=distributed.choose_device(t.device))
        self.config, self.data = config, data
        self.log = log if self.ctx.is_main else _silent
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.device = self.ctx.device
        self.check_batch_split()
        self.amp_dtype = autocast_dtype(t.amp, self.device)
        self.notes = []   # set-up facts for the log's head
        self.num_workers = self.loader_workers()
        # What the model is trained from: a resume from a checkpoint of other data is refused.
        self.data_fingerprint = data.fingerprint()

        torch.manual_seed(t.seed)   # the same initial weights in every process
        self.model = self.prepare_model(build_model(config.model))
        self.head = build_head(config.loss.type, config.model.embedding_dim,
                               data.num_classes, **config.loss.options).to(self.device)
        params = list(self.model.parameters()) + list(self.head.parameters())
        o = config.optim
        self.optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum,
                                         nesterov=o.nesterov, weight_decay=o.weight_decay)
        self.step_module = TrainStep(self.model, self.head)
        if self.ctx.distributed:
            self.step_module = DistributedDataParallel(
                self.step_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward = self.compiled_step()
        # Loss scaling keeps small fp16 gradients from flushing to zero; bf16 does not need it.
        self.scaler = torch.amp.GradScaler("cuda", enabled=t.amp == "fp16")
        self.batches = epoch_batches(data, config.data.batch_size, config.data.crop_frames,
                                     t.seed, config.data.shuffle_buffer)
        self.steps_per_epoch = self.batches.steps_per_epoch()
        self.position = Position()
        self.average = (WeightAverage(o.average_last, o.epochs) if o.average_last > 1
                        else None)
        # The distribution of cos(theta_y) per epoch (the paper's Fig 1): counted on the
        # device every step, written to exp_dir/cos_theta_hist.tsv when the epoch ends.
        self.cos_hist = CosThetaHistogram(device=self.device)

    def check_batch_split(self) -> None:
        """Whole batches of distinct utterances, in equal shares: DDP's average of
        per-process mean losses is then the global mean."""
        batch, world = self.config.data.batch_size, self.ctx.world_size
        if batch > len(self.data):
            raise RecipeError(f"data.batch_size {batch} is larger than the training set's "
                              f"{len(self.data)} utterances, so every batch would hold some "
                              f"of them twice; set data.batch_size to at most {len(self.data)}")
        if batch % world:
            raise RecipeError(f"data.batch_size {batch} (the global batch) cannot be split "
                              f"evenly over {world} processes; choose a batch size that is a "
                              f"multiple of the number of processes")

    def loader_workers(self) -> int:
        """data.num_workers, at most the cores this process may use (more would only
        compete for them; the crops do not depend on the number of workers)."""
        wanted = self.config.data.num_workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if cores and wanted > cores:
            self.notes.append(f"data.num_workers {wanted} is more than the {cores} cores this "
                              f"process may use: {cores} loader workers")
            return cores
        return wanted

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """BatchNorm mode, device and memory layout, noting in the log what was chosen."""
        t = self.config.training
        if self.ctx.distributed and t.sync_batchnorm:
            model = distributed.sync_batchnorm(model, self.device)
            self.notes.append("BatchNorm statistics over the global batch (sync_batchnorm)")
        elif self.ctx.distributed:
            self.notes.append(f"BatchNorm statistics per process "
                              f"({self.config.data.batch_size // self.ctx.world_size} "
                              f"utterances each; training.sync_batchnorm: true shares them)")
        model = model.to(self.device)
        if t.channels_last and self.device.type == "cuda":
            # The input has one channel, so its layout is the same either way; the weights in
            # channels-last make cuDNN run every convolution (and its outputs) channels-last.
            model = model.to(memory_format=torch.channels_last)
            self.notes.append("channels-last memory layout")
        elif t.channels_last:
            self.notes.append("training.channels_last is ignored on the CPU")
        return model

    def compiled_step(self) -> nn.Module:
        """The module each step calls: step_module, or torch.compile of it (training.compile).
        Checkpoints keep using self.model and self.head, whose parameters it shares."""
        if not self.config.training.compile:
            return self.step_module
        if self.device.type != "cuda":
            self.notes.append("training.compile is ignored on the CPU")
            return self.step_module
        self.notes.append("torch.compile")
        return torch.compile(self.step_module)

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.position.epoch,
            "step": self.position.step,
            "config": self.config.to_dict(),
            "speakers": self.data.speakers,
            "data_fingerprint": self.data_fingerprint,
            "torch_rng": torch.get_rng_state(),
            "cos_hist": self.cos_hist.counts.cpu(),
        }
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        if self.average is not None:
            state["average"] = self.average.state()
        return state

    def save(self, finished_epoch: bool) -> None:
        """Rank 0 writes; the others wait, so that no process runs ahead of a checkpoint."""
        if self.ctx.is_main:
            p = self.position
            name = (checkpoints.checkpoint_name(p.epoch - 1) if finished_epoch
                    else checkpoints.checkpoint_name(p.epoch, p.step))
            checkpoint_file.save_atomic(self.state(), self.ckpt_dir / name)
            checkpoints.prune(self.ckpt_dir, self.config.training.keep_checkpoints)
        distributed.barrier(self.ctx)

    def resume(self) -> None:
        """Every process loads the newest checkpoint (nobody writes while they look); without
        one, training starts from training.init_model when the config names one."""
        found = checkpoints.list_checkpoints(self.ckpt_dir)
        if not found:
            if self.config.training.init_model:
                initial_model.initialise(self.model, self.head, self.config, self.data.speakers,
                                         self.data.num_classes, self.log)
            return
        state = checkpoint_file.load(found[-1], f"delete it to resume from {found[-2].name}"
                                 if len(found) > 1 else "delete it to train from the start")
        # Checkpoints written before fingerprints were recorded say only their speakers.
        recorded = state.get("data_fingerprint")
        same = (recorded == self.data_fingerprint if recorded is not None
                else state["speakers"] == self.data.speakers)
        if not same:
            raise RecipeError(
                f"{found[-1]} was trained on other data than this training set holds now "
                f"(utterances, speakers or features differ: {len(self.data)} utterances of "
                f"{len(self.data.speakers)} speakers now); resuming would mix the two. Use a "
                f"new exp dir, or delete {self.exp_dir} to train again from the start")
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler.is_enabled() and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if "cos_hist" in state:
            self.cos_hist.counts.copy_(state["cos_hist"])
        if self.average is not None and state.get("average"):
            self.average.load(state["average"])
        self.position = Position(state["epoch"], state["step"])
        self.log(f"resuming from {found[-1]} (epoch {self.position.epoch}, "
                 f"step {self.position.step} of {self.steps_per_epoch})")

    # -- training ----------------------------------------------------------------------------
    def train(self) -> None:
        c = self.config
        total_steps = c.optim.epochs * self.steps_per_epoch
        left_out = len(self.data) - self.steps_per_epoch * c.data.batch_size
        self.log(f"training on {len(self.data)} utterances of {len(self.data.speakers)} speakers: "
                 f"{c.optim.epochs} epochs of {self.steps_per_epoch} steps, batch "
                 f"{c.data.batch_size}, crops of {c.data.crop_frames} frames"
                 + (f" (each epoch leaves out {left_out} utterances, a partial batch; other "
                    f"ones each epoch)" if left_out else ""))
        self.log(f"model: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M "
                 f"parameters; head {c.loss.type} {c.loss.options}")
        self.log(self.setup_summary())
        if margin_warmup_unused(c):
            self.log(margin_warmup_unused(c))
        self.log(self.margin_schedule())
        if c.optim.freeze_backbone_epochs:
            self.log(f"the network is frozen (weights and BatchNorm statistics) for the first "
                     f"{c.optim.freeze_backbone_epochs:g} epochs; the head learns alone")
        if self.average is not None:
            self.log(f"final.pt will be the mean of the weights at the end of epochs "
                     f"{self.average.first_epoch}-{c.optim.epochs} (optim.average_last "
                     f"{c.optim.average_last})")
        if c.optim.lr_scaling != "none":
            self.log(f"lr {c.optim.lr} -> {c.optim.final_lr} scaled by {lr_scale(c):.4g} "
                     f"(optim.lr_scaling {c.optim.lr_scaling}: batch {c.data.batch_size} for "
                     f"reference batch {c.optim.lr_reference_batch})")
        clock = Throughput(total_steps, self.global_step())
        while self.position.epoch <= c.optim.epochs:
            self.train_epoch(clock)
            self.write_cos_histogram()
            if self.average is not None:
                self.average.add(self.position.epoch, self.weights())
            self.position = Position(self.position.epoch + 1, 0)
            self.save(finished_epoch=True)

    def margin_schedule(self) -> str:
        """The margin the head trains with, in one line of the log."""
        c = self.config
        if c.loss.type not in scheduled_margin_types():
            return f"margin: {c.loss.type} has no additive margin to schedule"
        o, m = c.optim, c.loss.options["margin"]
        if not (o.margin_warmup_start or o.margin_warmup_epochs):
            return f"margin {m:g} from the first step (no margin warm-up)"
        return (f"margin 0 for {o.margin_warmup_start:g} epochs, then rising linearly to {m:g} "
                f"over {o.margin_warmup_epochs:g} epochs")

    def write_cos_histogram(self) -> None:
        """Adds this epoch's cos(theta_y) histogram, summed over processes, to the exp dir."""
        counts = distributed.sum_over_ranks(self.cos_hist.counts, self.ctx)
        if self.ctx.is_main:
            write_epoch(self.exp_dir / "cos_theta_hist.tsv", self.position.epoch,
                        self.cos_hist.edges, counts)
        self.cos_hist.reset()

    def setup_summary(self) -> str:
        """One line: processes, device, precision and the notes of prepare_model."""
        if self.ctx.distributed:
            where = (f"{self.ctx.world_size} processes ({torch.distributed.get_backend()}), "
                     f"{self.config.data.batch_size // self.ctx.world_size} utterances of each "
                     f"batch per process, rank 0 on {self.device}")
        else:
            where = f"1 process on {self.device}"
        precision = f"amp {self.config.training.amp}" if self.amp_dtype else "float32"
        return "; ".join([where, precision] + self.notes)

    def global_step(self) -> int:
        return (self.position.epoch - 1) * self.steps_per_epoch + self.position.step

    def train_epoch(self, clock: "Throughput") -> None:
        self.step_module.train()
        c = self.config
        loader = epoch_loader(self.data, self.batches, self.position.epoch, self.position.step,
                              self.num_workers, self.ctx.rank, self.ctx.world_size,
                              pin_memory=self.device.type == "cuda")
        sums = RunningSums()
        unread = []   # ((epoch, step, global step), global sums on the device) per step
        warmed_margin = c.loss.type in scheduled_margin_types()
        freeze_steps = c.optim.freeze_backbone_epochs * self.steps_per_epoch
        for feats, labels in loader:
            # Frozen: eval mode keeps the network's BatchNorm statistics too; a function of
            # the step, so a resumed run freezes and thaws at the same step.
            frozen = self.global_step() < freeze_steps
            self.model.train(not frozen)
            feats = feats.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            lr = learning_rate(c, self.global_step(), self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if warmed_margin:
                self.head.margin_scale.fill_(
                    margin_scale(c, self.global_step(), self.steps_per_epoch))
            with torch.autocast(self.device.type, dtype=self.amp_dtype,
                                enabled=self.amp_dtype is not None):
                out = self.forward(feats, labels)
            # Every process gets the global sums, so all of them stop together on a bad loss.
            # They stay on the device until read_sums, a step later: reading a GPU value
            # waits for the GPU, and waiting every step would leave it idle while the CPU
            # queues the next step's kernels (ResCNN at batch 64 on an H100 launches kernels
            # about as fast as the GPU runs them).
            unread.append(((self.position.epoch, self.position.step + 1, self.global_step() + 1),
                           distributed.sum_over_ranks(step_sums(out, labels), self.ctx)))
            self.cos_hist.add(out.target_cos)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(out.loss).backward()
            if frozen:   # no gradient: SGD leaves the network's weights and momenta as they are
                for p in self.model.parameters():
                    p.grad = None
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.position.step += 1
            clock.tick(c.data.batch_size)
            step = self.position.step
            log_now = step % c.training.log_every_steps == 0 or step == self.steps_per_epoch
            every = c.training.checkpoint_every_steps
            save_now = every and step % every == 0 and step < self.steps_per_epoch
            # Before a log line or a checkpoint every step is read (and checked); else all
            # but this one.  The epoch's last step is always logged, so none is left unread.
            self.read_sums(unread, sums, keep=0 if log_now or save_now else 1)
            if log_now:
                self.log(f"epoch {self.position.epoch}/{c.optim.epochs} step "
                         f"{step}/{self.steps_per_epoch} | {sums.report()} "
                         f"lr {lr:.5f}{self.margin_note()} | {clock.report(self.global_step())}")
            if save_now:
                self.save(finished_epoch=False)

    def margin_note(self) -> str:
        """' margin 0.100' in log lines while the margin warm-up is on, else nothing."""
        o = self.config.optim
        if not (o.margin_warmup_start or o.margin_warmup_epochs):
            return ""
        return f" margin {float(self.head.margin_scale) * self.head.margin:.3f}"

    def read_sums(self, unread: list, sums: "RunningSums", keep: int) -> None:
        """Moves all but the newest `keep` steps of `unread` to the host, checks their losses
        and adds them to `sums`."""
        while len(unread) > keep:
            where, step = unread.pop(0)
            step = step.cpu()
            self.check_finite(step, *where)
            sums.add(step)

    def check_finite(self, step: torch.Tensor, epoch: int, epoch_step: int,
                     global_step: int) -> None:
        loss = step[0].item() / step[3].item()
        if not math.isfinite(loss):
            last = checkpoints.list_checkpoints(self.ckpt_dir)
            raise RecipeError(
                f"the loss became {loss} at epoch {epoch} step {epoch_step} (global step "
                f"{global_step}); nothing after the last good checkpoint "
                f"({last[-1] if last else 'none yet'}) was saved. Lower optim.lr or check "
                f"the features, then rerun to resume")

    def weights(self) -> dict:
        """The network's and the head's weights in one dict, keys prefixed model. and head."""
        return {**{f"model.{k}": v for k, v in self.model.state_dict().items()},
                **{f"head.{k}": v for k, v in self.head.state_dict().items()}}

    def write_final_model(self, path) -> None:
        """The trained network, for extraction and verification, with its head, for
        fine-tuning (rank 0 writes): the last weights, or their mean over the last epochs
        (optim.average_last)."""
        if self.ctx.is_main:
            weights = self.weights()
            if self.average is not None:
                weights = self.average.mean(weights)
            part = {name: {k.split(".", 1)[1]: v for k, v in weights.items()
                           if k.startswith(f"{name}.")} for name in ("model", "head")}
            checkpoint_file.save_atomic({
                "model": part["model"],
                "head": part["head"],
                "config": self.config.to_dict(),
                "speakers": self.data.speakers,
                "data_fingerprint": self.data_fingerprint,
            }, path)
        distributed.barrier(self.ctx)


def step_sums(out: HeadOutput, labels: torch.Tensor) -> torch.Tensor:
    """[loss sum, correct, cos(theta_y) sum, count] of one step in this process.

    One float64 tensor, so that one all_reduce gives the sums over the global batch.
    """
    n = labels.numel()
    return torch.stack([
        out.loss.detach().double() * n,
        (out.logits.detach().argmax(1) == labels).sum().double(),
        out.target_cos.detach().double().sum(),
        torch.tensor(float(n), dtype=torch.float64, device=labels.device),
    ])


class RunningSums:
    """Loss, accuracy and mean cos(theta_y) since the last report, over the global batches."""

    def __init__(self):
        self.loss = self.correct = self.cos = 0.0
        self.count = 0

    def add(self, step: torch.Tensor) -> None:
        """`step`: the global step_sums of one step."""
        loss, correct, cos, count = step.tolist()
        self.loss += loss
        self.correct += correct
        self.cos += cos
        self.count += int(count)

    def report(self) -> str:
        n = max(self.count, 1)
        text = (f"loss {self.loss / n:.3f} acc {100 * self.correct / n:.1f}% "
                f"cos(theta_y) {self.cos / n:.3f}")
        self.__init__()
        return text


class Throughput:
    """Utterances per second (all processes together) and time left, since this run started."""

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
    """exp/<model>/config.yaml: what this model was trained with; a resume must match it.
    Compared as configs, not as text, so that a key added to the recipe since (read with its
    default) does not make an unchanged config differ."""
    path = Path(exp_dir) / "config.yaml"
    if path.exists():
        try:
            recorded = config_from_dict(load_yaml(path.read_text(), str(path)), str(path))
        except RecipeError as e:
            recorded = e
        if recorded != config:
            why = (f" ({recorded})" if isinstance(recorded, RecipeError) else "")
            raise RecipeError(f"{path} differs from the config given now{why}: this exp dir was "
                              f"trained with another config. Use a new exp dir, or delete "
                              f"{exp_dir} to start over")
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None))

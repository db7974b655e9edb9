"""Several training processes: torchrun's environment, the device, the process group, and
BatchNorm statistics shared over processes.

One process per GPU (or several CPU processes with gloo) runs the same training loop.  torchrun
tells each process where it stands through environment variables (RANK, WORLD_SIZE, LOCAL_RANK);
without them the run is a single process and nothing here talks to other processes, so the
single-process path has no distributed machinery in it at all.

    context = distributed.setup(config.training)   # reads torchrun's variables, joins the group
    train(..., context)      # a function holding Trainer(config, data, exp_dir, context=context)
    distributed.teardown(context)                  # once that Trainer is gone (see teardown)

The global batch (data.batch_size) is split over the processes by data.EpochBatches; each process
averages the loss over its own share and DDP averages the gradients over processes, so with equal
shares the update is the one a single process computes on the whole batch.  The one place where
the split shows is BatchNorm: its batch statistics are over each process's share unless
training.sync_batchnorm is true (see GlobalBatchNorm for why CPU runs need our own module).
"""
import gc
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from pytorch_modules.errors import RecipeError


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among world_size processes and its device."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the files and the log; the others only compute."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _int_from_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise RecipeError(f"the environment variable {name}={value!r} is not a whole number; "
                          f"it is set by torchrun, so start training through steps/train.sh "
                          f"or torchrun rather than setting it by hand") from None


def launch_environment() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) for a plain `python`."""
    world_size = _int_from_env("WORLD_SIZE", 1)
    rank = _int_from_env("RANK", 0)
    local_rank = _int_from_env("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise RecipeError(f"RANK={rank} and WORLD_SIZE={world_size} do not describe a process "
                          f"of a group (need 0 <= RANK < WORLD_SIZE); start training through "
                          f"steps/train.sh or torchrun")
    return rank, world_size, local_rank


def choose_device(setting: str, local_rank: int = 0) -> torch.device:
    """training.device: auto = the GPU when one is visible, else the CPU.

    Under torchrun, process LOCAL_RANK of a node uses that node's GPU number LOCAL_RANK.
    """
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RecipeError("training.device is cuda but this process sees no CUDA GPU (torch "
                          f"{torch.__version__}, CUDA_VISIBLE_DEVICES="
                          f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}); run on a GPU "
                          f"node with steps/train.sh --num-gpus N, or set training.device: cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise RecipeError(f"process {local_rank} of this node needs GPU {local_rank}, but only "
                          f"{count} GPU(s) are visible; start at most {count} processes per "
                          f"node (steps/train.sh --num-gpus {count})")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def choose_backend(setting: str, device: torch.device) -> str:
    """training.dist_backend (one of config.py's choices): auto = NCCL for GPU tensors, gloo
    for CPU tensors."""
    if setting == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if setting == "nccl" and device.type != "cuda":
        raise RecipeError("training.dist_backend is nccl, which only moves GPU tensors, but "
                          "this run is on the CPU; use dist_backend: gloo (or auto) for CPU runs")
    return setting


def setup(training_config) -> Context:
    """This process's Context; under torchrun also joins the process group."""
    rank, world_size, local_rank = launch_environment()
    device = choose_device(training_config.device, local_rank)
    if world_size > 1:
        backend = choose_backend(training_config.dist_backend, device)
        # MASTER_ADDR/MASTER_PORT come from torchrun (env:// rendezvous).  Naming the device
        # lets NCCL set up its communicator for the right GPU at once.
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                device_id=device if device.type == "cuda" else None)
    return Context(rank, world_size, local_rank, device)


def teardown(context: Context) -> None:
    """Leaves the process group; call it once the DDP wrapper is no longer referenced.

    DDP's reducer holds the process group too.  If the reducer were the last holder, the
    group's destructor would run inside the reducer's deallocation with the GIL held, and wait
    for gloo's worker thread, which may still be freeing the tensors of finished work and needs
    the GIL for that: both wait forever (pytorch/pytorch#56297; seen here at the end of 2-process
    runs).  Collecting the wrapper first leaves the group's last reference to
    destroy_process_group, whose destructor releases the GIL while it waits.
    """
    if context.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    """Waits for every process (e.g. until rank 0 has finished writing a file)."""
    if context.distributed:
        if context.device.type == "cuda" and dist.get_backend() == "nccl":
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()


def sum_over_ranks(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The element-wise sum of `tensor` over all processes (in place; returned for chaining)."""
    if context.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


# -- BatchNorm over the global batch --------------------------------------------------------

class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are taken over the global batch of all processes.

    torch.nn.SyncBatchNorm does this on GPUs, but (torch 2.11) refuses CPU tensors ("expected
    input tensor to be on GPU") and its kernels (batch_norm_stats, ...) are GPU-only, so CPU
    runs with gloo use this module instead.  Each process sums x and x^2 per channel together
    with its count; one differentiable all_reduce (torch.distributed.nn.functional, whose
    backward is again an all_reduce of the gradients) makes the global sums, from which mean and
    biased variance follow.  Autograd then gives exactly the gradient of BatchNorm over the
    whole batch.  The sums are taken in float64 so that E[x^2] - E[x]^2 loses nothing that a
    single process's BatchNorm would keep.

    Parameters, buffers and state_dict keys are those of nn.BatchNorm1d/2d, so a model trained
    with it loads into the plain model.  In eval mode, or without a process group, it is plain
    BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0] + list(range(2, input.dim()))
        x = input.double()
        count = torch.full((1,), input.numel() // channels, dtype=torch.float64,
                           device=input.device)
        sums = dist_nn.all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = sums[-1]
        mean = sums[:channels] / n
        var = sums[channels:2 * channels] / n - mean * mean
        self._update_running_stats(mean.detach(), var.detach(), n.item())
        shape = [1, channels] + [1] * (input.dim() - 2)
        out = ((x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)).to(input.dtype)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        """As F.batch_norm does it: the running variance is the unbiased one."""
        if not self.track_running_stats:
            return
        self.num_batches_tracked.add_(1)
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        unbiased = var * (n / max(n - 1.0, 1.0))
        self.running_mean.mul_(1 - momentum).add_(momentum * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - momentum).add_(momentum * unbiased.to(self.running_var.dtype))


def to_global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm*d replaced by a GlobalBatchNorm holding the same values."""
    if isinstance(module, _BatchNorm):
        values = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        replacement = GlobalBatchNorm(module.num_features, module.eps, module.momentum,
                                      module.affine, module.track_running_stats,
                                      device=values[0].device if values else None,
                                      dtype=values[0].dtype if values else None)
        replacement.load_state_dict(module.state_dict())
        replacement.train(module.training)
        return replacement
    for name, child in module.named_children():
        module.add_module(name, to_global_batchnorm(child))
    return module


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the global batch: torch's SyncBatchNorm on GPUs, ours elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return to_global_batchnorm(model)

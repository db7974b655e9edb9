"""Training speed: utterances/s of the ResCNN + DAM-Softmax step, its FLOP rate, and the data
loader's rate against what the model consumes.

    python bench/training.py [--paper-batch 64] [--paper-steps 1] [--demo-steps 4] [--quick]

For the paper's config (conf/rescnn_dam.yaml: widths 64-512, 3-s crops = 300 frames) and the
demo config (conf/demo_dam.yaml), one training step as training.Trainer runs it (TrainStep
forward, loss, backward, SGD step; float32 on the CPU, torch threads as the config says):
  - utterances/s (best step of --paper-steps / --demo-steps after one warm-up step), with the
    system time and minor page faults of a step: glibc hands the large activation buffers
    back to the kernel after every step and faults them in again the next (see README.md);
  - forward FLOPs per crop, counted with forward hooks on every Conv2d and Linear (a
    multiply-add is 2 FLOPs); forward + backward is taken as 3x forward;
  - the FLOP rate training reaches, as a fraction of torch.mm on large float32 matrices and of
    the best single convolution of the model (each distinct conv shape timed alone, forward),
    both measured in the same run.
The paper model's step runs in a fresh process under the memory allocator steps/train.sh
gives CPU training (jemalloc keeping its pages when installed, else glibc without trimming;
--allocators adds glibc's default, which spends half of each step faulting memory in).
The paper model is timed at the config's batch of 64 (a step takes 30-50 s on 2 cores; the
bench takes about 3 minutes); --paper-batch 8 is quicker, but its utterances/s is higher
(smaller activations stay in cache and fault in less memory), so it is said in the output.
The data loader alone (data.CropDataset through data.epoch_loader, num_workers as the config
says, and 0) reads random crops from a generated feats.scp (float32 arks, as the recipe writes
by default, and Kaldi-compressed ones); its utterances/s is set against the model's.
"""
import argparse
import os
import resource
import subprocess
import sys
import time
import warnings

import common
import numpy as np
import torch
from feats_data import training_dir
from torch import nn

from pytorch_modules.config import load_config
from pytorch_modules.data.training_set import EpochBatches, epoch_loader, read_training_set
from pytorch_modules.heads import build_head
from pytorch_modules.models import build_model
from pytorch_modules.training.trainer import TrainStep

BINS = 161
SPEAKERS = 1211  # VoxCeleb1 dev: the classifier size of the paper's first Table 1 rows


# ---------------------------------------------------------------- FLOPs
def forward_flops(model, batch, frames):
    """(FLOPs of one forward pass per crop, [(conv module, input shape)]) by forward hooks."""
    total, convs, hooks = [0], [], []

    def conv_hook(module, inputs, output):
        per_output = module.in_channels // module.groups * np.prod(module.kernel_size)
        total[0] += 2 * output.numel() * per_output
        convs.append((module, tuple(inputs[0].shape)))

    def linear_hook(module, inputs, output):
        total[0] += 2 * output.numel() * module.in_features

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.randn(batch, BINS, frames))
    for hook in hooks:
        hook.remove()
    return total[0] / batch, convs


def best_conv_rate(convs, repeats=3):
    """(FLOP/s, description) of the fastest distinct conv shape of the model, forward alone."""
    best, seen = (0.0, ""), set()
    with torch.no_grad():
        for module, shape in convs:
            key = (module.in_channels, module.out_channels, module.kernel_size, module.stride,
                   shape)
            if key in seen:
                continue
            seen.add(key)
            x = torch.randn(shape)
            out = module(x)  # warm-up
            flops = 2 * out.numel() * module.in_channels * np.prod(module.kernel_size)
            calls = max(1, int(0.05 / common.best_of(lambda: module(x), 1)[0]))  # >= 50 ms
            seconds = common.best_of(lambda: [module(x) for _ in range(calls)], repeats)[0] / calls
            if flops / seconds > best[0]:
                best = (flops / seconds, f"{module.in_channels}->{module.out_channels} "
                                         f"{module.kernel_size[0]}x{module.kernel_size[1]}"
                                         f"/{module.stride[0]} on {shape[2]}x{shape[3]}")
    return best


# ---------------------------------------------------------------- the training step
def step_rate(config, batch, steps):
    """(utterances/s of the best of `steps` training steps after a warm-up, step seconds,
    system seconds per step, minor page faults per step)."""
    torch.manual_seed(0)
    model = build_model(config.model)
    head = build_head(config.loss.type, config.model.embedding_dim, SPEAKERS,
                      **config.loss.options)
    step_module = TrainStep(model, head).train()
    o = config.optim
    optimizer = torch.optim.SGD(step_module.parameters(), lr=o.lr, momentum=o.momentum,
                                nesterov=o.nesterov, weight_decay=o.weight_decay)
    feats = torch.randn(batch, BINS, config.data.crop_frames)
    labels = torch.randint(0, SPEAKERS, (batch,))

    def one_step():
        out = step_module(feats, labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    one_step()  # warm-up: allocations, oneDNN kernel choices
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds, _ = common.best_of(one_step, steps)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (batch / seconds, seconds, (after.ru_stime - before.ru_stime) / steps,
            (after.ru_minflt - before.ru_minflt) / steps)


# ---------------------------------------------------------------- the data loader
def loader_rate(data_dir, config, num_workers, batches):
    """Utterances/s delivered by epoch_loader alone over `batches` batches after the first
    (which includes starting the workers).  Workers queue prefetch_factor batches each ahead,
    so `batches` should be well above num_workers x 4 for a steady-state figure."""
    data = read_training_set(data_dir)
    plan = EpochBatches(data.num_frames, config.data.batch_size, config.data.crop_frames, 777)
    batches = min(batches, plan.steps_per_epoch() - 1)
    loader = iter(epoch_loader(data, plan, 1, 0, num_workers))
    next(loader)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        feats, _ = next(loader)
        count += feats.shape[0]
    return count / (time.perf_counter() - start)


def report_model(name, config_path, batch, steps, matmul, note="", allocator=None):
    """The model's FLOPs and training rate; with `allocator` = (name, environment) the step is
    timed in a fresh process under that environment (as steps/train.sh runs it)."""
    config = load_config(os.path.join(common.ROOT, config_path))
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    threads = torch.get_num_threads()
    batch = batch or config.data.batch_size
    model = build_model(config.model)
    params = sum(p.numel() for p in model.parameters())
    flops, convs = forward_flops(model, batch, config.data.crop_frames)
    conv_rate, conv_name = best_conv_rate(convs)
    if allocator:
        utts, seconds, system, faults, _ = child_step(config_path, batch, steps, allocator[1])
        note += f", {allocator[0]}"
    else:
        utts, seconds, system, faults = step_rate(config, batch, steps)
    achieved = utts * 3 * flops
    print(f"-- {name} ({config_path}: widths {config.model.widths}, {params / 1e6:.2f} M "
          f"parameters, crops of {config.data.crop_frames} frames, batch {batch}{note}, "
          f"{threads} threads):")
    common.figure("forward FLOPs per crop", flops / 1e9, "GFLOP")
    common.figure("forward + backward (3x forward)", 3 * flops / 1e9, "GFLOP")
    common.figure("training step", seconds, "s",
                  f"(of which system time {system:.1f} s; {faults:,.0f} minor page faults)")
    common.figure("training utterances/s", utts, "utt/s")
    common.figure("training FLOP rate", achieved / 1e9, "GFLOP/s")
    common.figure("  of torch.mm float32", achieved / matmul, "fraction")
    common.figure(f"  of the best single conv ({conv_name})", achieved / conv_rate,
                  "fraction", f"(that conv: {conv_rate / 1e9:.0f} GFLOP/s forward)")
    print(f"   {common.load_line()}")
    return config, utts


JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
# Never hand freed pages back: the next step's activations reuse them without faulting.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


# glibc without jemalloc: no mmap for large blocks and no trimming, so freed activations stay
# in the heap (faster like jemalloc, but the heap fragments: a higher peak RSS).
GLIBC_KEEP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def recipe_allocator():
    """(name, environment) of the allocator steps/train.sh gives CPU training."""
    if os.path.exists(JEMALLOC):
        return "jemalloc, pages kept", {"LD_PRELOAD": JEMALLOC, "MALLOC_CONF": JEMALLOC_CONF}
    return "glibc, mmap off, no trim", GLIBC_KEEP


def child_step(config_path, batch, steps, environment):
    """step_rate's figures and the peak RSS of a fresh process under `environment`."""
    out = subprocess.run([sys.executable, __file__, "--child-step", config_path, str(batch),
                          str(steps)], env={**os.environ, **environment}, check=True,
                         capture_output=True, text=True).stdout.split()
    return tuple(map(float, out[-5:]))


def allocator_comparison(config_path, batch, steps):
    """The paper step in fresh processes: glibc malloc as it is, glibc keeping its pages, and
    jemalloc keeping its pages (when installed); utterances/s and peak RSS of each."""
    variants = [("glibc malloc", {}), ("glibc, mmap off, no trim", GLIBC_KEEP)]
    if os.path.exists(JEMALLOC):
        variants.append(("jemalloc, pages kept", {"LD_PRELOAD": JEMALLOC,
                                                  "MALLOC_CONF": JEMALLOC_CONF}))
    for name, extra in variants:
        utts, seconds, system, faults, peak = child_step(config_path, batch, steps, extra)
        common.figure(f"{name}: training utterances/s", utts, "utt/s",
                      f"(step {seconds:.1f} s, system {system:.1f} s, {faults:,.0f} faults, "
                      f"peak RSS {peak / 2**30:.2f} GiB)")


def report_loader(config, model_utts, data_dirs, batches):
    for label, data_dir in data_dirs:
        for workers in sorted({config.data.num_workers, 0}):
            rate = loader_rate(data_dir, config, workers, batches)
            common.figure(f"loader, {label}, {workers} workers", rate, "utt/s",
                          f"{rate / model_utts:,.0f}x what the model consumes "
                          f"(issue target >= 3x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper-batch", type=int, default=0,
                        help="batch for the paper model (default 0: the config's, 64)")
    parser.add_argument("--paper-steps", type=int, default=1,
                        help="timed paper-model steps after a warm-up step")
    parser.add_argument("--demo-steps", type=int, default=4,
                        help="timed demo-model steps after a warm-up step")
    parser.add_argument("--loader-batches", type=int, default=60,
                        help="batches timed per loader measurement (capped by the epoch)")
    parser.add_argument("--loader-utts", type=int, default=4000,
                        help="utterances of the generated feats.scp")
    parser.add_argument("--quick", action="store_true", help="demo config only")
    parser.add_argument("--allocators", action="store_true",
                        help="also time the paper step under glibc and jemalloc (2 more minutes)")
    parser.add_argument("--child-step", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_step:
        config_path, batch, steps = args.child_step
        config = load_config(os.path.join(common.ROOT, config_path))
        rates = step_rate(config, int(batch) or config.data.batch_size, int(steps))
        print(*rates, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return
    # The paper config asks for 4 loader workers; torch warns that this machine has 2 cores.
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    common.banner(f"training: torch {torch.__version__}, float32 on the CPU")
    matmul = common.matmul_flops()
    common.figure(f"torch.mm float32 ({torch.get_num_threads()} threads; the reference)",
                  matmul / 1e9, "GFLOP/s", "(MKL)" if torch.backends.mkl.is_available() else "")
    common.figure("numpy matmul float32 (for comparison)", common.numpy_matmul_flops() / 1e9,
                  "GFLOP/s")
    float_dir = training_dir(args.loader_utts)
    compressed_dir = training_dir(args.loader_utts, compressed=True)
    dirs = [("float32 arks", float_dir), ("compressed arks", compressed_dir)]

    config, utts = report_model("demo", "conf/demo_dam.yaml", 0, args.demo_steps, matmul)
    report_loader(config, utts, dirs, args.loader_batches)
    if not args.quick:
        note = (f" (the config's is 64: timed at {args.paper_batch})"
                if args.paper_batch and args.paper_batch != 64 else "")
        config, utts = report_model("paper ResCNN", "conf/rescnn_dam.yaml", args.paper_batch,
                                    args.paper_steps, matmul, note, recipe_allocator())
        report_loader(config, utts, dirs, args.loader_batches)
        if args.allocators:
            print("-- paper step by memory allocator (fresh processes):")
            allocator_comparison("conf/rescnn_dam.yaml", args.paper_batch, args.paper_steps)
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

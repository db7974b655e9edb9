"""Training speed of every backbone: utterances/s of the bare model + DAM-Softmax step and of
the Trainer's step, the FLOP rate, and the data loader's rate against what the model consumes.

    python bench/training.py [--paper-batch 64] [--paper-steps 1] [--demo-steps 4] [--quick]
                             [--networks demo,paper,resnet34,...] [--big-batch 16] [--steps 2]
                             [--one-thread]

The networks (--networks picks some; --quick is the demo alone):
  demo             conf/demo_dam.yaml (ResCNN widths 8-64, 161 bins, 2-s crops)
  paper            conf/rescnn_dam.yaml (ResCNN widths 64-512, 161 bins, 3-s crops, batch 64)
  resnet34         ResNet34 at its published size (width 32, 6.63 M) and
  ecapa512         ECAPA-TDNN C = 512 (6.2 M) and
  ecapa1024        C = 1024 (14.7 M): the training settings of the small configs below (80-bin
                   fbank, 2-s crops) with the published model, at --big-batch (16) so that
                   each takes about a minute
  small            conf/small_dam_lr0.1.yaml (the small ResCNN, 53 utt/s training alone on
                   2 cores): the reference of the CPU variants
  resnet34_small   conf/resnet34_small_dam.yaml and
  ecapa_small      conf/ecapa_tdnn_small_dam.yaml: the CPU variants, at their batch of 64,
                   with their rates over the small ResCNN's measured in the same run and the
                   rate alone on 2 cores that gives
For each, float32 on the CPU, torch threads as the config says:
  - the bare step: TrainStep forward (model + head), loss, backward, SGD step on a random
    batch, without the Trainer; utterances/s of the best of --paper-steps / --demo-steps /
    --steps steps after one warm-up step, with the system time and minor page faults of a
    step: glibc hands the large activation buffers back to the kernel after every step and
    faults them in again the next (see README.md);
  - the Trainer step: training.Trainer.train for one epoch of (steps + 1) batches over a
    generated data dir of the model's bins (float32 arks, the config's loader workers), each
    step timed between optimizer steps, the first left out: what training runs, with the lr
    and margin schedule, the data loader, the loss sums and the cos(theta_y) histogram; its
    best step (comparable with the bare step) and its mean;
  - forward FLOPs per crop, counted with forward hooks on every Conv1d, Conv2d and Linear (a
    multiply-add is 2 FLOPs; attention, pooling and BatchNorm are left out); forward +
    backward is taken as 3x forward;
  - the FLOP rate training reaches, as a fraction of torch.mm on large float32 matrices and of
    the best single convolution of the model (each distinct conv shape timed alone, forward),
    both measured in the same run;
  - with --one-thread, the CPU seconds (user + system) of a bare step on one thread: on a
    loaded machine the wall clock of a 2-thread step mostly measures the scheduler (each
    parallel region waits for a descheduled thread), while one thread's CPU time hardly moves;
    the CPU variants' estimate alone on 2 cores is then taken from it.
Every network but the demo runs in a fresh process under the memory allocator steps/train.sh
gives CPU training (jemalloc keeping its pages when installed, else glibc without trimming;
--allocators adds glibc's default, which spends half of each paper step faulting memory in).
The speaker head of the bare step has 1,211 classes (VoxCeleb1 dev); the Trainer's has the
generated data's speakers (a quarter of its utterances): the head is under 1% of a step.
The paper model is timed at the config's batch of 64 (a step takes 30-50 s on 2 cores; the
bench takes about 3 minutes); --paper-batch 8 is quicker, but its utterances/s is higher
(smaller activations stay in cache and fault in less memory), so it is said in the output.
The data loader alone (data.CropDataset through data.epoch_loader, num_workers as the config
says, and 0) reads random crops from a generated feats.scp of 161-bin features (float32 arks,
as the recipe writes by default, and Kaldi-compressed ones); its utterances/s is set against
the demo and paper models'.
The whole run should take about 12 minutes on 2 idle cores (estimated from its parts, the
paper model about 5 of them; on a shared machine far longer).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import common
import numpy as np
import torch
from feats_data import training_dir
from torch import nn

from pytorch_modules.config import config_from_dict, load_config
from pytorch_modules.data.batch_plan import EpochBatches
from pytorch_modules.data.training_set import epoch_loader, read_training_set
from pytorch_modules.fileio.kaldi_compress import ArkWriter
from pytorch_modules.heads import build_head
from pytorch_modules.models import build_model
from pytorch_modules.training.trainer import Trainer, TrainStep

SPEAKERS = 1211  # VoxCeleb1 dev: the classifier size of the paper's first Table 1 rows

# name: (label, config file, model section replacing the file's or None, batch option)
NETWORKS = {
    "demo": ("demo", "conf/demo_dam.yaml", None, "demo"),
    "paper": ("paper ResCNN", "conf/rescnn_dam.yaml", None, "paper"),
    "resnet34": ("ResNet34, published size", "conf/resnet34_small_dam.yaml",
                 {"type": "resnet34"}, "big"),
    "ecapa512": ("ECAPA-TDNN C=512, published size", "conf/ecapa_tdnn_small_dam.yaml",
                 {"type": "ecapa_tdnn", "channels": 512}, "big"),
    "ecapa1024": ("ECAPA-TDNN C=1024, published size", "conf/ecapa_tdnn_small_dam.yaml",
                  {"type": "ecapa_tdnn", "channels": 1024}, "big"),
    "small": ("small ResCNN (the reference of the CPU variants)", "conf/small_dam_lr0.1.yaml",
              None, "config"),
    "resnet34_small": ("ResNet34, small CPU variant", "conf/resnet34_small_dam.yaml", None,
                       "config"),
    "ecapa_small": ("ECAPA-TDNN, small CPU variant", "conf/ecapa_tdnn_small_dam.yaml", None,
                    "config"),
}


def network_config(name):
    """The config of a NETWORKS entry (its file, with the model section replaced)."""
    _, path, model, _ = NETWORKS[name]
    config = load_config(os.path.join(common.ROOT, path))
    if model is None:
        return config
    return config_from_dict({**config.to_dict(), "model": model}, f"{path} with model {model}")


def describe(config):
    """The model section in a few words: its type and the options that set its size."""
    options = {k: v for k, v in config.model.options.items()
               if k not in ("input_norm", "embedding_bn")}
    return f"{config.model.type} " + " ".join(f"{k} {v}" for k, v in options.items())


# ---------------------------------------------------------------- FLOPs
def forward_flops(model, batch, bins, frames):
    """(FLOPs of one forward pass per crop, [(conv module, input shape)]) by forward hooks."""
    total, convs, hooks = [0], [], []

    def conv_hook(module, inputs, output):
        per_output = module.in_channels // module.groups * np.prod(module.kernel_size)
        total[0] += 2 * output.numel() * per_output
        convs.append((module, tuple(inputs[0].shape)))

    def linear_hook(module, inputs, output):
        total[0] += 2 * output.numel() * module.in_features

    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.randn(batch, bins, frames))
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
            flops = (2 * out.numel() * module.in_channels // module.groups
                     * np.prod(module.kernel_size))
            calls = max(1, int(0.05 / common.best_of(lambda: module(x), 1)[0]))  # >= 50 ms
            seconds = common.best_of(lambda: [module(x) for _ in range(calls)], repeats)[0] / calls
            if flops / seconds > best[0]:
                kernel = "x".join(map(str, module.kernel_size))
                dilation = (f" dilation {module.dilation[0]}" if max(module.dilation) > 1
                            else "")
                best = (flops / seconds, f"{module.in_channels}->{module.out_channels} "
                                         f"{kernel}/{module.stride[0]}{dilation} on "
                                         f"{'x'.join(map(str, shape[2:]))}")
    return best


# ---------------------------------------------------------------- the training step
def step_rate(config, batch, steps):
    """(utterances/s of the best of `steps` training steps after a warm-up, step seconds,
    system seconds per step, minor page faults per step, CPU seconds (user + system) per
    step)."""
    torch.manual_seed(0)
    model = build_model(config.model)
    head = build_head(config.loss.type, config.model.embedding_dim, SPEAKERS,
                      **config.loss.options)
    step_module = TrainStep(model, head).train()
    o = config.optim
    optimizer = torch.optim.SGD(step_module.parameters(), lr=o.lr, momentum=o.momentum,
                                nesterov=o.nesterov, weight_decay=o.weight_decay)
    feats = torch.randn(batch, config.model.input_bins, config.data.crop_frames)
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
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (batch / seconds, seconds, (after.ru_stime - before.ru_stime) / steps,
            (after.ru_minflt - before.ru_minflt) / steps, cpu / steps)


def trainer_data(bins, utts, crop_frames, root="/tmp/bench_trainer"):
    """A generated data dir of `utts` random utterances of 1-2 crops (float32 arks), a
    quarter as many speakers; generated once for these sizes."""
    def write(directory):
        rng = np.random.default_rng(0)
        names = sorted(f"spk{i % max(2, utts // 4):04d}-utt{i:06d}" for i in range(utts))
        frames = rng.integers(crop_frames, 2 * crop_frames + 1, size=utts)
        with ArkWriter(f"{directory}/feats.ark", f"{directory}/feats.scp") as writer:
            for name, n in zip(names, frames.tolist()):
                writer(name, rng.standard_normal((n, bins), dtype=np.float32))
        by_speaker = {}
        for name in names:
            by_speaker.setdefault(name.split("-")[0], []).append(name)
        for table, lines in (("utt2spk", [f"{u} {u.split('-')[0]}" for u in names]),
                             ("utt2num_frames", [f"{u} {n}" for u, n in zip(names, frames)]),
                             ("spk2utt", [f"{s} {' '.join(us)}"
                                          for s, us in sorted(by_speaker.items())])):
            with open(f"{directory}/{table}", "w") as f:
                f.write("".join(line + "\n" for line in lines))
    return common.generated_once(f"{root}/b{bins}_u{utts}_c{crop_frames}", write)


def trainer_rate(config, batch, steps):
    """(utterances/s of the best step, of the mean step) of Trainer.train over one epoch of
    steps + 1 batches; each step is timed from one optimizer step to the next, so the first
    (loader start, warm-up) is left out."""
    settings = config.to_dict()
    settings["data"].update(batch_size=batch)
    settings["optim"].update(epochs=1, average_last=1)
    settings["training"].update(device="cpu", checkpoint_every_steps=0,
                                log_every_steps=10**6)
    config = config_from_dict(settings, "bench config")
    data = read_training_set(trainer_data(config.model.input_bins, batch * (steps + 1),
                                          config.data.crop_frames))
    stamps = []
    with tempfile.TemporaryDirectory() as exp_dir:
        trainer = Trainer(config, data, exp_dir, log=lambda *_: None)
        optimizer_step = trainer.optimizer.step

        def timed_step(*args, **kwargs):
            result = optimizer_step(*args, **kwargs)
            stamps.append(time.perf_counter())
            return result

        trainer.optimizer.step = timed_step
        trainer.train()
    intervals = np.diff(stamps)
    return batch / intervals.min(), batch / intervals.mean()


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


def report_model(name, config, batch, steps, matmul, note="", allocator=None,
                 source="", one_thread=False):
    """The model's FLOPs, bare step and Trainer step rates; with `allocator` = (name,
    environment) both steps are timed in a fresh process under that environment (as
    steps/train.sh runs training); with `one_thread` also the CPU seconds of a bare step on
    one thread.  Returns the config and {figure: value}."""
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    threads = torch.get_num_threads()
    batch = batch or config.data.batch_size
    model = build_model(config.model)
    params = sum(p.numel() for p in model.parameters())
    flops, convs = forward_flops(model, batch, config.model.input_bins, config.data.crop_frames)
    conv_rate, conv_name = best_conv_rate(convs)
    if allocator:
        utts, seconds, system, faults, _, best, mean, _ = child_step(config, batch, steps,
                                                                     allocator[1])
        note += f", {allocator[0]}"
    else:
        utts, seconds, system, faults, _ = step_rate(config, batch, steps)
        best, mean = trainer_rate(config, batch, steps)
    achieved = utts * 3 * flops
    print(f"-- {name} ({source}{describe(config)}: {params / 1e6:.2f} M parameters, "
          f"{config.model.input_bins} bins, crops of {config.data.crop_frames} frames, batch "
          f"{batch}{note}, {threads} threads):")
    common.figure("forward FLOPs per crop", flops / 1e9, "GFLOP")
    common.figure("forward + backward (3x forward)", 3 * flops / 1e9, "GFLOP")
    common.figure("bare step (model + head, no Trainer)", seconds, "s",
                  f"(of which system time {system:.1f} s; {faults:,.0f} minor page faults)")
    common.figure("bare step utterances/s", utts, "utt/s")
    common.figure("Trainer step utterances/s (best step)", best, "utt/s",
                  f"{best / utts:.2f}x the bare step")
    common.figure("Trainer step utterances/s (mean step)", mean, "utt/s",
                  f"{mean / utts:.2f}x the bare step")
    common.figure("training FLOP rate (bare step)", achieved / 1e9, "GFLOP/s")
    common.figure("  of torch.mm float32", achieved / matmul, "fraction")
    common.figure(f"  of the best single conv ({conv_name})", achieved / conv_rate,
                  "fraction", f"(that conv: {conv_rate / 1e9:.0f} GFLOP/s forward)")
    figures = {"bare": utts, "trainer": best}
    if one_thread:
        cpu = child_step(config, batch, steps, allocator[1] if allocator else {},
                         trainer=False, threads=1)[4]
        figures["per_cpu_second"] = batch / cpu
        common.figure("one thread: CPU seconds per bare step", cpu, "s")
        common.figure("  utterances per CPU-second (hardly moved by load)", batch / cpu, "utt/s")
    print(f"   {common.load_line()}")
    return config, figures


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


def child_step(config, batch, steps, environment, trainer=True, threads=0):
    """step_rate's figures, trainer_rate's (0 when not `trainer`) and the peak RSS of a fresh
    process under `environment`, on `threads` torch threads (0: the config's)."""
    out = subprocess.run([sys.executable, __file__, "--child-step", json.dumps(config.to_dict()),
                          str(batch), str(steps), str(int(trainer)), str(threads)],
                         env={**os.environ, **environment}, check=True,
                         capture_output=True, text=True).stdout.split()
    return tuple(map(float, out[-8:]))


def allocator_comparison(config, batch, steps):
    """The paper step in fresh processes: glibc malloc as it is, glibc keeping its pages, and
    jemalloc keeping its pages (when installed); utterances/s and peak RSS of each."""
    variants = [("glibc malloc", {}), ("glibc, mmap off, no trim", GLIBC_KEEP)]
    if os.path.exists(JEMALLOC):
        variants.append(("jemalloc, pages kept", {"LD_PRELOAD": JEMALLOC,
                                                  "MALLOC_CONF": JEMALLOC_CONF}))
    for name, extra in variants:
        utts, seconds, system, faults, _, _, _, peak = child_step(config, batch, steps, extra,
                                                                 trainer=False)
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


# conf/small_dam_lr0.1.yaml trains at this rate alone on 2 cores (its comment; README)
SMALL_RESCNN_ALONE = 53.0


def against_reference(figures, reference):
    """A CPU variant's rates over the small ResCNN's, measured in the same run, and the rate
    alone on 2 cores that this ratio gives (from the one-thread CPU time when measured: the
    wall-clock ratio on a loaded machine mostly measures the scheduler)."""
    common.ratio("Trainer step over the small ResCNN's (this run)", figures["trainer"],
                 reference["trainer"])
    key = "per_cpu_second" if "per_cpu_second" in figures else "trainer"
    ratio = figures[key] / reference[key]
    common.figure("estimated alone on 2 cores", ratio * SMALL_RESCNN_ALONE, "utt/s",
                  f"({ratio:.2f} x {SMALL_RESCNN_ALONE:.0f} utt/s, the ratio by "
                  f"{'one-thread CPU time' if key == 'per_cpu_second' else 'wall clock'})")


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
    parser.add_argument("--steps", type=int, default=2,
                        help="timed steps of the other networks after a warm-up step")
    parser.add_argument("--big-batch", type=int, default=16,
                        help="batch for the published-size ResNet34 and ECAPA-TDNN")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"comma-separated, of {', '.join(NETWORKS)} (default all)")
    parser.add_argument("--quick", action="store_true", help="the demo config only")
    parser.add_argument("--allocators", action="store_true",
                        help="also time the paper step under glibc and jemalloc (2 more minutes)")
    parser.add_argument("--one-thread", action="store_true",
                        help="also the CPU seconds of a bare step on one thread (a figure the "
                        "machine's load hardly moves; the paper model takes minutes)")
    parser.add_argument("--child-step", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_step:
        settings, batch, steps, trainer, threads = args.child_step
        config = config_from_dict(json.loads(settings), "bench config")
        if int(threads) or config.training.threads:
            torch.set_num_threads(int(threads) or config.training.threads)
        rates = step_rate(config, int(batch), int(steps))
        best_mean = trainer_rate(config, int(batch), int(steps)) if int(trainer) else (0, 0)
        print(*rates, *best_mean, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return
    names = ["demo"] if args.quick else args.networks.split(",")
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown[0]} (choose from {', '.join(NETWORKS)})")
    # The paper config asks for 4 loader workers; torch warns that this machine has 2 cores.
    warnings.filterwarnings("ignore", message="This DataLoader will create")

    common.banner(f"training: torch {torch.__version__}, float32 on the CPU")
    matmul = common.matmul_flops()
    common.figure(f"torch.mm float32 ({torch.get_num_threads()} threads; the reference)",
                  matmul / 1e9, "GFLOP/s", "(MKL)" if torch.backends.mkl.is_available() else "")
    common.figure("numpy matmul float32 (for comparison)", common.numpy_matmul_flops() / 1e9,
                  "GFLOP/s")
    dirs = []
    if {"demo", "paper"} & set(names):
        float_dir = training_dir(args.loader_utts)
        compressed_dir = training_dir(args.loader_utts, compressed=True)
        dirs = [("float32 arks", float_dir), ("compressed arks", compressed_dir)]

    measured = {}
    for name in names:
        label, path, model, batch_kind = NETWORKS[name]
        config = network_config(name)
        source = f"{path}: " if model is None else f"{path} with the model replaced: "
        if name == "demo":
            config, figures = report_model(label, config, 0, args.demo_steps, matmul,
                                           source=source, one_thread=args.one_thread)
            report_loader(config, figures["bare"], dirs, args.loader_batches)
            continue
        if name == "paper":
            note = (f" (the config's is 64: timed at {args.paper_batch})"
                    if args.paper_batch and args.paper_batch != 64 else "")
            config, figures = report_model(label, config, args.paper_batch, args.paper_steps,
                                           matmul, note, recipe_allocator(), source,
                                           args.one_thread)
            report_loader(config, figures["bare"], dirs, args.loader_batches)
            if args.allocators:
                print("-- paper step by memory allocator (fresh processes):")
                allocator_comparison(config, args.paper_batch or config.data.batch_size,
                                     args.paper_steps)
            continue
        batch = args.big_batch if batch_kind == "big" else 0
        note = (f" (the config's is {config.data.batch_size})"
                if batch and batch != config.data.batch_size else "")
        _, measured[name] = report_model(label, config, batch, args.steps, matmul, note,
                                         recipe_allocator(), source, args.one_thread)
        if name.endswith("_small") and "small" in measured:
            against_reference(measured[name], measured["small"])
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

"""GPU speed (needs CUDA): training throughput and model FLOP utilisation of the paper's ResCNN,
the recipe's Trainer end to end with its data loader, the loader alone, and embedding
extraction one utterance at a time against length-bucketed batches.

    python bench/gpu.py [--batches 64,256] [--steps 20] [--compile] [--loader-utts 3000]

Training step (TrainStep + SGD, as training.Trainer runs it) of conf/rescnn_dam.yaml on 3-s
crops, for each batch of --batches and each of
  float32          cuDNN's default (TF32 convolutions allowed, as PyTorch ships);
  bf16             torch.autocast bfloat16 (training.amp: bf16);
  bf16 + CL        the same with the model in channels-last (training.channels_last: true);
and --compile adds bf16 + CL under torch.compile (training.compile: true).  (cudnn.benchmark
made no difference to any of these on an H100, so it is left at PyTorch's default, off.)  Each
figure is the median step of --steps after warm-up steps, timed with torch.cuda.synchronize
around each step.  Model FLOPs per crop are counted with forward hooks (bench/training.py),
forward + backward = 3x forward; the FLOP rate is set against the GPU's dense bf16 peak from its
datasheet (H100 SXM / H200: 989 TFLOP/s) and against a bf16 8192^3 torch.mm measured in the same
run.
The first step's loss of each precision is printed beside float32's: bf16 must agree to about
1e-2 relative.

Then the recipe's own training.Trainer (bf16, channels-last, the config's loader workers and
more) over a generated data dir of --loader-utts utterances in float32 arks (/tmp/bench_feats):
utterances/s of a whole epoch after a first one, and the loader alone at several worker
counts, against what the model consumes (issue target: the loader >= 3x).
Last, embedding extraction on the GPU: full-length utterances (4-20 s), one at a time (as
pytorch_modules.inference.embed does on the CPU) against buckets of --bucket cropped to their
shortest (bench/embedding.py), float32 and bf16.
"""
import argparse
import os
import statistics
import time
import warnings

import common
import numpy as np
import torch
from embedding import buckets, utterances
from feats_data import training_dir
from training import BINS, SPEAKERS, forward_flops, loader_rate

from pytorch_modules.config import load_config
from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.heads import build_head
from pytorch_modules.models import build_model
from pytorch_modules.training.trainer import Position, Throughput, Trainer, TrainStep

PAPER_CONFIG = "conf/rescnn_dam.yaml"
# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s.
DENSE_BF16_PEAK = {"H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 PCIe": 756.0,
                   "H100 NVL": 835.0, "H200": 989.4, "A100": 312.0, "L40S": 362.0}


def datasheet_peak(name):
    for key, peak in DENSE_BF16_PEAK.items():
        if key in name:
            return peak * 1e12
    return None


def bf16_matmul_rate(size=8192, repeats=10):
    """FLOP/s of torch.mm on random bf16 (size x size) matrices: the practical ceiling."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        torch.mm(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    torch.cuda.synchronize()
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


# ---------------------------------------------------------------- the training step
def make_step(config, batch, amp, channels_last, compiled):
    """A closure running one training step on fixed random inputs; returns the loss."""
    torch.manual_seed(0)
    model = build_model(config.model).cuda()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    head = build_head(config.loss.type, config.model.embedding_dim, SPEAKERS,
                      **config.loss.options).cuda()
    module = TrainStep(model, head).train()
    forward = torch.compile(module) if compiled else module
    o = config.optim
    optimizer = torch.optim.SGD(module.parameters(), lr=o.lr, momentum=o.momentum,
                                nesterov=o.nesterov, weight_decay=o.weight_decay)
    generator = torch.Generator().manual_seed(1)
    feats = torch.randn(batch, BINS, config.data.crop_frames, generator=generator).cuda()
    labels = torch.randint(0, SPEAKERS, (batch,), generator=generator).cuda()

    def one_step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = forward(feats, labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return out.loss

    return one_step


def time_steps(one_step, steps, warmup):
    """(median seconds of a step, loss of the first step)."""
    first = float(one_step().detach())
    for _ in range(warmup):
        one_step()
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        one_step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def report_steps(config, flops, batches, steps, compiled, peak, matmul):
    variants = [("float32", False, False, False), ("bf16", True, False, False),
                ("bf16 + CL", True, True, False)]
    if compiled:
        variants.append(("bf16 + CL + compile", True, True, True))
    for batch in batches:
        reference_loss = None
        for name, amp, channels_last, compile_it in variants:
            one_step = make_step(config, batch, amp, channels_last, compile_it)
            seconds, loss = time_steps(one_step, steps, 10 if compile_it else 3)
            reference_loss = reference_loss if reference_loss is not None else loss
            utts = batch / seconds
            rate = utts * 3 * flops
            common.figure(f"batch {batch}, {name}", utts, "utt/s",
                          f"{rate / 1e12:5.0f} TFLOP/s = {rate / peak:.1%} of peak, "
                          f"{rate / matmul:.1%} of bf16 mm; step {seconds * 1e3:.1f} ms; "
                          f"first loss {loss:.4f} (rel. diff to float32 "
                          f"{abs(loss - reference_loss) / abs(reference_loss):.1e})")
            del one_step
            torch.cuda.empty_cache()


# ---------------------------------------------------------------- the recipe's Trainer
def trainer_rate(config, data_dir, workers, compiled, exp_dir):
    """Utterances/s of the Trainer's second epoch (bf16, channels-last) with `workers`."""
    config.training.device, config.training.amp = "cuda", "bf16"
    config.training.channels_last, config.data.num_workers = True, workers
    config.training.compile = compiled
    config.training.log_every_steps = 10 ** 9
    data = read_training_set(data_dir)
    trainer = Trainer(config, data, exp_dir, log=lambda *args: None)
    clock = Throughput(2 * trainer.steps_per_epoch, 0)
    trainer.train_epoch(clock)
    trainer.position = Position(2, 0)
    torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train_epoch(clock)
    torch.cuda.synchronize()
    return trainer.steps_per_epoch * config.data.batch_size / (time.perf_counter() - start)


def report_trainer(data_dir, worker_counts, compiled):
    rates = []
    for compile_it in (False, True) if compiled else (False,):
        for workers in worker_counts:
            config = load_config(os.path.join(common.ROOT, PAPER_CONFIG))
            rates.append(trainer_rate(config, data_dir, workers, compile_it,
                                      f"/tmp/bench_gpu_exp_{workers}"))
            common.figure(f"Trainer, bf16 + CL{' + compile' if compile_it else ''}, "
                          f"{workers} workers", rates[-1], "utt/s",
                          "(a whole epoch after the first: loader, step, logging sums)")
    return max(rates)


def report_loader(data_dir, worker_counts, model_utts, batches):
    config = load_config(os.path.join(common.ROOT, PAPER_CONFIG))
    for workers in worker_counts:
        rate = loader_rate(data_dir, config, workers, batches)
        common.figure(f"loader alone, {workers} workers", rate, "utt/s",
                      f"{rate / model_utts:.1f}x what the GPU step consumes (target >= 3x)")


# ---------------------------------------------------------------- embedding extraction
@torch.inference_mode()
def embed_one_at_a_time(model, feats, amp):
    out = []
    for f in feats:
        x = torch.from_numpy(np.ascontiguousarray(f.T))[None].cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out.append(model(x).float().cpu())
    return out


@torch.inference_mode()
def embed_bucketed(model, feats, size, amp):
    out = [None] * len(feats)
    for bucket in buckets(feats, size):
        frames = min(feats[i].shape[0] for i in bucket)
        batch = torch.from_numpy(np.stack([feats[i][:frames].T for i in bucket])).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            vectors = model(batch).float().cpu()
        for i, vector in zip(bucket, vectors):
            out[i] = vector
    return out


def report_embedding(utts, bucket):
    config = load_config(os.path.join(common.ROOT, PAPER_CONFIG))
    torch.manual_seed(0)
    model = build_model(config.model).cuda().eval()
    feats = utterances(utts, bucket)
    audio = sum(f.shape[0] for f in feats) / 100
    print(f"-- embedding extraction, paper ResCNN, {len(feats)} utterances of 4-20 s "
          f"({audio / 60:.1f} min), cudnn.benchmark off (every length is a new shape):")
    for amp in (False, True):
        name = "bf16" if amp else "float32"
        embed_one_at_a_time(model, feats[:4], amp)  # warm-up
        single, reference = common.best_of(lambda: embed_one_at_a_time(model, feats, amp), 2)
        embed_bucketed(model, feats[:bucket], bucket, amp)
        batched, _ = common.best_of(lambda: embed_bucketed(model, feats, bucket, amp), 2)
        common.figure(f"{name}, one at a time", audio / single, "x real time",
                      f"(real-time factor {single / audio:.1e})")
        common.figure(f"{name}, buckets of {bucket}", audio / batched, "x real time",
                      f"(real-time factor {batched / audio:.1e}; {single / batched:.1f}x one "
                      f"at a time)")
        if amp:
            full = embed_one_at_a_time(model, feats[:8], False)
            half = embed_one_at_a_time(model, feats[:8], True)
            cos = min(float(torch.nn.functional.cosine_similarity(a, b, dim=1))
                      for a, b in zip(full, half))
            common.figure("  bf16 vs float32 embeddings: lowest cosine", cos, "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--loader-utts", type=int, default=8000)
    parser.add_argument("--workers", default="4,8")
    parser.add_argument("--embed-utts", type=int, default=200)
    parser.add_argument("--bucket", type=int, default=16)
    parser.add_argument("--skip", default="", help="comma list of: steps,trainer,embedding")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py needs a CUDA GPU; CPU figures come from training.py and "
                         "embedding.py")
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    skip = set(args.skip.split(","))
    name = torch.cuda.get_device_name()
    common.banner(f"GPU: {name}, torch {torch.__version__}, cuDNN "
                  f"{torch.backends.cudnn.version()}")
    peak = datasheet_peak(name) or bf16_matmul_rate()
    matmul = bf16_matmul_rate()
    common.figure("dense bf16 peak (datasheet)", peak / 1e12, "TFLOP/s")
    common.figure("bf16 torch.mm 8192^3, measured", matmul / 1e12, "TFLOP/s")
    config = load_config(os.path.join(common.ROOT, PAPER_CONFIG))
    flops, _ = forward_flops(build_model(config.model), 2, config.data.crop_frames)
    common.figure("forward + backward FLOPs per 3-s crop", 3 * flops / 1e9, "GFLOP")
    if "steps" not in skip:
        print("-- paper ResCNN training step (median of "
              f"{args.steps} steps; FLOP rate = utt/s x fwd+bwd FLOPs):")
        report_steps(config, flops, [int(b) for b in args.batches.split(",")],
                            args.steps, args.compile, peak, matmul)
    workers = [int(w) for w in args.workers.split(",")]
    if "trainer" not in skip:
        data_dir = training_dir(args.loader_utts)
        print(f"-- the recipe's Trainer and loader ({args.loader_utts} utterances in float32 "
              f"arks, batch {config.data.batch_size}, {os.cpu_count()} CPU cores):")
        trainer = report_trainer(data_dir, workers, args.compile)
        report_loader(data_dir, [0] + workers, trainer, 100)
    if "embedding" not in skip:
        report_embedding(args.embed_utts, args.bucket)
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

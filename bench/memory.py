"""Peak memory (resident set) of training and of scoring, each at two corpus sizes.

    python bench/memory.py [--train-utts 2000 20000] [--steps 6]
                           [--score-utts 14500 145000] [--quick]

Each measurement runs in its own process and reports its peak RSS (VmHWM of /proc/self/status,
and, for training, the largest of its data-loader worker processes, from getrusage's
RUSAGE_CHILDREN), so one measurement's memory never counts in another's.
  training: read_training_set + epoch_loader + TrainStep forward/backward/SGD for --steps steps
            of conf/demo_dam.yaml over a generated feats.scp (Kaldi-compressed arks, 3-5 s
            utterances) of each size.  Features are read on demand, so the peak should not
            grow with the corpus: only the scp index does (a few hundred bytes per utterance).
  scoring:  the project's scoring code (read_trials, load_table, cosine_score, evaluate) over
            generated 1024-d embeddings and 4 trials per embedding, at each size; the
            embedding table is held in memory, so this grows with the number of embeddings
            (4 KiB each at 1024 dims, times the copies made).
"""
import argparse
import json
import os
import resource
import subprocess
import sys

import common

# Vox1-E's ratio: 581,480 trials over 145,000 utterances (the large size reuses the inputs
# of bench/scoring.py).
TRIALS_PER_UTT = 581480 / 145000


def peak_rss_bytes():
    """This process's peak resident set (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def children_peak_bytes():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


# ---------------------------------------------------------------- children
def child_train(data_dir, steps):
    import torch

    from pytorch_modules.config import load_config
    from pytorch_modules.data.batch_plan import EpochBatches
    from pytorch_modules.data.training_set import epoch_loader, read_training_set
    from pytorch_modules.heads import build_head
    from pytorch_modules.models import build_model
    from pytorch_modules.training.trainer import TrainStep
    config = load_config(os.path.join(common.ROOT, "conf/demo_dam.yaml"))
    torch.set_num_threads(config.training.threads or torch.get_num_threads())
    before = peak_rss_bytes()
    data = read_training_set(data_dir)
    model = build_model(config.model)
    head = build_head(config.loss.type, config.model.embedding_dim, len(data.speakers),
                      **config.loss.options)
    step_module = TrainStep(model, head).train()
    optimizer = torch.optim.SGD(step_module.parameters(), lr=config.optim.lr, momentum=0.9)
    plan = EpochBatches(data.num_frames, config.data.batch_size, config.data.crop_frames, 777)
    loader = epoch_loader(data, plan, 1, 0, config.data.num_workers)
    for step, (feats, labels) in enumerate(loader):
        out = step_module(feats, labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if step + 1 == steps:
            break
    del loader  # stops the workers, so that their peak is counted below
    return {"peak": peak_rss_bytes(), "children": children_peak_bytes(), "imports": before,
            "utts": len(data)}


def child_score(scp, trials):
    import scoring  # bench/scoring.py, a sibling of this script
    before = peak_rss_bytes()
    scoring.run_project(scp, trials, "/tmp/bench_scoring/memory.scores")
    return {"peak": peak_rss_bytes(), "children": 0, "imports": before}


def measure(*child_args):
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, child_args)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def mib(value):
    return value / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-utts", type=int, nargs=2, default=[2000, 20000])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--score-utts", type=int, nargs=2, default=[14500, 145000])
    parser.add_argument("--quick", action="store_true", help="training only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = child_train(rest[0], int(rest[1])) if kind == "train" else child_score(*rest)
        print(json.dumps(result))
        return

    from feats_data import training_dir
    from scoring_data import scoring_inputs
    common.banner("peak resident memory, one process per measurement")
    print(f"-- training, conf/demo_dam.yaml, {args.steps} steps, features read on demand:")
    peaks = []
    for utts in args.train_utts:
        data_dir = training_dir(utts, speakers=max(10, utts // 100), compressed=True,
                                max_frames=500)
        result = measure("train", data_dir, args.steps)
        peaks.append(result["peak"])
        common.figure(f"{utts:,} utterances: peak RSS", mib(result["peak"]), "MiB",
                      f"(after imports {mib(result['imports']):.0f} MiB; largest loader "
                      f"worker {mib(result['children']):.0f} MiB)")
    common.ratio(f"growth from {args.train_utts[0]:,} to {args.train_utts[1]:,} utterances",
                 peaks[1], peaks[0])
    print(f"   {common.load_line()}")
    if args.quick:
        return

    print("-- scoring, 1024-d embeddings, Vox1-E's 4.01 trials per embedding:")
    peaks = []
    for utts in args.score_utts:
        scp, trials = scoring_inputs(utts, 1024, round(utts * TRIALS_PER_UTT))
        result = measure("score", scp, trials)
        peaks.append(result["peak"])
        table = utts * 1024 * 4
        common.figure(f"{utts:,} embeddings: peak RSS", mib(result["peak"]), "MiB",
                      f"({(result['peak'] - result['imports']) / table:.1f}x the "
                      f"{mib(table):.0f} MiB float32 table above imports)")
    common.ratio(f"growth from {args.score_utts[0]:,} to {args.score_utts[1]:,} embeddings",
                 peaks[1], peaks[0])
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

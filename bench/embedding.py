"""Embedding extraction speed on full-length utterances: real-time factor (processing seconds
per audio second) of the paper's ResCNN and the demo model, one utterance at a time (what
pytorch_modules.inference.embed does for each utterance of an extraction job) against
length-bucketed batches.

    python bench/embedding.py [--utts 24] [--threads 1] [--bucket 8] [--quick]

Utterances are generated 161-bin features of VoxCeleb-test-like lengths (4-20 s, 100 frames/s);
models have random weights in eval mode (the cost does not depend on the values).  So that a
few dozen utterances bucket as a whole test set would, their lengths are drawn as whole
buckets: runs of --bucket consecutive lengths of a sorted 4,874-utterance population (the size
of the Vox1-O test set).

Bucketed batches: utterances sorted by length, cut into buckets of --bucket, and every
utterance of a bucket cropped to the bucket's shortest (no padding: zero frames would enter
the average pool and change the embedding; cropping drops the tail frames of the longer
ones, well under 1% with a test set's sorted lengths).  The output says how many frames were
dropped.  Threads default to
1: extraction jobs run one per core (steps/extract_embeddings.sh --nj).
"""
import argparse
import os

import common
import numpy as np
import torch

from pytorch_modules.config import load_config
from pytorch_modules.inference import embed
from pytorch_modules.models import build_model

BINS = 161
FRAMES_PER_SECOND = 100


def utterances(count, bucket, seed=0, population=4874):
    """Features (frames, 161) of about `count` utterances, 4-20 s long, in whole buckets of
    neighbouring lengths of a sorted test-set-size population."""
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(4 * FRAMES_PER_SECOND, 20 * FRAMES_PER_SECOND + 1,
                                   size=population))
    starts = rng.choice(population // bucket, size=max(1, count // bucket), replace=False)
    chosen = np.concatenate([lengths[s * bucket:(s + 1) * bucket] for s in starts])
    rng.shuffle(chosen)
    return [rng.standard_normal((int(n), BINS), dtype=np.float32) for n in chosen]


def one_at_a_time(model, feats):
    return [embed(model, f) for f in feats]


def buckets(feats, size):
    """Index lists of utterances sorted by length, `size` per bucket."""
    order = np.argsort([f.shape[0] for f in feats], kind="stable")
    return [order[i:i + size] for i in range(0, len(order), size)]


@torch.inference_mode()
def bucketed(model, feats, size):
    """Embeddings (in input order) computed per bucket, each cropped to its shortest member."""
    out = [None] * len(feats)
    for bucket in buckets(feats, size):
        frames = min(feats[i].shape[0] for i in bucket)
        batch = torch.from_numpy(np.stack([feats[i][:frames].T for i in bucket]))
        for i, vector in zip(bucket, model(batch).numpy()):
            out[i] = vector
    return out


def dropped_fraction(feats, size):
    total = sum(f.shape[0] for f in feats)
    kept = sum(min(feats[i].shape[0] for i in b) * len(b) for b in buckets(feats, size))
    return 1 - kept / total


def report(name, config_path, feats, bucket_size, repeats):
    config = load_config(os.path.join(common.ROOT, config_path))
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    audio = sum(f.shape[0] for f in feats) / FRAMES_PER_SECOND
    embed(model, feats[0][:400])  # warm-up: oneDNN kernel choices
    single_s, _ = common.best_of(lambda: one_at_a_time(model, feats), repeats)
    batched_s, _ = common.best_of(lambda: bucketed(model, feats, bucket_size), repeats)
    print(f"-- {name} ({config_path}: widths {config.model.options['widths']}), "
          f"{len(feats)} utterances, {audio / 60:.1f} min of audio, "
          f"{torch.get_num_threads()} thread(s):")
    common.figure("one at a time: real-time factor", single_s / audio, "",
                  f"({audio / single_s:,.0f}x real time, "
                  f"{single_s / audio * 10:.2f} s per 10-s utterance)")
    dropped = dropped_fraction(feats, bucket_size)
    common.figure(f"buckets of {bucket_size}, cropped: real-time factor", batched_s / audio, "",
                  f"({audio / batched_s:,.0f}x real time; {dropped:.2%} of frames dropped "
                  f"by cropping)")
    common.ratio("bucketed vs one at a time", batched_s, single_s, None, False)
    print(f"   {common.load_line()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bucket", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="demo model only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common.banner("embedding extraction on full-length utterances")
    feats = utterances(args.utts, args.bucket)
    report("demo model", "conf/demo_dam.yaml", feats, args.bucket, args.repeats)
    if not args.quick:
        report("paper ResCNN", "conf/rescnn_dam.yaml", feats, args.bucket, args.repeats)


if __name__ == "__main__":
    main()

"""Verifies whether two recordings hold the same speaker, with a trained model, on the CPU.

    python -m pytorch_modules.bin.verify --model exp/demo_dam/final.pt enroll.wav test.wav

prints the cosine score of the two recordings' embeddings and, with a threshold, the decision:

    score 0.734512
    threshold 0.412300 (eer on vox1_o, exp/demo_dam/final.threshold)
    decision accept

The threshold is read from the model's sidecar (exp/demo_dam/final.threshold, written by
pytorch_modules.bin.calibrate) unless --threshold gives one.  Audio of any length, sample rate
and channel count is taken: several channels are mixed down and other rates resampled to the
features' rate (notes on stderr).  The features are the training features (--feat-config,
default: spectrogram.conf beside the model, else the one its training config names).
"""
import argparse
import sys

import torch

from pytorch_modules.errors import run_entry_point
from pytorch_modules.deploy.verification import cosine, read_threshold, threshold_path
from pytorch_modules.inference import MIN_FRAMES, Embedder

PROG = "verify"


def decision_threshold(args):
    """(threshold or None, where it came from)."""
    if args.threshold is not None:
        return args.threshold, "--threshold"
    sidecar = threshold_path(args.model)
    if not sidecar.is_file():
        return None, None
    entries = read_threshold(sidecar)
    about = " on ".join(filter(None, (entries.get("operating_point"), entries.get("set"))))
    return entries["threshold"], f"{about}, {sidecar}" if about else str(sidecar)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exp/<model>/final.pt")
    parser.add_argument("--threshold", type=float,
                        help="accept when score >= this (default: the model's .threshold sidecar)")
    parser.add_argument("--feat-config", help="feature options (default: spectrogram.conf beside "
                        "the model, else the one its training config names)")
    parser.add_argument("--min-frames", type=int, default=MIN_FRAMES,
                        help=f"recordings shorter than this many frames are repeated up to it "
                             f"(default {MIN_FRAMES})")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    parser.add_argument("enroll_audio")
    parser.add_argument("test_audio")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    embedder = Embedder(args.model, args.feat_config, args.min_frames)
    threshold, source = decision_threshold(args)
    (a, notes_a), (b, notes_b) = (embedder.embed_file(p) for p in (args.enroll_audio, args.test_audio))
    for note in notes_a + notes_b:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    score = cosine(a, b)
    print(f"score {score:.6f}")
    if threshold is None:
        print(f"{PROG}: no decision: {threshold_path(args.model)} does not exist; write it with "
              f"pytorch_modules.bin.calibrate or pass --threshold.", file=sys.stderr)
        return 0
    print(f"threshold {threshold:.6f} ({source})")
    print(f"decision {'accept' if score >= threshold else 'reject'}")
    return 0


if __name__ == "__main__":
    run_entry_point(main, PROG)

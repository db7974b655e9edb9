"""Verifies whether two recordings hold the same speaker, with a trained model, on the CPU.

    python -m pytorch_modules.bin.verify --model exp/demo_dam/final.pt enroll.wav test.wav

prints the cosine score of the two recordings' embeddings and, with a threshold, the decision:

    score 0.734512
    threshold 0.412300 (eer on vox1_o, exp/demo_dam/final.threshold)
    decision accept

The threshold is read from the model's sidecar (exp/demo_dam/final.threshold, written by
pytorch_modules.bin.calibrate) unless --threshold gives one.

When the model has a score calibration beside it (exp/demo_dam/final.calibration, written by
pytorch_modules.bin.calibrate_scores --calibration-out; pytorch_modules/scoring/calibration.py)
and neither --threshold nor --no-calibration is given, the decision is on the calibrated
log-likelihood ratio, at the Bayes threshold -logit(p_target) for --p-target (default 0.01):

    score 0.734512
    llr 6.102345
    threshold 4.595120 (Bayes decision at p_target 0.01, exp/demo_dam/final.calibration)
    decision accept

with an `asnorm 2.345678` line before the llr when the calibration takes AS-norm scores.  The
quality measures are computed as the recipe computes them: the frames of each recording's
features (utt2num_frames counts the same frames), and AS-norm's cohort means against the
cohort the calibration names (a path relative to the recipe folder, so run verify there); a
measure that cannot be computed is said in a sentence.  Audio of any length, sample rate
and channel count is taken: several channels are mixed down and other rates resampled to the
features' rate (notes on stderr).  The features are the training features (--feat-config,
default: spectrogram.conf beside the model, else the one its training config names).
"""
import argparse
import sys

import torch

from pytorch_modules.deploy.verification import (
    calibrated_llr,
    calibration_path,
    cosine,
    read_threshold,
    threshold_path,
)
from pytorch_modules.errors import run_entry_point
from pytorch_modules.inference import MIN_FRAMES, Embedder, embed, padding_note, read_audio_file
from pytorch_modules.scoring import calibration
from pytorch_modules.scoring.metrics import bayes_threshold

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


def embed_with_frames(embedder, path):
    """(embedding, frames of its features, notes) of an audio file: Embedder.embed_file, with
    the frame count the duration measure needs (before any padding, as utt2num_frames)."""
    samples, notes = read_audio_file(path, embedder.options, embedder.feat_config)
    feats = embedder.spectrogram(samples)
    if feats.shape[0] < embedder.min_frames:
        notes.append(f"{path}: {padding_note(feats.shape[0], embedder.min_frames)}")
    return embed(embedder.model, feats, min_frames=embedder.min_frames), feats.shape[0], notes


def load_calibration(args):
    """The model's calibration, or None (no sidecar, --no-calibration, --threshold)."""
    path = calibration_path(args.model)
    if args.no_calibration or args.threshold is not None or not path.is_file():
        return None, path
    return calibration.read(path), path


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
    parser.add_argument("--p-target", type=float, default=0.01,
                        help="with a calibration: the target prior of the Bayes decision "
                        "(default 0.01; the threshold is -logit(p_target))")
    parser.add_argument("--no-calibration", action="store_true",
                        help="decide on the cosine score and the threshold sidecar even when "
                        "the model has a calibration")
    parser.add_argument("enroll_audio")
    parser.add_argument("test_audio")
    args = parser.parse_args()
    if not 0 < args.p_target < 1:
        parser.error("--p-target must lie strictly between 0 and 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    embedder = Embedder(args.model, args.feat_config, args.min_frames)
    cal, cal_path = load_calibration(args)
    if cal is not None:
        return verify_calibrated(args, embedder, cal, cal_path)
    threshold, source = decision_threshold(args)
    (a, notes_a), (b, notes_b) = (embedder.embed_file(p)
                                  for p in (args.enroll_audio, args.test_audio))
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


def verify_calibrated(args, embedder, cal, cal_path):
    """The decision on the calibrated LLR at the Bayes threshold of --p-target."""
    (a, frames_a, notes_a), (b, frames_b, notes_b) = (
        embed_with_frames(embedder, p) for p in (args.enroll_audio, args.test_audio))
    for note in notes_a + notes_b:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    print(f"score {cosine(a, b):.6f}")
    llr, score = calibrated_llr(cal, a, b, frames_a, frames_b, str(cal_path))
    if cal.backend == "asnorm":
        print(f"asnorm {score:.6f}")
    threshold = bayes_threshold(args.p_target)
    print(f"llr {llr:.6f}")
    print(f"threshold {threshold:.6f} (Bayes decision at p_target {args.p_target:g}, {cal_path})")
    print(f"decision {'accept' if llr >= threshold else 'reject'}")
    return 0


if __name__ == "__main__":
    run_entry_point(main, PROG)

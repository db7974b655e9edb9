"""Embeds every utterance of a feats.scp with a trained model (one parallel job).

    python -m pytorch_modules.bin.extract_embeddings [--device cuda] [--layer fc] \
        [--min-frames 32] EXP_DIR/final.pt feats.scp OUT_PREFIX

writes OUT_PREFIX.ark and OUT_PREFIX.scp (Kaldi float vectors); the .scp appears, by rename,
only when every utterance is done.  Utterances shorter than --min-frames frames are repeated up
to it before embedding; they are listed, with their lengths, in OUT_PREFIX.padded (written
before the .scp, so that a kept job's list is there too) and counted in the log.  Features that
cannot be read (a truncated or damaged ark) or that hold NaN/inf fail the job with the utterance
and the ark named; a full disk fails it with a sentence saying so, and the partial ark is removed.
"""
import argparse
import os
import time

import kaldiio
import numpy as np
import torch

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio import atomic
from pytorch_modules.fileio.kaldi_data import read_scp_lines
from pytorch_modules.inference import (
    LAYERS,
    MIN_FRAMES,
    check_min_frames,
    embed,
    load_embedding_model,
)

PROG = "extract_embeddings"


def redo_features(rxfile: str) -> str:
    """What to do about a bad feature ark: the feature stage keeps a job whose .scp is newer
    than its input, so that .scp must go first."""
    ark = rxfile.rsplit(":", 1)[0]
    if ark.endswith(".ark"):
        return f"delete {ark[:-4]}.scp and rerun the feature stage, which then redoes that job"
    return "rerun feature extraction for this data dir"


def load_features(utt: str, rxfile: str) -> np.ndarray:
    try:
        feats = kaldiio.load_mat(rxfile)
    except Exception as e:  # kaldiio raises several types for a damaged or truncated ark
        raise RecipeError(f"cannot read the features of utterance {utt} from {rxfile} ({e}); "
                          f"the ark is damaged or truncated: {redo_features(rxfile)}") from None
    if not np.isfinite(feats).all():
        raise RecipeError(f"the features of utterance {utt} in {rxfile} hold NaN or infinite "
                          f"values: {redo_features(rxfile)}")
    return feats


def embed_all(model, entries, ark: str, scp: str, layer: str = "bn",
              min_frames: int = MIN_FRAMES) -> tuple[int, list[str]]:
    """Writes the ark and a temporary scp; returns the number of frames embedded and the
    `utt frames` lines of the utterances repeated up to min_frames.  On a write error the
    partial files are removed (they only take space)."""
    frames, padded = 0, []
    with atomic.job_outputs(ark, f"{scp}.tmp", "embedding folder"), \
            kaldiio.WriteHelper(f"ark,scp:{ark},{scp}.tmp") as writer:
        for utt, rxfile in entries:
            feats = load_features(utt, rxfile)
            writer(utt, embed(model, feats, layer, min_frames))
            frames += feats.shape[0]
            if feats.shape[0] < min_frames:
                padded.append(f"{utt} {feats.shape[0]}")
    return frames, padded


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for this job")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="cuda: the first GPU this job sees (the launcher's --gpu 1 "
                             "chooses which)")
    parser.add_argument("--layer", default="bn", choices=LAYERS,
                        help="bn: the output of the embedding BatchNorm (default); fc: the FC "
                             "output in front of it")
    parser.add_argument("--min-frames", type=int, default=MIN_FRAMES,
                        help=f"utterances shorter than this are repeated up to it "
                             f"(default {MIN_FRAMES}, the least the networks take)")
    parser.add_argument("model")
    parser.add_argument("feats_scp")
    parser.add_argument("out_prefix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    check_min_frames(args.min_frames)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise RecipeError("--device cuda, but this job sees no CUDA GPU (torch "
                          f"{torch.__version__}); give the job a GPU (--use-gpu true runs it "
                          f"through the launcher's --gpu 1) or extract on the CPU")
    model = load_embedding_model(args.model, args.device)
    entries = read_scp_lines(args.feats_scp)
    ark, scp = f"{args.out_prefix}.ark", f"{args.out_prefix}.scp"
    start = time.time()
    frames, padded = embed_all(model, entries, ark, scp, args.layer, args.min_frames)
    with atomic.job_outputs(ark, f"{scp}.tmp", "embedding folder"):
        atomic.write_lines(f"{args.out_prefix}.padded", padded,
                           hint="free space and rerun the stage: finished jobs are kept")
        os.replace(f"{scp}.tmp", scp)  # last: the .scp marks the job as done
    elapsed = time.time() - start
    print(f"{PROG}: {len(entries)} utterances, {frames / 100 / 3600:.2f} h in {elapsed:.1f} s "
          f"(real-time factor {elapsed / max(frames / 100, 1e-9):.4f} at 100 frames/s)")
    if padded:
        print(f"{PROG}: {len(padded)} of {len(entries)} utterances are shorter than "
              f"{args.min_frames} frames and were repeated up to it (listed in "
              f"{args.out_prefix}.padded)")


if __name__ == "__main__":
    run_entry_point(main, PROG)

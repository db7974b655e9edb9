"""Embeds every utterance of a feats.scp with a trained model (one parallel job).

    python -m pytorch_modules.bin.extract_embeddings [--device cuda] [--layer fc] \
        EXP_DIR/final.pt feats.scp OUT_PREFIX

writes OUT_PREFIX.ark and OUT_PREFIX.scp (Kaldi float vectors); the .scp appears, by rename,
only when every utterance is done.  Features that cannot be read (a truncated or damaged ark)
or that hold NaN/inf fail the job with the utterance and the ark named; a full disk fails it
with a sentence saying so, and the partial ark is removed.
"""
import argparse
import os
import time

import kaldiio
import numpy as np
import torch

from pytorch_modules.fileio import atomic
from pytorch_modules.models.embedding import LAYERS, embed, load_embedding_model
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_scp_lines

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


def embed_all(model, entries, ark: str, scp: str, layer: str = "bn") -> int:
    """Writes the ark and a temporary scp; returns the number of frames embedded.  On a write
    error the partial files are removed (they only take space)."""
    frames = 0
    with atomic.job_outputs(ark, f"{scp}.tmp", "embedding folder"), \
            kaldiio.WriteHelper(f"ark,scp:{ark},{scp}.tmp") as writer:
        for utt, rxfile in entries:
            feats = load_features(utt, rxfile)
            writer(utt, embed(model, feats, layer))
            frames += feats.shape[0]
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for this job")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="cuda: the first GPU this job sees (the launcher's --gpu 1 "
                             "chooses which)")
    parser.add_argument("--layer", default="bn", choices=LAYERS,
                        help="bn: the output of the embedding BatchNorm (default); fc: the FC "
                             "output in front of it")
    parser.add_argument("model")
    parser.add_argument("feats_scp")
    parser.add_argument("out_prefix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise RecipeError("--device cuda, but this job sees no CUDA GPU (torch "
                          f"{torch.__version__}); give the job a GPU (--use-gpu true runs it "
                          f"through the launcher's --gpu 1) or extract on the CPU")
    model = load_embedding_model(args.model, args.device)
    entries = read_scp_lines(args.feats_scp)
    ark, scp = f"{args.out_prefix}.ark", f"{args.out_prefix}.scp"
    start = time.time()
    frames = embed_all(model, entries, ark, scp, args.layer)
    os.replace(f"{scp}.tmp", scp)  # last: the .scp marks the job as done
    elapsed = time.time() - start
    print(f"{PROG}: {len(entries)} utterances, {frames / 100 / 3600:.2f} h in {elapsed:.1f} s "
          f"(real-time factor {elapsed / max(frames / 100, 1e-9):.4f} at 100 frames/s)")


if __name__ == "__main__":
    run_entry_point(main, PROG)

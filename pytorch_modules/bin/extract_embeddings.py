"""Embeds every utterance of a feats.scp with a trained model (one parallel job).

    python -m pytorch_modules.bin.extract_embeddings EXP_DIR/final.pt feats.scp OUT_PREFIX

writes OUT_PREFIX.ark and OUT_PREFIX.scp (Kaldi float vectors); the .scp appears, by rename,
only when every utterance is done.
"""
import argparse
import os
import time

import kaldiio
import torch

from pytorch_modules.audio import read_scp_lines
from pytorch_modules.embedding import embed, load_embedding_model
from pytorch_modules.errors import RecipeError, run_entry_point

PROG = "extract_embeddings"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for this job")
    parser.add_argument("model")
    parser.add_argument("feats_scp")
    parser.add_argument("out_prefix")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_embedding_model(args.model)
    entries = read_scp_lines(args.feats_scp)
    ark, scp = f"{args.out_prefix}.ark", f"{args.out_prefix}.scp"
    start, frames = time.time(), 0
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}.tmp") as writer:
        for utt, rxfile in entries:
            try:
                feats = kaldiio.load_mat(rxfile)
            except Exception as e:
                raise RecipeError(f"cannot read the features of utterance {utt} from {rxfile} "
                                  f"({e}); rerun feature extraction for this data dir") from None
            writer(utt, embed(model, feats))
            frames += feats.shape[0]
    os.replace(f"{scp}.tmp", scp)
    elapsed = time.time() - start
    print(f"{PROG}: {len(entries)} utterances, {frames / 100 / 3600:.2f} h in {elapsed:.1f} s "
          f"(real-time factor {elapsed / max(frames / 100, 1e-9):.4f} at 100 frames/s)")


if __name__ == "__main__":
    run_entry_point(main, PROG)

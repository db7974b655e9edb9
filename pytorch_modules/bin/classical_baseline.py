"""Trains a classical baseline (pytorch_modules/models/classical.py) on the MFCCs of a training data dir
and writes an embedding per utterance of each evaluation data dir, ready for cosine scoring.

    python -m pytorch_modules.bin.classical_baseline --system gmm_ubm \
        [--num-gauss 128] [--seed 0] data/voxceleb1_dev_mfcc exp/classical_voxceleb1/gmm_ubm \
        data/voxceleb1_eval_mfcc [more evaluation data dirs]

The data dirs are those of steps/make_mfcc.sh (feats.scp of MFCC frames, utt2spk).  Writes
OUT_DIR/embeddings_<set>/xvector.{ark,scp} for each evaluation set (<set>: its folder name
without _mfcc), as steps/extract_embeddings.sh writes them, so steps/score_cosine.sh scores
them; each xvector.scp appears by rename when complete.
"""
import argparse
import os
import time

import kaldiio
import numpy as np

from pytorch_modules.models import classical
from pytorch_modules.fileio.embedding_io import write_vectors
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_scp_lines

PROG = "classical_baseline"


def read_frames(data_dir):
    """(utterance ids, [frames (n, dims)], {utt: speaker}) of a data dir's feats.scp."""
    for name in ("feats.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(data_dir, name)):
            raise RecipeError(f"{data_dir}/{name} does not exist; run steps/make_mfcc.sh on "
                              f"{data_dir} first")
    utt2spk = dict(read_scp_lines(os.path.join(data_dir, "utt2spk")))
    ids, feats = [], []
    for utt, rxfile in read_scp_lines(os.path.join(data_dir, "feats.scp")):
        try:
            feats.append(np.asarray(kaldiio.load_mat(rxfile), dtype=np.float64))
        except Exception as e:  # kaldiio raises several types for a damaged ark
            raise RecipeError(f"cannot read the MFCCs of {utt} from {rxfile} ({e}); delete "
                              f"{data_dir}/feats.scp and rerun steps/make_mfcc.sh") from None
        ids.append(utt)
    missing = next((u for u in ids if u not in utt2spk), None)
    if missing:
        raise RecipeError(f"{data_dir}/feats.scp names {missing}, which is not in "
                          f"{data_dir}/utt2spk; run utils/fix_data_dir.sh {data_dir}")
    return ids, feats, utt2spk


def set_name(data_dir):
    name = os.path.basename(os.path.normpath(data_dir))
    return name[:-len("_mfcc")] if name.endswith("_mfcc") else name


def write_embeddings(ids, emb, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    write_vectors(os.path.join(out_dir, "xvector.ark"), os.path.join(out_dir, "xvector.scp"),
                  ids, emb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = classical.Options()
    parser.add_argument("--system", required=True, choices=classical.SYSTEMS)
    parser.add_argument("--num-gauss", type=int, default=defaults.num_gauss,
                        help=f"UBM components (default {defaults.num_gauss})")
    parser.add_argument("--ubm-frames", type=int, default=defaults.ubm_frames,
                        help=f"training frames the UBM is fitted on (default "
                        f"{defaults.ubm_frames})")
    parser.add_argument("--relevance", type=float, default=defaults.relevance,
                        help=f"MAP relevance factor (default {defaults.relevance:g})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("train_data")
    parser.add_argument("out_dir")
    parser.add_argument("eval_data", nargs="+")
    args = parser.parse_args()
    if args.num_gauss < 1 or args.ubm_frames < 1 or args.relevance <= 0:
        parser.error("--num-gauss and --ubm-frames must be positive, --relevance above 0")
    options = classical.Options(num_gauss=args.num_gauss, ubm_frames=args.ubm_frames,
                                relevance=args.relevance, seed=args.seed)

    start = time.time()
    train_ids, train_feats, utt2spk = read_frames(args.train_data)
    evals = {set_name(d): read_frames(d)[:2] for d in args.eval_data}
    print(f"{PROG}: {args.system} on {len(train_ids)} training utterances of "
          f"{len(set(utt2spk[u] for u in train_ids))} speakers")
    embeddings = classical.train_and_embed(
        args.system, train_feats, [utt2spk[u] for u in train_ids],
        {name: feats for name, (_, feats) in evals.items()}, options,
        log=lambda m: print(f"{PROG}: {m}"))
    for name, (ids, _) in evals.items():
        write_embeddings(ids, embeddings[name], os.path.join(args.out_dir, f"embeddings_{name}"))
        dim = embeddings[name].shape[1]
    print(f"{PROG}: wrote {dim}-d embeddings of {', '.join(evals)} under {args.out_dir} in "
          f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    run_entry_point(main, PROG)

"""Trains a classical baseline (pytorch_modules/models/classical.py) on the MFCCs of a training
data dir and writes a vector per utterance of the training set and of each evaluation data dir.

    python -m pytorch_modules.bin.classical_baseline --system ivector \
        [--config conf/classical.yaml] data/voxceleb1_dev_mfcc exp/classical_voxceleb1_dev/ivector \
        data/voxceleb1_eval_mfcc [more evaluation data dirs]
    python -m pytorch_modules.bin.classical_baseline --system ivector --print-settings

The data dirs are those of steps/make_mfcc.sh (feats.scp of MFCC frames, utt2spk); the
system's settings are its section of --config.  Writes OUT_DIR/embeddings_<set>/xvector.{ark,scp}
for the training set and each evaluation set (<set>: its folder name without _mfcc), as
steps/extract_embeddings.sh writes them, each xvector.scp by rename when complete, and
OUT_DIR/backend: `cosine` (steps/score_cosine.sh scores the evaluation embeddings) or `plda`
(steps/score_plda.sh scores them, trained on embeddings_<training set> with the training
data dir's utt2spk).  --print-settings prints the system's settings as one line and exits.
"""
import argparse
import os
import time
from collections.abc import Sequence

import kaldiio
import numpy as np

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.embedding_io import write_vectors
from pytorch_modules.fileio.kaldi_data import read_scp_lines
from pytorch_modules.models import classical

PROG = "classical_baseline"


class FeatureList(Sequence):
    """The MFCC frame matrices (float64) of a feats.scp, each read from its ark when indexed,
    so that no system holds a whole corpus's frames in memory."""

    def __init__(self, data_dir, entries):
        self.data_dir, self.entries = data_dir, entries

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        utt, rxfile = self.entries[index]
        try:
            return np.asarray(kaldiio.load_mat(rxfile), dtype=np.float64)
        except Exception as e:  # kaldiio raises several types for a damaged ark
            raise RecipeError(f"cannot read the MFCCs of {utt} from {rxfile} ({e}); delete "
                              f"{self.data_dir}/feats.scp and rerun steps/make_mfcc.sh") from None


def read_frames(data_dir):
    """(utterance ids, FeatureList of their MFCCs, {utt: speaker}) of a data dir."""
    for name in ("feats.scp", "utt2spk"):
        if not os.path.isfile(os.path.join(data_dir, name)):
            raise RecipeError(f"{data_dir}/{name} does not exist; run steps/make_mfcc.sh on "
                              f"{data_dir} first")
    utt2spk = dict(read_scp_lines(os.path.join(data_dir, "utt2spk")))
    entries = read_scp_lines(os.path.join(data_dir, "feats.scp"))
    missing = next((u for u, _ in entries if u not in utt2spk), None)
    if missing:
        raise RecipeError(f"{data_dir}/feats.scp names {missing}, which is not in "
                          f"{data_dir}/utt2spk; run utils/fix_data_dir.sh {data_dir}")
    return [u for u, _ in entries], FeatureList(data_dir, entries), utt2spk


def set_name(data_dir):
    name = os.path.basename(os.path.normpath(data_dir))
    return name[:-len("_mfcc")] if name.endswith("_mfcc") else name


def write_embeddings(ids, emb, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    write_vectors(os.path.join(out_dir, "xvector.ark"), os.path.join(out_dir, "xvector.scp"),
                  ids, emb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True, choices=classical.SYSTEMS)
    parser.add_argument("--config", default=classical.DEFAULT_SETTINGS,
                        help="the baselines' settings (default: conf/classical.yaml)")
    parser.add_argument("--print-settings", action="store_true",
                        help="print the system's settings as one line and exit")
    parser.add_argument("train_data", nargs="?")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("eval_data", nargs="*")
    args = parser.parse_args()
    settings = classical.load_settings(args.config)[args.system]
    if args.print_settings:
        print(classical.describe(settings))
        return
    if not args.eval_data:
        parser.error("give the training data dir, the output dir and at least one evaluation "
                     "data dir")

    start = time.time()
    train_ids, train_feats, utt2spk = read_frames(args.train_data)
    evals = {set_name(d): read_frames(d)[:2] for d in args.eval_data}
    train_name = set_name(args.train_data)
    if train_name in evals:
        raise RecipeError(f"{args.train_data} is also given as an evaluation set; its vectors "
                          f"are written as embeddings_{train_name} anyway")
    print(f"{PROG}: {args.system} ({classical.describe(settings)}) on {len(train_ids)} "
          f"training utterances of {len(set(utt2spk[u] for u in train_ids))} speakers")
    embeddings = classical.train_and_embed(
        args.system, train_feats, [utt2spk[u] for u in train_ids],
        {name: feats for name, (_, feats) in evals.items()}, settings,
        log=lambda m: print(f"{PROG}: {m}", flush=True))
    for name, ids in [(train_name, train_ids)] + [(n, ids) for n, (ids, _) in evals.items()]:
        key = None if name == train_name else name
        write_embeddings(ids, embeddings[key], os.path.join(args.out_dir, f"embeddings_{name}"))
    write_lines(os.path.join(args.out_dir, "backend"), [settings.backend])
    dim = embeddings[None].shape[1]
    print(f"{PROG}: wrote {dim}-d embeddings of {', '.join([train_name, *evals])} under "
          f"{args.out_dir} (back-end: {settings.backend}) in {time.time() - start:.0f} s")


if __name__ == "__main__":
    run_entry_point(main, PROG)

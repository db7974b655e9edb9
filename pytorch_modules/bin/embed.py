"""Embeds audio files with a trained model, on the CPU: Kaldi ark/scp or a .npy matrix.

    python -m pytorch_modules.bin.embed --model exp/demo_dam/final.pt --out-dir my_embeddings \
        [--list files.txt] [--format ark|npy] [--min-frames 32] [FILE ...]

Files come from --list (lines `ID PATH`, or a bare `PATH`) and from the command line.  A file
without an ID gets its path as id, with any whitespace turned into '_' (Kaldi tables end an id
at the first space; a note says so); two files with one id are refused.  --format ark (default)
writes OUT_DIR/xvector.ark + xvector.scp, the layout of the recipe's embedding dirs, so
pytorch_modules.bin.score can score them; npy writes OUT_DIR/embeddings.npy (files x dim,
float32) and OUT_DIR/ids.txt (one id per row).  Audio is read as by pytorch_modules.bin.verify:
audio that cannot give an embedding (no samples, NaN, shorter than a frame, silent) is refused
naming the file, and a recording shorter than --min-frames frames is repeated up to it, with a
note.
"""
import argparse
import os
import sys

import numpy as np
import torch

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.embedding_io import write_vectors
from pytorch_modules.fileio.kaldi_data import safe_id
from pytorch_modules.inference import MIN_FRAMES, Embedder

PROG = "embed"


def read_file_list(path):
    """[(id, audio path)] of a list file: `ID PATH` lines, or a bare `PATH` (a line that is
    one existing file, spaces and all, is a bare path)."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            fields = text.split(None, 1)
            if not fields:
                continue
            bare = len(fields) == 1 or (os.path.isfile(text) and not os.path.isfile(fields[1]))
            entries.append((None, text) if bare else (fields[0], fields[1]))
    return entries


def with_ids(entries):
    """The entries with an id for each path given without one (safe_id of the path), and a
    note for each id that differs from its path."""
    named, notes = [], []
    for utt, path in entries:
        if utt is None:
            utt = safe_id(path)
            if utt != path:
                notes.append(f"{path!r} has the id {utt} (whitespace in ids becomes '_')")
        named.append((utt, path))
    return named, notes


def unique_entries(entries, source):
    """The entries, refusing an id given twice (one id would name two embeddings)."""
    seen = set()
    for utt, _ in entries:
        if utt in seen:
            raise RecipeError(f"{utt} is named twice in {source}; give each file its own id "
                              f"('ID PATH' lines in --list).")
        seen.add(utt)
    if not entries:
        raise RecipeError("no audio files to embed: give FILE arguments or --list.")
    return entries


def write_ark(out_dir, ids, vectors):
    ark, scp = os.path.join(out_dir, "xvector.ark"), os.path.join(out_dir, "xvector.scp")
    return write_vectors(ark, scp, ids, vectors)


def write_npy(out_dir, ids, vectors):
    npy, listing = os.path.join(out_dir, "embeddings.npy"), os.path.join(out_dir, "ids.txt")
    np.save(f"{npy}.tmp.npy", np.stack(vectors).astype(np.float32))
    write_lines(listing, ids)
    os.replace(f"{npy}.tmp.npy", npy)
    return npy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exp/<model>/final.pt")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--list", help="file list: 'ID PATH' or 'PATH' lines")
    parser.add_argument("--format", choices=("ark", "npy"), default="ark")
    parser.add_argument("--feat-config", help="feature options (default: spectrogram.conf beside "
                        "the model, else the one its training config names)")
    parser.add_argument("--min-frames", type=int, default=MIN_FRAMES,
                        help=f"recordings shorter than this many frames are repeated up to it "
                             f"(default {MIN_FRAMES})")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    parser.add_argument("files", nargs="*", metavar="FILE")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.list and not os.path.isfile(args.list):
        raise RecipeError(f"file list {args.list} does not exist.")
    entries, notes = with_ids((read_file_list(args.list) if args.list else [])
                              + [(None, p) for p in args.files])
    entries = unique_entries(entries, args.list or "the arguments")
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)

    embedder = Embedder(args.model, args.feat_config, args.min_frames)
    vectors = []
    for utt, path in entries:
        vector, notes = embedder.embed_file(path)
        for note in notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        vectors.append(vector)
    os.makedirs(args.out_dir, exist_ok=True)
    ids = [utt for utt, _ in entries]
    written = (write_ark if args.format == "ark" else write_npy)(args.out_dir, ids, vectors)
    print(f"{PROG}: {len(ids)} embeddings ({vectors[0].size}-d) -> {written}")


if __name__ == "__main__":
    run_entry_point(main, PROG)

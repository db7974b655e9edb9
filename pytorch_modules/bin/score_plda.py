"""Scores a Kaldi trials file with a PLDA back-end trained on the training speakers' embeddings
(pytorch_modules/scoring/plda.py: mean subtraction, LDA, length normalisation, two-covariance
PLDA, log-likelihood ratios) and evaluates it (EER, minDCF), as Kaldi's egs/voxceleb/v2 does.

    python -m pytorch_modules.bin.score_plda --trials data/vox1_o/trials \
        --train-scp exp/m/embeddings_voxceleb1_dev/xvector.scp \
        --train-utt2spk data/voxceleb1_dev/utt2spk \
        --enroll-scp exp/m/embeddings_voxceleb1_eval/xvector.scp \
        --test-scp exp/m/embeddings_voxceleb1_eval/xvector.scp \
        --scores-out exp/m/scores/vox1_o_plda.scores \
        --results-out exp/m/scores/vox1_o_plda.results \
        [--name vox1_o_plda] [--utt2spk F] [--enroll-spk2utt F]
        [--lda-dim 200] [--subtract-mean true] [--em-iters 10]

The scores (log-likelihood ratios) and the results are written as pytorch_modules.bin.score
writes them (the same keys, 95% speaker-bootstrap intervals), with the keys backend (plda),
lda_dim (the dimension used), plda_em_iters, mean_subtracted, plda_train_utts and
plda_train_speakers added.  The back-end is trained on the utterances of --train-scp, each
of which must have a speaker in --train-utt2spk (utterances of utt2spk without an embedding
are left out, with a note: a per-speaker subset such as stage 4's cohort is fine).
--enroll-spk2utt enrolls a model as the plain mean of its utterances' embeddings, scored with
its utterance count (Kaldi's ivector-mean and --num-utts).
"""
import argparse
import os
import sys
import time

import numpy as np

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.embedding_io import load_embeddings, load_table, model_rows
from pytorch_modules.fileio.kaldi_data import read_trials, read_utt2spk
from pytorch_modules.scoring import trial_outputs
from pytorch_modules.scoring.cosine import trial_rows
from pytorch_modules.scoring.plda import DEFAULT_EM_ITERS, DEFAULT_LDA_DIM, PldaBackend, PldaOptions

PROG = "score_plda"


def boolean(text):
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text == "true"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trial_outputs.add_embedding_arguments(parser)
    parser.add_argument("--train-scp", required=True,
                        help="embeddings of the training utterances (the PLDA's training data)")
    parser.add_argument("--train-utt2spk", required=True,
                        help="speaker of each training utterance (the training data dir's utt2spk)")
    parser.add_argument("--lda-dim", type=int, default=DEFAULT_LDA_DIM,
                        help=f"LDA dimension before the PLDA (default {DEFAULT_LDA_DIM}; capped at "
                        f"training speakers - 1 and the embedding size; 0: no LDA)")
    parser.add_argument("--subtract-mean", type=boolean, default=True,
                        help="subtract the training-set mean before the LDA and length "
                        "normalisation (true or false; default true)")
    parser.add_argument("--em-iters", type=int, default=DEFAULT_EM_ITERS,
                        help=f"EM iterations of the PLDA (default {DEFAULT_EM_ITERS}, Kaldi's)")
    args = parser.parse_args()
    if args.lda_dim < 0 or args.em_iters < 1:
        parser.error("--lda-dim takes 0 or more, --em-iters 1 or more")
    trial_outputs.check_arguments(parser, args)
    return args


def training_set(scp, utt2spk_path):
    """(vectors, speaker labels) of the training utterances; see the module doc."""
    ids, vectors = load_embeddings(scp)
    speaker = dict(read_utt2spk(utt2spk_path))
    missing = [u for u in ids if u not in speaker]
    if missing:
        raise RecipeError(f"{len(missing)} utterance(s) of {scp} have no speaker in "
                          f"{utt2spk_path}, e.g. {missing[0]}; give the utt2spk of the data dir "
                          f"these embeddings were made from.")
    if len(ids) < len(speaker):
        print(f"{PROG}: note: {len(speaker) - len(ids)} of the {len(speaker)} utterances of "
              f"{utt2spk_path} have no embedding in {scp}; training on the {len(ids)} that "
              f"have one", file=sys.stderr)
    return vectors, [speaker[u] for u in ids]


def trial_table(enroll_scp, test_scp, enroll_spk2utt):
    """(id -> row, raw vectors, utterance count per row) of both sides of the trials: the
    utterances of both scps, and with enroll_spk2utt each model's mean embedding."""
    id_to_row, vectors = load_table(enroll_scp, test_scp)
    counts = np.ones(len(vectors))
    if not enroll_spk2utt:
        return id_to_row, vectors, counts
    means, model_counts = [], []
    for line_no, model, rows in model_rows(dict(id_to_row), enroll_spk2utt):
        if model in id_to_row:
            raise RecipeError(f"{enroll_spk2utt}:{line_no}: model {model} has the id of an "
                              f"utterance; give enrollment models ids distinct from test "
                              f"utterances.")
        id_to_row[model] = len(vectors) + len(means)
        means.append(vectors[rows].astype(np.float64).mean(axis=0))
        model_counts.append(len(rows))
    return (id_to_row, np.concatenate([vectors, np.stack(means)]),
            np.concatenate([counts, model_counts]))


def main():
    args = parse_args()
    inputs = [args.trials, args.train_scp, args.train_utt2spk, args.enroll_scp, args.test_scp,
              args.enroll_spk2utt, args.utt2spk]
    for path in filter(None, inputs):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the stage that makes it first.")
    start = time.time()
    enroll_ids, test_ids, labels = read_trials(args.trials)
    clusters = trial_outputs.bootstrap_clusters(args, enroll_ids, test_ids, labels,
                                                models_enrolled=bool(args.enroll_spk2utt))
    id_to_row, vectors, counts = trial_table(args.enroll_scp, args.test_scp, args.enroll_spk2utt)
    enroll_rows, test_rows = trial_rows(enroll_ids, test_ids, id_to_row, args.trials)
    train, speakers = training_set(args.train_scp, args.train_utt2spk)
    if train.shape[1] != vectors.shape[1]:
        raise RecipeError(f"{args.train_scp} holds {train.shape[1]}-d embeddings but the "
                          f"trials' are {vectors.shape[1]}-d; train the back-end on the "
                          f"training embeddings of the same model.")
    options = PldaOptions(lda_dim=args.lda_dim, subtract_mean=args.subtract_mean,
                          em_iters=args.em_iters)
    backend = PldaBackend.fit(train, speakers, options,
                              log=lambda m: print(f"{PROG}: note: {m}", file=sys.stderr))
    scores = backend.score(backend.prepare(vectors, counts), counts, enroll_rows, test_rows)
    extra = {"backend": "plda", "lda_dim": str(0 if backend.lda is None else len(backend.lda)),
             "plda_em_iters": str(args.em_iters),
             "mean_subtracted": str(args.subtract_mean).lower(),
             "plda_train_utts": str(len(train)), "plda_train_speakers": str(len(set(speakers)))}
    trial_outputs.write(args, enroll_ids, test_ids, labels, scores, clusters, extra)
    print(f"{PROG}: PLDA of {backend.dim} dimensions trained on {len(train)} utterances of "
          f"{len(set(speakers))} speakers; {len(scores)} trials scored in "
          f"{time.time() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    run_entry_point(main, PROG)

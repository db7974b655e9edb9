"""Cosine-scores a Kaldi trials file and evaluates it (EER, minDCF at p_target 0.01 and 0.001).

    python -m pytorch_modules.bin.score --trials data/vox1_o/trials \
        --enroll-scp exp/m/xvectors_vox1_o/xvector.scp \
        --test-scp exp/m/xvectors_vox1_o/xvector.scp \
        --scores-out exp/m/scores/vox1_o.scores --results-out exp/m/scores/vox1_o.results \
        [--name vox1_o]

writes `enroll test score` lines in trial order and a `key value` results file (name, trials,
eer_percent, min_dcf_p0.01, min_dcf_p0.001, eer_threshold; only name and trials when the trials
carry no target/nontarget labels), both by rename, and prints one summary line.
"""
import argparse
import os

import numpy as np

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.scoring import (cosine_score, evaluate, load_embeddings, mean_by_model,
                                     read_trials, summary_line, write_lines_atomic)

PROG = "score"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", required=True,
                        help="Kaldi trials: enroll test [target|nontarget]")
    parser.add_argument("--enroll-scp", required=True, help="embeddings of the enrollment ids")
    parser.add_argument("--test-scp", required=True,
                        help="embeddings of the test ids (may be the same scp)")
    parser.add_argument("--scores-out", required=True, help="output: enroll test score")
    parser.add_argument("--results-out", required=True, help="output: key value lines")
    parser.add_argument("--name", help="set name in the results (default: the trials' folder name)")
    parser.add_argument("--enroll-spk2utt", help="average the enrollment embeddings per model "
                        "(spk2utt: model utt ...); trials then name models as enroll ids")
    return parser.parse_args()


def load_table(enroll_scp, test_scp, enroll_spk2utt=None):
    """One (id -> row, matrix) table over both scps; an scp given twice is read once.

    An id present in both scps must carry the same vector, or which one a trial means is unclear."""
    ids, emb = load_embeddings(enroll_scp)
    if enroll_spk2utt:
        ids, emb = mean_by_model(ids, emb, enroll_spk2utt)
    id_to_row = {utt: row for row, utt in enumerate(ids)}
    if os.path.realpath(test_scp) == os.path.realpath(enroll_scp) and not enroll_spk2utt:
        return id_to_row, emb
    test_ids, test_emb = load_embeddings(test_scp)
    if test_emb.shape[1] != emb.shape[1]:
        raise RecipeError(f"{enroll_scp} holds {emb.shape[1]}-d embeddings but {test_scp} holds "
                          f"{test_emb.shape[1]}-d ones; score embeddings of one model.")
    for row, utt in enumerate(test_ids):
        if utt in id_to_row and not np.array_equal(emb[id_to_row[utt]], test_emb[row]):
            raise RecipeError(f"{utt} has different embeddings in {enroll_scp} and {test_scp}; "
                              f"give enrollment models ids distinct from test utterances.")
    new = [row for row, utt in enumerate(test_ids) if utt not in id_to_row]
    for offset, row in enumerate(new):
        id_to_row[test_ids[row]] = len(ids) + offset
    return id_to_row, np.concatenate([emb, test_emb[new]])


def main():
    args = parse_args()
    for path in (args.trials, args.enroll_scp, args.test_scp):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the stage that makes it first.")
    name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.trials)))

    enroll_ids, test_ids, labels = read_trials(args.trials)
    id_to_row, emb = load_table(args.enroll_scp, args.test_scp, args.enroll_spk2utt)
    scores = cosine_score(enroll_ids, test_ids, id_to_row, emb, trials_path=args.trials)
    results = evaluate(scores, labels, name, trials_path=args.trials)

    write_lines_atomic(args.scores_out, (f"{e} {t} {s:.6f}"
                                         for e, t, s in zip(enroll_ids, test_ids, scores)))
    write_lines_atomic(args.results_out, (f"{key} {value}" for key, value in results.items()))
    print(summary_line(results))


if __name__ == "__main__":
    run_entry_point(main, PROG)

"""Scores a Kaldi trials file (cosine, optionally AS-norm) and evaluates it (EER, minDCF).

    python -m pytorch_modules.bin.score --trials data/vox1_o/trials \
        --enroll-scp exp/m/xvectors_vox1_o/xvector.scp \
        --test-scp exp/m/xvectors_vox1_o/xvector.scp \
        --scores-out exp/m/scores/vox1_o.scores --results-out exp/m/scores/vox1_o.results \
        [--name vox1_o] [--utt2spk data/vox1_o/utt2spk] [--mean-scp SCP]
        [--cohort-scp SCP [--cohort-spk2utt F] [--top-n 300]]

writes `enroll test score` lines in trial order and a `key value` results file (name, trials,
eer_percent, min_dcf_p0.01, min_dcf_p0.001, eer_threshold; only name and trials when the trials
carry no target/nontarget labels), both by rename, and prints one summary line.

Each metric comes with a 95% interval from a speaker-level bootstrap (pytorch_modules/
scoring/bootstrap.py): --utt2spk (by default the utt2spk beside the trials, as in data/vox1_o/) names
the speaker of every trial id, and test speakers are resampled; without one (SITW, whose test
files have no speaker labels) the enrollment models are.  The
results then add <metric>_ci_low, <metric>_ci_high and bootstrap_{unit,clusters,replicates,seed}.

--mean-scp subtracts the average of its embeddings (the training set's, or the one-entry
mean.scp of pytorch_modules.bin.make_cohort) from every embedding before length-normalisation.
--cohort-scp turns on AS-norm (pytorch_modules/scoring/asnorm.py) against that cohort: one embedding
per training speaker as make_cohort writes it, or, with --cohort-spk2utt, a training set's
utterance embeddings averaged per speaker here.  A precomputed cohort is used as it is: build
it with the same mean subtraction (make_cohort's xvector_meansub.scp goes with its mean.scp).
Results then add the keys mean_subtracted, and with AS-norm cohort_size and top_n.
"""
import argparse
import os

import numpy as np

from pytorch_modules.scoring import bootstrap
from pytorch_modules.scoring.asnorm import DEFAULT_TOP_N, asnorm_score, effective_top_n, speaker_cohort
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.scoring.bootstrap import DEFAULT_REPLICATES, DEFAULT_SEED
from pytorch_modules.fileio.embedding_io import embedding_mean, load_embeddings, load_table
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring.cosine import cosine_score, evaluate, summary_line, trials_info

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
    parser.add_argument("--utt2spk", help="speaker of every trial id, for the speaker-level "
                        "bootstrap (default: the utt2spk beside --trials when there is one and "
                        "no --enroll-spk2utt; else the enrollment models are resampled)")
    parser.add_argument("--bootstrap-replicates", type=int, default=DEFAULT_REPLICATES,
                        help=f"bootstrap replicates of the 95%% intervals (default "
                        f"{DEFAULT_REPLICATES}; 0: no intervals)")
    parser.add_argument("--bootstrap-seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the bootstrap draws (default {DEFAULT_SEED})")
    parser.add_argument("--mean-scp", help="subtract the mean of these embeddings (the training "
                        "set's xvector.scp, or make_cohort's mean.scp) before length-normalisation")
    parser.add_argument("--cohort-scp", help="AS-norm against this cohort (make_cohort's "
                        "xvector.scp / xvector_meansub.scp, or training utterances with "
                        "--cohort-spk2utt)")
    parser.add_argument("--cohort-spk2utt", help="average --cohort-scp per training speaker "
                        "(the training set's spk2utt) to make the cohort")
    parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N,
                        help=f"AS-norm: cohort scores per side (default {DEFAULT_TOP_N}; capped "
                        f"at the cohort size)")
    args = parser.parse_args()
    if args.cohort_spk2utt and not args.cohort_scp:
        parser.error("--cohort-spk2utt needs --cohort-scp")
    if args.bootstrap_replicates < 0 or args.bootstrap_replicates == 1:
        parser.error("--bootstrap-replicates takes 0 (no intervals) or at least 2")
    return args


def trial_clusters(args, enroll_ids, test_ids, labels):
    """What the bootstrap resamples (checked before any embedding is read), or None."""
    if labels is None or args.bootstrap_replicates == 0:
        return None
    return bootstrap.trial_clusters(args.trials, enroll_ids, test_ids, labels, args.utt2spk,
                                    models_enrolled=bool(args.enroll_spk2utt))


def load_cohort(cohort_scp, cohort_spk2utt, mean):
    """The AS-norm cohort matrix: per-speaker means made here, or a precomputed scp as it is."""
    if cohort_spk2utt:
        return speaker_cohort(cohort_scp, cohort_spk2utt, mean)[1]
    return load_embeddings(cohort_scp)[1]


def main():
    args = parse_args()
    inputs = [args.trials, args.enroll_scp, args.test_scp, args.mean_scp, args.cohort_scp,
              args.cohort_spk2utt, args.enroll_spk2utt, args.utt2spk]
    for path in filter(None, inputs):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; run the stage that makes it first.")
    name = args.name or os.path.basename(os.path.dirname(os.path.abspath(args.trials)))

    enroll_ids, test_ids, labels = read_trials(args.trials)
    clusters = trial_clusters(args, enroll_ids, test_ids, labels)
    mean = embedding_mean(args.mean_scp) if args.mean_scp else None
    id_to_row, emb = load_table(args.enroll_scp, args.test_scp, args.enroll_spk2utt, mean)
    if args.cohort_scp:
        cohort = load_cohort(args.cohort_scp, args.cohort_spk2utt, mean)
        if cohort.shape[1] != emb.shape[1]:
            raise RecipeError(f"the cohort {args.cohort_scp} holds {cohort.shape[1]}-d embeddings "
                              f"but the trials' are {emb.shape[1]}-d; make the cohort from the "
                              f"training embeddings of the same model.")
        scores, _ = asnorm_score(enroll_ids, test_ids, id_to_row, emb, cohort, args.top_n,
                                 trials_path=args.trials)
    else:
        scores = cosine_score(enroll_ids, test_ids, id_to_row, emb, trials_path=args.trials)
    # The metrics are those of the scores file as written (6 decimals), so that anything that
    # reads it back (compare_systems, plots) finds the same EER; near-equal scores of a weak
    # model can otherwise tie after rounding and move the EER.
    texts = [f"{s:.6f}" for s in scores]
    scores = np.array(texts, dtype=np.float64)
    results = evaluate(scores, labels, name, trials_path=args.trials, clusters=clusters,
                       replicates=args.bootstrap_replicates, seed=args.bootstrap_seed)
    results.update(trials_info(args.trials))
    if mean is not None or args.cohort_scp:
        results["mean_subtracted"] = str(mean is not None).lower()
    if args.cohort_scp:
        results.update(cohort_size=str(len(cohort)),
                       top_n=str(effective_top_n(args.top_n, len(cohort))))

    write_lines(args.scores_out, (f"{e} {t} {s}"
                                         for e, t, s in zip(enroll_ids, test_ids, texts)))
    write_lines(args.results_out, (f"{key} {value}" for key, value in results.items()))
    print(summary_line(results))


if __name__ == "__main__":
    run_entry_point(main, PROG)

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
scoring/bootstrap.py): --utt2spk (by default the utt2spk beside the trials, as in data/vox1_o/)
names the speaker of every trial id, and test speakers are resampled; without one (SITW, whose
test files have no speaker labels) the enrollment models are.  The
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
import sys

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.embedding_io import embedding_mean, load_embeddings, load_table
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import trial_outputs
from pytorch_modules.scoring.asnorm import (
    DEFAULT_TOP_N,
    asnorm_score,
    effective_top_n,
    speaker_cohort,
)
from pytorch_modules.scoring.cosine import cosine_score

PROG = "score"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    trial_outputs.add_embedding_arguments(parser)
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
    trial_outputs.check_arguments(parser, args)
    return args


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
    enroll_ids, test_ids, labels = read_trials(args.trials)
    clusters = trial_outputs.bootstrap_clusters(args, enroll_ids, test_ids, labels,
                                                models_enrolled=bool(args.enroll_spk2utt))
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
    extra = {}
    if mean is not None or args.cohort_scp:
        extra["mean_subtracted"] = str(mean is not None).lower()
    if args.cohort_scp:
        top_n = effective_top_n(args.top_n, len(cohort))
        extra.update(cohort_size=str(len(cohort)), top_n=str(top_n))
        if top_n < args.top_n:
            print(f"{PROG}: note: --top-n {args.top_n} is more than the cohort's {len(cohort)} "
                  f"speakers: AS-norm uses all {top_n}", file=sys.stderr)
    trial_outputs.write(args, enroll_ids, test_ids, labels, scores, clusters, extra)


if __name__ == "__main__":
    run_entry_point(main, PROG)

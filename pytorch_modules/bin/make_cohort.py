"""Makes the AS-norm cohort and the mean embedding from a training set's embeddings.

    python -m pytorch_modules.bin.make_cohort data/voxceleb1_dev/spk2utt \
        exp/m/embeddings_voxceleb1_dev/xvector.scp exp/m/cohort_voxceleb1_dev

writes into the output dir, each as a Kaldi ark + scp:
  mean.scp             one vector, key `mean`: the average training embedding
  xvector.scp          one vector per training speaker: the mean of its length-normalised
                       embeddings (the cohort for scoring without mean subtraction)
  xvector_meansub.scp  the same after subtracting the mean embedding from every utterance
                       (the cohort for scoring with --mean-scp mean.scp)
and an `info` file (speakers, utterances, dim).  The embeddings are streamed twice (the mean
first), so a million training utterances need memory only for the per-speaker sums.
"""
import argparse
import os

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.embedding_io import embedding_mean, write_vectors
from pytorch_modules.fileio.kaldi_data import read_spk2utt_rows
from pytorch_modules.scoring.asnorm import speaker_cohort

PROG = "make_cohort"


def write_cohort_vectors(out_dir, name, ids, matrix):
    """out_dir/name.ark + name.scp."""
    write_vectors(os.path.join(out_dir, f"{name}.ark"), os.path.join(out_dir, f"{name}.scp"),
                  ids, matrix)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spk2utt", help="the training set's spk2utt")
    parser.add_argument("xvector_scp", help="the training set's embeddings")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    for path in (args.spk2utt, args.xvector_scp):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; embed the training set first "
                              f"(steps/extract_embeddings.sh on the training data dir).")
    os.makedirs(args.out_dir, exist_ok=True)

    mean = embedding_mean(args.xvector_scp)
    speakers, cohort = speaker_cohort(args.xvector_scp, args.spk2utt)
    _, cohort_meansub = speaker_cohort(args.xvector_scp, args.spk2utt, mean)
    write_cohort_vectors(args.out_dir, "mean", ["mean"], mean[None])
    write_cohort_vectors(args.out_dir, "xvector", speakers, cohort)
    write_cohort_vectors(args.out_dir, "xvector_meansub", speakers, cohort_meansub)
    utterances = sum(len(utts) for _, _, utts in read_spk2utt_rows(args.spk2utt))
    write_lines(os.path.join(args.out_dir, "info"), [
        f"speakers {len(speakers)}", f"utterances {utterances}", f"dim {mean.size}",
        f"spk2utt {args.spk2utt}", f"xvector_scp {args.xvector_scp}"])
    print(f"{PROG}: cohort of {len(speakers)} speakers from {utterances} utterances "
          f"({mean.size}-d) in {args.out_dir}")


if __name__ == "__main__":
    run_entry_point(main, PROG)

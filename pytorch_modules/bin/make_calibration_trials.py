"""Makes the calibration trial list of a model from training speakers' embedded utterances.

    python -m pytorch_modules.bin.make_calibration_trials \
        --xvector-scp exp/m/embeddings_voxceleb1_dev/xvector.scp \
        [--num-trials 20000] [--target-share 0.5] [--seed 1] [--cross-session true] \
        data/voxceleb1_dev exp/m/calibration_voxceleb1_dev

writes into the output dir, laid out like a trial set's data dir:
  trials          `enroll test target|nontarget`, C order
  utt2spk         the speakers of the utterances the trials name (the speaker bootstrap's)
  utt2num_frames  their frame counts, when the data dir has them (the duration measure)
  info            `key value`: source, xvector_scp, trials, targets, nontargets, target_share,
                  seed, cross_session, speakers, speakers_with_targets, utterances
Only utterances of the data dir with an embedding in --xvector-scp are paired (stage 4 embeds
the training set, or a few utterances per speaker of it, for the AS-norm cohort).  The list is
a function of its inputs and the seed.  Targets: the same number from every speaker as far as
its pairs allow, each pair of two sessions (--cross-session true: ids speaker-session-number,
as stage 1 makes them); nontargets: two speakers drawn uniformly, then an utterance of each;
no pair twice.  Why these defaults: pytorch_modules/scoring/calibration.py.  Never make it from
evaluation speakers: the calibration would then be fitted on the trials it is judged on.
"""
import argparse
import os

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.kaldi_data import c_sorted, read_scp_lines, read_utt2spk
from pytorch_modules.scoring import calibration

PROG = "make_calibration_trials"


def boolean(text):
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")
    return text == "true"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xvector-scp", help="pair only utterances with an embedding here "
                        "(default: every utterance of the data dir)")
    parser.add_argument("--num-trials", type=int, default=calibration.DEFAULT_NUM_TRIALS,
                        help=f"trials (default {calibration.DEFAULT_NUM_TRIALS})")
    parser.add_argument("--target-share", type=float, default=calibration.DEFAULT_TARGET_SHARE,
                        help=f"share of target trials (default "
                        f"{calibration.DEFAULT_TARGET_SHARE:g})")
    parser.add_argument("--seed", type=int, default=calibration.DEFAULT_SEED,
                        help=f"seed of the draws (default {calibration.DEFAULT_SEED})")
    parser.add_argument("--cross-session", type=boolean, default=True,
                        help="targets pair two sessions (default true)")
    parser.add_argument("data_dir", help="the training data dir (utt2spk, utt2num_frames)")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    utt2spk_path = os.path.join(args.data_dir, "utt2spk")
    for path in filter(None, (utt2spk_path, args.xvector_scp)):
        if not os.path.isfile(path):
            raise RecipeError(f"{path} does not exist; prepare the training data (stage 1) "
                              f"and embed it (stage 4) first.")
    utt2spk = read_utt2spk(utt2spk_path)
    if args.xvector_scp:
        embedded = {key for key, _ in read_scp_lines(args.xvector_scp)}
        utt2spk = [(u, s) for u, s in utt2spk if u in embedded]
        if not utt2spk:
            raise RecipeError(f"no utterance of {utt2spk_path} has an embedding in "
                              f"{args.xvector_scp}; give the embeddings of this data dir.")
    trials, info, notes = calibration.make_trials(utt2spk, args.num_trials, args.target_share,
                                                  args.seed, args.cross_session)
    for note in notes:
        print(f"{PROG}: note: {note}")
    used = {u for e, t, _ in trials for u in (e, t)}
    os.makedirs(args.out_dir, exist_ok=True)
    speaker = dict(utt2spk)
    write_lines(os.path.join(args.out_dir, "utt2spk"),
                (f"{u} {speaker[u]}" for u in c_sorted(used)))
    frames_path = os.path.join(args.data_dir, "utt2num_frames")
    if os.path.isfile(frames_path):
        frames = dict(read_scp_lines(frames_path))
        missing = next((u for u in c_sorted(used) if u not in frames), None)
        if missing is not None:
            raise RecipeError(f"{missing} has no entry in {frames_path}; rerun the feature "
                              f"stage (stage 2) for {args.data_dir}.")
        write_lines(os.path.join(args.out_dir, "utt2num_frames"),
                    (f"{u} {frames[u]}" for u in c_sorted(used)))
    write_lines(os.path.join(args.out_dir, "trials"), (" ".join(t) for t in trials))
    source = {"source": args.data_dir, **({"xvector_scp": args.xvector_scp}
                                          if args.xvector_scp else {})}
    write_lines(os.path.join(args.out_dir, "info"),
                (f"{k} {v}" for k, v in {**source, **info}.items()))
    print(f"{PROG}: {info['trials']} trials ({info['targets']} target, {info['nontargets']} "
          f"nontarget) from {info['speakers']} speakers of {args.data_dir} in "
          f"{args.out_dir}/trials")


if __name__ == "__main__":
    run_entry_point(main, PROG)

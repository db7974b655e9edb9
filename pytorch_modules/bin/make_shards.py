"""Packs the utterances of a data dir into tar shards (one parallel job of steps/make_shards.sh).

    python -m pytorch_modules.bin.make_shards --job 1 --num-jobs 4 [--shard-size 1000] \
        [--seed 777] --config conf/spectrogram.conf data/voxceleb2_dev shards/voxceleb2_dev

Job J of N writes the shards k with k mod N = J - 1 (pytorch_modules/fileio/shards.py: which
utterances a shard holds does not depend on N), decoding each utterance once from its wav.scp
entry (a file or a command such as ffmpeg's) and storing it as 16-bit FLAC; a shard already
complete with the same utterances is kept.  Audio that cannot be used is named and skipped, as
in the feature stage (the feature config's rate and silence threshold).  Writes
OUT_DIR/shards.J.list, the job's shards, last.
"""
import argparse
import os
import sys

from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.features.feature_job import usable_samples
from pytorch_modules.features.spectrogram import parse_options_file
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.audio import AudioError
from pytorch_modules.fileio.kaldi_data import read_scp_lines
from pytorch_modules.fileio.shards import read_index, shard_plan, write_shard

PROG = "make_shards"


def complete(tar: str, utts: list[str]) -> bool:
    """True when `tar` has an index holding these utterances (some may have been skipped)."""
    try:
        return {row[0] for row in read_index(tar)} <= set(utts) and os.path.isfile(tar)
    except RecipeError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--num-jobs", type=int, required=True)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--config", required=True, help="the feature config (rate, silence)")
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    if not 1 <= args.job <= args.num_jobs or args.shard_size < 1:
        raise RecipeError(f"--job {args.job} of --num-jobs {args.num_jobs} with --shard-size "
                          f"{args.shard_size}: need 1 <= job <= num-jobs and a size of 1 or more")
    options = parse_options_file(args.config)
    wavs = dict(read_scp_lines(f"{args.data_dir}/wav.scp"))
    utt2spk = dict(read_scp_lines(f"{args.data_dir}/utt2spk"))
    plan = shard_plan(sorted(wavs), args.shard_size, args.seed)
    mine, skipped = [], []

    def members(utts):
        """The usable utterances, decoded one at a time as the shard is written."""
        for utt in utts:
            try:
                samples = usable_samples(utt, wavs[utt], options, args.config)
            except AudioError as e:
                print(f"{PROG}: skipping: {e}", file=sys.stderr)
                skipped.append(utt)
                continue
            yield utt, utt2spk[utt], samples, options.sample_frequency

    for number, utts in enumerate(plan):
        if number % args.num_jobs != args.job - 1:
            continue
        tar = os.path.abspath(os.path.join(args.out_dir, f"shard_{number:06d}.tar"))
        mine.append(tar)
        if not complete(tar, utts):
            print(f"{PROG}: {tar}: {write_shard(tar, members(utts))} utterances")
    write_lines(f"{args.out_dir}/shards.{args.job}.list", mine)
    print(f"{PROG}: job {args.job}: {len(mine)} shard(s), {len(skipped)} utterance(s) skipped")


if __name__ == "__main__":
    run_entry_point(main, PROG)

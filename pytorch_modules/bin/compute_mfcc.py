"""Computes the classical baselines' MFCCs (voiced frames, with deltas) for the utterances of
one wav.scp (one parallel job of steps/make_mfcc.sh).

    python -m pytorch_modules.bin.compute_mfcc --config conf/mfcc.conf \
        [--compress true] [--max-fail-fraction 0.05] wav.scp mfcc/raw_mfcc_train.1

writes mfcc/raw_mfcc_train.1.ark, .scp and .utt2num_frames (voiced frames), with the same
handling of unusable audio, killed jobs and full disks as pytorch_modules.bin.compute_spectrogram
(pytorch_modules/feature_job.py).
"""
import argparse

import torch

from pytorch_modules.errors import run_entry_point
from pytorch_modules.feature_job import add_job_arguments, run_job
from pytorch_modules.mfcc import Mfcc, parse_mfcc_options

PROG = "compute_mfcc"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_job_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one job per core: parallelism comes from --nj
    run_job(PROG, args, Mfcc(parse_mfcc_options(args.config)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

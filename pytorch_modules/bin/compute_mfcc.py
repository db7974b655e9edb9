"""Computes the classical baselines' MFCCs (voiced frames, with deltas) for the utterances of
one wav.scp (one parallel job of steps/make_mfcc.sh).

    python -m pytorch_modules.bin.compute_mfcc --config conf/mfcc.conf \
        [--compress true] [--max-fail-fraction 0.05] wav.scp mfcc/raw_mfcc_train.1

writes mfcc/raw_mfcc_train.1.ark, .scp and .utt2num_frames (voiced frames), with the same
handling of unusable audio, killed jobs and full disks as pytorch_modules.bin.compute_spectrogram
(pytorch_modules/features/feature_job.py).
"""
from pytorch_modules.errors import run_entry_point
from pytorch_modules.features.feature_job import job_main
from pytorch_modules.features.mfcc import Mfcc, parse_mfcc_options

PROG = "compute_mfcc"


def main():
    job_main(PROG, __doc__.split("\n\n")[0], lambda config: Mfcc(parse_mfcc_options(config)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

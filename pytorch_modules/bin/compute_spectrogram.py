"""Computes log-spectrogram features for the utterances of one wav.scp (one parallel job).

    python -m pytorch_modules.bin.compute_spectrogram --config conf/spectrogram.conf \
        [--compress true] [--max-fail-fraction 0.05] wav.scp feats/raw_spec_train.1

writes feats/raw_spec_train.1.ark, .scp and .utt2num_frames.  The .scp and .utt2num_frames
appear (by rename) only when the job succeeds, so a killed job leaves nothing a later stage
would mistake for finished output.  An utterance whose audio cannot be used (missing, unreadable,
truncated, empty, several channels, another sample rate, shorter than one frame, or silent:
below --min-rms-dbfs of the feature config) is reported by name and skipped; the job fails only
when more than --max-fail-fraction of its utterances are lost (Kaldi tolerates 5% the same way;
steps/make_spectrogram.sh applies the fraction to the whole data dir instead).  A full disk
fails the job with a sentence saying so, and the partial ark is removed.
"""
from pytorch_modules.errors import run_entry_point
from pytorch_modules.features.feature_job import job_main
from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file

PROG = "compute_spectrogram"


def main():
    job_main(PROG, __doc__.split("\n\n")[0], lambda config: Spectrogram(parse_options_file(config)))


if __name__ == "__main__":
    run_entry_point(main, PROG)

"""Computes log-spectrogram features for the utterances of one wav.scp (one parallel job).

    python -m pytorch_modules.bin.compute_spectrogram --config conf/spectrogram.conf \
        [--compress true] [--max-fail-fraction 0.05] wav.scp feats/raw_spec_train.1

writes feats/raw_spec_train.1.ark, .scp and .utt2num_frames.  The .scp and .utt2num_frames
appear (by rename) only when the job succeeds, so a killed job leaves nothing a later stage
would mistake for finished output.  An utterance whose audio cannot be read is reported by name
and skipped; the job fails only when more than --max-fail-fraction of the utterances are lost
(Kaldi's feature extraction tolerates 5% the same way).
"""
import argparse
import os
import sys
import time

import kaldiio
import torch

from pytorch_modules.audio import AudioError, load_audio, read_scp_lines
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.features import Spectrogram, parse_options_file

PROG = "compute_spectrogram"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="Kaldi-style feature options file")
    parser.add_argument("--compress", choices=["true", "false"], default="false",
                        help="write Kaldi compressed matrices (about 4x smaller, lossy)")
    parser.add_argument("--max-fail-fraction", type=float, default=0.05,
                        help="fail the job when more than this fraction of utterances is lost")
    parser.add_argument("wav_scp")
    parser.add_argument("out_prefix", help="writes OUT_PREFIX.ark, .scp and .utt2num_frames")
    return parser.parse_args()


def write_atomic_lines(path: str, lines) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, path)


def main():
    args = parse_args()
    torch.set_num_threads(1)  # one job per core: parallelism comes from --nj
    options = parse_options_file(args.config)
    spectrogram = Spectrogram(options)
    entries = read_scp_lines(args.wav_scp)
    if not entries:
        raise RecipeError(f"{args.wav_scp} lists no utterances")

    ark, scp = f"{args.out_prefix}.ark", f"{args.out_prefix}.scp"
    failed, num_frames, audio_seconds = [], [], 0.0
    start = time.time()
    writer_spec = f"ark,scp:{ark},{scp}.tmp"
    compression = {"compression_method": 2} if args.compress == "true" else {}
    with kaldiio.WriteHelper(writer_spec, **compression) as writer:
        for utt, source in entries:
            try:
                samples = load_audio(utt, source, options.sample_frequency)
                if options.num_frames(len(samples)) == 0:
                    raise AudioError(f"utterance {utt}: '{source}' is only {len(samples)} samples, "
                                     f"shorter than one {options.frame_length:g}-ms frame")
            except AudioError as e:
                print(f"{PROG}: skipping: {e}", file=sys.stderr)
                failed.append(utt)
                continue
            feats = spectrogram(samples)
            writer(utt, feats)
            num_frames.append(f"{utt} {feats.shape[0]}\n")
            audio_seconds += len(samples) / options.sample_frequency

    elapsed = time.time() - start
    done = len(entries) - len(failed)
    print(f"{PROG}: {done} of {len(entries)} utterances, {audio_seconds / 3600:.2f} h of audio "
          f"in {elapsed:.1f} s ({audio_seconds / max(elapsed, 1e-9):.0f}x real time)")
    if failed:
        print(f"{PROG}: {len(failed)} utterance(s) skipped: {' '.join(failed[:20])}"
              + (" ..." if len(failed) > 20 else ""), file=sys.stderr)
    if len(failed) > args.max_fail_fraction * len(entries):
        raise RecipeError(f"{len(failed)} of {len(entries)} utterances in {args.wav_scp} could not "
                          f"be read (more than --max-fail-fraction {args.max_fail_fraction}); "
                          f"fix the audio or wav.scp, or drop them with utils/fix_data_dir.sh")
    write_atomic_lines(f"{args.out_prefix}.utt2num_frames", num_frames)
    os.replace(f"{scp}.tmp", scp)


if __name__ == "__main__":
    run_entry_point(main, PROG)

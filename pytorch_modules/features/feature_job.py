"""One feature job: every utterance of a wav.scp through a feature extractor into a Kaldi ark.

Shared by the feature entry points (bin/compute_spectrogram.py, bin/compute_mfcc.py): the
audio checks, the skipping of unusable utterances, the atomic .scp/.utt2num_frames and the
disk-full sentence are the same whatever the features are.  An extractor is a callable
(samples) -> (frames, dims) float32 with an `options` attribute holding the audio-selection
fields (sample_frequency, allow_resample, frame_length, num_frames(), min_rms_dbfs).
"""
import argparse
import os
import sys
import time

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.usable_audio import check_usable
from pytorch_modules.fileio import atomic, kaldi_compress
from pytorch_modules.fileio.audio import AudioError, load_audio
from pytorch_modules.fileio.kaldi_data import read_scp_lines


def job_main(prog: str, description: str, make_extractor) -> None:
    """The whole of a feature entry point: its command line (add_job_arguments), one torch
    thread (one job per core: the parallelism comes from --nj), and run_job with the
    extractor make_extractor(config path) builds."""
    import torch  # only the entry points need it here

    parser = argparse.ArgumentParser(description=description)
    add_job_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_job(prog, args, make_extractor(args.config))


def add_job_arguments(parser) -> None:
    """The command line every feature job takes."""
    parser.add_argument("--config", required=True, help="Kaldi-style feature options file")
    parser.add_argument("--compress", choices=["true", "false"], default="false",
                        help="write Kaldi compressed matrices (about 4x smaller, lossy)")
    parser.add_argument("--max-fail-fraction", type=float, default=0.05,
                        help="fail the job when more than this fraction of utterances is lost")
    parser.add_argument("wav_scp")
    parser.add_argument("out_prefix", help="writes OUT_PREFIX.ark, .scp and .utt2num_frames")


def usable_samples(utt: str, source: str, options, config: str):
    """The utterance's samples, or an AudioError saying why it cannot be used
    (features/usable_audio.py)."""
    samples = load_audio(utt, source, options.sample_frequency, options.allow_resample)
    check_usable(samples, options, f"utterance {utt}: '{source}'", config)
    return samples


class Job:
    """One job's pass over its wav.scp: what was written and what was skipped."""

    def __init__(self, prog: str, args, extractor):
        self.prog, self.args, self.extractor = prog, args, extractor
        self.options = extractor.options
        self.failed, self.num_frames, self.audio_seconds = [], [], 0.0

    def extract(self, entries, writer) -> None:
        for utt, source in entries:
            try:
                samples = usable_samples(utt, source, self.options, self.args.config)
            except AudioError as e:
                print(f"{self.prog}: skipping: {e}", file=sys.stderr)
                self.failed.append(utt)
                continue
            feats = self.extractor(samples)
            writer(utt, feats)
            self.num_frames.append(f"{utt} {feats.shape[0]}")
            self.audio_seconds += len(samples) / self.options.sample_frequency


def write_features(job: Job, entries, ark: str, scp: str) -> None:
    """The ark and a temporary scp; on a write error the partial files are removed (they
    only take space) and the error says what to do."""
    # kaldi_compress writes the bytes kaldiio's WriteHelper writes (compressed: its
    # compression_method=2), the compressed ones much faster (bench/README.md).
    compress = job.args.compress == "true"
    with atomic.job_outputs(ark, f"{scp}.tmp", "feature folder"), \
            kaldi_compress.ArkWriter(ark, f"{scp}.tmp", compress=compress) as writer:
        job.extract(entries, writer)


def run_job(prog: str, args, extractor) -> None:
    """The whole job: args has wav_scp, out_prefix, config, compress, max_fail_fraction."""
    entries = read_scp_lines(args.wav_scp)
    if not entries:
        raise RecipeError(f"{args.wav_scp} lists no utterances")

    ark, scp = f"{args.out_prefix}.ark", f"{args.out_prefix}.scp"
    start = time.time()
    job = Job(prog, args, extractor)
    write_features(job, entries, ark, scp)
    elapsed = time.time() - start
    done = len(entries) - len(job.failed)
    print(f"{prog}: {done} of {len(entries)} utterances, {job.audio_seconds / 3600:.2f} h of "
          f"audio in {elapsed:.1f} s ({job.audio_seconds / max(elapsed, 1e-9):.0f}x real time)")
    if job.failed:
        print(f"{prog}: {len(job.failed)} utterance(s) skipped: {' '.join(job.failed[:20])}"
              + (" ..." if len(job.failed) > 20 else ""), file=sys.stderr)
    if len(job.failed) > args.max_fail_fraction * len(entries):
        raise RecipeError(f"{len(job.failed)} of {len(entries)} utterances in {args.wav_scp} "
                          f"could not be used (more than --max-fail-fraction "
                          f"{args.max_fail_fraction}); fix the audio or wav.scp, or drop them "
                          f"with utils/fix_data_dir.sh")
    # A write error here (a read-only folder, say) is a sentence too, as for the ark.
    with atomic.job_outputs(ark, f"{scp}.tmp", "feature folder"):
        atomic.write_lines(f"{args.out_prefix}.utt2num_frames", job.num_frames,
                           hint="free space and rerun the stage: finished jobs are kept")
        os.replace(f"{scp}.tmp", scp)  # last: the .scp marks the job as done


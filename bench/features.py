"""Feature extraction speed: 16-bit wav on disk -> 161-bin log spectrogram -> ark + scp.

    python bench/features.py [--minutes 10] [--repeats 5] [--regenerate]

Audio seconds per wall second on one core (torch and BLAS held to one thread, as each
compute_spectrogram job is), for the whole job (read, transform, write) and per stage:
  project    what a compute_spectrogram job runs: pytorch_modules.fileio.audio.load_audio and the
             job's checks, features.Spectrogram (frames by unfold, torch.fft.rfft), written by
             pytorch_modules.fileio.kaldi_compress.ArkWriter, float32 or Kaldi-compressed
             (`--compress true`);
  reference  the same pipeline built on a per-utterance loop over
             torchaudio.compliance.kaldi.spectrogram (161 bins: round_to_power_of_two=False),
             written by kaldiio (compression_method=2 for compressed arks), as it would be
             built today; and with the project's writers, so that only the transform differs.
Also the bytes per audio hour of compressed and uncompressed arks, and kaldiio's compressing
writer against ours on the same features.  Test audio (tones, chirps and noise, 16 kHz PCM_16,
3-8 s per file) is generated once into /tmp/bench_features (--regenerate rewrites it).
"""
import argparse
import os

import common
import kaldiio
import numpy as np
import soundfile
import torch
import torchaudio

from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file
from pytorch_modules.fileio.audio import load_audio, rms_dbfs
from pytorch_modules.fileio.kaldi_compress import ArkWriter

ROOT = "/tmp/bench_features"
RATE = 16000


# ---------------------------------------------------------------- test audio
def synthetic_utterance(rng, seconds):
    """Harmonic tones with a gliding pitch, amplitude bursts and background noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = rng.uniform(90, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t) ** 2
    wave = 0.2 * voice * envelope + 0.01 * rng.standard_normal(t.size)
    return np.clip(wave / np.abs(wave).max() * 0.7, -1, 1)


def test_audio(minutes, regenerate=False):
    """wav.scp entries [(utt, path)] of about `minutes` of audio, generated once."""
    def generate(directory):
        rng = np.random.default_rng(0)
        lines, total, index = [], 0.0, 0
        while total < minutes * 60:
            seconds = float(rng.uniform(3, 8))
            utt = f"spk{index % 10:02d}-utt{index:04d}"
            path = f"{directory}/{utt}.wav"
            soundfile.write(path, synthetic_utterance(rng, seconds), RATE, subtype="PCM_16")
            lines.append(f"{utt} {path}\n")
            total, index = total + seconds, index + 1
        with open(f"{directory}/wav.scp", "w") as f:
            f.writelines(lines)

    directory = common.generated_once(f"{ROOT}/wav_{minutes:g}min", generate, regenerate)
    with open(f"{directory}/wav.scp") as f:
        return [tuple(line.split(None, 1)) for line in f.read().splitlines()]


# ---------------------------------------------------------------- the pipelines
def project_options():
    return parse_options_file(os.path.join(common.ROOT, "conf", "spectrogram.conf"))


def read_utterance(utt, path, options):
    """What the job does before the transform: load_audio and its silence check."""
    samples = load_audio(utt, path.strip(), options.sample_frequency)
    rms_dbfs(samples)  # the job compares it with --min-rms-dbfs
    return samples


def torchaudio_transform(options):
    """The reference transform: Kaldi's spectrogram as torchaudio implements it."""
    def transform(samples):
        feats = torchaudio.compliance.kaldi.spectrogram(
            torch.from_numpy(samples)[None], frame_length=options.frame_length,
            frame_shift=options.frame_shift, window_type=options.window_type,
            round_to_power_of_two=False, dither=0.0, preemphasis_coefficient=0.0,
            remove_dc_offset=False, subtract_mean=options.normalize_mean)
        return feats.numpy()
    return transform


def writer_for(kind, ark, scp):
    """An ark+scp writer: kaldiio or ours, compressed (CM) or float32."""
    if kind == "kaldiio":
        return kaldiio.WriteHelper(f"ark,scp:{ark},{scp}")
    if kind == "kaldiio-cm":
        return kaldiio.WriteHelper(f"ark,scp:{ark},{scp}", compression_method=2)
    if kind == "ours":
        return ArkWriter(ark, scp, compress=False)
    if kind == "ours-cm":
        return ArkWriter(ark, scp, compress=True)
    raise ValueError(kind)


def run_job(entries, options, transform, writer_kind):
    """One job over all entries; returns the ark's size in bytes."""
    ark, scp = f"{ROOT}/out.ark", f"{ROOT}/out.scp"
    with writer_for(writer_kind, ark, scp) as writer:
        for utt, path in entries:
            writer(utt, transform(read_utterance(utt, path, options)))
    return os.path.getsize(ark)


# ---------------------------------------------------------------- measurements
def rate(audio_seconds, seconds):
    return audio_seconds / seconds


def stage_rates(entries, options, audio_seconds, repeats):
    """x real time of each stage alone: read, each transform, each writer."""
    ours, reference = Spectrogram(options), torchaudio_transform(options)
    read_s, samples = common.best_of(
        lambda: [read_utterance(u, p, options) for u, p in entries], repeats)
    ours_s, feats = common.best_of(lambda: [ours(s) for s in samples], repeats)
    ref_s, ref_feats = common.best_of(lambda: [reference(s) for s in samples], repeats)
    # Not identical by design: Kaldi and torchaudio put the frame's log energy in bin 0, and
    # floor the power at float32's epsilon where the project's --log-floor is 1e-10.
    close = np.mean(np.concatenate([(np.abs(a[:, 1:] - b[:, 1:]) < 1e-3).ravel()
                                    for a, b in zip(feats, ref_feats)]))
    rates = {"read 16-bit wav (load_audio + checks)": rate(audio_seconds, read_s),
             "transform: features.Spectrogram": rate(audio_seconds, ours_s),
             f"transform: torchaudio ({close:.1%} of bins 1-160 within 1e-3)":
                 rate(audio_seconds, ref_s)}
    import io

    from kaldiio.matio import write_array

    from pytorch_modules.fileio.kaldi_compress import compress

    def kaldiio_compress(matrix):
        write_array(io.BytesIO(), matrix, compression_method=2)

    for function, label in ((kaldiio_compress, "compress alone (no file): kaldiio method 2"),
                            (compress, "compress alone (no file): kaldi_compress")):
        seconds, _ = common.best_of(lambda: [function(m) for m in feats], repeats)
        rates[label] = rate(audio_seconds, seconds)
    for kind, label in (("kaldiio", "write: kaldiio float32"),
                        ("kaldiio-cm", "write: kaldiio compressed (method 2)"),
                        ("ours", "write: kaldi_compress float32"),
                        ("ours-cm", "write: kaldi_compress compressed")):
        seconds, _ = common.best_of(lambda: write_all(feats, entries, kind), repeats)
        rates[label] = rate(audio_seconds, seconds)
    return rates


def write_all(feats, entries, kind):
    with writer_for(kind, f"{ROOT}/w.ark", f"{ROOT}/w.scp") as writer:
        for (utt, _), matrix in zip(entries, feats):
            writer(utt, matrix)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="test audio to generate")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core, as one compute_spectrogram job

    entries = test_audio(args.minutes, args.regenerate)
    options = project_options()
    audio_seconds = sum(soundfile.info(p.strip()).duration for _, p in entries)
    common.banner(f"features: {len(entries)} wav files, {audio_seconds / 60:.1f} min of 16-bit "
                  f"16 kHz audio, one thread")

    print(f"-- whole job (read + transform + write), x real time per core, best of "
          f"{args.repeats}:")
    jobs = {}
    project, reference = Spectrogram(options), torchaudio_transform(options)
    for name, transform, kind in (
            ("project, float32", project, "ours"),
            ("project, compressed", project, "ours-cm"),
            ("reference, kaldiio float32", reference, "kaldiio"),
            ("reference, kaldiio compressed", reference, "kaldiio-cm"),
            ("reference, project's writer, float32", reference, "ours"),
            ("reference, project's writer, compressed", reference, "ours-cm")):
        seconds, size = common.best_of(
            lambda: run_job(entries, options, transform, kind), args.repeats)
        jobs[name] = (rate(audio_seconds, seconds), size)
        common.figure(name, jobs[name][0], "x RT", f"{size / audio_seconds * 3600 / 1e6:.0f} "
                                                    f"MB per audio hour")
    print(f"   {common.load_line()}")

    print("-- ratios:")
    pairs = (("float32: project vs reference", "project, float32",
              "reference, kaldiio float32", 1.5),
             ("compressed: project vs reference", "project, compressed",
              "reference, kaldiio compressed", 1.5),
             ("float32, same writer: transform only", "project, float32",
              "reference, project's writer, float32", None),
             ("compressed, same writer: transform only", "project, compressed",
              "reference, project's writer, compressed", None))
    for label, ours, theirs, target in pairs:
        common.ratio(label, jobs[ours][0], jobs[theirs][0], target)
    print("   (issue target: >= 3,000x real time per core end to end)")

    print("-- stages alone, x real time per core:")
    for label, value in stage_rates(entries, options, audio_seconds, args.repeats).items():
        common.figure(label, value, "x RT")
    print(f"   {common.load_line()}")


if __name__ == "__main__":
    main()

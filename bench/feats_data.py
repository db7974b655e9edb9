"""A generated Kaldi training data dir (feats.scp + arks, utt2spk, spk2utt, utt2num_frames)
for bench/training.py and bench/memory.py, cached under /tmp/bench_feats.

Features are random 161-bin matrices of 3-8 s (300-800 frames, or fewer), written float32 (the
recipe's default) or Kaldi-compressed (`--compress true`), over several arks as `--nj` jobs
write them.
The reading cost does not depend on the values, only on the sizes and the format.
"""
import os

import common
import numpy as np

from pytorch_modules.fileio.kaldi_compress import ArkWriter

BINS = 161


def training_dir(num_utts, speakers=100, compressed=False, num_arks=4, regenerate=False,
                 root="/tmp/bench_feats", seed=0, max_frames=800):
    """The data dir's path, generated once for these sizes (utterances of 300..max_frames)."""
    name = (f"u{num_utts}_s{speakers}_{'cm' if compressed else 'fm'}_a{num_arks}"
            f"_f{max_frames}")
    return common.generated_once(
        f"{root}/{name}",
        lambda directory: write_data_dir(directory, num_utts, speakers, compressed, num_arks,
                                         seed, max_frames),
        regenerate)


def write_data_dir(directory, num_utts, speakers, compressed, num_arks, seed, max_frames):
    rng = np.random.default_rng(seed)
    utts = sorted(f"spk{i % speakers:04d}-utt{i:07d}" for i in range(num_utts))
    frames = rng.integers(300, max_frames + 1, size=num_utts)
    scp_lines = []
    for job, block in enumerate(np.array_split(np.arange(num_utts), num_arks), 1):
        ark, scp = f"{directory}/raw_spec.{job}.ark", f"{directory}/raw_spec.{job}.scp"
        with ArkWriter(ark, scp, compress=compressed) as writer:
            for index in block.tolist():
                feats = rng.standard_normal((int(frames[index]), BINS), dtype=np.float32)
                writer(utts[index], feats)
        with open(scp) as f:
            scp_lines.append(f.read())
        os.remove(scp)
    write(f"{directory}/feats.scp", "".join(scp_lines))
    write(f"{directory}/utt2num_frames", "".join(f"{u} {n}\n" for u, n in zip(utts, frames)))
    write(f"{directory}/utt2spk", "".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    by_speaker = {}
    for u in utts:
        by_speaker.setdefault(u.split("-")[0], []).append(u)
    write(f"{directory}/spk2utt", "".join(f"{s} {' '.join(us)}\n"
                                          for s, us in sorted(by_speaker.items())))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)

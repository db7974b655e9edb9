"""Small inputs for the tests of failures and restarts: data dirs, audio, a scratch recipe, a
tiny training config, and a way to run the recipe's entry points and stages.

Everything is made in the test's tmp_path and kept tiny (the machine has 2 shared cores).
"""
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import soundfile
import torch

from test_recipe_run import LINKED, ROOT

RATE = 16000
# The brief's tiny model: trains in a few hundredths of a second per step on one thread.
TINY_TRAIN_CONFIG = """\
model: {{widths: [4, 8, 8, 8], blocks: [1, 1, 1, 1], embedding_dim: 16}}
loss: {{type: dam_softmax, margin: 0.2, scale: 30, lambda: 2}}
data: {{crop_frames: 40, batch_size: 4, num_workers: {num_workers}}}
optim: {{epochs: {epochs}, lr: 0.01, final_lr: 0.001{optim}}}
training: {{seed: 5, threads: 1, log_every_steps: 5, checkpoint_every_steps: 2, \
keep_checkpoints: {keep}}}
"""


def env():
    """The recipe's environment for a subprocess (path.sh's variables, one thread)."""
    return {**os.environ, "LC_ALL": "C", "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_python(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python ARGS...` with the recipe's environment; never raises on failure."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd or ROOT, env=env(),
                          capture_output=True, text=True)


# ---- data dirs --------------------------------------------------------------------------------

def write_lines(path: Path, lines) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def write_speaker_files(data: Path, utts) -> None:
    """utt2spk and spk2utt for speaker-prefixed ids like spk1-003."""
    data.mkdir(parents=True, exist_ok=True)
    utts = sorted(utts)
    write_lines(data / "utt2spk", [f"{u} {u.split('-')[0]}" for u in utts])
    speakers = {}
    for u in utts:
        speakers.setdefault(u.split("-")[0], []).append(u)
    write_lines(data / "spk2utt", [f"{s} {' '.join(us)}" for s, us in sorted(speakers.items())])


def utt_ids(num_speakers: int, utts_per_speaker: int) -> list[str]:
    return [f"spk{s}-{i:03d}" for s in range(1, num_speakers + 1) for i in range(utts_per_speaker)]


def write_feature_dir(data: Path, num_speakers=4, utts_per_speaker=6, frames=(50, 90),
                      special=None, seed=0, bins=161) -> dict:
    """A training data dir with random features in one ark: feats.scp, utt2num_frames,
    utt2spk, spk2utt.  `special` maps utterance ids to arrays that replace their features
    (too short, NaN, ...).  Returns utt -> features."""
    rng = np.random.default_rng(seed)
    feats = {u: rng.standard_normal((int(rng.integers(*frames)), bins)).astype(np.float32)
             for u in utt_ids(num_speakers, utts_per_speaker)}
    feats.update(special or {})
    write_speaker_files(data, feats)
    ark = data / "feats.ark"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{data / 'feats.scp'}") as writer:
        for utt in sorted(feats):
            writer(utt, feats[utt])
    write_lines(data / "utt2num_frames", [f"{u} {feats[u].shape[0]}" for u in sorted(feats)])
    return feats


def write_train_config(path: Path, epochs=2, num_workers=0, keep=3, optim="") -> Path:
    """`optim`: more keys of the optim section, e.g. ", warmup_epochs: 1.0"."""
    path.write_text(TINY_TRAIN_CONFIG.format(epochs=epochs, num_workers=num_workers, keep=keep,
                                             optim=optim))
    return path


def train(config: Path, data: Path, exp: Path) -> subprocess.CompletedProcess:
    return run_python("-m", "pytorch_modules.bin.train", "--config", config, data, exp)


def write_tiny_model(path: Path, seed: int = 0) -> Path:
    """A final.pt as training writes it (model, config, speakers), untrained (initialised from
    `seed`): embeddings only need to be computed here, not to be good."""
    from pytorch_modules.config import config_from_dict
    from pytorch_modules.models import build_model

    config = config_from_dict({"model": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1],
                                         "embedding_dim": 16}})
    torch.manual_seed(seed)
    model = build_model(config.model).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": config.to_dict(),
                "speakers": ["spk1", "spk2"]}, path)
    return path


# ---- audio ------------------------------------------------------------------------------------

def tone(seconds=0.5, rate=RATE, channels=1, level=0.1, seed=0) -> np.ndarray:
    """Noise with a tone: real-looking audio, (samples,) or (samples, channels)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = level * (np.sin(2 * np.pi * 440 * np.arange(n) / rate) + 0.3 * rng.standard_normal(n))
    x = x.astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


def write_wav(path: Path, samples: np.ndarray, rate=RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


def write_audio_dir(data: Path, sources: dict) -> None:
    """A data dir of wav.scp, utt2spk, spk2utt for utt -> wav.scp source (path or pipe)."""
    write_speaker_files(data, sources)
    write_lines(data / "wav.scp", [f"{u} {sources[u]}" for u in sorted(sources)])


def good_audio_dir(data: Path, audio: Path, num_speakers=2, utts_per_speaker=5) -> dict:
    """A data dir of short, good wav files; returns utt -> path."""
    sources = {}
    for n, utt in enumerate(utt_ids(num_speakers, utts_per_speaker)):
        sources[utt] = str(write_wav(audio / f"{utt}.wav", tone(0.3 + 0.02 * n, seed=n)))
    write_audio_dir(data, sources)
    return sources


# ---- a scratch recipe dir -----------------------------------------------------------------------

def scratch_recipe(work: Path) -> Path:
    """A folder that links to the project's code, as tests/test_recipe_run.py makes it: data/,
    feats/ and exp/ in it are the test's own."""
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    return work


def recipe_with_audio(work: Path, num_speakers: int, utts_per_speaker: int, write_audio):
    """A scratch recipe whose data/x holds num_speakers x utts_per_speaker utterances, with
    stage-2 features (steps/make_spectrogram.sh).  write_audio(n, utt, folder) writes the n-th
    utterance's audio under `folder` and returns its wav.scp source (a path or a pipe).
    Returns (recipe, {utt: source})."""
    recipe = scratch_recipe(work / "recipe")
    (work / "audio").mkdir(parents=True, exist_ok=True)
    sources = {utt: write_audio(n, utt, work / "audio")
               for n, utt in enumerate(utt_ids(num_speakers, utts_per_speaker))}
    write_audio_dir(recipe / "data/x", sources)
    result = run_script(recipe, "steps/make_spectrogram.sh", "--nj", "1", "data/x", "feats")
    assert result.returncode == 0, result.stderr
    return recipe, sources


def run_script(recipe: Path, *args) -> subprocess.CompletedProcess:
    """A recipe script (steps/..., utils/...) run in the scratch recipe; never raises."""
    return subprocess.run([str(a) for a in args], cwd=recipe, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def read_table(path: Path) -> dict:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())

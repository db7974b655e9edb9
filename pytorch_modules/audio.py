"""Reading audio named by Kaldi wav.scp entries.

An entry is either a file path (anything libsndfile reads: wav, flac, ...) or, as in Kaldi, a
shell command ending in '|' whose standard output is a wav file (used for VoxCeleb2's m4a through
ffmpeg).  wav.scp is trusted input, exactly as in Kaldi: a pipe entry runs as a shell command
with the user's rights, so only use wav.scp files you wrote or checked.
"""
import io
import subprocess

import numpy as np
import soundfile

from pytorch_modules.errors import RecipeError


class AudioError(RecipeError):
    """Audio that cannot be used; the message names the utterance and the source."""


def read_scp_lines(path) -> list[tuple[str, str]]:
    """(key, value) pairs of a Kaldi scp/table file: first field, then the rest of the line."""
    pairs = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, value = line.partition(" ")
            if not value.strip():
                raise RecipeError(f"{path}:{number}: expected '<id> <value>', got '{line}'")
            pairs.append((key, value.strip()))
    return pairs


def _read_source(source: str) -> tuple[np.ndarray, int]:
    if source.endswith("|"):
        command = source[:-1]
        result = subprocess.run(["bash", "-c", command], capture_output=True)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip().splitlines()
            raise AudioError(f"command '{command}' failed with code {result.returncode}"
                             + (f": {stderr[-1]}" if stderr else ""))
        return soundfile.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    return soundfile.read(source, dtype="float32", always_2d=True)


def load_audio(utt: str, source: str, sample_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of `utt` from its wav.scp `source`."""
    try:
        samples, rate = _read_source(source)
    except AudioError as e:
        raise AudioError(f"utterance {utt}: {e}") from None
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"utterance {utt}: cannot read audio from '{source}': {e}") from None
    if rate != sample_rate:
        raise AudioError(f"utterance {utt}: '{source}' has sample rate {rate} Hz, but the feature "
                         f"config expects {sample_rate} Hz; resample the corpus or change "
                         f"--sample-frequency")
    if samples.shape[1] != 1:
        raise AudioError(f"utterance {utt}: '{source}' has {samples.shape[1]} channels; the recipe "
                         f"needs mono audio (select one channel in wav.scp, e.g. with sox ... remix 1 |)")
    if samples.shape[0] == 0:
        raise AudioError(f"utterance {utt}: '{source}' holds no samples")
    return samples[:, 0]

"""Reading audio named by Kaldi wav.scp entries.

An entry is either a file path (anything libsndfile reads: wav, flac, ...) or, as in Kaldi, a
shell command ending in '|' whose standard output is a wav file (used for VoxCeleb2's m4a through
ffmpeg).  wav.scp is trusted input, exactly as in Kaldi: a pipe entry runs as a shell command
with the user's rights, so only use wav.scp files you wrote or checked.

Wav written to a pipe: a program writing wav to stdout cannot seek back to fill in the RIFF and
data chunk sizes once it knows them, so it writes placeholders.  ffmpeg writes 0xFFFFFFFF (what
local/prepare_voxceleb2.py's `ffmpeg ... -f wav - |` entries produce), other tools write 0.
libsndfile reads 0xFFFFFFFF as "up to the end" but 0 as an empty file, so before decoding a
pipe's output both placeholders (and a data size larger than what arrived) are replaced by the
sizes of the bytes actually received: the data runs to the end of the stream, as in Kaldi's
wav reader ("stream mode").  Pipes deliver wav rather than headerless raw samples so that the
sample rate and channel count can still be checked, and any tool that writes wav to stdout
(ffmpeg, sox, Kaldi's programs) can be used in wav.scp.
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
        stream = io.BytesIO(fix_streamed_wav_sizes(result.stdout))
        return soundfile.read(stream, dtype="float32", always_2d=True)
    return soundfile.read(source, dtype="float32", always_2d=True)


# Sizes a wav writer puts in a header it cannot complete (see the module docstring).
_STREAMED_SIZES = (0, 0xFFFFFFFF)


def fix_streamed_wav_sizes(data: bytes) -> bytes:
    """`data` with the RIFF size and a placeholder (or too large) data chunk size set to the
    bytes that are there.  Anything that is not RIFF/WAVE (flac on stdout, say) is returned
    unchanged for libsndfile to judge."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    fixed = bytearray(data)
    position = 12
    while position + 8 <= len(fixed):  # walk the chunks up to 'data'
        chunk_id = bytes(fixed[position:position + 4])
        size = int.from_bytes(fixed[position + 4:position + 8], "little")
        body = position + 8
        if chunk_id == b"data":
            available = len(fixed) - body
            if size in _STREAMED_SIZES or size > available:
                fixed[position + 4:position + 8] = _size_field(available)
            break
        position = body + size + (size & 1)  # chunk bodies are padded to even length
    fixed[4:8] = _size_field(len(fixed) - 8)
    return bytes(fixed)


def _size_field(size: int) -> bytes:
    return min(size, 0xFFFFFFFF).to_bytes(4, "little")


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

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

Bad audio is an AudioError naming the utterance and the source: a missing, empty or unreadable
file, a wav file cut short (its header promises more samples than it holds: a broken copy,
which libsndfile would read silently up to the cut), a sample rate other than the feature
config's (unless resampling is allowed) or several channels.  Whether the samples can give
features (none, NaN, too few, silent) is features/usable_audio.py's rule.
"""
import io
import math
import os
import subprocess

import numpy as np
import soundfile

from pytorch_modules.errors import RecipeError


class AudioError(RecipeError):
    """Audio that cannot be used; the message names the utterance and the source."""


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
    return read_file(source)


def read_file(path: str) -> tuple[np.ndarray, int]:
    """Samples (float32, frames x channels) and rate of an audio file, checked first for what
    libsndfile would misreport or miss (see _check_file): the one file reader of the corpus
    stages and of pytorch_modules.deploy.verification, which add their own rules on channels
    and rates."""
    try:
        _check_file(path)
        with soundfile.SoundFile(path) as f:
            return read_samples(f), f.samplerate
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:  # OSError: a folder, no rights
        raise AudioError(f"cannot read audio file '{path}' ({e}); check that it is an "
                         f"undamaged audio file libsndfile reads (wav, flac, ...)") from None


def read_samples(f: soundfile.SoundFile, count: int = -1) -> np.ndarray:
    """`count` (-1: all the rest) float32 samples (frames x channels) of an open audio file
    from where it stands.  16-bit PCM is read as int16 and scaled by 1/32768: the very samples
    libsndfile's float conversion gives, in half the time (VoxCeleb and most corpora are
    16-bit)."""
    if f.subtype == "PCM_16":
        return f.read(count, dtype="int16", always_2d=True) * np.float32(1 / 32768)
    return f.read(count, dtype="float32", always_2d=True)


# Enough of a wav file to hold its header chunks up to 'data' (they are a few dozen bytes,
# a few kilobytes with metadata).
_HEADER_BYTES = 65536


def _check_file(path: str) -> None:
    """Plain words for what libsndfile would report as 'System error' or 'Format not
    recognised', and for a wav file cut short, which libsndfile reads without complaint."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise AudioError(f"audio file '{path}' does not exist; check its path (in wav.scp: "
                         f"also the corpus root given to data preparation)") from None
    if size == 0:
        raise AudioError(f"audio file '{path}' is empty (0 bytes); copy it again from the corpus")
    with open(path, "rb") as f:
        header = f.read(_HEADER_BYTES)
    chunk = _wav_data_chunk(header)
    if chunk is None:
        return
    body, declared = chunk
    available = size - body
    if declared not in _STREAMED_SIZES and declared > available:
        raise AudioError(f"audio file '{path}' is truncated: its header announces {declared} "
                         f"bytes of samples but the file holds {max(available, 0)}; copy it "
                         f"again from the corpus (a partial download or copy)")


# Sizes a wav writer puts in a header it cannot complete (see the module docstring).
_STREAMED_SIZES = (0, 0xFFFFFFFF)


def _wav_data_chunk(data) -> tuple[int, int] | None:
    """(offset of the samples, declared size of the 'data' chunk) of RIFF/WAVE bytes, or None
    when `data` is not RIFF/WAVE or ends before the 'data' chunk's header."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= len(data):  # walk the chunks up to 'data'
        size = int.from_bytes(data[position + 4:position + 8], "little")
        if data[position:position + 4] == b"data":
            return position + 8, size
        position += 8 + size + (size & 1)  # chunk bodies are padded to even length
    return None


def fix_streamed_wav_sizes(data: bytes) -> bytes:
    """`data` with the RIFF size and a placeholder (or too large) data chunk size set to the
    bytes that are there.  Anything that is not RIFF/WAVE (flac on stdout, say) is returned
    unchanged for libsndfile to judge."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    fixed = bytearray(data)
    chunk = _wav_data_chunk(fixed)
    if chunk is not None:
        body, size = chunk
        available = len(fixed) - body
        if size in _STREAMED_SIZES or size > available:
            fixed[body - 4:body] = _size_field(available)
    fixed[4:8] = _size_field(len(fixed) - 8)
    return bytes(fixed)


def _size_field(size: int) -> bytes:
    return min(size, 0xFFFFFFFF).to_bytes(4, "little")


def load_audio(utt: str, source: str, sample_rate: int, allow_resample: bool = False) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of `utt` from its wav.scp `source`, at `sample_rate`.

    Audio at another rate is an error unless allow_resample (the feature config's
    --allow-resample=true): a corpus at the wrong rate is usually a mistake worth hearing about.
    """
    try:
        samples, rate = _read_source(source)
    except AudioError as e:
        raise AudioError(f"utterance {utt}: {e}") from None
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"utterance {utt}: cannot read audio from '{source}' ({e}); check that "
                         f"it is an undamaged audio file libsndfile reads "
                         f"(wav, flac, ...)") from None
    if samples.shape[1] != 1:
        raise AudioError(f"utterance {utt}: '{source}' has {samples.shape[1]} channels; the recipe "
                         f"needs mono audio (select one channel in wav.scp, e.g. with sox ... "
                         f"remix 1 |)")
    if rate != sample_rate and samples.shape[0]:
        if not allow_resample:
            raise AudioError(f"utterance {utt}: '{source}' has sample rate {rate} Hz, but the "
                             f"feature config expects {sample_rate} Hz; resample the corpus, or "
                             f"put --allow-resample=true in the feature config to resample "
                             f"while extracting (or change --sample-frequency)")
        return resample(samples[:, 0], rate, sample_rate)
    return samples[:, 0]


def resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited (sinc) resampling with torchaudio; imported here because only corpora at
    another rate need it, and data preparation imports this module without torch."""
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(samples), rate, new_rate).numpy()


def rms_dbfs(samples: np.ndarray) -> float:
    """The RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS);
    -inf for digital silence."""
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10 * math.log10(power) if power > 0 else -math.inf

"""The material augmentation mixes into a training crop (pytorch_modules/data/augment.py): room
impulse responses, noise, music and babble, read from the file lists a config names
(augment.rir_list, noise_list, music_list, babble_list), or, for babble without a list, other
training speakers' utterances.  Each file is read only for the stretch a crop needs."""
import os

import numpy as np
import soundfile

from pytorch_modules.data import audio_crops
from pytorch_modules.errors import RecipeError

# config key -> what its files are, for messages, and how to make the list.
LISTS = {
    "rir_list": ("room impulse response", "local/make_simulated_rirs.py OUT_DIR writes "
                 "OUT_DIR/rir.list; ./run.sh --rirs-root lists RIRS_NOISES/simulated_rirs"),
    "noise_list": ("noise", "./run.sh --musan-root MUSAN writes data/musan/noise.list"),
    "music_list": ("music", "./run.sh --musan-root MUSAN writes data/musan/music.list"),
    "babble_list": ("speech", "./run.sh --musan-root MUSAN writes data/musan/speech.list"),
}


def read_file_list(key: str, path: str) -> list[str]:
    """The audio files of a list (one path per line, blank lines skipped), each checked."""
    what, how = LISTS[key]
    try:
        with open(path) as f:
            lines = [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]
    except OSError as e:
        raise RecipeError(f"cannot read augment.{key} {path} ({e.strerror}); {how}") from None
    for number, file in lines:
        if not os.path.isfile(file):
            raise RecipeError(f"{path} line {number}: {what} file {file} does not exist")
    if not lines:
        raise RecipeError(f"augment.{key} {path} lists no {what} files")
    return [file for _, file in lines]


def read_lists(options) -> dict:
    """{config key: files} of the lists `options` (config.AugmentConfig) names."""
    return {key: read_file_list(key, getattr(options, key)) for key in LISTS
            if getattr(options, key)}


class AugmentSources:
    """What augment() mixes into one crop of training speaker `label` of `data`."""

    def __init__(self, data, label: int):
        self.data, self.label = data, label
        self.files = data.augment_files or {}
        self.rate = data.source.options.sample_frequency

    def room_response(self, rng) -> np.ndarray:
        path = self._draw("rir_list", rng)
        try:
            rir, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise RecipeError(f"cannot read the room impulse response {path} ({e}); check the "
                              f"files of augment.rir_list") from None
        if rate != self.rate:
            raise RecipeError(f"the room impulse response {path} is at {rate} Hz, but the "
                              f"features are at {self.rate} Hz; resample the impulse responses")
        return rir[:, 0]

    def noise(self, length: int, rng):
        """A stretch of a noise file, or None without a noise_list (generated noise then)."""
        return self._stretch(self._draw("noise_list", rng), length, rng) \
            if "noise_list" in self.files else None

    def music(self, length: int, rng) -> np.ndarray:
        return self._stretch(self._draw("music_list", rng), length, rng)

    def babble(self, count: int, length: int, rng) -> np.ndarray:
        """(count, length): stretches of babble_list files, or of other training speakers."""
        if "babble_list" in self.files:
            return np.stack([self._stretch(self._draw("babble_list", rng), length, rng)
                             for _ in range(count)])
        return np.stack([self._other_speaker(length, rng) for _ in range(count)])

    def _draw(self, key: str, rng) -> str:
        files = self.files[key]
        return files[int(rng.integers(len(files)))]

    def _stretch(self, path: str, length: int, rng) -> np.ndarray:
        """`length` samples from a random place in `path` (repeated when it is shorter)."""
        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise RecipeError(f"cannot read the augmentation audio {path} ({e})") from None
        return self._read(path, path, info.frames, length, rng)

    def _other_speaker(self, length: int, rng) -> np.ndarray:
        data = self.data
        j = int(rng.integers(len(data)))
        while data.labels[j] == self.label:   # a training set has at least two speakers
            j = int(rng.integers(len(data)))
        available = audio_crops.num_samples(int(data.num_frames[j]), data.source.options)
        return self._read(data.utts[j], data.source.paths[j], available, length, rng)

    def _read(self, name: str, path: str, available: int, length: int, rng) -> np.ndarray:
        first = int(rng.integers(max(available - length, 0) + 1))
        samples = audio_crops.read_samples(name, path, first, min(length, available), self.rate)
        return np.resize(samples, length)

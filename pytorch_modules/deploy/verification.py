"""Speaker verification with a trained model, outside the recipe: audio files in, embeddings
and accept/reject decisions out (pytorch_modules.bin.verify, .embed, .calibrate).

Audio goes through the training features exactly: the file is read with libsndfile (wav, flac,
ogg, mp3, ...), mixed down to mono when it has several channels, resampled to the feature
config's rate (16 kHz for the paper's features) when it has another, then turned into the same
161-bin log spectrogram as in training (pytorch_modules/features/spectrogram.py) and embedded whole.

The decision threshold lives next to the model in a small `key value` sidecar,
`<model without .pt>.threshold` (exp/m/final.threshold for exp/m/final.pt), written by
pytorch_modules.bin.calibrate from scores of development trials; a trial is accepted when its
cosine score is >= the threshold (the convention of pytorch_modules/scoring/metrics.py).
"""
import re
from pathlib import Path

import numpy as np

from pytorch_modules.fileio.audio import read_file, resample
from pytorch_modules.features.usable_audio import check_usable
from pytorch_modules.models.embedding import (MIN_FRAMES, check_min_frames, embed,
                                              load_trained_model, padding_note)
from pytorch_modules.errors import RecipeError
from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file
from pytorch_modules.scoring.metrics import compute_eer, compute_min_dcf

FEAT_CONFIG_NAME = "spectrogram.conf"
THRESHOLD_SUFFIX = ".threshold"


def locate_feature_config(model_path, feat_config=None, trained_with=None) -> Path:
    """The feature options a model was trained with: --feat-config when given, else a
    spectrogram.conf next to the model (an exported model dir keeps one), else the file its
    training config names (data.spectrogram_config, relative to the recipe dir it ran in)."""
    if feat_config is not None:
        path = Path(feat_config)
        if not path.is_file():
            raise RecipeError(f"feature config {path} does not exist; give the "
                              f"spectrogram.conf the model was trained with.")
        return path
    beside = Path(model_path).parent / FEAT_CONFIG_NAME
    if beside.is_file():
        return beside
    if trained_with is not None and Path(trained_with).is_file():
        return Path(trained_with)
    raise RecipeError(f"no feature options for {model_path}: there is no {FEAT_CONFIG_NAME} "
                      f"beside it, and its training config's {trained_with} is not here; give "
                      f"--feat-config with the spectrogram.conf the model was trained with.")


def read_audio_file(path, options, config):
    """Mono float32 samples of an audio file at the feature options' rate, and notes on what
    was changed (mixed down, resampled) for the user.  Unlike the corpus stages (load_audio), a
    user's recording may have several channels or another rate: it is adapted, and the user
    told.  Audio that cannot give an embedding is refused as the feature stage refuses it
    (features/usable_audio.py), naming the file."""
    path = str(path)
    samples, rate = read_file(path)
    notes = []
    if samples.shape[1] > 1:
        # The channels of a recording hold the same speaker; their average keeps all of them.
        notes.append(f"{path}: mixed {samples.shape[1]} channels down to mono")
    mono = samples.mean(axis=1)
    if rate != options.sample_frequency and mono.size:
        notes.append(f"{path}: resampled from {rate} Hz to {options.sample_frequency} Hz")
        mono = resample(mono, rate, options.sample_frequency)
    check_usable(mono, options, f"audio file '{path}'", config)
    return mono, notes


class Embedder:
    """A trained model with its feature pipeline: audio file -> embedding, on the CPU.
    Shorter recordings than min_frames of features are repeat-padded to it, with a note (the
    rule of embedding extraction, models/embedding.py)."""

    def __init__(self, model_path, feat_config=None, min_frames=MIN_FRAMES):
        self.model_path = Path(model_path)
        self.model, config = load_trained_model(self.model_path)
        self.feat_config = locate_feature_config(self.model_path, feat_config,
                                                 config.data.spectrogram_config)
        self.options = parse_options_file(self.feat_config)
        self.spectrogram = Spectrogram(self.options)
        self.min_frames = check_min_frames(min_frames)

    def embed_file(self, path):
        """(embedding (dim,) float32, notes) of a whole audio file."""
        samples, notes = read_audio_file(path, self.options, self.feat_config)
        feats = self.spectrogram(samples)
        if feats.shape[0] < self.min_frames:
            notes.append(f"{path}: {padding_note(feats.shape[0], self.min_frames)}")
        return embed(self.model, feats, min_frames=self.min_frames), notes


def cosine(a, b):
    """Cosine similarity of two embeddings (the recipe's back-end)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if not np.isfinite(norm) or norm == 0:
        # Unusable audio is refused before (check_usable): this is the model's own doing.
        raise RecipeError("an embedding is zero or not finite, so the cosine score is "
                          "undefined; the model's weights may be damaged: check the model.")
    return float(np.dot(a, b) / norm)


# --operating-point mindcfP of bin/calibrate.py: P is the target prior.
_MINDCF = re.compile(r"^mindcf(0?\.\d+)$")


def operating_threshold(scores, labels, operating_point):
    """(threshold, extra sidecar entries) of labelled scores at an operating point: eer, the
    threshold of the equal-error-rate point, or mindcfP, where the normalised detection cost at
    p_target P is lowest."""
    if operating_point == "eer":
        eer, threshold = compute_eer(scores, labels)
        return threshold, {"eer_percent": f"{100 * eer:.4f}"}
    match = _MINDCF.match(operating_point)
    if not match:
        raise RecipeError(f"unknown --operating-point {operating_point!r}: use eer or mindcfP "
                          f"with P the target prior, e.g. mindcf0.01.")
    p_target = float(match.group(1))
    min_dcf, threshold = compute_min_dcf(scores, labels, p_target)
    if threshold == float("inf"):
        raise RecipeError(f"at p_target {p_target:g} rejecting every trial costs least on these "
                          f"scores, so there is no threshold to store; use --operating-point eer.")
    return threshold, {"p_target": f"{p_target:g}", "min_dcf": f"{min_dcf:.4f}"}


def threshold_path(model_path) -> Path:
    """exp/m/final.pt -> exp/m/final.threshold."""
    return Path(model_path).with_suffix(THRESHOLD_SUFFIX)


def write_threshold(path, entries: dict) -> None:
    """The sidecar: a comment line, then `key value` lines (threshold first)."""
    path = Path(path)
    lines = ["# decision threshold for pytorch_modules.bin.verify: accept when the cosine "
             "score >= threshold"] + [f"{key} {value}" for key, value in entries.items()]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_threshold(path) -> dict:
    """The sidecar's entries, with `threshold` as a float."""
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            if not value:
                raise RecipeError(f"{path}:{line_no}: expected 'KEY VALUE', got {line.rstrip()!r}; "
                                  f"write it again with pytorch_modules.bin.calibrate.")
            entries[key] = value.strip()
    try:
        entries["threshold"] = float(entries["threshold"])
    except (KeyError, ValueError):
        raise RecipeError(f"{path} holds no numeric 'threshold' line; write it again with "
                          f"pytorch_modules.bin.calibrate.") from None
    return entries

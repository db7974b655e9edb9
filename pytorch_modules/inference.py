"""Inference with a trained model: loading final.pt, and embedding features or audio files;
what embedding extraction (stage 4), verify, embed, calibrate and export share.  It depends on
models, features and fileio only, nothing of training or of the config parser: a model file is
read with its own saved config.

Audio goes through the training features exactly: the file is read with libsndfile (wav, flac,
ogg, mp3, ...), mixed down to mono when it has several channels, resampled to the feature
config's rate (16 kHz for the paper's features) when it has another, checked as the feature
stage checks audio (features/usable_audio.py), then turned into the training features
(features/spectrogram.py) and embedded whole.
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pytorch_modules.errors import RecipeError
from pytorch_modules.features.frames import crop_or_pad
from pytorch_modules.features.spectrogram import Spectrogram, parse_options_file
from pytorch_modules.features.usable_audio import check_usable
from pytorch_modules.fileio import checkpoint_file
from pytorch_modules.fileio.audio import read_file, resample
from pytorch_modules.models import BACKBONES

FEAT_CONFIG_NAME = "spectrogram.conf"

# The ResCNN halves time four times (ResNet34 three times, ECAPA-TDNN never); shorter inputs
# are repeated up to this many frames so every stage still sees a few frames (only matters for
# utterances under a third of a second).
# It is the least minimum: extraction may pad short utterances to a longer one (--min-frames),
# and says how many it padded.
MIN_FRAMES = 32


def check_min_frames(min_frames: int) -> int:
    if min_frames < MIN_FRAMES:
        raise RecipeError(f"--min-frames is {min_frames}, but the networks need at least "
                          f"{MIN_FRAMES} frames (they halve time up to four times)")
    return min_frames


def padding_note(frames: int, min_frames: int) -> str:
    """What happened to features shorter than the minimum, for the user."""
    return (f"{frames} frames ({frames / 100:.2f} s at 10 ms), shorter than the {min_frames}-"
            f"frame minimum: repeated to {min_frames} frames before embedding")


def load_trained_model(path, device="cpu") -> tuple[nn.Module, dict]:
    """The embedding network of a final.pt (or of a training checkpoint), in eval mode on
    `device`, and the training config it was saved with (the YAML form, a dict); loaded with
    weights_only=True, so the file cannot run code."""
    state = checkpoint_file.load(path, "give the final.pt that training wrote (exp/<model>/"
                                 "final.pt), or train the model again (./run.sh --stage 3)")
    if not isinstance(state, dict) or not {"model", "config"} <= state.keys():
        raise RecipeError(f"{path} is not a model written by training (it lacks the 'model' "
                          f"and 'config' entries); give exp/<model>/final.pt.")
    model = _network(state["config"].get("model") or {}, path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:   # weights of another shape: another version of a network
        raise RecipeError(f"{path}: its weights do not fit the network its config describes "
                          f"({str(e).splitlines()[0]}); it was written by another version of "
                          f"the recipe") from None
    return model.to(device).eval(), state["config"]


def _network(section: dict, path) -> nn.Module:
    """The backbone a saved config's model section names, built with its options (checked when
    the model was trained)."""
    options = dict(section)
    kind = options.pop("type", "rescnn")
    if kind not in BACKBONES:
        raise RecipeError(f"{path} holds a {kind!r} network, which this version of the recipe "
                          f"does not have (it has {', '.join(BACKBONES)})")
    try:
        return BACKBONES[kind](**options)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{path}: its {kind} options do not fit this version of the recipe "
                          f"({e}); use the version that trained it") from None


def load_embedding_model(path, device="cpu") -> nn.Module:
    """The embedding network alone (load_trained_model)."""
    return load_trained_model(path, device)[0]


# Which vector of the network is the embedding: the output of the embedding BatchNorm (bn, the
# default: it scored better on real speech, README "Which vector is scored") or the FC output
# in front of it (fc).  The same vector when the model has no embedding BatchNorm.
LAYERS = ("bn", "fc")


@torch.inference_mode()
def embed(model: nn.Module, feats: np.ndarray, layer: str = "bn",
          min_frames: int = MIN_FRAMES) -> np.ndarray:
    """(frames, bins) features of one whole utterance -> (embedding_dim,) float32, computed on
    the model's device, taken at `layer` (LAYERS); features shorter than `min_frames` are
    repeated up to it (callers say so: padding_note)."""
    if feats.shape[0] < min_frames:
        feats = crop_or_pad(feats, 0, min_frames)
    x = torch.from_numpy(np.ascontiguousarray(feats.T, dtype=np.float32))[None]
    x = x.to(next(model.parameters()).device)
    return (model(x) if layer == "bn" else model.fc_output(x))[0].cpu().numpy()


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
                      f"beside it, and its training config's data.spectrogram_config "
                      f"{trained_with} is not here; give --feat-config with the spectrogram.conf "
                      f"the model was trained with.")


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
    rule of embedding extraction)."""

    def __init__(self, model_path, feat_config=None, min_frames=MIN_FRAMES):
        self.model_path = Path(model_path)
        self.model, config = load_trained_model(self.model_path)
        self.feat_config = locate_feature_config(self.model_path, feat_config,
                                                 (config.get("data") or {}).get(
                                                     "spectrogram_config",
                                                     "conf/spectrogram.conf"))
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

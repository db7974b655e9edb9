"""Speaker embeddings of full-length utterances with a trained network (EXP_DIR/final.pt)."""
import numpy as np
import torch
from torch import nn

from pytorch_modules.training import checkpoints
from pytorch_modules.config import Config, config_from_dict
from pytorch_modules.data.training_set import crop_or_pad
from pytorch_modules.errors import RecipeError
from pytorch_modules.models import build_model

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


def load_trained_model(path, device="cpu") -> tuple[nn.Module, Config]:
    """The embedding network of a final.pt (or of a training checkpoint), in eval mode on
    `device`, and the training config it was trained with; loaded with weights_only=True, so
    the file cannot run code."""
    state = checkpoints.load(path, "give the final.pt that training wrote (exp/<model>/"
                             "final.pt), or train the model again (./run.sh --stage 3)")
    if not isinstance(state, dict) or not {"model", "config"} <= state.keys():
        raise RecipeError(f"{path} is not a model written by training (it lacks the 'model' "
                          f"and 'config' entries); give exp/<model>/final.pt.")
    config = config_from_dict(state["config"], source=str(path))
    model = build_model(config.model)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


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

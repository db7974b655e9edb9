"""Checkpoint and model files (training's checkpoints, final.pt): written whole or not at all,
loaded safely.  A file holds only tensors, numbers, strings, lists and dicts, so it loads with
torch.load(weights_only=True): nothing in it can execute code.
"""
import io
import pickle
import zipfile
from pathlib import Path

import torch

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.atomic import written_whole


def save_atomic(state: dict, path) -> None:
    """Writes to a temporary file and renames, so `path` is always either absent or complete."""
    # Serialised in memory first: torch.save reports a failed write to a file as a bare
    # RuntimeError ("iostream error"), a plain write of the bytes as the OSError it is.
    data = io.BytesIO()
    torch.save(state, data)
    try:
        with written_whole(path, "the previous checkpoints are intact: free some space and "
                                 "rerun to resume") as tmp, open(tmp, "wb") as f:
            f.write(data.getbuffer())
    except OSError as e:
        raise RecipeError(f"could not write checkpoint {path}: {e.strerror}; the previous "
                          f"checkpoints are intact (free disk space and rerun to resume)") from None


def load(path, what_to_do: str) -> dict:
    """The dict a checkpoint or final.pt holds, loaded with weights_only=True: nothing in the
    file can run code.  A file that cannot be loaded is a RecipeError that says why in our
    words (never torch's, which suggests loading without weights_only) and ends with
    `what_to_do`, the caller's advice (which file to delete or remake)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path} does not exist or is not a file; {what_to_do}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch, pickle and zipfile raise many types for a bad file
        raise RecipeError(f"cannot load {path}: {_why_not_loaded(path, e)}; {what_to_do}"
                          ) from None


def _why_not_loaded(path: Path, error: Exception) -> str:
    """Why torch could not load a file, in words."""
    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"   # torch.save writes zip files
    if not zipped:
        return "it is not a PyTorch checkpoint"
    if not zipfile.is_zipfile(path):
        return "it is truncated (an incomplete copy or an interrupted write)"
    if isinstance(error, pickle.UnpicklingError):
        return ("it holds Python objects other than tensors, numbers, strings, lists and "
                "dicts, which the recipe never loads, since loading them could run code")
    return "it is damaged: a zip file whose contents PyTorch cannot read"

"""Checkpoint files: written atomically, found by position, pruned, loaded safely.

Names say where training stands: `epoch_003.pt` is written when epoch 3 ends, and
`epoch_004_step_000150.pt` after 150 steps of epoch 4.  A checkpoint holds only tensors,
numbers, strings, lists and dicts, so it loads with torch.load(weights_only=True): nothing in it
can execute code.
"""
import io
import pickle
import re
import zipfile
from pathlib import Path

import torch

from pytorch_modules.fileio.atomic import written_whole
from pytorch_modules.errors import RecipeError

_NAME = re.compile(r"^epoch_(\d{3,})(?:_step_(\d{6,}))?\.pt$")


def checkpoint_name(epoch: int, step: int | None = None) -> str:
    """epoch is 1-based; step None means the epoch is complete."""
    return f"epoch_{epoch:03d}.pt" if step is None else f"epoch_{epoch:03d}_step_{step:06d}.pt"


def _position(path: Path):
    match = _NAME.match(path.name)
    if not match:
        return None
    epoch, step = int(match.group(1)), match.group(2)
    # A finished epoch sorts after every step inside it.
    return (epoch, int(step) if step is not None else float("inf"))


def list_checkpoints(directory) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(pos, p) for p in directory.iterdir() if (pos := _position(p)) is not None]
    return [p for _, p in sorted(found)]


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


def prune(directory, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints."""
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)


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

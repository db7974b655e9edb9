"""Checkpoint files: written atomically, found by position, pruned, loaded safely.

Names say where training stands: `epoch_003.pt` is written when epoch 3 ends, and
`epoch_004_step_000150.pt` after 150 steps of epoch 4.  A checkpoint holds only tensors,
numbers, strings, lists and dicts, so it loads with torch.load(weights_only=True): nothing in it
can execute code.
"""
import io
import re
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


def load(path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RecipeError(f"checkpoint {path} does not exist; run the training stage first") from None
    except Exception as e:  # truncated or foreign file: unpickling raises many types
        raise RecipeError(f"cannot load checkpoint {path} ({e}); delete it to fall back to the "
                          f"previous checkpoint") from None

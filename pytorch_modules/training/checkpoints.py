"""Training's checkpoints: named by position, found, pruned (their files are written and read
by fileio/checkpoint_file.py).

Names say where training stands: `epoch_003.pt` is written when epoch 3 ends, and
`epoch_004_step_000150.pt` after 150 steps of epoch 4.
"""
import re
from pathlib import Path

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


def prune(directory, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints."""
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)

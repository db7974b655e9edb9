"""An exclusive lock on a directory that one process holds while it writes there (the trainer's
on its exp dir), so that a second trainer started beside an orphaned one stops at once instead
of writing the same checkpoints.  The shell steps take theirs with utils/lock.sh."""
import contextlib
import fcntl
import os
import time
from pathlib import Path

from pytorch_modules.errors import RecipeError


@contextlib.contextmanager
def hold(directory, what: str = "training", name: str = ".train.lock"):
    """Holds an exclusive lock (flock) on DIRECTORY/NAME inside the with-block (a process
    killed inside it loses the lock with it); raises a RecipeError naming the holder when
    another process has it."""
    path = Path(directory) / name
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RecipeError(f"{directory} is in use: {holder} holds {path}. Wait for it to "
                              f"end or stop it ('fuser -v {path}' lists it), then "
                              f"rerun.") from None
        lock.truncate(0)
        lock.write(f"process {os.getpid()} ({what}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        lock.flush()
        yield

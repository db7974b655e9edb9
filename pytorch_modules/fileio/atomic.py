"""Output files that appear whole or not at all.

written_whole(path) hands out a temporary file beside `path`; when the writing succeeds the file
gets the permissions a plain open() would have given it (0666 less the umask: mkstemp makes
0600 files, which other users of a shared experiment dir could not read) and is renamed to
`path`.  On any failure the temporary file is removed, so nothing half-written is left, and a
full disk (ENOSPC/EDQUOT) becomes a RecipeError that names the file and the way out.
write_lines writes a text file that way.

A parallel job's ark (features, embeddings) is streamed to its final name instead, with its
scp written as SCP.tmp and renamed last (the scp marks the job as done); job_outputs removes
both when writing fails, and says what to do.
"""
import contextlib
import errno
import os
import tempfile
from pathlib import Path

from pytorch_modules.errors import RecipeError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def default_mode() -> int:
    """The mode open() gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL


@contextlib.contextmanager
def written_whole(path, hint="free some space and rerun this stage"):
    """Yields the temporary path to write; see the module doc.  `hint` ends the disk-full
    sentence."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
        return
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if not is_disk_full(error):
            raise
    # Raised here, outside the except clause, so that the OSError (and the open file its
    # traceback may hold) is released rather than chained to the sentence.
    raise RecipeError(f"the disk is full: {path} could not be written; {hint}")


def write_lines(path, lines, hint="free some space and rerun this stage") -> None:
    """The lines (each without its newline) written to `path` whole or not at all, so that a
    crash never leaves a truncated scores, results or list file behind."""
    # surrogateescape: ids and paths that are not UTF-8 (read that way too) are written back
    # byte for byte.
    with written_whole(path, hint) as tmp, open(tmp, "w", encoding="utf-8",
                                                errors="surrogateescape") as f:
        f.writelines(line + "\n" for line in lines)


@contextlib.contextmanager
def job_outputs(ark, scp_tmp, folder):
    """Around the writing of a job's `ark` and `scp_tmp`: an OSError removes both (they only
    take space; finished jobs keep theirs) and becomes a RecipeError naming the file and,
    unless the disk is full, the `folder` (words: "feature folder") to check."""
    try:
        yield
    except OSError as error:
        for partial in (ark, scp_tmp):
            Path(partial).unlink(missing_ok=True)
        if is_disk_full(error):
            message = (f"no space left on device writing {ark}; free space and rerun the "
                       f"stage: finished jobs are kept")
        else:
            message = (f"cannot write {error.filename or ark}: {error.strerror}; check that "
                       f"the {folder} is writable and rerun the stage")
        raise RecipeError(message) from None

"""Output files that appear whole or not at all.

written_whole(path) hands out a temporary file beside `path`; when the writing succeeds the file
gets the permissions a plain open() would have given it (0666 less the umask: mkstemp makes
0600 files, which other users of a shared experiment dir could not read) and is renamed to
`path`.  On any failure the temporary file is removed, so nothing half-written is left, and a
full disk (ENOSPC/EDQUOT) becomes a RecipeError that names the file and the way out.
"""
import contextlib
import errno
import os
import tempfile

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

"""Command-line entry points called by steps/ and local/ (python -m pytorch_modules.bin.NAME).

Importing this package first checks that the packages the entry points need are there (run
without `. ./path.sh`, a system Python has no torch): a sentence instead of a traceback."""
import sys

from pytorch_modules import environment


def _program() -> str:
    """The entry point's name for the message: the module after python's -m."""
    argv = getattr(sys, "orig_argv", [])
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else "pytorch_modules.bin"


environment.require(*environment.NUMERICAL, prog=_program())

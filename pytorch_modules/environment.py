"""Whether the recipe's Python environment is active: the entry points check the packages they
import before importing them, so that a shell without `. ./path.sh` gets a sentence saying what
to do instead of a ModuleNotFoundError traceback.  Standard library only.
"""
import importlib.util
import sys

# What the numerical entry points (pytorch_modules/bin) import; all of requirements.txt's
# packages that they need at start.
NUMERICAL = ("numpy", "torch", "torchaudio", "kaldiio", "soundfile", "yaml")


def missing_sentence(prog: str, module: str) -> str:
    return (f"{prog}: cannot import {module}: the recipe's environment is not set up or not "
            f"active in this shell; run ./run.sh or tests/run.sh once (they make it), or "
            f"utils/setup_env.sh, then `. ./path.sh` in the recipe folder")


def require(*modules: str, prog: str | None = None) -> None:
    """Exits with missing_sentence when one of `modules` cannot be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            sys.exit(missing_sentence(prog or sys.argv[0], module))

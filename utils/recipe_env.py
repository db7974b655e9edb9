"""Imported first by the Python scripts of local/ and utils/ that use the recipe's package: run
in a shell without `. ./path.sh`, they say what to do in a sentence instead of failing with a
ModuleNotFoundError traceback (local/recipe_env.py is a link to this file).  Standard library.

    import recipe_env
    recipe_env.require("numpy")          # the packages the script imports, beyond the recipe's
    from pytorch_modules... import ...
"""
import importlib.util
import sys


def require(*modules: str) -> None:
    prog = sys.argv[0]
    if importlib.util.find_spec("pytorch_modules") is None:
        sys.exit(f"{prog}: cannot import pytorch_modules: the recipe's environment is not set "
                 f"up or not active in this shell; run ./run.sh or tests/run.sh once (they make "
                 f"it), or utils/setup_env.sh, then `. ./path.sh` in the recipe folder")
    from pytorch_modules import environment
    environment.require(*modules, prog=prog)

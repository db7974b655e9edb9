#!/usr/bin/env python3
"""The data-dir tools behind utils/validate_data_dir.sh, fix_data_dir.sh, split_data.sh, ...:
pytorch_modules/fileio/data_dir.py (its usage: --help).  Standard-library Python: it runs with
the system python3 too, given path.sh's variables (utils/data_dir.sh sources it)."""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.fileio import data_dir  # noqa: E402

if __name__ == "__main__":
    sys.exit(data_dir.main())

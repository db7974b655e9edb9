#!/usr/bin/env python3
"""Runs a recipe's parallel jobs on Grid Engine (SGE), with the calling form of launch_local.py.
The launcher is pytorch_modules/jobs/sge.py (its usage: --help)."""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.jobs import sge  # noqa: E402

if __name__ == "__main__":
    sys.exit(sge.main(sys.argv[1:]))

#!/usr/bin/env python3
"""Runs a recipe's parallel jobs on a Slurm cluster, with the calling form of launch_local.py.
The launcher is pytorch_modules/jobs/slurm.py (its usage: --help)."""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.jobs import slurm  # noqa: E402

if __name__ == "__main__":
    sys.exit(slurm.main(sys.argv[1:]))

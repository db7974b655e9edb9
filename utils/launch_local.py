#!/usr/bin/env python3
"""Runs a recipe's parallel jobs on this machine, with Kaldi's run.pl calling form.  The launcher
is pytorch_modules/jobs/local.py (its usage: --help)."""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.jobs import local  # noqa: E402

if __name__ == "__main__":
    sys.exit(local.main(sys.argv[1:]))

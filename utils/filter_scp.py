#!/usr/bin/env python3
"""Keeps the lines of an scp (or any table) whose id is listed in another file (filter_scp.pl).

usage: utils/filter_scp.py [--exclude] [-f FIELD] ID_LIST [SCP] > out
  ID_LIST   its first column holds the ids to keep
  SCP       the lines to filter, in their order (stdin without it)
  --exclude keep the lines whose id is NOT listed
  -f FIELD  which field of SCP is the id (default 1), e.g. -f 2 for the test side of trials
"""
import sys

import recipe_env  # says what to do when the environment is not active

recipe_env.require()

from pytorch_modules.fileio import data_dir  # noqa: E402

if __name__ == "__main__":
    sys.exit(data_dir.main(["filter-scp", *sys.argv[1:]]))

#!/usr/bin/env bash
# Prints "SHARED TOTAL": how many of the speakers of an evaluation data dir are also speakers of
# a training data dir (by the speaker ids of their utt2spk files), and how many it has.  A trial
# set that shares speakers with the training set measures trained-on-test performance.
#
#   usage: utils/shared_speakers.sh <eval-data-dir> <train-data-dir>
#   e.g.   utils/shared_speakers.sh data/vox1_e data/voxceleb1_dev   ->   1211 1251
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" shared-speakers "$@"

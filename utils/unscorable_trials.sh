#!/usr/bin/env bash
# Warns when a trial list names ids that have no features: the enrollment side is looked up in
# the first column of <enroll-ids>, the test side in that of <test-ids> (for VoxCeleb1 both are
# the evaluation set's feats.scp; for SITW the enrollment data dir's spk2utt and the test data
# dir's feats.scp).  Says how many trials are affected and which ids, e.g.
#   unscorable_trials.sh: warning: 12 of 5000 trials of data/vox1_o/trials use 1 id without
#   features ('id10270-x6uYqmx31kE-00001'); scoring will refuse them. ...
# Exit status 0 either way: the feature stage reports it, scoring refuses.
#
#   usage: utils/unscorable_trials.sh <trials> <enroll-ids> <test-ids>
# Implemented in pytorch_modules/fileio/data_dir.py (standard-library Python; utils/data_dir.py).
exec "$(dirname "${BASH_SOURCE[0]}")/data_dir.sh" unscorable "$@"

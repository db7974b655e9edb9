# How the recipe's parallel jobs run.  Sourced by run.sh.
# Every launcher takes Kaldi's calling form:
#   $train_cmd [--mem 4G] [--gpu 1] [--num-threads 2] [--max-jobs-run 8] JOB=1:N dir/log/name.JOB.log command args
#
# local (default): jobs run on this machine, at most as many at once as it has cores.
export train_cmd="utils/launch_local.py"
export cuda_cmd="utils/launch_local.py"

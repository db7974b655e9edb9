# shellcheck shell=bash
# How the recipe's parallel jobs run.  Sourced by run.sh; edit it for your machines.
# Every launcher takes Kaldi's calling form:
#   $train_cmd [--mem 4G] [--gpu 1] [--num-threads 2] [--max-jobs-run 8] [--time 4:00:00] \
#       JOB=1:N dir/log/name.JOB.log command args
# and on failure prints `K / N failed, log is in ...`; `--only-failed true` reruns only those.
# train_cmd runs CPU jobs (features, embeddings); cuda_cmd runs training.

# 1. local (default): jobs run on this machine, at most as many at once as it has cores.
export train_cmd="utils/launch_local.py"
export cuda_cmd="utils/launch_local.py"

# 2. Slurm: one sbatch array job per step, waited for; the generic options are mapped to
#    sbatch's by conf/slurm_launcher.conf (set your partition/account there).
# export train_cmd="utils/launch_slurm.py --config conf/slurm_launcher.conf --mem 4G"
# export cuda_cmd="utils/launch_slurm.py --config conf/slurm_launcher.conf --gpu 1 --num-threads 4 --mem 16G"

# 3. Grid Engine (SGE, OGE, UGE): one qsub -t array job per step, mapped by
#    conf/sge_launcher.conf (queue names, parallel environment, GPU resource).
# export train_cmd="utils/launch_sge.py --config conf/sge_launcher.conf --mem 4G"
# export cuda_cmd="utils/launch_sge.py --config conf/sge_launcher.conf --gpu 1 --num-threads 4 --mem 16G"

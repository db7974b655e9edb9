"""Job launchers: a recipe's parallel jobs run on this machine (local.py), on Slurm (slurm.py) or
on Grid Engine (sge.py), all with Kaldi's run.pl calling form (launcher_common.py; the cluster
launchers' shared part in cluster_launcher.py).  utils/launch_*.py are their command lines,
which cmd.sh names.  Standard library only."""

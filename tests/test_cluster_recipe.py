"""The tiny recipe with its parallel stages (features, training, embeddings) submitted to a
real single-node Slurm must produce exactly what the local launcher produces."""
import subprocess

import kaldiio
import numpy as np
import pytest

from test_recipe_run import LINKED, ROOT, TINY_CORPUS

# One torch thread: the local and the Slurm run then do the same float operations in order.
CONFIG = """\
model: {widths: [4, 8, 8, 8], blocks: [1, 1, 1, 1], embedding_dim: 16}
loss: {type: dam_softmax}
data: {crop_frames: 60, batch_size: 8, num_workers: 0}
optim: {epochs: 1, lr: 0.01, final_lr: 0.005}
training: {seed: 5, threads: 1, log_every_steps: 1}
"""
SLURM_CMD = """\
export train_cmd="utils/launch_slurm.py --config conf/slurm_launcher.conf --mem 1G"
export cuda_cmd="utils/launch_slurm.py --config conf/slurm_launcher.conf --mem 2G"
"""


def recipe(tmp_path_factory, name, cmd_sh=None, env=None):
    work = tmp_path_factory.mktemp(name)
    for item in LINKED:
        if not (item == "cmd.sh" and cmd_sh):
            (work / item).symlink_to(ROOT / item)
    if cmd_sh:
        (work / "cmd.sh").write_text(cmd_sh)
    (work / "tiny.yaml").write_text(CONFIG)
    # Stages 0-5 of the model: what the parallel launchers run (the classical baselines and
    # stage 6 are the demo recipe test's).
    result = subprocess.run(["./run.sh", "--config", "tiny.yaml", "--demo-options", TINY_CORPUS,
                             "--stop-stage", "5", "--baseline", "false"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return work


@pytest.fixture(scope="module")
def runs(tmp_path_factory, slurm_env):
    local = recipe(tmp_path_factory, "local")
    slurm = recipe(tmp_path_factory, "slurm", SLURM_CMD, slurm_env)
    return local, slurm


def test_stages_really_went_through_slurm(runs):
    _, slurm = runs
    for log in ["data/voxceleb1_dev/log/make_spectrogram_voxceleb1_dev.1.log",
                "exp/tiny/log/train.log", "exp/tiny/embeddings_voxceleb1_eval/log/extract.2.log"]:
        assert (slurm / log).read_text().splitlines()[-1].startswith("# Ended (code 0)")
    assert list((slurm / "exp/tiny/log/q").glob("train.sh"))  # the sbatch job script
    assert not (runs[0] / "exp/tiny/log/q").exists()


@pytest.mark.parametrize("scp", ["data/voxceleb1_dev/feats.scp", "data/voxceleb1_eval/feats.scp",
                                 "exp/tiny/embeddings_voxceleb1_eval/xvector.scp"])
def test_outputs_equal_the_local_run(runs, scp):
    local, slurm = (dict(kaldiio.load_scp(str(run / scp))) for run in runs)
    assert sorted(local) == sorted(slurm)
    for key in local:
        np.testing.assert_array_equal(local[key], slurm[key])


def test_scores_equal_the_local_run(runs):
    local, slurm = ((run / "exp/tiny/scores/vox1_o.scores").read_text() for run in runs)
    assert local == slurm

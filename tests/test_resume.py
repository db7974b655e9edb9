"""Kill -9 in the middle of an epoch, run the same command again: the model that comes out is
bit for bit the model of a run that was never interrupted.

Why it can be exact: the data order and crops are a pure function of (seed, epoch, step)
(data.py), and a checkpoint holds the model, the head, the optimizer, the position and the torch
RNG (training.py), written by rename so that a kill never leaves half a checkpoint.

The training data holds one utterance shorter than the crop, so the same runs also show that
such an utterance is repeat-padded into its batches.
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tiny_data

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

KILL_AFTER = "epoch_001_step_"   # a mid-epoch checkpoint of the first epoch
POLL_SECONDS = 0.001
STARTUP_LIMIT_SECONDS = 120


def train_command(config: Path, data: Path, exp: Path) -> list[str]:
    return [sys.executable, "-m", "pytorch_modules.bin.train", "--config", str(config),
            str(data), str(exp)]


def start_and_kill_mid_epoch(command: list[str], exp: Path) -> None:
    """Starts training and kills it with SIGKILL as soon as a mid-epoch checkpoint appears."""
    checkpoints = exp / "checkpoints"
    process = subprocess.Popen(command, cwd=tiny_data.ROOT, env=tiny_data.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    try:
        while not (checkpoints.is_dir() and
                   any(p.name.startswith(KILL_AFTER) for p in checkpoints.iterdir())):
            if process.poll() is not None:
                pytest.fail(f"training ended (code {process.returncode}) before it could be "
                            f"killed:\n{process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("no mid-epoch checkpoint appeared")
            time.sleep(POLL_SECONDS)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()


def tensors(state, prefix=""):
    """Every tensor of a (nested) checkpoint dict, by its path of keys."""
    if isinstance(state, torch.Tensor):
        yield prefix, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from tensors(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from tensors(value, f"{prefix}/{i}")


def differing_tensors(path_a: Path, path_b: Path) -> list[str]:
    """The key paths of the tensors that are not bit-identical in two checkpoints."""
    a = dict(tensors(torch.load(path_a, weights_only=True)))
    b = dict(tensors(torch.load(path_b, weights_only=True)))
    assert a.keys() == b.keys()
    return [key for key in a if not torch.equal(a[key], b[key])]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run, and one killed mid-epoch and run again: (straight exp dir,
    resumed exp dir, the uninterrupted run's output, the second run's output)."""
    work = tmp_path_factory.mktemp("resume")
    data = work / "data"
    # 8 speakers x 25 = 200 utterances: 50 steps an epoch, a checkpoint every 2 steps; one
    # utterance is shorter than the 40-frame crop
    short = np.random.default_rng(1).standard_normal((10, 161)).astype(np.float32)
    tiny_data.write_feature_dir(data, num_speakers=8, utts_per_speaker=25,
                                special={"spk1-001": short})
    # Every schedule option on: the kill lands inside the lr and margin warm-ups.
    config = tiny_data.write_train_config(
        work / "tiny.yaml", optim=", warmup_epochs: 0.5, margin_warmup_start: 0.02, "
                                  "margin_warmup_epochs: 1.0")

    straight = work / "exp_straight"
    result = tiny_data.train(config, data, straight)
    assert result.returncode == 0, result.stderr
    straight_stdout = result.stdout

    resumed = work / "exp_resumed"
    start_and_kill_mid_epoch(train_command(config, data, resumed), resumed)
    left = sorted(p.name for p in (resumed / "checkpoints").glob("epoch_*.pt"))
    assert left and left[-1].startswith(KILL_AFTER), f"not killed mid-epoch: {left}"
    assert not (resumed / "final.pt").exists()

    result = tiny_data.train(config, data, resumed)
    assert result.returncode == 0, result.stderr
    return straight, resumed, straight_stdout, result.stdout


def test_utterances_shorter_than_the_crop_are_repeat_padded(runs):
    straight, _, stdout, _ = runs
    # every utterance is in a batch of each epoch, the short one too, and training works
    assert ("train: 1 of 200 utterances are shorter than the 40-frame crop; they are "
            "repeat-padded, not dropped") in stdout
    assert (straight / "final.pt").is_file()


def test_the_rerun_resumes_from_the_mid_epoch_checkpoint(runs):
    _, resumed, _, stdout = runs
    resumed_at = re.search(rf"resuming from {resumed}/checkpoints/{KILL_AFTER}\d+\.pt "
                           rf"\(epoch 1, step (\d+) of 50\)", stdout)
    assert resumed_at, stdout
    # the steps before the checkpoint are not redone
    redone = [int(s) for s in re.findall(r"epoch 1/2 step (\d+)/50", stdout)]
    assert redone and min(redone) > int(resumed_at.group(1))


def test_killed_training_resumes_to_the_same_model(runs):
    straight, resumed, _, _ = runs
    assert differing_tensors(straight / "final.pt", resumed / "final.pt") == []
    # the whole training state too: model, head, optimizer (momentum buffers)
    differ = differing_tensors(straight / "checkpoints/epoch_002.pt",
                               resumed / "checkpoints/epoch_002.pt")
    assert [key for key in differ if key != "/torch_rng"] == []


def test_killed_training_resumes_to_the_same_rng_state(runs):
    straight, resumed, _, _ = runs
    assert differing_tensors(straight / "checkpoints/epoch_002.pt",
                             resumed / "checkpoints/epoch_002.pt") == []

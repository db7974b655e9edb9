"""Training under torchrun: 2 CPU processes with gloo train the model that 1 process trains.

The runs go through the real entry point, steps/train.sh (--nproc-per-node 2 builds the torchrun
command), on a tiny generated data dir.  Each process takes half of every global batch of 8;
with training.sync_batchnorm true the BatchNorm statistics are over all 8 utterances, as in the
single process, so the two runs compute the same updates up to float32 rounding.

Why embedding_bn is off here: the embedding BatchNorm normalises 16 dimensions over 8
utterances whose spread is about 1/50 of their magnitude, so it multiplies float32 rounding
(1e-7 relative) by orders of magnitude at every step; with it on, the two runs drift apart to
1e-2 within six steps even though they agree to 1e-11 when run in float64.  The float64
agreement of the shared BatchNorm itself is checked directly below (test_global_batchnorm_*).
input_norm is off too: with the crops centred, the two runs agree to 6e-7 through the first
epoch and then differ by 2e-3 after one more step (measured), another amplification of rounding
by this tiny model; the centring itself is per utterance, so a batch of 8 and two halves of 4
give bit-identical centred crops.
"""
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pytorch_modules.data.training_set import read_training_set
from pytorch_modules.training import distributed
from pytorch_modules.training.trainer import Trainer

from test_training import tiny_config, write_tiny_data_dir

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5      # float32 rounding, summed differently over 2 processes
CONFIG = """\
model: {widths: [4, 8, 8, 8], blocks: [1, 1, 1, 1], embedding_dim: 16, embedding_bn: false,
        input_norm: none}
loss: {type: dam_softmax, margin: 0.2, scale: 30, lambda: 2}
data: {crop_frames: 50, batch_size: 8, num_workers: 0}
optim: {epochs: 2, lr: 0.01, final_lr: 0.001}
training: {seed: 3, threads: 1, log_every_steps: 1, checkpoint_every_steps: 1,
           keep_checkpoints: 20, sync_batchnorm: true}
"""
STEPS_PER_EPOCH = 3   # 24 utterances, batch 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_sh(*args) -> subprocess.CompletedProcess:
    """steps/train.sh run from the recipe root, as run.sh runs it; fails the test on error."""
    result = subprocess.run(["steps/train.sh", "--show-log", "false", *map(str, args)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = next(Path(str(args[-1])).glob("log/train*.log"), None)
    assert result.returncode == 0, (f"steps/train.sh {' '.join(map(str, args))} failed:\n"
                                    f"{result.stdout}{result.stderr}\n"
                                    f"{log.read_text() if log else 'no log'}")
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One single-process run and one 2-process run of the same config on the same data."""
    work = tmp_path_factory.mktemp("ddp")
    data = write_tiny_data_dir(work / "data")
    config = work / "tiny.yaml"
    config.write_text(CONFIG)
    train_sh("--config", config, data, work / "single")
    train_sh("--nproc-per-node", 2, "--master-port", free_port(), "--config", config, data,
             work / "ddp")
    return {"work": work, "data": data, "config": config,
            "single": work / "single", "ddp": work / "ddp"}


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def largest_difference(a: dict, b: dict) -> tuple[float, str]:
    assert a.keys() == b.keys()
    return max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a)


def test_two_gloo_processes_train_the_model_of_one_process(runs):
    single, ddp = load(runs["single"] / "final.pt"), load(runs["ddp"] / "final.pt")
    assert single["speakers"] == ddp["speakers"]
    difference, where = largest_difference(single["model"], ddp["model"])
    assert difference <= TOLERANCE, f"final.pt differs by {difference:.3g} at {where}"
    # The head is not in final.pt; the last checkpoint has it.
    last = "checkpoints/epoch_002.pt"
    difference, where = largest_difference(load(runs["single"] / last)["head"],
                                           load(runs["ddp"] / last)["head"])
    assert difference <= TOLERANCE, f"the head differs by {difference:.3g} at {where}"


def test_the_reported_loss_is_over_the_global_batch(runs):
    def losses(exp):
        lines = (exp / "log/train.log").read_text().splitlines()
        return [float(line.split("| loss ")[1].split()[0]) for line in lines if "| loss " in line]
    single, ddp = losses(runs["single"]), losses(runs["ddp"])
    assert len(single) == len(ddp) == 2 * STEPS_PER_EPOCH
    assert ddp == pytest.approx(single, abs=2e-3)   # printed with 3 decimals


def test_the_log_is_written_once_by_rank_0(runs):
    log = (runs["ddp"] / "log/train.log").read_text()
    assert "torch.distributed.run --nnodes 1 --nproc-per-node 2 --node-rank 0" in log
    assert log.count("training on 24 utterances") == 1
    assert log.count("2 processes (gloo), 4 utterances of each batch per process") == 1
    assert "BatchNorm statistics over the global batch" in log
    for epoch in (1, 2):
        for step in range(1, STEPS_PER_EPOCH + 1):
            assert log.count(f"epoch {epoch}/2 step {step}/{STEPS_PER_EPOCH} |") == 1
    assert log.count("train: wrote") == 1
    assert log.rstrip().splitlines()[-1].startswith("# Ended (code 0)")


def test_checkpoints_are_those_of_one_process(runs):
    names = sorted(p.name for p in (runs["ddp"] / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (runs["single"] / "checkpoints").iterdir())
    assert names == ["epoch_001.pt", "epoch_001_step_000001.pt", "epoch_001_step_000002.pt",
                     "epoch_002.pt", "epoch_002_step_000001.pt", "epoch_002_step_000002.pt"]
    state = load(runs["ddp"] / "checkpoints/epoch_001_step_000002.pt")
    assert (state["epoch"], state["step"]) == (1, 2)
    # A plain model's keys: no "module." from DDP, BatchNorm buffers as nn.BatchNorm2d has them.
    assert "trunk.0.1.running_var" in state["model"]
    assert not any(key.startswith("module.") for key in state["model"])


def test_two_processes_resume_from_a_mid_epoch_checkpoint(runs):
    """What a run killed after step 1 of epoch 2 leaves behind, continued by 2 processes."""
    exp = runs["work"] / "resumed"
    shutil.copytree(runs["ddp"], exp)
    (exp / "final.pt").unlink()
    for name in ("epoch_002.pt", "epoch_002_step_000002.pt"):
        (exp / "checkpoints" / name).unlink()
    train_sh("--nproc-per-node", 2, "--master-port", free_port(), "--config", runs["config"],
             runs["data"], exp)
    log = (exp / "log/train.log").read_text()
    assert log.count("resuming from") == 1
    assert "epoch_002_step_000001.pt (epoch 2, step 1 of 3)" in log
    assert "epoch 1/2" not in log
    resumed, whole = load(exp / "final.pt")["model"], load(runs["ddp"] / "final.pt")["model"]
    for key in whole:
        assert torch.equal(resumed[key], whole[key]), f"{key} differs after resuming"


def test_train_sh_refuses_inconsistent_process_options(runs, tmp_path):
    def refused(*args):
        result = subprocess.run(["steps/train.sh", *map(str, args), "--config", runs["config"],
                                 runs["data"], tmp_path / "exp"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        return result.stderr
    assert "--node-rank 2 is not a node of --nnodes 2" in refused("--nnodes", 2, "--node-rank", 2)
    assert "--master-addr must be node 0's address" in refused("--nnodes", 2)
    assert "--nproc-per-node is for CPU runs" in refused("--num-gpus", 2, "--nproc-per-node", 3)
    assert "--num-gpus takes a whole number" in refused("--num-gpus", "two")
    assert "--cpu-malloc takes auto or system" in refused("--cpu-malloc", "tcmalloc")
    assert not (tmp_path / "exp").exists()


# -- the shared BatchNorm and rank 0's files, in processes started here ----------------------

def _worker(rank: int, world_size: int, init_file: str, out: str) -> None:
    """One of 2 processes: the BatchNorm check in float64, then a short training run whose
    exp dir is this rank's own, so that the parent sees what each rank wrote."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    context = distributed.Context(rank, world_size, rank, torch.device("cpu"))
    torch.save(_batchnorm_on_my_share(rank, world_size), f"{out}/bn.{rank}.pt")
    _train_one_epoch(context, Path(out))
    distributed.teardown(context)   # after the Trainer and its DDP wrapper are gone


def _train_one_epoch(context: distributed.Context, out: Path) -> None:
    config = tiny_config(optim={"epochs": 1}, training={
        "device": "cpu", "sync_batchnorm": True, "checkpoint_every_steps": 1})
    exp_dir = out / f"rank{context.rank}"
    trainer = Trainer(config, read_training_set(str(out / "data")), str(exp_dir),
                      context=context)
    trainer.train()
    trainer.write_final_model(exp_dir / "final.pt")


def whole_batch(shape=(8, 3, 5, 4)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64) * 3 + 1


def _batchnorm_on_my_share(rank: int, world_size: int) -> dict:
    results = {}
    for name, module, x in (("2d", torch.nn.BatchNorm2d(3), whole_batch()),
                            ("1d", torch.nn.BatchNorm1d(6, affine=False), whole_batch((8, 6)))):
        module = distributed.to_global_batchnorm(module.double())
        with torch.no_grad():
            if module.affine:
                module.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
                module.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        share = x[rank::world_size].clone().requires_grad_()
        y = module(share)
        # A loss that is not symmetric in the batch, so that the gradient sees the statistics.
        weights = torch.arange(1.0, x.numel() + 1, dtype=torch.float64).view(x.shape)
        (y * weights[rank::world_size]).sum().backward()
        results[name] = {"y": y.detach(), "x_grad": share.grad,
                         **{f"state.{k}": v for k, v in module.state_dict().items()},
                         **{f"grad.{k}": p.grad for k, p in module.named_parameters()}}
    return results


def _batchnorm_on_the_whole_batch() -> dict:
    results = {}
    for name, module, x in (("2d", torch.nn.BatchNorm2d(3), whole_batch()),
                            ("1d", torch.nn.BatchNorm1d(6, affine=False), whole_batch((8, 6)))):
        module = module.double()
        with torch.no_grad():
            if module.affine:
                module.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
                module.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        x = x.clone().requires_grad_()
        y = module(x)
        weights = torch.arange(1.0, x.numel() + 1, dtype=torch.float64).view(x.shape)
        (y * weights).sum().backward()
        results[name] = {"y": y.detach(), "x_grad": x.grad,
                         **{f"state.{k}": v for k, v in module.state_dict().items()},
                         **{f"grad.{k}": p.grad for k, p in module.named_parameters()}}
    return results


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    out = tmp_path_factory.mktemp("spawned")
    write_tiny_data_dir(out / "data")
    init_file = Path(tempfile.mkdtemp()) / "rendezvous"
    context = mp.start_processes(_worker, args=(2, str(init_file), str(out)), nprocs=2,
                                 join=False, start_method="spawn")
    try:
        # join() returns True once every process has ended; a timeout guards against a hang.
        for _ in range(240):
            if context.join(timeout=1):
                break
        else:
            pytest.fail("the 2 spawned training processes did not finish within 4 minutes")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return out


def test_global_batchnorm_equals_batchnorm_over_the_whole_batch(spawned):
    """Outputs, input gradients, parameter gradients and running statistics, in float64."""
    whole = _batchnorm_on_the_whole_batch()
    shares = [torch.load(spawned / f"bn.{rank}.pt", weights_only=True) for rank in (0, 1)]
    for name, expected in whole.items():
        for key, value in expected.items():
            if key in ("y", "x_grad"):    # per utterance: each rank has its own half
                got = torch.empty_like(value)
                got[0::2], got[1::2] = shares[0][name][key], shares[1][name][key]
            elif key.startswith("grad."):  # each rank's own share's part; DDP sums them
                got = shares[0][name][key] + shares[1][name][key]
            else:                          # parameters and running statistics: the same
                got = shares[0][name][key]
                assert torch.equal(got, shares[1][name][key]), f"{name} {key}: ranks disagree"
            torch.testing.assert_close(got, value, rtol=1e-12, atol=1e-12,
                                       msg=f"BatchNorm{name} {key}")


def test_only_rank_0_writes_checkpoints_and_the_final_model(spawned):
    written = sorted(p.name for p in (spawned / "rank0/checkpoints").iterdir())
    assert written == ["epoch_001.pt", "epoch_001_step_000001.pt", "epoch_001_step_000002.pt"]
    assert (spawned / "rank0/final.pt").is_file()
    assert not (spawned / "rank1").exists()


def jemalloc_path():
    found = subprocess.run("{ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null", shell=True,
                           capture_output=True, text=True).stdout
    return next((line.split()[-1] for line in found.splitlines()
                 if line.split() and line.split()[0] == "libjemalloc.so.2"), None)


def test_cpu_training_keeps_freed_memory_unless_told_not_to(runs, tmp_path):
    # The job's command line (the log's first line) carries the allocator's environment.
    header = (runs["single"] / "log/train.log").read_text().splitlines()[0]
    jemalloc = jemalloc_path()
    if jemalloc:
        assert f"LD_PRELOAD={jemalloc}" in header
        assert "MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1" in header
    else:
        assert "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776" in header
    result = train_sh("--cpu-malloc", "system", "--config", runs["config"], runs["data"],
                      tmp_path / "system")
    header = (tmp_path / "system/log/train.log").read_text().splitlines()[0]
    assert "MALLOC" not in header and "LD_PRELOAD" not in header
    assert "CPU memory allocator" not in result.stderr
    # the allocator changes speed, not results
    assert torch.equal(load(tmp_path / "system/final.pt")["model"]["fc.weight"],
                       load(runs["single"] / "final.pt")["model"]["fc.weight"])

"""Helpers shared by the bench scripts: timing, machine reference rates, printing.

Every bench script is run as `python bench/NAME.py` after `. ./path.sh`, which puts the
repository on PYTHONPATH (so `pytorch_modules` imports); the scripts import this module as a
sibling (Python puts the script's folder on the path).
"""
import os
import shutil
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generated_once(directory, generate, regenerate=False):
    """`directory`, filled by generate(directory) the first time: its .complete marker, written
    last, makes later calls skip the work (an interrupted generation is redone);
    `regenerate` starts afresh."""
    done = f"{directory}/.complete"
    if regenerate and os.path.isdir(directory):
        shutil.rmtree(directory)
    if not os.path.exists(done):
        os.makedirs(directory, exist_ok=True)
        generate(directory)
        open(done, "w").close()
    return directory


def load_line():
    """'load 1.02 0.95 0.90 (1/5/15 min) on 2 cores': the noise level of every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def best_of(function, repeats=3):
    """(best wall seconds, last result) over `repeats` calls: the least disturbed run is the
    closest to what the code costs on an idle machine (the machines here are shared)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def copy_bandwidth(megabytes=512, repeats=5):
    """Bytes per second of one large NumPy copy (source bytes; each is read once and written
    once), single thread: the ceiling for a memory-bound gather on this machine."""
    source = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    seconds, _ = best_of(lambda: np.copyto(target, source), repeats)
    return source.nbytes / seconds


def matmul_flops(sizes=(2048, 4096), repeats=3, threads=None):
    """Float32 FLOP/s of torch.mm on square matrices (2 n^3 FLOPs per product; the best of
    `sizes`), using the threads torch is set to (or `threads`): the machine's practical
    compute ceiling."""
    import torch
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    best = 0.0
    try:
        for size in sizes:
            a, b = torch.randn(size, size), torch.randn(size, size)
            torch.mm(a, b)  # warm-up: thread pool, caches
            seconds, _ = best_of(lambda: torch.mm(a, b), repeats)
            best = max(best, 2 * size ** 3 / seconds)
    finally:
        torch.set_num_threads(previous)
    return best


def numpy_matmul_flops(size=2048, repeats=3):
    """Float32 FLOP/s of NumPy's matmul (its own BLAS, OpenBLAS in the PyPI wheels): on AMD
    CPUs it can beat torch.mm, whose MKL does not take its AVX-512 path there."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a  # warm-up
    seconds, _ = best_of(lambda: a @ a, repeats)
    return 2 * size ** 3 / seconds


def banner(title):
    print(f"== {title}")
    print(f"   {load_line()}; numpy {np.__version__}")


def figure(label, value, unit="", note=""):
    """One aligned line: label, value with unit, optional note."""
    text = f"{value:,.3f}" if isinstance(value, float) and value < 100 else (
        f"{value:,.0f}" if isinstance(value, (int, float)) else str(value))
    print(f"   {label:<52} {text:>14} {unit:<10} {note}")


def ratio(label, ours, reference, target=None, higher_is_better=True):
    """'label   3.2x  (issue target >= 3x)': ours against a reference measured in the same run.

    Rates (higher is better) or times (higher_is_better=False).  The target is printed for
    context only: benchmarks report, they never pass or fail."""
    value = ours / reference if higher_is_better else reference / ours
    goal = f"(issue target >= {target:g}x)" if target is not None else ""
    print(f"   {label:<52} {value:>13,.1f}x  {goal}")
    return value

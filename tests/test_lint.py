"""Lint: the tree is clean under ruff (ruff.toml) and shellcheck, both pinned in
requirements.txt and installed by utils/setup_env.sh."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what a run writes, and the environment: not the project's code
NOT_CODE = {".git", ".venv", "data", "exp", "mfcc", "fbank", "spectrogram", "__pycache__",
            ".pytest_cache", ".ruff_cache"}


def tool(name):
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run utils/setup_env.sh (it installs "
                    "requirements.txt)")
    return found


def shell_scripts():
    """Every bash script of the tree: *.sh files and scripts whose first line names bash."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if d not in NOT_CODE)
        for name in sorted(files):
            path = Path(folder, name)
            if name.endswith(".sh"):
                found.append(path)
            elif "." not in name and path.is_file():
                with open(path, "rb") as f:
                    first = f.readline()
                if first.startswith(b"#!") and b"bash" in first:
                    found.append(path)
    return found


def test_python_is_clean_under_ruff():
    result = subprocess.run([tool("ruff"), "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_are_clean_under_shellcheck():
    scripts = shell_scripts()
    assert ROOT / "run.sh" in scripts and ROOT / "path.sh" in scripts
    assert ROOT / ".ci" / "run" in scripts
    result = subprocess.run([tool("shellcheck"), "--format", "gcc", *map(str, scripts)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

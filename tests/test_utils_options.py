"""utils/parse_options.sh: Kaldi-style --name value options for bash scripts."""

import os
import subprocess
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[1] / "utils"

# A script the way the recipe's scripts use parse_options.sh: defaults, help, source, positionals.
DEMO = """#!/usr/bin/env bash
set -euo pipefail
nj=4
use_gpu=false
foo_bar=default
help_message="Usage: demo.sh [options] <in> <out>
  --nj N  jobs"
. {utils}/parse_options.sh
echo "nj=$nj use_gpu=$use_gpu foo_bar=$foo_bar"
for arg in "$@"; do echo "arg=$arg"; done
"""


@pytest.fixture
def demo(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(DEMO.format(utils=UTILS))
    script.chmod(0o755)

    def run(*args):
        return subprocess.run([str(script), *args], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, "LC_ALL": "C"})
    return run


def test_sets_variables_and_leaves_positionals(demo):
    result = demo("--nj", "8", "--foo-bar", "x y", "--use-gpu", "true", "in", "out")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "nj=8 use_gpu=true foo_bar=x y", "arg=in", "arg=out"]


def test_equals_form(demo):
    result = demo("--foo-bar=a=b", "--nj=2", "in")
    assert result.stdout.splitlines() == ["nj=2 use_gpu=false foo_bar=a=b", "arg=in"]


def test_values_are_taken_literally(demo, tmp_path):
    result = demo("--foo-bar", "$(touch pwned) 'q\"", "in")
    assert result.returncode == 0
    assert "foo_bar=$(touch pwned) 'q\"" in result.stdout
    assert not (tmp_path / "pwned").exists()


def test_stops_at_first_positional_and_after_double_dash(demo):
    result = demo("in", "--nj", "3")
    assert result.stdout.splitlines() == [
        "nj=4 use_gpu=false foo_bar=default", "arg=in", "arg=--nj", "arg=3"]
    result = demo("--nj", "5", "--", "--nj", "3")
    assert result.stdout.splitlines() == [
        "nj=5 use_gpu=false foo_bar=default", "arg=--nj", "arg=3"]


def test_unknown_option_is_rejected_with_help(demo):
    result = demo("--bogus-opt", "1", "in")
    assert result.returncode == 1
    assert "demo.sh: invalid option --bogus-opt" in result.stderr
    assert "Usage: demo.sh [options]" in result.stderr
    assert result.stdout == ""


def test_internal_or_odd_names_are_rejected(demo):
    for option in ("--PATH.x", "--a-b-c"):
        result = demo(option, "1")
        assert result.returncode == 1
        assert f"invalid option {option}" in result.stderr


def test_missing_value_is_an_error(demo):
    result = demo("--nj")
    assert result.returncode == 1
    assert "option --nj needs a value" in result.stderr


def test_boolean_accepts_only_true_or_false(demo):
    result = demo("--use-gpu", "yes", "in")
    assert result.returncode == 1
    assert "invalid value 'yes' for --use-gpu: expected true or false" in result.stderr
    assert demo("--use-gpu", "false", "in").returncode == 0


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_message_and_exits_0(demo, flag):
    result = demo("--nj", "2", flag, "in")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: demo.sh [options] <in> <out>\n  --nj N  jobs")
    assert "nj=" not in result.stdout  # the script stopped at --help

"""Two runs never write the same data or exp dir at once: the second stops at once, naming the
process that holds the directory, and writes nothing (utils/lock.sh,
pytorch_modules/fileio/dir_lock.py)."""
import fcntl
import subprocess
import time

import pytest

import tiny_data

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow


@pytest.fixture
def recipe(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.good_audio_dir(recipe / "data/x", tmp_path / "audio", num_speakers=2,
                             utts_per_speaker=2)
    return recipe


def hold(path, holder):
    """Locks `path` as another run would (flock), writing its line; returns the open file."""
    lock = open(path, "a+")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock.truncate(0)
    lock.write(holder + "\n")
    lock.flush()
    return lock


def make_features(recipe, nj):
    return tiny_data.run_script(recipe, "steps/make_spectrogram.sh", "--nj", nj, "data/x", "feats")


def test_a_second_feature_run_on_a_data_dir_stops_naming_the_first(recipe):
    lock = hold(recipe / "data/x/.lock", "process 4242 (run.sh, since 2026-12-04 10:00:00)")
    result = make_features(recipe, "1")
    assert result.returncode == 1
    assert result.stderr == (
        f"steps/make_spectrogram.sh: data/x is in use by another run: process 4242 (run.sh, "
        f"since 2026-12-04 10:00:00) holds {recipe}/data/x/.lock (or a job it started that is "
        f"still running: 'fuser -v {recipe}/data/x/.lock' lists them). Wait for it to end or "
        f"stop it, then rerun.\n")
    assert not (recipe / "feats").exists() and not (recipe / "data/x/split1utt").exists()
    lock.close()   # the first run ends: the directory is free
    result = make_features(recipe, "2")
    assert result.returncode == 0, result.stderr
    assert len((recipe / "data/x/feats.scp").read_text().splitlines()) == 4
    assert (recipe / "data/x/.lock").read_text().startswith("process ")


def test_a_step_inside_a_run_that_holds_the_dir_does_not_lock_it_again(recipe):
    # run.sh holds its dirs and calls steps that lock the same dirs: they must go on, while a
    # run from outside is refused for as long as the outer one lives.
    script = ". utils/lock.sh; lock_dir data/x; steps/make_spectrogram.sh --nj 1 data/x feats"
    result = tiny_data.run_script(recipe, "bash", "-c", script)
    assert result.returncode == 0, result.stderr
    lock = recipe / "data/x/.lock"
    with subprocess.Popen(["bash", "-c", ". utils/lock.sh; lock_dir data/x; sleep 30"],
                          cwd=recipe) as outer:
        try:
            deadline = time.monotonic() + 30
            # until it has the lock: a run that never takes it must not look like one refused
            while not (lock.is_file() and lock.read_text().startswith(f"process {outer.pid} ")):
                if outer.poll() is not None:
                    pytest.fail(f"the outer run ended (code {outer.returncode}) without "
                                f"holding {lock}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the outer run did not take {lock} within 30 s")
                time.sleep(0.05)
            result = make_features(recipe, "1")
        finally:
            outer.kill()
    assert result.returncode == 1 and f"process {outer.pid} (bash" in result.stderr


def test_a_second_trainer_in_an_exp_dir_stops_naming_the_first(tmp_path):
    tiny_data.write_feature_dir(tmp_path / "data", 2, 4)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml", epochs=1)
    (tmp_path / "exp").mkdir()
    lock = hold(tmp_path / "exp/.train.lock", "process 77 (training, since 2026-12-04 10:00:00)")
    result = tiny_data.train(config, tmp_path / "data", tmp_path / "exp")
    assert result.returncode == 1
    assert result.stderr == (
        f"train: {tmp_path}/exp is in use: process 77 (training, since 2026-12-04 10:00:00) "
        f"holds {tmp_path}/exp/.train.lock. Wait for it to end or stop it ('fuser -v "
        f"{tmp_path}/exp/.train.lock' lists it), then rerun.\n")
    assert not (tmp_path / "exp/checkpoints").exists()
    lock.close()
    result = tiny_data.train(config, tmp_path / "data", tmp_path / "exp")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "exp/final.pt").exists()

"""Every parallel stage restarts safely: a rerun redoes only the jobs whose output is missing or
stale, and nothing a killed or failed stage leaves behind passes for finished output."""
import os

import kaldiio
import numpy as np
import pytest
import torch

import tiny_data

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

NJ = 2  # two jobs: they run at once on the 2-core test machine


def log_states(logs):
    """(mtime, text) of each log, to see which ones a rerun rewrote."""
    return {log.name: (log.stat().st_mtime_ns, log.read_text()) for log in logs}


def rewritten(before, after):
    return sorted(name for name in after if before.get(name) != after[name])


@pytest.fixture
def recipe(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.good_audio_dir(recipe / "data/x", tmp_path / "audio", num_speakers=2,
                             utts_per_speaker=3)
    return recipe


def make_features(recipe, *options):
    return tiny_data.run_script(recipe, "steps/make_spectrogram.sh", "--nj", str(NJ), *options,
                                "data/x", "feats")


def test_feature_rerun_redoes_only_missing_or_stale_jobs(recipe):
    result = make_features(recipe)
    assert result.returncode == 0, result.stderr
    logs = [recipe / f"data/x/log/make_spectrogram_x.{n}.log" for n in range(1, NJ + 1)]
    feats = (recipe / "data/x/feats.scp").read_text()
    assert len(feats.splitlines()) == 6
    before = log_states(logs)

    # job 2 was killed: no .scp (its marker of being done)
    (recipe / "feats/raw_spec_x.2.scp").unlink()
    result = make_features(recipe)
    assert result.returncode == 0, result.stderr
    assert "rerunning job(s) 2 of 2" in result.stdout
    assert rewritten(before, log_states(logs)) == ["make_spectrogram_x.2.log"]
    assert (recipe / "data/x/feats.scp").read_text() == feats

    # nothing missing: no job runs, feats.scp is made again from the jobs' outputs, even
    # after the embedding stage rebuilt the split with feats.scp in it (same wav.scp parts)
    assert tiny_data.run_script(recipe, "utils/split_data.sh", "--per-utt", "data/x",
                                str(NJ)).returncode == 0
    assert (recipe / "data/x/split2utt/1/feats.scp").exists()
    before = log_states(logs)
    result = make_features(recipe)
    assert result.returncode == 0, result.stderr
    assert "all 2 jobs of data/x are already done" in result.stdout
    assert rewritten(before, log_states(logs)) == []
    assert (recipe / "data/x/feats.scp").read_text() == feats

    # another --nj splits the utterances otherwise.  After a run with --nj 1, job 1's output
    # is newer than split2utt/1 but holds every utterance: it must not pass for job 1 of 2.
    for nj in ("1", "2"):
        result = tiny_data.run_script(recipe, "steps/make_spectrogram.sh", "--nj", nj,
                                      "data/x", "feats")
        assert result.returncode == 0, result.stderr
        assert "already done" not in result.stdout
    assert len(rewritten(before, log_states(logs))) == NJ
    assert (recipe / "data/x/feats.scp").read_text() == feats


def test_a_job_is_pending_when_its_output_is_missing_or_its_inputs_changed_content(tmp_path):
    def pending(*options):
        result = tiny_data.run_script(tmp_path, tiny_data.ROOT / "utils/pending_jobs.sh",
                                      *options, "3", "out.JOB", "in.JOB", "conf")
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    for name in ("in.1", "in.2", "in.3", "conf"):
        (tmp_path / name).write_text(name)
    assert pending("--record") == ["1", "2", "3"]    # nothing recorded yet
    for name in ("out.1", "out.2", "out.3"):          # the jobs ran
        (tmp_path / name).write_text("done")
    assert pending() == []
    (tmp_path / "out.3").unlink()                      # killed before its output appeared
    os.utime(tmp_path / "in.1", (2e9, 2e9))            # touched, same content: still done
    assert pending() == ["3"]
    (tmp_path / "in.2").write_text("new audio list")   # new content with an old time
    os.utime(tmp_path / "in.2", (1e9, 1e9))
    assert pending() == ["2", "3"]
    assert pending("--key", "python job --compress true") == ["1", "2", "3"]  # another command
    (tmp_path / "conf").write_text("--frame-length=20")  # another feature config: every job
    assert pending("--record") == ["1", "2", "3"]
    assert not any((tmp_path / f"out.{n}").exists() for n in (1, 2, 3))  # --record removes them


def test_embedding_rerun_redoes_only_the_missing_job(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.write_feature_dir(recipe / "data/x", 2, 3)
    model = recipe / "exp/m/final.pt"
    tiny_data.write_tiny_model(model)

    def extract():
        return tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--nj", str(NJ),
                                    "exp/m/final.pt", "data/x", "exp/m/emb")

    result = extract()
    assert result.returncode == 0, result.stderr
    logs = [recipe / f"exp/m/emb/log/extract.{n}.log" for n in range(1, NJ + 1)]
    vectors = (recipe / "exp/m/emb/xvector.scp").read_text()
    assert len(vectors.splitlines()) == 6
    ark = (recipe / "exp/m/emb/xvector.1.ark").read_bytes()
    before = log_states(logs)

    (recipe / "exp/m/emb/xvector.1.scp").unlink()
    result = extract()
    assert result.returncode == 0, result.stderr
    assert rewritten(before, log_states(logs)) == ["extract.1.log"]
    assert (recipe / "exp/m/emb/xvector.scp").read_text() == vectors

    # a model touched without change is the same model: nothing is redone
    before = log_states(logs)
    os.utime(model, (2e9, 2e9))
    assert extract().returncode == 0
    assert rewritten(before, log_states(logs)) == []

    # another model makes every embedding stale, even when it is copied in with an old time
    tiny_data.write_tiny_model(model, seed=1)
    os.utime(model, (1e9, 1e9))
    assert extract().returncode == 0
    assert len(rewritten(before, log_states(logs))) == NJ
    assert (recipe / "exp/m/emb/xvector.1.ark").read_bytes() != ark


def test_embedding_use_gpu_takes_only_true_or_false(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.write_feature_dir(recipe / "data/x", 2, 3)
    tiny_data.write_tiny_model(recipe / "exp/m/final.pt")
    result = tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--use-gpu", "yes",
                                  "exp/m/final.pt", "data/x", "exp/m/emb")
    assert result.returncode == 1
    assert "invalid value 'yes' for --use-gpu: expected true or false" in result.stderr
    assert not (recipe / "exp/m/emb").exists()


def test_embeddings_are_taken_before_or_after_the_embedding_batchnorm(tmp_path):
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    tiny_data.write_feature_dir(recipe / "data/x", 2, 3)
    model = tiny_data.write_tiny_model(recipe / "exp/m/final.pt")
    state = torch.load(model, weights_only=True)
    rng = np.random.default_rng(5)   # running statistics as training leaves them
    mean = torch.from_numpy(rng.standard_normal(16).astype(np.float32))
    var = torch.from_numpy(rng.uniform(0.5, 4.0, 16).astype(np.float32))
    state["model"]["embedding_bn.running_mean"] = mean
    state["model"]["embedding_bn.running_var"] = var
    torch.save(state, model)

    vectors = {}
    for layer in ("fc", "bn"):
        result = tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--nj", str(NJ),
                                      "--layer", layer, "exp/m/final.pt", "data/x", "exp/m/emb")
        assert result.returncode == 0, result.stderr
        assert "already done" not in result.stdout   # the layer is part of each job's inputs
        vectors[layer] = dict(kaldiio.load_scp(str(recipe / "exp/m/emb/xvector.scp")))
    for utt, fc in vectors["fc"].items():
        np.testing.assert_allclose(vectors["bn"][utt], (fc - mean.numpy()) /
                                   np.sqrt(var.numpy() + 1e-5), rtol=1e-4, atol=1e-5)
    result = tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--layer", "pre",
                                  "exp/m/final.pt", "data/x", "exp/m/emb")
    assert result.returncode == 1
    assert result.stderr == "steps/extract_embeddings.sh: --layer takes bn or fc, not 'pre'\n"

"""A whole tiny run of ./run.sh: every stage, on a tiny generated corpus and a tiny model.

The recipe runs in a scratch folder that links to the project's code, the way Kaldi recipes
link steps/ and utils/, so data/, exp/, feats/ and corpora/ are the test's own.
"""
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
LINKED = ["run.sh", "path.sh", "cmd.sh", "conf", "local", "steps", "utils", "pytorch_modules",
          "requirements.txt", ".venv"]
TINY_CONFIG = """\
model: {widths: [4, 8, 16, 32], blocks: [1, 1, 1, 1], embedding_dim: 32}
loss: {type: dam_softmax, margin: 0.2, scale: 30, lambda: 2}
data: {crop_frames: 100, batch_size: 8, num_workers: 1}
optim: {epochs: 2, lr: 0.1, final_lr: 0.01}
training: {seed: 3, log_every_steps: 2}
"""
TINY_CORPUS = ("--num-dev-speakers 4 --num-test-speakers 3 --sessions-per-speaker 2 "
               "--utts-per-session 3 --num-trials 40 --min-dur 0.8 --max-dur 2")


def run(recipe: Path, *args: str) -> str:
    result = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 0, f"./run.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    work = tmp_path_factory.mktemp("recipe")
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    (work / "tiny.yaml").write_text(TINY_CONFIG)
    stdout = run(work, "--config", "tiny.yaml", "--demo-options", TINY_CORPUS)
    return work, stdout


def read_table(path: Path) -> dict:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def test_every_stage_ran(recipe):
    work, stdout = recipe
    for stage in range(7):
        assert f"=== stage {stage}:" in stdout
    assert (work / "corpora/demo/veri_test2.txt").is_file()


def test_features_cover_every_utterance_with_161_bins(recipe):
    work, _ = recipe
    for name in ("voxceleb1_dev", "voxceleb1_eval"):
        data = work / "data" / name
        utts = [line.split()[0] for line in (data / "utt2spk").read_text().splitlines()]
        feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
        frames = read_table(data / "utt2num_frames")
        assert sorted(feats) == utts
        for utt in utts:
            assert feats[utt].shape == (int(frames[utt]), 161)


def test_model_and_embeddings(recipe):
    work, _ = recipe
    state = torch.load(work / "exp/tiny/final.pt", weights_only=True)
    assert state["config"]["model"]["embedding_dim"] == 32
    assert len(state["speakers"]) == 4
    assert (work / "exp/tiny/checkpoints/epoch_002.pt").is_file()
    log = (work / "exp/tiny/log/train.log").read_text()
    assert "utt/s" in log and "left" in log and "# Ended (code 0)" in log
    vectors = dict(kaldiio.load_scp(str(work / "exp/tiny/embeddings_voxceleb1_eval/xvector.scp")))
    utts = [line.split()[0] for line in (work / "data/voxceleb1_eval/utt2spk").read_text().splitlines()]
    assert sorted(vectors) == utts
    assert all(v.shape == (32,) and np.isfinite(v).all() for v in vectors.values())


def test_scores_and_results(recipe):
    work, stdout = recipe
    trials = (work / "data/vox1_o/trials").read_text().splitlines()
    scores = (work / "exp/tiny/scores/vox1_o.scores").read_text().splitlines()
    assert len(trials) == len(scores) == 40
    for trial, score in zip(trials, scores):
        enroll, test, _ = trial.split()
        s_enroll, s_test, value = score.split()
        assert (s_enroll, s_test) == (enroll, test) and -1.0 <= float(value) <= 1.0
    results = read_table(work / "exp/tiny/scores/vox1_o.results")
    assert 0.0 <= float(results["eer_percent"]) <= 100.0
    assert "| exp/tiny/scores/vox1_o.results | vox1_o | veri_test2.txt | 40 |" in stdout
    text = (work / "exp/tiny/results.md").read_text()
    table = text.split("\n\n")[0].splitlines()
    # The model's rows, then the classical baselines' rows on the same trials
    assert [(row.split("|")[1].strip(), row.split("|")[2].strip()) for row in table[2:]] == [
        ("exp/tiny/scores/vox1_o.results", "vox1_o"),
        ("exp/tiny/scores/vox1_o_asnorm.results", "vox1_o_asnorm"),
        ("exp/classical_voxceleb1_dev/mfcc_stats_lda/scores/vox1_o.results", "vox1_o"),
        ("exp/classical_voxceleb1_dev/gmm_ubm/scores/vox1_o.results", "vox1_o")]
    assert all(row.rstrip().endswith("| - |") for row in table[2:])  # no paper figure: demo
    # The paired test of each baseline against the model uses the EER of the results files
    comparison = text.split("Paired comparison on vox1_o (cosine scores):")[1]
    model_row = next(r for r in comparison.splitlines() if r.startswith("| tiny |"))
    assert model_row.split("|")[3].strip() == f"{float(results['eer_percent']):.2f}"
    assert (work / "exp/tiny/results.md").read_text() in stdout


def test_rerunning_a_stage_reproduces_its_output(recipe):
    work, _ = recipe
    before = (work / "exp/tiny/scores/vox1_o.scores").read_text()
    stdout = run(work, "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "5")
    # training was complete: the rerun resumes after the last epoch and trains nothing
    log = (work / "exp/tiny/log/train.log").read_text()
    assert "resuming from" in log and "epoch 1/2" not in log
    assert "=== stage 5:" in stdout
    assert (work / "exp/tiny/scores/vox1_o.scores").read_text() == before
    # the MFCCs did not change, so neither baseline is trained again
    for system in ("mfcc_stats_lda", "gmm_ubm"):
        assert f"{system} is already trained on data/voxceleb1_dev from these MFCCs" in stdout


def test_figures_threshold_and_export(recipe):
    work, _ = recipe
    for png in ("det_vox1_o.png", "margin.png", "cos_theta_hist.png"):
        data = (work / "exp/tiny/plots" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # Fig 1's data: one 100-bin histogram of cos(theta_y) per epoch, each counting every crop
    hist = [line.split("\t") for line in
            (work / "exp/tiny/cos_theta_hist.tsv").read_text().splitlines()[1:]]
    per_epoch = {e: sum(int(n) for ep, _, _, n in hist if ep == e) for e in ("1", "2")}
    assert len(hist) == 200 and per_epoch["1"] == per_epoch["2"] > 0
    threshold = read_table(work / "exp/tiny/final.threshold")
    assert threshold["operating_point"] == "eer" and -1.0 <= float(threshold["threshold"]) <= 1.0
    assert (work / "exp/tiny/export/embedding.onnx").is_file()
    assert (work / "exp/tiny/export/embedding.ts.pt").is_file()


def test_training_from_shards_writes_no_arks_of_the_training_set(recipe, tmp_path):
    """data.features: shards: stage 2 packs the training set into shards instead of writing
    its arks, training reads the shards, and only the AS-norm cohort's utterances get
    features (stage 4), so a large training set never exists as arks.  The config's feature
    options (here conf/fbank.conf's 80 mel filters) make every feature of the run."""
    work, _ = recipe
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "corpora").symlink_to(work / "corpora")
    (tmp_path / "shards.yaml").write_text(TINY_CONFIG.replace(
        "num_workers: 1}", "num_workers: 1, features: shards, shuffle_buffer: 8, "
                           "spectrogram_config: conf/fbank.conf}").replace(
        "embedding_dim: 32}", "embedding_dim: 32, input_bins: 80}"))
    stdout = run(tmp_path, "--config", "shards.yaml", "--stage", "1", "--stop-stage", "5",
                 "--baseline", "false", "--cohort-utts-per-spk", "2")
    train = tmp_path / "data/voxceleb1_dev"
    assert (train / "shards.list").is_file() and not (train / "feats.scp").exists()
    assert not list((tmp_path / "feats").glob("*voxceleb1_dev.*"))
    log = (tmp_path / "exp/shards/log/train.log").read_text()
    assert "# Ended (code 0)" in log
    cohort = tmp_path / "data/voxceleb1_dev_cohort2"
    assert len((cohort / "feats.scp").read_text().splitlines()) == 4 * 2
    for data in (cohort, tmp_path / "data/voxceleb1_eval"):
        assert {m.shape[1] for _, m in kaldiio.load_scp(str(data / "feats.scp")).items()} == {80}
    assert (tmp_path / "exp/shards/cohort_voxceleb1_dev_cohort2").is_dir()
    results = read_table(tmp_path / "exp/shards/scores/vox1_o_asnorm.results")
    assert 0.0 <= float(results["eer_percent"]) <= 100.0
    assert "=== stage 5:" in stdout


def test_loss_comparison_trains_each_loss_with_each_seed_alike(recipe):
    work, _ = recipe
    result = subprocess.run(["local/compare_losses.sh", "--base-config", "tiny.yaml",
                             "--out-dir", "exp/compare", "--losses", "am_softmax dam_softmax",
                             "--seeds", "1 2"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    configs = {}
    for loss in ("am_softmax", "dam_softmax"):
        for seed in (1, 2):
            run = f"{loss}_seed{seed}"
            configs[run] = yaml.safe_load((work / f"exp/compare/{run}/config.yaml").read_text())
            assert configs[run]["loss"]["type"] == loss
            assert configs[run]["training"]["seed"] == seed
            assert (work / f"exp/compare/{run}/final.pt").is_file()
    # everything but the loss and the seed is the base config's
    rest = [{k: v for k, v in c.items() if k != "loss"} for c in configs.values()]
    for c in rest:
        c["training"] = {k: v for k, v in c["training"].items() if k != "seed"}
    assert all(c == rest[0] for c in rest)
    lines = (work / "exp/compare/results.md").read_text().splitlines()
    assert len([line for line in lines if line.startswith("| exp/compare/")]) == 4 + 2
    # the seeds' summary: one row per loss, DAM tested against AM-Softmax, then the fusions
    summary = lines[lines.index("Seeds 1 2 on vox1_o:") + 2:]
    assert summary[0].startswith("| system | seeds | EER (%) mean | EER sd ")
    assert "EER - am_softmax (%) [95% CI]" in summary[0]
    rows = {row.split(" | ")[0][2:]: row.split(" | ") for row in summary[2:6]}
    assert set(rows) == {"am_softmax", "dam_softmax", "am_softmax_fused", "dam_softmax_fused"}
    assert rows["am_softmax"][6:] == ["-", "- |"] and rows["dam_softmax"][1] == "2"
    assert rows["dam_softmax_fused"][1] == "1"
    # a fused system scores each trial with the mean of its seeds' scores
    seeds = [np.loadtxt(work / f"exp/compare/dam_softmax_seed{s}/scores/vox1_o.scores",
                        usecols=2) for s in (1, 2)]
    fused = work / "exp/compare/dam_softmax_fused/scores/vox1_o.scores"
    np.testing.assert_allclose(np.loadtxt(fused, usecols=2), np.mean(seeds, axis=0), atol=1e-6)
    fused_results = read_table(fused.with_suffix(".results"))
    assert fused_results["fused_systems"] == "2" and "eer_percent_ci_low" in fused_results
    assert (work / "exp/compare/det_vox1_o.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_embed_use_gpu_stops_run_sh_before_any_stage(tmp_path):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    result = subprocess.run(["./run.sh", "--embed-use-gpu", "maybe"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "--embed-use-gpu takes auto, true or false, not 'maybe'" in result.stderr
    assert not (tmp_path / "corpora").exists() and not (tmp_path / "data").exists()


def test_a_bad_config_value_stops_run_sh_before_any_stage(tmp_path):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "bad.yaml").write_text(TINY_CONFIG.replace("scale: 30", "scale: 0"))
    result = subprocess.run(["./run.sh", "--config", "bad.yaml"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "config_value: bad.yaml: loss.scale is 0, but dam_softmax needs it > 0")
    assert "Traceback" not in result.stderr and "=== stage" not in result.stdout
    assert not (tmp_path / "corpora").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("args, message", [
    (["--nj", "x"], "--nj takes a whole number of at least 1, not 'x'"),
    (["--asnorm-top-n", "-3"], "--asnorm-top-n takes a whole number of at least 1, not '-3'"),
    (["--embedding-layer", "pre"], "--embedding-layer takes bn or fc, not 'pre'"),
    (["--musan-root", "/nowhere/musan"], "augmentation corpus folder /nowhere/musan does not "
                                         "exist (--musan-root/--rirs-root)"),
    (["--stage", "99"], "--stage takes a stage of this recipe, 0 to 6, not '99' (./run.sh "
                        "--help lists them)"),
    (["--stage", "4", "--stop-stage", "3"], "--stop-stage takes a stage from --stage (4) to 6, "
                                            "not '3'"),
    (["--stage", "5"], "stage 5 needs exp/demo_dam/embeddings_voxceleb1_eval/xvector.scp, which "
                       "stage 4 writes; run ./run.sh --stage 4 (with the same options) first"),
    (["--stage", "3"], "stage 3 needs data/voxceleb1_dev/feats.scp, which stage 2 writes; run "
                       "./run.sh --stage 2 (with the same options) first"),
    # the default exp dir of a config with overrides is its own
    (["--stage", "5", "--set", "training.seed=2", "--set", "model.widths=[8, 8, 16, 16]"],
     "stage 5 needs exp/demo_dam_training.seed-2_model.widths-_8__8__16__16_/embeddings_"
     "voxceleb1_eval/xvector.scp, which stage 4 writes; run ./run.sh --stage 4 (with the same "
     "options) first"),
    (["--set", "optim.lrr=0.1"], "config_value: conf/demo_dam.yaml with --set optim.lrr=0.1: "
                                 "optim: unknown key 'lrr' (known keys: "),
])
def test_a_stage_out_of_range_or_without_its_inputs_is_a_sentence(tmp_path, args, message):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    result = subprocess.run(["./run.sh", *args], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"./run.sh: {message}" or last.startswith(message), result.stderr
    assert "line " not in result.stderr and not (tmp_path / "exp").exists()

"""A whole tiny run of ./run.sh: every stage, on a tiny generated corpus and a tiny model.

The recipe runs in a scratch folder that links to the project's code, the way Kaldi recipes
link steps/ and utils/, so data/, exp/, feats/ and corpora/ are the test's own.
"""
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile
import torch
import yaml

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

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
    assert result.returncode == 0, (f"./run.sh {' '.join(args)} failed:\n"
                                    f"{result.stdout}\n{result.stderr}")
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
    # The features are the spectrogram of the audio, recomputed with numpy (Hamming 20 ms
    # every 10 ms, 320-point FFT, log power floored at 1e-10).
    wav = read_table(work / "data/voxceleb1_eval/wav.scp")
    for utt in sorted(wav)[:3]:
        x = soundfile.read(wav[utt].strip(), dtype="float64")[0]
        count = 1 + (len(x) - 320) // 160
        frames = np.stack([x[i * 160:i * 160 + 320] for i in range(count)]) * np.hamming(320)
        expected = np.log(np.maximum(np.abs(np.fft.rfft(frames, 320)) ** 2, 1e-10))
        difference = np.abs(feats[utt] - expected)   # float32 against float64
        assert difference.mean() < 1e-4 and difference.max() < 2e-2, (utt, difference.max())


def test_model_and_embeddings(recipe):
    work, _ = recipe
    state = torch.load(work / "exp/tiny/final.pt", weights_only=True)
    assert state["config"]["model"]["embedding_dim"] == 32
    assert len(state["speakers"]) == 4
    assert (work / "exp/tiny/checkpoints/epoch_002.pt").is_file()
    log = (work / "exp/tiny/log/train.log").read_text()
    assert "utt/s" in log and "left" in log and "# Ended (code 0)" in log
    vectors = dict(kaldiio.load_scp(str(work / "exp/tiny/embeddings_voxceleb1_eval/xvector.scp")))
    utts = [line.split()[0]
            for line in (work / "data/voxceleb1_eval/utt2spk").read_text().splitlines()]
    assert sorted(vectors) == utts
    assert all(v.shape == (32,) and np.isfinite(v).all() for v in vectors.values())
    # Each is the trained network (in eval mode) applied to the whole utterance's features.
    from pytorch_modules.config import config_from_dict
    from pytorch_modules.models import build_model
    model = build_model(config_from_dict(state["config"]).model)
    model.load_state_dict(state["model"])
    model.eval()
    feats = dict(kaldiio.load_scp(str(work / "data/voxceleb1_eval/feats.scp")))
    with torch.no_grad():
        for utt in utts[:3]:
            got = model(torch.from_numpy(feats[utt].T.copy())[None])[0].numpy()
            np.testing.assert_allclose(vectors[utt], got, rtol=1e-4, atol=1e-5, err_msg=utt)


def speakers_of(data: Path) -> dict:
    return {utt: spk.strip() for utt, spk in read_table(data / "utt2spk").items()}


def test_scores_and_results(recipe):
    """Every score and figure recomputed from what the stage before wrote
    (tests/reference_metrics.py): cosine scores from the embeddings, AS-norm from the
    training embeddings by its formula, EER, minDCF and the bootstrap interval of every
    results file (the model's and the baselines') from the scores."""
    from pytorch_modules.scoring.bootstrap import draws

    import reference_metrics as reference

    work, stdout = recipe
    data = work / "data/vox1_o"
    trials = reference.read_trials(data / "trials")
    embedding = reference.vectors(work / "exp/tiny/embeddings_voxceleb1_eval/xvector.scp")
    scores = reference.read_scores(work / "exp/tiny/scores/vox1_o.scores")
    assert len(trials) == len(scores) == 40
    for (enroll, test, _), (s_enroll, s_test, value) in zip(trials, scores):
        assert (s_enroll, s_test) == (enroll, test)
        assert value == pytest.approx(reference.cosine(embedding[enroll], embedding[test]),
                                      abs=2e-6)
    # AS-norm: the training-set mean subtracted, a cohort of each training speaker's mean
    # length-normalised embedding, the top 300 capped at its 4 speakers.
    train = reference.vectors(work / "exp/tiny/embeddings_voxceleb1_dev/xvector.scp")
    train_speaker = speakers_of(work / "data/voxceleb1_dev")
    mean = np.mean(list(train.values()), axis=0)
    unit = lambda v: v / np.linalg.norm(v)
    cohort = [np.mean([unit(v - mean) for u, v in train.items() if train_speaker[u] == spk],
                      axis=0) for spk in sorted(set(train_speaker.values()))]
    for enroll, test, value in reference.read_scores(
            work / "exp/tiny/scores/vox1_o_asnorm.scores"):
        assert value == pytest.approx(reference.asnorm(
            embedding[enroll] - mean, embedding[test] - mean, cohort, 4), abs=1e-4)
    utt2spk = speakers_of(data)
    same_draws = lambda clusters: draws(clusters, 1000, 7)   # the results files' bootstrap
    eers = {}
    for name, folder in (("tiny", "exp/tiny/scores"),
                         ("tiny_asnorm", "exp/tiny/scores"),
                         ("mfcc_stats_lda", "exp/classical_voxceleb1_dev/mfcc_stats_lda/scores"),
                         ("gmm_ubm", "exp/classical_voxceleb1_dev/gmm_ubm/scores")):
        stem = "vox1_o_asnorm" if name == "tiny_asnorm" else "vox1_o"
        eers[name] = reference.check_results_file(work / folder / f"{stem}.results",
                                                  work / folder / f"{stem}.scores",
                                                  data / "trials", utt2spk, same_draws)
    results = read_table(work / "exp/tiny/scores/vox1_o.results")
    assert "| exp/tiny/scores/vox1_o.results | vox1_o | veri_test2.txt | 40 |" in stdout
    text = (work / "exp/tiny/results.md").read_text()
    table = text.split("\n\n")[0].splitlines()
    # The model's rows, each back-end followed by its calibrated scores (when the tiny model's
    # training-speaker scores could be calibrated: it learns little in 2 epochs), then the
    # classical baselines' rows on the same trials
    model_rows = []
    for stem in ("vox1_o", "vox1_o_asnorm", "vox1_o_plda"):
        model_rows.append((f"exp/tiny/scores/{stem}.results", stem))
        if (work / f"exp/tiny/scores/{stem}_cal.results").is_file():
            model_rows.append((f"exp/tiny/scores/{stem}_cal.results", f"{stem}_cal"))
    assert [(row.split("|")[1].strip(), row.split("|")[2].strip()) for row in table[2:]] == \
        model_rows + [(f"exp/classical_voxceleb1_dev/{system}/scores/vox1_o.results", "vox1_o")
                      for system in ("mfcc_stats_lda", "gmm_ubm", "ivector")]
    rows_by_file = {row.split("|")[1].strip(): row for row in table[2:]}
    for name, folder in (("tiny", "exp/tiny/scores"), ("tiny_asnorm", "exp/tiny/scores"),
                         ("mfcc_stats_lda", "exp/classical_voxceleb1_dev/mfcc_stats_lda/scores"),
                         ("gmm_ubm", "exp/classical_voxceleb1_dev/gmm_ubm/scores")):
        stem = "vox1_o_asnorm" if name == "tiny_asnorm" else "vox1_o"
        row = rows_by_file[f"{folder}/{stem}.results"]   # each row's EER is its scores' EER
        assert float(row.split("|")[5].split()[0]) == pytest.approx(eers[name], abs=0.005)
    assert all(row.rstrip().endswith("| - |") for row in table[2:])  # no paper figure: demo
    # The paired test of each baseline against the model uses the EER of the results files
    comparison = text.split("Paired comparison on vox1_o (cosine scores):")[1]
    rows = {r.split("|")[1].strip(): r.split("|") for r in comparison.splitlines()
            if r.startswith("| ")}
    for name in ("tiny", "mfcc_stats_lda", "gmm_ubm"):
        assert float(rows[name][3]) == pytest.approx(eers[name], abs=0.005)
    assert float(rows["mfcc_stats_lda"][7].split()[0]) == pytest.approx(
        eers["mfcc_stats_lda"] - eers["tiny"], abs=0.01)
    assert rows["tiny"][3].strip() == f"{float(results['eer_percent']):.2f}"
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
    # the MFCCs did not change, so no baseline is trained again
    for system in ("mfcc_stats_lda", "gmm_ubm", "ivector"):
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
    # 24 training utterances in batches of 8: 3 steps, 24 crops an epoch
    assert len(hist) == 200 and per_epoch["1"] == per_epoch["2"] == 24
    threshold = read_table(work / "exp/tiny/final.threshold")
    # the EER point of Vox1-O's cosine scores (README, "Verifying"), one of those scores
    results = read_table(work / "exp/tiny/scores/vox1_o.results")
    assert threshold["operating_point"] == "eer"
    assert float(threshold["threshold"]) == pytest.approx(float(results["eer_threshold"]),
                                                          abs=1e-6)
    scores = [float(line.split()[2]) for line in
              (work / "exp/tiny/scores/vox1_o.scores").read_text().splitlines()]
    assert min(abs(float(threshold["threshold"]) - s) for s in scores) < 1e-6
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
    import reference_metrics as reference
    for name in ("vox1_o", "vox1_o_asnorm"):
        reference.check_results_file(tmp_path / f"exp/shards/scores/{name}.results",
                                     tmp_path / f"exp/shards/scores/{name}.scores",
                                     tmp_path / "data/vox1_o/trials")
    embedding = reference.vectors(tmp_path / "exp/shards/embeddings_voxceleb1_eval/xvector.scp")
    for enroll, test, value in reference.read_scores(tmp_path / "exp/shards/scores/vox1_o.scores"):
        assert value == pytest.approx(reference.cosine(embedding[enroll], embedding[test]),
                                      abs=2e-6)
    assert "=== stage 5:" in stdout


def summary_rows(lines, title):
    """The rows of compare_systems' table under `title` in results.md, by system name."""
    table = lines[lines.index(title) + 2:]
    rows = {}
    for row in table[2:]:
        if not row.startswith("| "):
            break
        rows[row.split(" | ")[0][2:]] = row.split(" | ")
    return table[0], rows


def test_loss_comparison_of_one_loss_with_seeds_then_of_losses_with_one_seed(recipe):
    """README: the seed ensemble, local/compare_losses.sh --losses dam_softmax --seeds "1 2
    3", writes the three models and their fusion beside them; then two losses with one seed
    in the same out-dir: the DAM-Softmax seed-1 model is reused, AM-Softmax trained alike,
    and with one seed nothing is fused.  Every EER of the tables is recomputed from the
    scores (tests/reference_metrics.py)."""
    import reference_metrics as reference

    work, _ = recipe

    def compare(*args):
        result = subprocess.run(["local/compare_losses.sh", "--base-config", "tiny.yaml",
                                 "--out-dir", "exp/compare", *args], cwd=work,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        return (work / "exp/compare/results.md").read_text().splitlines()

    trials = work / "data/vox1_o/trials"
    labels = np.array([label for _, _, label in reference.read_trials(trials)])

    def eer(scores_file):
        return 100 * reference.eer_and_min_dcf(np.loadtxt(scores_file, usecols=2), labels)[0]

    # 1. one loss, three seeds: the README's seed-ensemble command
    lines = compare("--losses", "dam_softmax", "--seeds", "1 2 3")
    seed_scores = [work / f"exp/compare/dam_softmax_seed{s}/scores/vox1_o.scores"
                   for s in (1, 2, 3)]
    assert [line.split(" | ")[0] for line in lines if line.startswith("| exp/compare/")] == [
        f"| exp/compare/dam_softmax_seed{s}/scores/vox1_o.results" for s in (1, 2, 3)] + [
        "| exp/compare/dam_softmax_fused/scores/vox1_o.results"]
    header, rows = summary_rows(lines, "Seeds 1 2 3 on vox1_o:")
    assert header.startswith("| system | seeds | EER (%) mean | EER sd ")
    assert "EER - dam_softmax (%) [95% CI]" in header   # the one loss is the reference
    assert list(rows) == ["dam_softmax", "dam_softmax_fused"]
    seed_eers = [eer(f) for f in seed_scores]
    assert rows["dam_softmax"][1] == "3" and rows["dam_softmax"][6:] == ["-", "- |"]
    assert float(rows["dam_softmax"][2]) == pytest.approx(np.mean(seed_eers), abs=0.005)
    # the fusion scores each trial with the mean of the three seeds' scores
    fused = work / "exp/compare/dam_softmax_fused/scores/vox1_o.scores"
    np.testing.assert_allclose(np.loadtxt(fused, usecols=2),
                               np.mean([np.loadtxt(f, usecols=2) for f in seed_scores], axis=0),
                               atol=1e-6)
    reference.check_results_file(fused.with_suffix(".results"), fused, trials)
    assert read_table(fused.with_suffix(".results"))["fused_systems"] == "3"
    assert rows["dam_softmax_fused"][1] == "1"
    assert float(rows["dam_softmax_fused"][2]) == pytest.approx(eer(fused), abs=0.005)
    assert float(rows["dam_softmax_fused"][6].split()[0]) == pytest.approx(
        eer(fused) - np.mean(seed_eers), abs=0.01)
    fused_written = fused.stat().st_mtime_ns

    # 2. two losses, one seed: dam_softmax_seed1 is reused, nothing is fused
    lines = compare("--losses", "am_softmax dam_softmax", "--seeds", "1")
    log = (work / "exp/compare/dam_softmax_seed1/log/train.log").read_text()
    assert "resuming from" in log and "epoch 1/2" not in log
    assert [line.split(" | ")[0] for line in lines if line.startswith("| exp/compare/")] == [
        "| exp/compare/am_softmax_seed1/scores/vox1_o.results",
        "| exp/compare/dam_softmax_seed1/scores/vox1_o.results"]
    assert not any("fused" in line for line in lines)
    assert fused.stat().st_mtime_ns == fused_written and not (
        work / "exp/compare/am_softmax_fused").exists()
    header, rows = summary_rows(lines, "Seeds 1 on vox1_o:")
    assert "EER - am_softmax (%) [95% CI]" in header and list(rows) == ["am_softmax",
                                                                        "dam_softmax"]
    am_eer = eer(work / "exp/compare/am_softmax_seed1/scores/vox1_o.scores")
    assert rows["am_softmax"][1] == "1" and rows["am_softmax"][6:] == ["-", "- |"]
    assert float(rows["am_softmax"][2]) == pytest.approx(am_eer, abs=0.005)
    assert float(rows["dam_softmax"][6].split()[0]) == pytest.approx(seed_eers[0] - am_eer,
                                                                     abs=0.01)
    # every run is the base config with only the loss and the seed replaced
    configs = {}
    for run in ("am_softmax_seed1", "dam_softmax_seed1", "dam_softmax_seed2",
                "dam_softmax_seed3"):
        configs[run] = yaml.safe_load((work / f"exp/compare/{run}/config.yaml").read_text())
        assert configs[run]["loss"]["type"] == run.rsplit("_seed", 1)[0]
        assert configs[run]["training"]["seed"] == int(run[-1])
        assert (work / f"exp/compare/{run}/final.pt").is_file()
    rest = [{k: v for k, v in c.items() if k != "loss"} for c in configs.values()]
    for c in rest:
        c["training"] = {k: v for k, v in c["training"].items() if k != "seed"}
    assert all(c == rest[0] for c in rest)
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
    # fine-tuning from a model that is not there stops before stage 0, not at stage 3
    (["--init-model", "exp/nowhere/final.pt"], "training.init_model exp/nowhere/final.pt does "
     "not exist (from --init-model, --set or conf/demo_dam.yaml); give the final.pt or a "
     "checkpoint of a trained model"),
    (["--overlay", "conf/overlays/nowhere.yaml"], "no overlay file conf/overlays/nowhere.yaml"),
])
def test_a_stage_out_of_range_or_without_its_inputs_is_a_sentence(tmp_path, args, message):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    result = subprocess.run(["./run.sh", *args], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"./run.sh: {message}" or last.startswith(message), result.stderr
    assert "line " not in result.stderr and not (tmp_path / "exp").exists()

"""Training that starts from a trained model, through ./run.sh: large-margin fine-tuning
(--lm true, conf/overlays/lm.yaml) into its own exp dir that stages 4-6 then use, and an overlay
with --init-model (conf/overlays/finetune.yaml's way) on a data dir of other speakers."""
import shutil
import subprocess

import pytest
import torch
import yaml

from test_recipe_run import LINKED, ROOT, TINY_CONFIG, TINY_CORPUS, run

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A tiny demo corpus with features (stages 0-2)."""
    work = tmp_path_factory.mktemp("finetune")
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    (work / "tiny.yaml").write_text(TINY_CONFIG)
    run(work, "--config", "tiny.yaml", "--demo-options", TINY_CORPUS, "--stop-stage", "2")
    return work


def test_large_margin_fine_tuning_trains_its_own_model_from_the_trained_one(recipe):
    stdout = run(recipe, "--config", "tiny.yaml", "--stage", "3", "--lm", "true",
                 "--asnorm", "false", "--baseline", "false")
    base, lm = recipe / "exp/tiny", recipe / "exp/tiny_lm"
    config = yaml.safe_load((lm / "config.yaml").read_text())
    lm_keys = yaml.safe_load((ROOT / "conf/overlays/lm.yaml").read_text())
    for section, values in lm_keys.items():
        for key, value in values.items():
            assert config[section][key] == value, f"{section}.{key}"
    assert config["training"]["init_model"] == "exp/tiny/final.pt"
    log = (lm / "log/train.log").read_text()
    assert "initialised from exp/tiny/final.pt: its network and its dam_softmax head (the same " \
           "4 speakers)" in log
    assert "margin 0.5 from the first step (no margin warm-up)" in log
    assert "epoch 5/5" in log and "crops of 600 frames" in log
    # stages 4-6 used the fine-tuned model
    assert (lm / "embeddings_voxceleb1_eval/xvector.scp").is_file()
    assert (lm / "scores/vox1_o.results").is_file() and (lm / "results.md").is_file()
    assert not (base / "scores").exists()
    assert "=== stage 3: large-margin fine-tuning of exp/tiny into exp/tiny_lm" in stdout
    # the fine-tuned network is not the trained one
    a = torch.load(base / "final.pt", weights_only=True)["model"]
    b = torch.load(lm / "final.pt", weights_only=True)["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_an_overlay_and_an_init_model_fine_tune_on_other_speakers(recipe, tmp_path):
    """The trained model's speakers are 4; the new training set holds 3 of the 7 others (the
    evaluation speakers' data dir is used as training data here)."""
    if not (recipe / "exp/tiny/final.pt").is_file():
        run(recipe, "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "3")
    other = recipe / "data/other"
    shutil.copytree(recipe / "data/voxceleb1_eval", other)
    (recipe / "overlay.yaml").write_text("optim: {epochs: 2, freeze_backbone_epochs: 1, "
                                         "lr: 0.01, final_lr: 0.001}\n")
    # through steps/train.sh: the new head, the frozen epoch
    result = subprocess.run(
        ["steps/train.sh", "--config", "tiny.yaml", "--set", "optim.epochs=2", "--set",
         "optim.freeze_backbone_epochs=1", "--set", "training.init_model=exp/tiny/final.pt",
         "data/other", "exp/other"], cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    log = (recipe / "exp/other/log/train.log").read_text()
    assert "initialised from exp/tiny/final.pt: its network; a new dam_softmax head, since its " \
           "4 training speakers are not these 3" in log
    assert "the network is frozen (weights and BatchNorm statistics) for the first 1 epochs" in log
    # through run.sh: the overlay's keys and the init model reach the config, and the exp dir
    # is named after the overlay
    out = run(recipe, "--config", "tiny.yaml", "--overlay", "overlay.yaml", "--init-model",
                 "exp/tiny/final.pt", "--stage", "3", "--stop-stage", "3")
    config = yaml.safe_load((recipe / "exp/tiny_overlay/config.yaml").read_text())
    assert config["optim"]["freeze_backbone_epochs"] == 1.0
    assert config["training"]["init_model"] == "exp/tiny/final.pt"
    assert "exp/tiny_overlay" in out


def test_an_init_model_of_another_network_stops_training_with_a_sentence(recipe):
    if not (recipe / "exp/tiny/final.pt").is_file():
        run(recipe, "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "3")
    result = subprocess.run(
        ["./run.sh", "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "3", "--set",
         "model.embedding_dim=16", "--init-model", "exp/tiny/final.pt"],
        cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 1
    assert ("training.init_model exp/tiny/final.pt is another network than this config's "
            "(model.embedding_dim: 32 there, 16 here)") in result.stderr + result.stdout

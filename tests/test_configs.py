"""The shipped training configs: each loads, the paper's keep the paper's values, and each
pair that is meant to differ in one thing differs in that alone."""
from pathlib import Path

import pytest
import yaml

from pytorch_modules.config import load_config

CONF = Path(__file__).resolve().parents[1] / "conf"
# conf/classical*.yaml hold the classical baselines' settings (tests/test_classical.py)
TRAINING_CONFIGS = sorted(p.name for p in CONF.glob("*.yaml")
                          if not p.name.startswith("classical"))


def load(name):
    return load_config(CONF / name).to_dict()


def without(config, *keys):
    """The config with section.key entries (or whole sections) removed."""
    out = {section: dict(values) for section, values in config.items()}
    for key in keys:
        section, _, field = key.partition(".")
        if field:
            del out[section][field]
        else:
            del out[section]
    return out


def test_every_shipped_config_loads():
    assert {"rescnn_dam.yaml", "rescnn_am.yaml", "demo_dam.yaml", "demo_am.yaml",
            "small_dam.yaml", "small_am.yaml", "small_dam_lr0.1.yaml",
            "small_dam_aug.yaml", "small_dam_speed.yaml"} <= set(TRAINING_CONFIGS)
    for name in TRAINING_CONFIGS:
        load_config(CONF / name)


@pytest.mark.parametrize("name, loss", [("rescnn_dam.yaml", {"type": "dam_softmax",
                                                              "margin": 0.2, "scale": 30.0,
                                                              "lambda": 2.0}),
                                         ("rescnn_am.yaml", {"type": "am_softmax",
                                                             "margin": 0.2, "scale": 30.0})])
def test_the_paper_configs_keep_the_papers_values(name, loss):
    config = load(name)
    assert {k: v for k, v in config["loss"].items()
            if k not in ("margin_grad", "sub_centers")} == loss
    assert config["loss"].get("sub_centers", 1) == 1
    assert (config["optim"]["lr"], config["data"]["batch_size"]) == (0.1, 64)
    assert config["model"]["widths"] == [64, 128, 256, 512]
    assert config["model"]["blocks"] == [3, 4, 6, 3]
    assert (config["model"]["pooling"], config["data"]["crop_frames"]) == ("avg", 300)
    # the fix for lr 0.1 (ours): both warm-ups on
    assert config["optim"]["warmup_epochs"] > 0 and config["optim"]["margin_warmup_epochs"] > 0


@pytest.mark.parametrize("dam, am", [("rescnn_dam.yaml", "rescnn_am.yaml"),
                                     ("demo_dam.yaml", "demo_am.yaml"),
                                     ("small_dam.yaml", "small_am.yaml")])
def test_each_am_baseline_differs_from_its_dam_config_only_in_the_loss(dam, am):
    assert without(load(dam), "loss") == without(load(am), "loss")
    assert load(am)["loss"]["type"] == "am_softmax"


def test_the_small_lr_0_1_config_is_the_small_config_at_the_papers_lr_with_warm_ups():
    small, fast = load("small_dam.yaml"), load("small_dam_lr0.1.yaml")
    changed = ("data.batch_size", "optim.lr", "optim.final_lr", "optim.warmup_epochs",
               "optim.margin_warmup_epochs", "optim.lr_reference_batch")
    assert without(small, *changed) == without(fast, *changed)
    assert (fast["optim"]["lr"], fast["data"]["batch_size"]) == (0.1, 64)
    assert fast["optim"]["warmup_epochs"] > 0 and fast["optim"]["margin_warmup_epochs"] > 0


def test_the_augmented_small_config_is_the_small_config_with_on_the_fly_augmented_crops():
    small, aug = load("small_dam.yaml"), load("small_dam_aug.yaml")
    assert without(small, "data.features", "augment") == without(aug, "data.features", "augment")
    assert aug["data"]["features"] == "on_the_fly" and small["data"]["features"] == "precomputed"
    assert aug["augment"]["noise_prob"] > 0 and aug["augment"]["babble_prob"] > 0
    assert small["augment"] == load("rescnn_dam.yaml")["augment"]   # all off
    assert not load_config(CONF / "rescnn_dam.yaml").augment.enabled


def test_the_speed_perturbed_small_config_is_the_lr_0_1_config_with_sped_up_speakers():
    fast, speed = load("small_dam_lr0.1.yaml"), load("small_dam_speed.yaml")
    assert (without(fast, "data.features", "augment")
            == without(speed, "data.features", "augment"))
    assert speed["data"]["features"] == "on_the_fly"
    assert speed["augment"]["speed_new_speakers"] is True
    assert speed["augment"]["speed_factors"] == [0.9, 1.1]
    # each speed, 1.0 included, a third of the crops (WeSpeaker's draw among three)
    assert abs(speed["augment"]["speed_prob"] - 2 / 3) < 0.001
    assert all(v == 0 for k, v in speed["augment"].items() if k.endswith("_prob") and
               k != "speed_prob")


def test_the_augmented_paper_config_is_the_paper_config_with_shards_and_augmentation():
    paper, aug = load("rescnn_dam.yaml"), load("rescnn_dam_aug.yaml")
    changed = ("data.num_workers", "data.features", "augment")
    assert without(paper, *changed) == without(aug, *changed)
    assert aug["data"]["features"] == "shards"
    assert all(aug["augment"][f"{kind}_prob"] > 0
               for kind in ("reverb", "noise", "music", "babble"))
    assert aug["augment"]["noise_list"] == "data/musan/noise.list"


@pytest.mark.parametrize("a, b", [("resnet34_aam.yaml", "resnet34_dam.yaml"),
                                  ("resnet34_aam.yaml", "resnet34_dam_aam.yaml"),
                                  ("ecapa_tdnn_aam.yaml", "ecapa_tdnn_dam.yaml")])
def test_each_networks_configs_differ_only_in_the_loss(a, b):
    assert without(load(a), "loss") == without(load(b), "loss")
    assert load(a)["loss"]["type"] != load(b)["loss"]["type"]


def test_the_small_dam_aam_config_is_the_measured_grid_system():
    # docs/networks_and_margins.md measured it as resnet34_small_dam.yaml with
    # --set loss.type=dam_aam_softmax (the head's defaults): the shipped file must be that run
    grid = load_config(CONF / "resnet34_small_dam.yaml", ["loss.type=dam_aam_softmax"]).to_dict()
    assert load("resnet34_small_dam_aam.yaml") == grid
    assert grid["loss"] == {"type": "dam_aam_softmax", "margin": 0.2, "scale": 32.0,
                            "lambda": 2.0, "margin_grad": True, "sub_centers": 1}


def test_the_networks_aam_configs_differ_only_in_the_network_and_keep_wespeakers_schedule():
    resnet, ecapa = load("resnet34_aam.yaml"), load("ecapa_tdnn_aam.yaml")
    assert without(resnet, "model") == without(ecapa, "model")
    o = resnet["optim"]
    assert (o["epochs"], o["lr"], o["final_lr"], o["warmup_epochs"], o["average_last"]) == \
        (150, 0.1, 0.00005, 6, 10)
    assert (o["margin_warmup_start"], o["margin_warmup_epochs"]) == (20, 20)
    assert (resnet["loss"]["margin"], resnet["loss"]["scale"]) == (0.2, 32.0)
    assert resnet["data"]["batch_size"] == 256 and resnet["data"]["crop_frames"] == 200


OVERLAYS = sorted((CONF / "overlays").glob("*.yaml"))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_shipped_overlay_applies_to_the_small_config(overlay):
    """An overlay (conf/overlays/) is a partial config: applied as --set options (run.sh
    --overlay, --lm true) to a shipped config, with an init model, it gives a valid config."""
    from pytorch_modules.config import overlay_overrides
    overrides = overlay_overrides(overlay) + ["training.init_model=exp/x/final.pt"]
    config = load_config(CONF / "small_dam_lr0.1.yaml", overrides)
    assert all(any(o.startswith(f"{s}.") for o in overrides) for s in
               yaml.safe_load(overlay.read_text()))
    assert config.training.init_model == "exp/x/final.pt"

"""The config file and its overrides, through the entry points that read them: a key given twice
is refused (YAML would keep the last one silently), --set changes exactly the key it names and is
checked as the file is, and the keys of model: and loss: come from the registered classes."""
import pytest
import yaml

from pytorch_modules.config import (
    ConfigError,
    apply_overrides,
    class_options,
    config_from_dict,
    load_config,
)
from pytorch_modules.heads import HEADS
from pytorch_modules.models import BACKBONES

from test_bad_input import assert_clean_error, run_in_process

TINY = "model: {widths: [4, 8], blocks: [1, 1], embedding_dim: 16}\n"


@pytest.mark.parametrize("text, key, lines", [
    # two loss sections: yaml.safe_load keeps the second and the run trains softmax
    (TINY + "loss:\n  type: dam_softmax\n  margin: 0.2\nloss:\n  type: softmax\n", "loss", (2, 5)),
    # a key twice inside a section, and inside a flow mapping
    (TINY + "optim:\n  lr: 0.1\n  epochs: 3\n  lr: 0.01\n", "lr", (3, 5)),
    ("model: {widths: [4, 8], blocks: [1, 1], widths: [8, 8]}\n", "widths", (1, 1)),
])
def test_a_key_given_twice_is_refused_naming_file_lines_and_key(
        tmp_path, monkeypatch, capsys, text, key, lines):
    config = tmp_path / "dup.yaml"
    config.write_text(text)
    code, _, err = run_in_process("pytorch_modules.bin.train",
                                  ["--config", config, tmp_path / "data", tmp_path / "exp"],
                                  monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "train", f"{config}: key '{key}' is given twice, on line "
                                     f"{lines[0]} and line {lines[1]}; keep one of them")
    assert not (tmp_path / "exp").exists()


def test_overrides_change_the_keys_they_name_and_nothing_else(tmp_path, monkeypatch, capsys):
    config = tmp_path / "base.yaml"
    config.write_text(TINY + "loss: {type: dam_softmax, margin: 0.3, scale: 20, lambda: 3}\n"
                             "optim: {epochs: 4, lr: 0.1, final_lr: 0.01}\n")
    base = load_config(config).to_dict()
    code, out, _ = run_in_process(
        "pytorch_modules.bin.config_value",
        ["--set", "optim.lr=0.05", "--set", "model.widths=[8, 16]", "--set", "training.seed=2",
         config, "optim.lr", "model.widths", "training.seed", "loss.lambda"],
        monkeypatch, capsys)
    assert code == 0
    assert out.splitlines() == ["0.05", "[8, 16]", "2", "3.0"]
    changed = load_config(config, ["optim.lr=0.05", "model.widths=[8, 16]",
                                   "training.seed=2"]).to_dict()
    base["optim"]["lr"], base["model"]["widths"], base["training"]["seed"] = 0.05, [8, 16], 2
    assert changed == base


def test_setting_another_type_starts_the_section_from_its_defaults_and_says_so(tmp_path):
    """A DAM config's lambda and margin_grad do not apply to AM-Softmax: the section is the
    new type's defaults, with the section's other overrides applied after it in any order."""
    config = tmp_path / "base.yaml"
    config.write_text(TINY + "loss: {type: dam_softmax, margin: 0.3, scale: 20, lambda: 3}\n")
    notes = []
    loaded = load_config(config, ["loss.scale=25", "loss.type=am_softmax"], notes)
    assert loaded.to_dict()["loss"] == {"type": "am_softmax", "margin": 0.2, "scale": 25.0,
                                        "sub_centers": 1}
    assert notes == [f"--set loss.type=am_softmax: {config}'s loss section (dam_softmax: "
                     f"margin 0.3, scale 20, lambda 3) is replaced by am_softmax's defaults"]
    # the same type keeps the file's options
    assert load_config(config, ["loss.type=dam_softmax"]).loss.options["lam"] == 3.0
    model = load_config(config, ["model.type=rescnn"]).model.options
    assert model["widths"] == [4, 8] and model["embedding_dim"] == 16


@pytest.mark.parametrize("override, words", [
    ("optim.lr", "--set takes section.key=VALUE (e.g. loss.type=aam_softmax or optim.lr=0.05), "
                 "got 'optim.lr'"),
    ("lr=0.1", "--set takes section.key=VALUE"),
    ("optimizer.lr=0.1", "--set optimizer.lr=0.1: unknown section 'optimizer'"),
    ("optim.lrr=0.1", "with --set optim.lrr=0.1: optim: unknown key 'lrr'"),
    ("optim.lr=-1", "with --set optim.lr=-1: optim.lr is -1, but it must be > 0"),
    ("loss.lambda=2", "with --set loss.type=am_softmax --set loss.lambda=2: loss: key 'lambda' "
                      "does not apply to am_softmax"),
    ("optim.lr=[0.1", "--set optim.lr=[0.1 is not valid YAML"),
])
def test_a_bad_override_is_refused_like_a_bad_file(tmp_path, monkeypatch, capsys, override, words):
    config = tmp_path / "base.yaml"
    config.write_text(TINY)
    args = ["--set", "loss.type=am_softmax"] if override.startswith("loss.") else []
    code, _, err = run_in_process("pytorch_modules.bin.config_value",
                                  [*args, "--set", override, config, "loss.type"],
                                  monkeypatch, capsys)
    assert code == 1
    assert_clean_error(err, "config_value", words)


def test_the_model_and_loss_keys_are_the_registered_classes_arguments():
    """Their types and defaults come from the constructors: the defaults are the published
    settings, and every backbone takes the two keys the recipe reads (embedding_dim and
    input_bins)."""
    for backbone in BACKBONES.values():
        assert {"embedding_dim", "input_bins"} <= set(class_options(backbone))
    dam = config_from_dict({}).loss
    assert (dam.type, dam.options) == ("dam_softmax", {"margin": 0.2, "scale": 30.0,
                                                       "lam": 2.0, "margin_grad": True,
                                                       "sub_centers": 1})
    for name, head in HEADS.items():
        assert "embedding_dim" not in class_options(head)
        loaded = config_from_dict({"loss": {"type": name}})
        assert config_from_dict(loaded.to_dict()) == loaded
    with pytest.raises(ConfigError, match="model.widths and model.blocks need the same length"):
        config_from_dict({"model": {"widths": [4, 8], "blocks": [1]}})


def test_overrides_of_a_file_with_empty_sections():
    data, notes = apply_overrides(yaml.safe_load("model:\noptim:\n"), ["optim.epochs=2"], "f")
    assert data["optim"] == {"epochs": 2} and notes == []

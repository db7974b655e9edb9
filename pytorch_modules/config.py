"""Training configuration: conf/*.yaml parsed with yaml.safe_load into checked dataclasses.

A config is data, never code.  Every key is declared once, below, with its default, its
allowed values and what it means (`key(...)`); an unknown key, a key given twice, a value of
the wrong type or out of its range is an error that names the file and the key.  A key left
out takes its default: the paper's value where the paper gives one (sizes, loss, lr 0.1, batch
64, 3-s crops), otherwise ours, marked "ours" (conf/rescnn_dam.yaml writes every key out).

Two sections depend on their `type`: `model:` (the backbone, models.BACKBONES) and `loss:`
(the head, heads.HEADS).  Their other keys are the keyword arguments of the registered class,
typed by its annotations, defaulting to its defaults (the published settings) and ranged by its
OPTION_RANGES, so a new backbone or head brings its keys with it.

Overrides from the command line (`--set section.key=VALUE`, repeatable; run.sh, steps/train.sh)
are applied to the file's values and checked exactly as the file is (apply_overrides).
"""
import dataclasses
import inspect
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pytorch_modules import heads
from pytorch_modules.errors import RecipeError
from pytorch_modules.models import BACKBONES


class ConfigError(RecipeError):
    """A config file that cannot be used; the message says which file, key and why."""


# -- ranges: (test, the allowed values in words) ----------------------------------------------

POSITIVE, NON_NEGATIVE = (lambda v: v > 0, "> 0"), (lambda v: v >= 0, ">= 0")
PROBABILITY = (lambda v: 0 <= v <= 1, "in [0, 1]")
DB_RANGE = (lambda v: len(v) == 2 and v[0] <= v[1], "[low, high] with low <= high")


def one_of(*values: str):
    return (lambda v: v in values, f"one of {', '.join(values)}")


def key(default, meaning: str, allowed=None):
    """A config key: its default, what it means and its allowed values (a range), together."""
    metadata = {"help": meaning, "range": allowed}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# Where training crops come from (pytorch_modules/data/training_set.py reads them accordingly).
FEATURE_SOURCES = ("precomputed", "on_the_fly", "shards")


# -- sections whose keys depend on their type (model:, loss:) ---------------------------------

# YAML spells the paper's symbols; Python cannot name an argument `lambda`.
YAML_NAMES = {"lam": "lambda"}
PYTHON_NAMES = {v: k for k, v in YAML_NAMES.items()}
# Constructor arguments the trainer supplies, not the config.
SUPPLIED = ("self", "num_classes")


def class_options(cls) -> dict:
    """{option: (annotation, default)} of a registered class, from its constructor.  A head's
    embedding_dim comes from the model, so it is not a loss option."""
    hints = typing.get_type_hints(cls.__init__)
    skip = SUPPLIED + (("embedding_dim",) if issubclass(cls, heads.Head) else ())
    return {name: (hints.get(name, type(p.default)), p.default)
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def class_defaults(cls) -> dict:
    """The options of a registered class that have a default, with it (lists copied)."""
    return {name: (list(default) if isinstance(default, (list, tuple)) else default)
            for name, (_, default) in class_options(cls).items()
            if default is not inspect.Parameter.empty}


@dataclass
class TypedSection:
    """A section whose keys are the options of the registered class its `type` names."""
    type: str
    options: dict

    def to_dict(self) -> dict:
        return {"type": self.type, **{YAML_NAMES.get(k, k): v for k, v in self.options.items()}}


@dataclass
class ModelConfig(TypedSection):
    """model: the backbone (models.BACKBONES) and its options."""
    type: str = "rescnn"
    options: dict = field(default_factory=lambda: class_defaults(BACKBONES["rescnn"]))

    @property
    def embedding_dim(self) -> int:
        return self.options["embedding_dim"]

    @property
    def input_bins(self) -> int:
        return self.options["input_bins"]


@dataclass
class LossConfig(TypedSection):
    """loss: the classification head (heads.HEADS) and its options."""
    type: str = "dam_softmax"
    options: dict = field(default_factory=lambda: class_defaults(heads.HEADS["dam_softmax"]))


TYPED_SECTIONS = {"model": (ModelConfig, lambda: BACKBONES),
                  "loss": (LossConfig, lambda: heads.HEADS)}


# -- the plain sections ------------------------------------------------------------------------

@dataclass
class DataConfig:
    crop_frames: int = key(300, "frames of each training crop (3 s at the 10-ms shift)", POSITIVE)
    batch_size: int = key(64, "the global batch, split over the processes", POSITIVE)
    num_workers: int = key(1, "ours: DataLoader processes making crops (at most the cores)",
                           NON_NEGATIVE)
    features: str = key(
        "precomputed", "ours: precomputed (crops of the stage-2 arks, the paper's setting) | "
        "on_the_fly (computed from the audio of wav.scp with spectrogram_config's options) | "
        "shards (the same, from the tar shards of shards.list, steps/make_shards.sh)",
        one_of(*FEATURE_SOURCES))
    spectrogram_config: str = key("conf/spectrogram.conf", "the feature options (Kaldi-style)")
    shuffle_buffer: int = key(1000, "ours: shards: utterances the shuffle buffer holds", POSITIVE)


@dataclass
class AugmentConfig:
    """ours (the paper trains on clean crops); the waveform kinds need data.features:
    on_the_fly or shards (pytorch_modules/data/augment.py).  A probability of 0 turns a kind
    off."""
    noise_prob: float = key(0.0, "noise (noise_list's files, else coloured noise)", PROBABILITY)
    noise_snr: list[float] = key([0.0, 15.0], "its SNR range (dB)", DB_RANGE)
    noise_list: str = key("", "e.g. data/musan/noise.list (./run.sh --musan-root)")
    music_prob: float = key(0.0, "music (music_list's files)", PROBABILITY)
    music_snr: list[float] = key([5.0, 15.0], "its SNR range (dB)", DB_RANGE)
    music_list: str = key("", "e.g. data/musan/music.list")
    babble_prob: float = key(0.0, "babble (babble_list's files, else other training speakers)",
                             PROBABILITY)
    babble_snr: list[float] = key([13.0, 20.0], "its SNR range (dB)", DB_RANGE)
    babble_speakers: list[int] = key([3, 7], "how many talkers are summed",
                                     (lambda v: len(v) == 2 and 1 <= v[0] <= v[1],
                                      "[low, high] with 1 <= low <= high"))
    babble_list: str = key("", "e.g. data/musan/speech.list")
    reverb_prob: float = key(0.0, "a room impulse response of rir_list", PROBABILITY)
    rir_list: str = key("", "room impulse response wav files (local/make_simulated_rirs.py)")
    speed_prob: float = key(0.0, "tempo and pitch changed by one of speed_factors", PROBABILITY)
    speed_factors: list[float] = key([0.9, 1.1], "speed factors",
                                     (lambda v: all(0.5 <= f <= 2 for f in v), "all in [0.5, 2]"))
    speed_new_speakers: bool = key(
        False, "a sped-up speaker is a speaker of its own, as WeSpeaker trains: the head gets "
        "(1 + len(speed_factors)) x the speakers; a crop at speed_factors[i] is labelled "
        "speaker + (i + 1) x speakers")
    spec_mask_prob: float = key(
        0.0, "spectrogram masks (SpecAugment; WeSpeaker's spec_aug): bands and spans set to "
        "their bins' mean over the crop; works on precomputed arks too", PROBABILITY)
    freq_masks: int = key(2, "frequency bands per masked crop", NON_NEGATIVE)
    freq_mask_bins: int = key(16, "each band 1 to this many bins", POSITIVE)
    time_masks: int = key(2, "time spans per masked crop", NON_NEGATIVE)
    time_mask_frames: int = key(20, "each span 1 to this many frames", POSITIVE)

    @property
    def waveform_enabled(self) -> bool:
        """Whether a kind that changes the samples (and so needs the audio) is on."""
        return any(p > 0 for p in (self.noise_prob, self.music_prob, self.babble_prob,
                                    self.reverb_prob, self.speed_prob))

    @property
    def enabled(self) -> bool:
        return self.waveform_enabled or self.spec_mask_prob > 0


@dataclass
class OptimConfig:
    epochs: int = key(30, "ours", POSITIVE)
    lr: float = key(0.1, "the paper's initial learning rate", POSITIVE)
    final_lr: float = key(0.001, "ours: exponential decay from lr to final_lr",
                          (lambda v: v > 0, "> 0 and <= optim.lr"))
    warmup_epochs: float = key(0.0, "ours: linear warm-up from 0 to lr", NON_NEGATIVE)
    margin_warmup_start: float = key(
        0.0, "ours: epochs at margin 0 before the margin warm-up (WeSpeaker's margin "
        "scheduler); the paper applies the full margin from the first step", NON_NEGATIVE)
    margin_warmup_epochs: float = key(0.0, "ours: epochs over which the margin rises to m",
                                      NON_NEGATIVE)
    momentum: float = key(0.9, "ours", (lambda v: 0 <= v < 1, "in [0, 1)"))
    nesterov: bool = key(False, "ours")
    weight_decay: float = key(0.0001, "ours", NON_NEGATIVE)
    lr_scaling: str = key(
        "none", "the schedule for a global batch of lr_reference_batch, multiplied by none: 1, "
        "linear: batch_size / lr_reference_batch (Goyal et al. 2017; with warmup_epochs), "
        "sqrt: its square root", one_of("none", "linear", "sqrt"))
    lr_reference_batch: int = key(64, "the batch the lr is written for (the paper's)", POSITIVE)
    average_last: int = key(
        1, "ours: final.pt holds the mean of the last N epochs' weights, BatchNorm statistics "
        "included (WeSpeaker averages 10); 1 = the last epoch's", POSITIVE)
    freeze_backbone_epochs: float = key(
        0.0, "ours: the network's weights and BatchNorm statistics stay as training.init_model "
        "has them for this many epochs, while the head learns (fine-tuning on other speakers)",
        NON_NEGATIVE)


@dataclass
class TrainingConfig:
    seed: int = key(777, "the seed of the initial weights, the data order and the crops")
    init_model: str = key(
        "", "ours: a trained model (a final.pt or a checkpoint) to start from: its network's "
        "weights, and its head when trained on the same speakers (large-margin fine-tuning; "
        "training/initial_model.py); empty: random initialisation")
    threads: int = key(0, "torch intra-op threads", (lambda v: v >= 0, ">= 0 (0: all cores)"))
    log_every_steps: int = key(20, "a log line every N steps", POSITIVE)
    checkpoint_every_steps: int = key(
        0, "a checkpoint every N steps", (lambda v: v >= 0, ">= 0 (0: at the end of each epoch)"))
    keep_checkpoints: int = key(3, "the newest N checkpoints are kept", POSITIVE)
    device: str = key("auto", "auto: the GPU when one is visible (under torchrun, local rank "
                      "k uses GPU k), else the CPU", one_of("auto", "cpu", "cuda"))
    dist_backend: str = key("auto", "several processes: auto = nccl on GPUs, gloo on the CPU",
                            one_of("auto", "nccl", "gloo"))
    sync_batchnorm: bool = key(
        False, "several processes: BatchNorm statistics over the global batch, as one process "
        "has them (false: each process's share)")
    amp: str = key("none", "CUDA mixed precision: bf16 | fp16 (with loss scaling); the loss "
                   "head stays float32; refused on the CPU", one_of("none", "bf16", "fp16"))
    channels_last: bool = key(False, "CUDA: channels-last convolutions; ignored on the CPU")
    compile: bool = key(False, "CUDA: torch.compile of the training step; ignored on the CPU")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        """The YAML form: config_from_dict(c.to_dict()) == c, and it reads as a config file."""
        return {f.name: (section.to_dict() if isinstance(section, TypedSection)
                         else dataclasses.asdict(section))
                for f in dataclasses.fields(self) for section in [getattr(self, f.name)]}


PLAIN_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)
                  if f.name not in TYPED_SECTIONS}
SECTION_NAMES = ", ".join(f.name for f in dataclasses.fields(Config))


# -- checking values ---------------------------------------------------------------------------

def _check_value(value, annotation, where: str):
    """Returns value converted to `annotation`, or raises ConfigError naming `where`."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple) or annotation in (list, tuple):
        args = typing.get_args(annotation)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        return [_check_value(v, args[0], f"{where}[{i}]") if args else v
                for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept it rather than surprise the user.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise AssertionError(f"{where}: no checker for {annotation} (a registered class must annotate "
                         f"its keyword arguments: int, float, bool, str or list[...])")


def _out_of_range(allowed, value) -> str | None:
    """The allowed range in words when `value` lies outside it, else None."""
    if allowed is None:
        return None
    test, words = allowed
    return None if test(value) else words


def _mapping(data, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    return data


def _build_section(cls, data, where: str):
    data = _mapping(data, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for name, value in data.items():
        if name not in fields:
            raise ConfigError(f"{where}: unknown key '{name}' (known keys: "
                              f"{', '.join(sorted(fields))})")
        values[name] = _check_value(value, hints[name], f"{where}.{name}")
        bad = _out_of_range(fields[name].metadata.get("range"), values[name])
        if bad:
            raise ConfigError(f"{where}.{name} is {value!r}, but it must be {bad}")
    return cls(**values)


def _build_typed(section: str, data, where: str) -> TypedSection:
    cls, registry = TYPED_SECTIONS[section][0], TYPED_SECTIONS[section][1]()
    data = _mapping(data, where)
    kind = data.get("type", cls().type)
    if kind not in registry:
        raise ConfigError(f"{where}.type must be one of {', '.join(registry)}, got {kind!r}")
    registered = registry[kind]
    allowed = class_options(registered)
    ranges = getattr(registered, "OPTION_RANGES", {})
    options = class_defaults(registered)
    for name, value in data.items():
        if name == "type":
            continue
        python_name = PYTHON_NAMES.get(name, name)
        if python_name not in allowed:
            known = ", ".join(sorted(YAML_NAMES.get(k, k) for k in allowed)) or "none"
            raise ConfigError(f"{where}: key '{name}' does not apply to {kind} "
                              f"(its keys: {known})")
        options[python_name] = _check_value(value, allowed[python_name][0], f"{where}.{name}")
        bad = _out_of_range(ranges.get(python_name), options[python_name])
        if bad:
            raise ConfigError(f"{where}.{name} is {value!r}, but {kind} needs it {bad}")
    missing = sorted(set(allowed) - set(options))
    if missing:
        raise ConfigError(f"{where}: {kind} needs key '{YAML_NAMES.get(missing[0], missing[0])}'")
    problem = getattr(registered, "options_problem", lambda options: None)(options)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return cls(type=kind, options=options)


def config_from_dict(data, source: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({SECTION_NAMES}), "
                          f"got {type(data).__name__}")
    for name in data:
        if name not in PLAIN_SECTIONS and name not in TYPED_SECTIONS:
            raise ConfigError(f"{source}: unknown section '{name}' (known: {SECTION_NAMES})")
    built = {name: _build_section(cls, data.get(name), f"{source}: {name}")
             for name, cls in PLAIN_SECTIONS.items()}
    built.update({name: _build_typed(name, data.get(name), f"{source}: {name}")
                  for name in TYPED_SECTIONS})
    config = Config(**built)
    _check_together(config, source)
    return config


def _check_together(config: Config, source: str) -> None:
    """Rules that involve more than one key."""
    a = config.augment
    checks = [
        (config.optim.final_lr <= config.optim.lr,
         f"optim.final_lr is {config.optim.final_lr!r}, but it must be <= optim.lr "
         f"({config.optim.lr!r}): the lr decays from lr to final_lr"),
        (a.music_prob == 0 or a.music_list,
         "augment.music_prob needs augment.music_list, a file listing music files "
         "(./run.sh --musan-root MUSAN writes data/musan/music.list)"),
        (a.reverb_prob == 0 or a.rir_list,
         "augment.reverb_prob needs augment.rir_list, a file listing room impulse responses "
         "(make one with local/make_simulated_rirs.py OUT_DIR, which writes OUT_DIR/rir.list)"),
        (not a.speed_new_speakers or a.speed_prob > 0,
         "augment.speed_new_speakers needs augment.speed_prob > 0: without speed perturbation "
         "there are no sped-up speakers to add"),
        (not a.waveform_enabled or config.data.features != "precomputed",
         "augment: noise, music, babble, reverb and speed need the crops computed from the "
         "audio (data.features: on_the_fly or shards); the arks of data.features: precomputed "
         "hold clean features"),
        (not config.optim.freeze_backbone_epochs or config.training.init_model,
         "optim.freeze_backbone_epochs keeps the network of training.init_model fixed, but "
         "training.init_model is empty: there is no trained network to keep"),
        (config.optim.average_last <= config.optim.epochs,
         f"optim.average_last is {config.optim.average_last}, but there are only "
         f"{config.optim.epochs} epochs (optim.epochs) to average"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def margin_warmup_unused(config: Config) -> str | None:
    """A note for the training log when a margin warm-up is set for a head without an
    additive margin to warm up (softmax, a_softmax), which then trains without it."""
    o = config.optim
    if (o.margin_warmup_start or o.margin_warmup_epochs) and (
            config.loss.type not in heads.scheduled_margin_types()):
        return (f"note: optim.margin_warmup_start/margin_warmup_epochs do nothing for "
                f"{config.loss.type}, which has no additive margin (they apply to "
                f"{', '.join(heads.scheduled_margin_types())})")
    return None


# -- reading files and overrides ---------------------------------------------------------------

class _DuplicateKey(Exception):
    def __init__(self, key, first_line, second_line):
        super().__init__(key)
        self.key, self.first_line, self.second_line = key, first_line, second_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping key given twice (SafeLoader keeps the last)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        name = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if name in seen:
            raise _DuplicateKey(name, seen[name], line)
        seen[name] = line
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique_mapping)


def load_yaml(text: str, source: str):
    """YAML data of `text` (safe: no code runs); a syntax error or a key given twice in one
    mapping is a ConfigError naming `source`, the lines and the key."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as e:
        raise ConfigError(f"{source}: key '{e.key}' is given twice, on line {e.first_line} and "
                          f"line {e.second_line}; keep one of them") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}") from None


def apply_overrides(data, overrides, source: str) -> tuple[dict, list[str]]:
    """The config data with `section.key=VALUE` overrides applied (VALUE read as YAML: 0.1,
    true, [16, 32], aam_softmax), and notes for the user.  Setting model.type or loss.type to
    another type starts that section from the new type's defaults (the old type's keys may
    not apply to it); the section's other overrides apply after it, in any order."""
    data = {name: dict(_mapping(values, f"{source}: {name}")) for name, values in
            (_mapping(data, source)).items()}
    parsed = [_parse_override(item) for item in overrides]
    notes = []
    # Types first, so that `--set loss.margin=0.3 --set loss.type=aam_softmax` keeps the margin.
    for item, section, name, value in sorted(parsed, key=lambda p: p[2] != "type"):
        if section not in PLAIN_SECTIONS and section not in TYPED_SECTIONS:
            raise ConfigError(f"--set {item}: unknown section '{section}' (known: "
                              f"{SECTION_NAMES})")
        values = data.setdefault(section, {})
        if name == "type" and section in TYPED_SECTIONS:
            old = values.get("type", TYPED_SECTIONS[section][0]().type)
            if value != old:
                dropped = ", ".join(f"{k} {v}" for k, v in values.items() if k != "type")
                notes.append(f"--set {item}: {source}'s {section} section ({old}"
                             f"{': ' + dropped if dropped else ''}) is replaced by {value}'s "
                             f"defaults")
                data[section] = values = {}
        values[name] = value
    return data, notes


def overlay_overrides(path) -> list[str]:
    """The `section.key=VALUE` overrides of an overlay: a YAML file of the sections and keys to
    change (conf/overlays/lm.yaml), each VALUE written back as YAML (JSON is YAML's flow form)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read overlay {path}: {e.strerror}") from None
    data = _mapping(load_yaml(text, str(path)), str(path))
    return [f"{section}.{name}={json.dumps(value)}" for section, values in data.items()
            for name, value in _mapping(values, f"{path}: {section}").items()]


def _parse_override(item: str):
    """(item, section, key, value) of a `section.key=VALUE` override."""
    name, equals, text = item.partition("=")
    section, dot, key_name = name.strip().partition(".")
    if not equals or not dot or not section or not key_name or "." in key_name:
        raise ConfigError(f"--set takes section.key=VALUE (e.g. loss.type=aam_softmax or "
                          f"optim.lr=0.05), got {item!r}")
    return item, section, key_name, load_yaml(text, f"--set {item}")


def load_config(path, overrides=(), notes=None) -> Config:
    """The config of a YAML file, with `section.key=VALUE` overrides applied; notes about
    what the overrides replaced are appended to `notes` when given."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    data = load_yaml(text, str(path))
    if not overrides:
        return config_from_dict(data, str(path))
    data, override_notes = apply_overrides(data, overrides, str(path))
    if notes is not None:
        notes.extend(override_notes)
    return config_from_dict(data, f"{path} with --set {' --set '.join(overrides)}")

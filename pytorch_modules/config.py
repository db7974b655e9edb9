"""Training configuration: conf/*.yaml parsed with yaml.safe_load into checked dataclasses.

A config is data, never code: unknown keys and values of the wrong type are errors that name
the file and the key.  A key left out takes the dataclass default below: the paper's value
where the paper gives one (sizes, loss, lr 0.1, batch 64, 3-s crops), otherwise ours, marked
"ours" (conf/rescnn_dam.yaml writes every key out, with the paper's values).
"""
import dataclasses
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pytorch_modules import heads
from pytorch_modules.errors import RecipeError
from pytorch_modules.models import BACKBONES, INPUT_NORMS, POOLINGS

# Where training crops come from (pytorch_modules/data/training_set.py reads them accordingly).
FEATURE_SOURCES = ("precomputed", "on_the_fly", "shards")


class ConfigError(RecipeError):
    """A config file that cannot be used; the message says which file, key and why."""


# The values the string-valued keys may take (checked in _check_ranges).
LR_SCALINGS = ("none", "linear", "sqrt")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "nccl", "gloo")
AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class ModelConfig:
    type: str = "rescnn"          # the backbone (models.BACKBONES); the keys below are ResCNN's
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])  # ours: not given
    blocks: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    embedding_dim: int = 1024
    embedding_bn: bool = True     # ours: BatchNorm1d on the embedding (models/rescnn.py)
    input_norm: str = "utterance_mean"  # ours: utterance_mean | none (models/rescnn.py)
    pooling: str = "avg"          # avg (the paper's) | stats (ours: mean + std over time)
    input_bins: int = 161         # feature bins, which stats pooling needs to size the FC


@dataclass
class LossConfig:
    type: str = "dam_softmax"
    # Options of the chosen head (pytorch_modules/heads); which keys are allowed depends on `type`.
    options: dict = field(default_factory=lambda: dict(heads.PAPER_OPTIONS["dam_softmax"]))


@dataclass
class DataConfig:
    crop_frames: int = 300        # 3-s training crops at the 10-ms frame shift
    batch_size: int = 64          # global batch (split over ranks when distributed)
    num_workers: int = 1          # ours: DataLoader processes reading features
    # ours: precomputed (crops of the stage-2 arks, the paper's setting) | on_the_fly (crops
    # computed from the audio files of wav.scp with the options of spectrogram_config) |
    # shards (the same, from the tar shards of the data dir's shards.list, steps/make_shards.sh)
    features: str = "precomputed"
    spectrogram_config: str = "conf/spectrogram.conf"
    shuffle_buffer: int = 1000    # ours: shards: utterances a shuffle buffer holds


@dataclass
class AugmentConfig:
    """ours (the paper trains on clean crops); needs data.features: on_the_fly
    (pytorch_modules/data/augment.py).  A probability of 0 turns a kind off."""
    noise_prob: float = 0.0       # noise (noise_list's files, else coloured noise) ...
    noise_snr: list[float] = field(default_factory=lambda: [0.0, 15.0])   # ... at this SNR (dB)
    noise_list: str = ""          # e.g. data/musan/noise.list (./run.sh --musan-root)
    music_prob: float = 0.0       # music (music_list's files) ...
    music_snr: list[float] = field(default_factory=lambda: [5.0, 15.0])   # ... at this SNR
    music_list: str = ""          # e.g. data/musan/music.list
    babble_prob: float = 0.0      # several people talking at once (babble_list's files, else
    babble_snr: list[float] = field(default_factory=lambda: [13.0, 20.0])  # other training
    babble_speakers: list[int] = field(default_factory=lambda: [3, 7])     # speakers) ...
    babble_list: str = ""         # e.g. data/musan/speech.list
    reverb_prob: float = 0.0      # a room impulse response from ...
    rir_list: str = ""            # ... this list of wav files (local/make_simulated_rirs.py)
    speed_prob: float = 0.0       # tempo and pitch changed by one of ...
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.1])  # ... these factors
    # A sped-up or slowed-down speaker as a speaker of its own, as WeSpeaker does: the head
    # gets (1 + len(speed_factors)) x the training speakers, and a crop at speed_factors[i]
    # is labelled speaker + (i + 1) x the number of speakers; false keeps the label.
    speed_new_speakers: bool = False
    # Spectrogram masking (SpecAugment, Park et al. 2019; WeSpeaker's spec_aug): with this
    # probability a crop gets freq_masks bands of 1..freq_mask_bins bins and time_masks spans
    # of 1..time_mask_frames frames set to each bin's mean over the crop (0 once the model
    # subtracts it).  Works on precomputed arks too: it needs no audio.
    spec_mask_prob: float = 0.0
    freq_masks: int = 2
    freq_mask_bins: int = 16
    time_masks: int = 2
    time_mask_frames: int = 20

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
    epochs: int = 30              # ours
    lr: float = 0.1               # the paper's initial learning rate
    final_lr: float = 0.001       # ours: exponential decay from lr to final_lr
    warmup_epochs: float = 0.0    # ours: linear warm-up from 0 to lr
    # Margin warm-up (ours; the paper applies the margin in full from the first step): the
    # margin heads (am_softmax, dam_softmax) train with margin 0 for margin_warmup_start
    # epochs, then their margin rises linearly to the configured m over margin_warmup_epochs
    # (as WeSpeaker's margin scheduler does); 0 and 0 = the full margin from step 0.
    margin_warmup_start: float = 0.0
    margin_warmup_epochs: float = 0.0
    momentum: float = 0.9         # ours (momentum, nesterov, weight decay)
    nesterov: bool = False
    weight_decay: float = 0.0001
    # The lr above is for a global batch of lr_reference_batch utterances (the paper's 64).
    # With another data.batch_size (data.batch_size is the global batch, whatever the number of
    # processes), lr_scaling multiplies the whole schedule (lr and final_lr) by
    #   none: 1 (the lr as written), linear: batch_size / lr_reference_batch (Goyal et al. 2017;
    #   pair it with warmup_epochs), sqrt: sqrt(batch_size / lr_reference_batch).
    lr_scaling: str = "none"
    lr_reference_batch: int = 64


@dataclass
class TrainingConfig:
    seed: int = 777
    threads: int = 0                   # torch intra-op threads; 0 = all cores
    log_every_steps: int = 20
    checkpoint_every_steps: int = 0    # 0 = only at the end of each epoch
    keep_checkpoints: int = 3          # newest N kept, older ones pruned
    # auto: the GPU when one is visible, else the CPU.  Under torchrun, the process of local
    # rank k uses GPU k of its node (pytorch_modules/training/distributed.py).
    device: str = "auto"
    # Process-group backend with several processes: auto = nccl on GPUs, gloo on the CPU.
    dist_backend: str = "auto"
    # false: with several processes each one's BatchNorm uses the statistics of its own share of
    # the batch (plain DDP); true: statistics over the global batch, as a single process has
    # them (SyncBatchNorm on GPUs, distributed.GlobalBatchNorm on the CPU).
    sync_batchnorm: bool = False
    # Mixed precision on CUDA: none | bf16 (needs a GPU with bfloat16, e.g. A100/H100) | fp16
    # (with loss scaling).  The loss head always computes in float32.  Refused on the CPU:
    # a CPU run would silently differ from the GPU run the config was written for.
    amp: str = "none"
    # CUDA only: channels-last memory layout for the convolutions (faster with tensor cores);
    # ignored on the CPU, with a note in the log.
    channels_last: bool = False
    # CUDA only: torch.compile the training step (fuses BatchNorm, ReLU and the residual adds;
    # the first steps of a run spend a minute or so compiling); ignored on the CPU, with a note.
    compile: bool = False


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
        data = dataclasses.asdict(self)
        yaml_names = {v: k for k, v in _LOSS_KEY_ALIASES.items()}
        data["loss"] = {"type": self.loss.type,
                        **{yaml_names.get(k, k): v for k, v in self.loss.options.items()}}
        return data


# YAML spells the paper's symbols; Python cannot name an argument `lambda`.
_LOSS_KEY_ALIASES = {"lambda": "lam"}


def _check_value(value, annotation, where: str):
    """Returns value converted to `annotation`, or raises ConfigError naming `where`."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        return [_check_value(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
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
    raise AssertionError(f"no checker for {annotation}")


def _build_section(cls, data, where: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}' (known keys: {', '.join(sorted(known))})")
    values = {key: _check_value(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    return cls(**values)


def _head_parameters(loss_type: str) -> dict:
    params = inspect.signature(heads.HEADS[loss_type].__init__).parameters
    return {name: p for name, p in params.items()
            if name not in ("self", "embedding_dim", "num_classes")}


def _build_loss(data, where: str) -> LossConfig:
    if not isinstance(data, dict) or "type" not in data:
        raise ConfigError(f"{where} must be a mapping with a 'type' "
                          f"({', '.join(heads.HEADS)})")
    loss_type = data["type"]
    if loss_type not in heads.HEADS:
        raise ConfigError(f"{where}.type: unknown loss '{loss_type}' "
                          f"(choose one of {', '.join(heads.HEADS)})")
    allowed = _head_parameters(loss_type)
    options = {}
    for key, value in data.items():
        if key == "type":
            continue
        name = _LOSS_KEY_ALIASES.get(key, key)
        if name not in allowed:
            shown = sorted({k for k, v in _LOSS_KEY_ALIASES.items() if v in allowed}
                           | (set(allowed) - set(_LOSS_KEY_ALIASES.values())))
            raise ConfigError(f"{where}: key '{key}' does not apply to {loss_type} "
                              f"(its keys: {', '.join(shown) or 'none'})")
        options[name] = _check_value(value, type(allowed[name].default), f"{where}.{key}")
        bad = heads.option_range_error(loss_type, name, options[name])
        if bad:
            raise ConfigError(f"{where}.{key} is {value!r}, but {loss_type} needs it {bad}")
    return LossConfig(type=loss_type, options=options)


def config_from_dict(data, source: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (model, loss, data, "
                          f"augment, optim, training), got {type(data).__name__}")
    sections = {"model": ModelConfig, "data": DataConfig, "augment": AugmentConfig,
                "optim": OptimConfig, "training": TrainingConfig}
    for key in data:
        if key not in sections and key != "loss":
            raise ConfigError(f"{source}: unknown section '{key}' "
                              f"(known: model, loss, data, augment, optim, training)")
    built = {key: _build_section(cls, data.get(key), f"{source}: {key}")
             for key, cls in sections.items()}
    loss = _build_loss(data["loss"], f"{source}: loss") if "loss" in data else LossConfig()
    config = Config(loss=loss, **built)
    _check_ranges(config, source)
    return config


# The range of every numeric key (section.key -> (test, the range in words)); a value outside
# it is refused when the config is loaded, naming the file, the key, the value and the range.
POSITIVE, NON_NEGATIVE = (lambda v: v > 0, "> 0"), (lambda v: v >= 0, ">= 0")
RANGES = {
    "model.widths": (lambda v: all(w > 0 for w in v), "all > 0"),
    "model.blocks": (lambda v: all(b >= 0 for b in v), "all >= 0"),
    "model.embedding_dim": POSITIVE,
    "model.input_bins": POSITIVE,
    "data.crop_frames": POSITIVE,
    "data.batch_size": POSITIVE,
    "data.num_workers": NON_NEGATIVE,
    "data.shuffle_buffer": POSITIVE,
    "augment.noise_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.noise_snr": (lambda v: len(v) == 2 and v[0] <= v[1], "[low, high] with low <= high"),
    "augment.music_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.music_snr": (lambda v: len(v) == 2 and v[0] <= v[1], "[low, high] with low <= high"),
    "augment.babble_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.babble_snr": (lambda v: len(v) == 2 and v[0] <= v[1], "[low, high] with low <= high"),
    "augment.babble_speakers": (lambda v: len(v) == 2 and 1 <= v[0] <= v[1],
                                "[low, high] with 1 <= low <= high"),
    "augment.reverb_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.speed_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.speed_factors": (lambda v: all(0.5 <= f <= 2 for f in v), "all in [0.5, 2]"),
    "augment.spec_mask_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "augment.freq_masks": NON_NEGATIVE,
    "augment.freq_mask_bins": POSITIVE,
    "augment.time_masks": NON_NEGATIVE,
    "augment.time_mask_frames": POSITIVE,
    "optim.epochs": POSITIVE,
    "optim.lr": POSITIVE,
    "optim.final_lr": (lambda v: v > 0, "> 0 and <= optim.lr"),
    "optim.warmup_epochs": NON_NEGATIVE,
    "optim.margin_warmup_start": NON_NEGATIVE,
    "optim.margin_warmup_epochs": NON_NEGATIVE,
    "optim.momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "optim.weight_decay": NON_NEGATIVE,
    "optim.lr_reference_batch": POSITIVE,
    "training.threads": (lambda v: v >= 0, ">= 0 (0: all cores)"),
    "training.log_every_steps": POSITIVE,
    "training.checkpoint_every_steps": (lambda v: v >= 0, ">= 0 (0: at the end of each epoch)"),
    "training.keep_checkpoints": POSITIVE,
}


def _check_ranges(config: Config, source: str):
    for key, (test, words) in RANGES.items():
        section, field_name = key.split(".")
        value = getattr(getattr(config, section), field_name)
        if not test(value):
            raise ConfigError(f"{source}: {key} is {value!r}, but it must be {words}")
    checks = [
        (len(config.model.widths) == len(config.model.blocks),
         "model.widths and model.blocks need the same length (one width per stage)"),
        (config.optim.final_lr <= config.optim.lr,
         f"optim.final_lr is {config.optim.final_lr!r}, but it must be <= optim.lr "
         f"({config.optim.lr!r}): the lr decays from lr to final_lr"),
        (not (config.optim.margin_warmup_start or config.optim.margin_warmup_epochs)
         or config.loss.type in heads.scheduled_margin_types(),
         f"optim.margin_warmup_start/margin_warmup_epochs apply to the additive-margin heads "
         f"({', '.join(heads.scheduled_margin_types())}), not to {config.loss.type}; set them "
         f"to 0 (a_softmax has its own annealing, lambda_base)"),
    ]
    choices = [
        ("model.type", config.model.type, tuple(BACKBONES)),
        ("model.pooling", config.model.pooling, POOLINGS),
        ("model.input_norm", config.model.input_norm, INPUT_NORMS),
        ("data.features", config.data.features, FEATURE_SOURCES),
        ("optim.lr_scaling", config.optim.lr_scaling, LR_SCALINGS),
        ("training.device", config.training.device, DEVICES),
        ("training.dist_backend", config.training.dist_backend, BACKENDS),
        ("training.amp", config.training.amp, AMP_MODES),
    ]
    for key, value, allowed in choices:
        checks.append((value in allowed,
                       f"{key} must be one of {', '.join(allowed)}, got {value!r}"))
    checks.append((config.augment.music_prob == 0 or config.augment.music_list,
                   "augment.music_prob needs augment.music_list, a file listing music files "
                   "(./run.sh --musan-root MUSAN writes data/musan/music.list)"))
    checks.append((config.augment.reverb_prob == 0 or config.augment.rir_list,
                   "augment.reverb_prob needs augment.rir_list, a file listing room impulse "
                   "responses (make one with local/make_simulated_rirs.py OUT_DIR, which "
                   "writes OUT_DIR/rir.list)"))
    checks.append((not config.augment.speed_new_speakers or config.augment.speed_prob > 0,
                   "augment.speed_new_speakers needs augment.speed_prob > 0: without speed "
                   "perturbation there are no sped-up speakers to add"))
    checks.append((not config.augment.waveform_enabled or config.data.features != "precomputed",
                   "augment: noise, music, babble, reverb and speed need the crops computed from "
                   "the audio (data.features: on_the_fly or shards); the arks of data.features: "
                   "precomputed hold clean "
                   "features"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def load_config(path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    return config_from_dict(data, str(path))

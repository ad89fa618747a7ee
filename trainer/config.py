"""Structured-config schemas: one dataclass per config-group option, registered with Hydra.

Every default is documented here once, with its unit. The YAML file of an option in `conf/<group>/`
extends its schema and sets only what differs from it (a dataset's name, classes and statistics;
small_cnn's width): tests/test_config.py fails when a YAML restates a schema default, so a default
changed here is the one users run. Hydra checks the YAML against these schemas while composing
(typos and wrong types fail before anything runs). `validate(cfg)` then turns the composed tree into typed objects,
rejects keys the schema does not know (Hydra lets `+key=value` through) and checks ranges.

This module imports neither torch nor torchvision, so `--help` and config errors stay fast.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


# ───────────────────────────── data ─────────────────────────────


@dataclass
class DataConf:
    name: str = MISSING  # digits | cifar10 | cifar100 | imagefolder | fake
    root: Optional[str] = None  # dataset directory (cifar10, cifar100, imagefolder)
    download: bool = False  # fetch cifar10/cifar100 into root when missing
    batch_size: int = 128  # images per optimizer step (the global batch: under DDP each rank takes an equal share)
    num_workers: int = 0  # DataLoader worker processes; 0 loads in the training process
    val_fraction: Optional[float] = 0.2  # share held out for validation; null: the dataset's test split
    num_classes: int = MISSING  # set by each dataset's YAML
    in_channels: int = 3  # image channels fed to the model
    image_size: int = 32  # side in pixels after loading (imagefolder resizes to it)
    size: int = 2048  # fake only: number of generated images
    # imagefolder only: an image that cannot be used (corrupt, truncated, empty, unreadable, not a regular file,
    # beyond Pillow's MAX_IMAGE_PIXELS) refuses the run, naming the first few; true: train without them, their
    # count logged (trainer/image_folder.py)
    skip_bad_images: bool = False
    mean: List[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])  # per-channel, for normalization
    std: List[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    # auto: on CUDA, tensor datasets (digits, cifar, fake) with augmentation none or basic are held on
    # the GPU and augmented there in batches; everything else uses a DataLoader. dataloader: always a
    # DataLoader. device: always on the training device (an error when impossible).
    loader: str = "auto"

    def __post_init__(self) -> None:
        _check(self.loader in ("auto", "dataloader", "device"),
               f"data.loader must be auto, dataloader or device, got {self.loader!r}")
        _check(self.batch_size >= 1, f"data.batch_size must be >= 1, got {self.batch_size}")
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _check(self.num_classes >= 2, f"data.num_classes must be >= 2, got {self.num_classes}")
        _check(self.size >= 2, f"data.size must be >= 2, got {self.size}")
        if self.val_fraction is not None:
            _check(0.0 < self.val_fraction < 1.0,
                   f"data.val_fraction must lie in (0, 1), got {self.val_fraction}")
        _check(len(self.mean) == self.in_channels and len(self.std) == self.in_channels,
               f"data.mean and data.std need {self.in_channels} values (data.in_channels)")
        _check(all(s > 0 for s in self.std), f"data.std must be positive, got {self.std}")
        if self.name == "imagefolder":
            _check(bool(self.root), "data=imagefolder needs data.root=<folder with one subfolder per class>")
            _check(self.val_fraction is not None, "data=imagefolder needs data.val_fraction in (0, 1)")


# ───────────────────────────── model ─────────────────────────────


@dataclass
class ModelConf:
    name: str = MISSING  # small_cnn | resnet18 | resnet34
    num_classes: int = II("data.num_classes")  # the dataset's, always
    in_channels: int = II("data.in_channels")
    width: int = 64  # channels of the first conv, doubled per stage (64: the standard ResNet)
    # batch: BatchNorm (statistics per batch, per rank under DDP). group: GroupNorm, which normalizes each
    # sample alone, so a DDP run computes what one process computes with the same global batch.
    norm: str = "batch"

    def __post_init__(self) -> None:
        _check(self.width >= 1, f"model.width must be >= 1, got {self.width}")
        _check(self.norm in ("batch", "group"), f"model.norm must be batch or group, got {self.norm!r}")


# ───────────────────────────── optimizer ─────────────────────────────


@dataclass
class OptimizerConf:
    name: str = MISSING
    lr: float = 0.1  # peak learning rate (onecycle's max_lr)

    def __post_init__(self) -> None:
        _check(math.isfinite(self.lr) and self.lr > 0, f"optimizer.lr must be > 0, got {self.lr}")


@dataclass
class SGDConf(OptimizerConf):
    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9  # heavy-ball coefficient, in [0, 1)
    nesterov: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0.0 <= self.momentum < 1.0, f"optimizer.momentum must lie in [0, 1), got {self.momentum}")
        _check(not self.nesterov or self.momentum > 0, "optimizer.nesterov=true needs optimizer.momentum > 0")


@dataclass
class AdamConf(OptimizerConf):
    name: str = "adam"
    lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # EMA rates of gradient and its square
    eps: float = 1e-8  # added to the denominator for stability

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas),
               f"optimizer.betas must be two values in [0, 1), got {self.betas}")
        _check(self.eps > 0, f"optimizer.eps must be > 0, got {self.eps}")


@dataclass
class AdamWConf(AdamConf):
    name: str = "adamw"


# ───────────────────────────── scheduler ─────────────────────────────


@dataclass
class SchedulerConf:
    name: str = MISSING


@dataclass
class PlateauConf(SchedulerConf):
    """ReduceLROnPlateau on the validation loss, stepped once per epoch."""

    name: str = "plateau"
    patience: int = 3  # epochs without improvement before a cut
    factor: float = 0.1  # multiplies the LR at each cut
    threshold: float = 1e-4  # relative improvement that counts (threshold_mode='rel')
    cooldown: int = 0  # epochs after a cut during which no cut happens
    min_lr: float = 0.0  # the LR never goes below this

    def __post_init__(self) -> None:
        _check(self.patience >= 0, f"scheduler.patience must be >= 0, got {self.patience}")
        _check(0.0 < self.factor < 1.0, f"scheduler.factor must lie in (0, 1), got {self.factor}")
        _check(self.threshold >= 0, f"scheduler.threshold must be >= 0, got {self.threshold}")
        _check(self.cooldown >= 0, f"scheduler.cooldown must be >= 0, got {self.cooldown}")
        _check(self.min_lr >= 0, f"scheduler.min_lr must be >= 0, got {self.min_lr}")


@dataclass
class CosineConf(SchedulerConf):
    """Cosine decay from optimizer.lr to min_lr over the run, per step, after a linear warmup."""

    name: str = "cosine"
    warmup_epochs: float = 0.0  # linear ramp from 0 to optimizer.lr, in epochs (fractions allowed)
    min_lr: float = 0.0  # LR at the last step

    def __post_init__(self) -> None:
        _check(self.warmup_epochs >= 0, f"scheduler.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _check(self.min_lr >= 0, f"scheduler.min_lr must be >= 0, got {self.min_lr}")


@dataclass
class OneCycleConf(SchedulerConf):
    """OneCycleLR per step with optimizer.lr as the peak."""

    name: str = "onecycle"
    pct_start: float = 0.25  # share of steps spent rising to the peak
    div_factor: float = 25.0  # initial LR = peak / div_factor
    final_div_factor: float = 1e4  # final LR = initial LR / final_div_factor

    def __post_init__(self) -> None:
        _check(0.0 < self.pct_start < 1.0, f"scheduler.pct_start must lie in (0, 1), got {self.pct_start}")
        _check(self.div_factor > 0 and self.final_div_factor > 0, "scheduler.div_factor and final_div_factor must be > 0")


@dataclass
class StepConf(SchedulerConf):
    """StepLR: multiply the LR by gamma every step_size epochs."""

    name: str = "step"
    step_size: int = 30  # epochs between cuts
    gamma: float = 0.1  # multiplies the LR at each cut

    def __post_init__(self) -> None:
        _check(self.step_size >= 1, f"scheduler.step_size must be >= 1, got {self.step_size}")
        _check(0.0 < self.gamma <= 1.0, f"scheduler.gamma must lie in (0, 1], got {self.gamma}")


@dataclass
class ConstantConf(SchedulerConf):
    name: str = "constant"


# ───────────────────────────── augmentation ─────────────────────────────


@dataclass
class AugmentationConf:
    """Train-time augmentation; validation only converts and normalizes."""

    name: str = MISSING


@dataclass
class NoAugmentationConf(AugmentationConf):
    name: str = "none"


@dataclass
class BasicAugmentationConf(AugmentationConf):
    name: str = "basic"
    crop_padding: int = 4  # pixels of padding before a random crop back to image_size; 0 turns cropping off
    horizontal_flip: bool = True  # flip left-right with probability 0.5

    def __post_init__(self) -> None:
        _check(self.crop_padding >= 0, f"augmentation.crop_padding must be >= 0, got {self.crop_padding}")


@dataclass
class RandAugmentConf(BasicAugmentationConf):
    name: str = "randaugment"
    num_ops: int = 2  # transformations applied per image
    magnitude: int = 9  # strength on RandAugment's 0..30 scale

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.num_ops >= 0, f"augmentation.num_ops must be >= 0, got {self.num_ops}")
        _check(0 <= self.magnitude <= 30, f"augmentation.magnitude must lie in [0, 30], got {self.magnitude}")


@dataclass
class TrivialAugmentConf(BasicAugmentationConf):
    name: str = "trivialaugment"


# ───────────────────────────── regularization ─────────────────────────────


@dataclass
class RegularizationConf:
    label_smoothing: float = 0.0  # share of target mass spread over all classes, in [0, 1)
    weight_decay: float = 5e-4  # L2 coefficient applied by the optimizer (decoupled for adamw)
    grad_clip: Optional[float] = None  # max global gradient norm (after AMP unscaling); null turns clipping off
    # none | balanced: cross-entropy weighted per class by n / (C * count), the training set's counts
    # (scikit-learn's "balanced"), so that every class weighs the same in the loss however rare it is; the
    # validation loss uses the same criterion (its nll field stays unweighted)
    class_weights: str = "none"

    def __post_init__(self) -> None:
        _check(self.class_weights in ("none", "balanced"),
               f"regularization.class_weights must be none or balanced, got {self.class_weights!r}")
        _check(0.0 <= self.label_smoothing < 1.0,
               f"regularization.label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        _check(self.weight_decay >= 0, f"regularization.weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.grad_clip is None or self.grad_clip > 0,
               f"regularization.grad_clip must be > 0 or null, got {self.grad_clip}")


# ───────────────────────────── trainer ─────────────────────────────


class Device(enum.Enum):
    auto = "auto"  # cuda if present, else mps, else cpu
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Amp(enum.Enum):
    none = "none"  # full fp32
    bf16 = "bf16"  # bfloat16 autocast, no loss scaling needed
    fp16 = "fp16"  # float16 autocast with a GradScaler


@dataclass
class TrainerConf:
    epochs: int = 10  # passes over the training set
    device: Device = Device.auto
    amp: Amp = Amp.none
    seed: int = 0  # seeds python, numpy, torch and the data split and order
    deterministic: bool = False  # deterministic kernels (slower; bit-exact reruns on one machine)
    compile: bool = False  # torch.compile the model
    stop_on: List[str] = field(default_factory=lambda: ["nonfinite_loss"])  # finding ids that end the run
    stop_persist_epochs: int = 2  # consecutive epoch ends a stop_on finding must hold before it ends the run
    resume: bool = True  # continue from checkpoints/last.pt when the run directory has one

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"trainer.epochs must be >= 1, got {self.epochs}")
        _check(self.seed >= 0, f"trainer.seed must be >= 0, got {self.seed}")
        _check(self.stop_persist_epochs >= 1, f"trainer.stop_persist_epochs must be >= 1, got {self.stop_persist_epochs}")


# ───────────────────────────── diagnostics ─────────────────────────────


@dataclass
class DiagnosticsConf:
    enabled: bool = True  # false only to measure the overhead of collecting diagnostics
    dir: str = MISSING  # where the JSONL and JSON files go; $DIAGNOSTICS_DIR overrides the default
    # Steps between weight-update measurements (1: every step): every 4th step is an unbiased sample of
    # the per-step mean at a quarter of the cost, which keeps the overhead < 1 %.
    update_every: int = 4
    # Hash every train and val image at start-up to find copies across the split by content (exact and
    # near duplicates, trainer/duplicates.py; run_info.json duplicate_images): about 1 s for CIFAR-10 on a CPU
    # core; an image folder is decoded once more for it.
    duplicates: bool = True

    def __post_init__(self) -> None:
        _check(self.update_every >= 1, f"diagnostics.update_every must be >= 1, got {self.update_every}")


# ───────────────────────────── logger ─────────────────────────────

LOGGERS = ("none", "tensorboard", "mlflow")  # trainer/loggers.py builds each


@dataclass
class LoggerConf:
    """A viewer of the diagnostics records, written each epoch next to the JSONL files."""

    name: str = "none"  # none | tensorboard | mlflow (pip install "traindx[tensorboard]" / "traindx[mlflow]")
    dir: Optional[str] = None  # tensorboard: where its files go; null: <run dir>/<name>
    # mlflow: the tracking store; null: file:<run dir>/mlruns, in a sweep file:<sweep dir>/mlruns (one store for all jobs)
    tracking_uri: Optional[str] = None
    experiment: Optional[str] = None  # mlflow: the experiment name; null: the sweep directory's path in a sweep, else traindx

    def __post_init__(self) -> None:
        _check(self.name in LOGGERS, f"logger={self.name} is unknown; options: {', '.join(LOGGERS)}")


# ───────────────────────────── fault ─────────────────────────────


FAULTS = (
    "none",
    "shared_transforms",  # val data goes through the train pipeline (one dataset instance for both)
    "clip_before_unscale",  # under fp16 AMP, clip the still-scaled gradients (the seed's AMP bug)
    "shuffled_labels",  # training labels permuted: nothing is learnable
    "unnormalized_input",  # Normalize left out of both pipelines
    "train_val_overlap",  # validation indices drawn from the training indices
    "dead_relu",  # biases before ReLUs set strongly negative: most units never fire
    "class_imbalance",  # every class but class 0 loses fault.fraction of its training images
    "duplicated_images",  # fault.fraction of the val images replaced by copies of training images (new indices)
    "noisy_labels",  # a share (fault.fraction) of the training labels flipped to another class at random
)


@dataclass
class FaultConf:
    """A bug reproduced on purpose, to check that the diagnostics catch it."""

    name: str = "none"
    # The dose of a fault that takes one, in [0, 1): class_imbalance drops this share of the training images
    # of every class but class 0 (at least one image of each stays): class 0 then outnumbers each other
    # class about 1 / (1 - fraction) to 1. Validation keeps every class. duplicated_images replaces this share
    # of the validation images by copies of training images, stored under new indices.
    fraction: float = 0.5

    def __post_init__(self) -> None:
        _check(self.name in FAULTS, f"fault={self.name} is unknown; options: {', '.join(FAULTS)}")
        _check(0.0 <= self.fraction < 1.0, f"fault.fraction must lie in [0, 1), got {self.fraction}")


@dataclass
class NoisyLabelsConf(FaultConf):
    fraction: float = 0.2  # share of the training labels flipped, each to another class drawn at random, in (0, 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 < self.fraction < 1, f"fault.fraction must lie in (0, 1), got {self.fraction}")


# ───────────────────────────── registry and validation ─────────────────────────────

# group -> option name -> schema; the option name is also the YAML file name in conf/<group>/.
SCHEMAS: dict[str, dict[str, type]] = {
    "data": {n: DataConf for n in ("digits", "cifar10", "cifar100", "imagefolder", "fake")},
    "model": {n: ModelConf for n in ("small_cnn", "resnet18", "resnet34")},
    "optimizer": {"sgd": SGDConf, "adam": AdamConf, "adamw": AdamWConf},
    "scheduler": {"plateau": PlateauConf, "cosine": CosineConf, "onecycle": OneCycleConf,
                  "step": StepConf, "constant": ConstantConf},
    "augmentation": {"none": NoAugmentationConf, "basic": BasicAugmentationConf,
                     "randaugment": RandAugmentConf, "trivialaugment": TrivialAugmentConf},
    "regularization": {"default": RegularizationConf},
    "trainer": {"default": TrainerConf},
    "diagnostics": {"default": DiagnosticsConf},
    "fault": {n: NoisyLabelsConf if n == "noisy_labels" else FaultConf for n in FAULTS},
    "logger": {n: LoggerConf for n in LOGGERS},
}


def register_schemas() -> None:
    """Store every schema under `schema/<group>/<option>` for the YAML defaults lists to extend."""
    cs = ConfigStore.instance()
    for group, options in SCHEMAS.items():
        for option, schema in options.items():
            cs.store(group=f"schema/{group}", name=option, node=schema)


register_schemas()


@dataclass
class TrainConfig:
    """The validated, typed form of the whole composed config."""

    data: DataConf
    model: ModelConf
    optimizer: OptimizerConf
    scheduler: SchedulerConf
    augmentation: AugmentationConf
    regularization: RegularizationConf
    trainer: TrainerConf
    diagnostics: DiagnosticsConf
    fault: FaultConf
    logger: LoggerConf


def _schema_for(group: str, node: Any) -> type:
    options = SCHEMAS[group]
    if len(set(options.values())) == 1:
        return next(iter(options.values()))
    name = node.get("name")
    if name not in options:
        raise ConfigError(f"{group}.name={name!r} is unknown; options: {', '.join(options)}")
    return options[name]


def options_with_key(group: str, key: str) -> list[str]:
    """The options of a config group whose schema has `key` (scheduler, patience -> [plateau])."""
    return [option for option, schema in SCHEMAS.get(group, {}).items()
            if key in {f.name for f in dataclasses.fields(schema)}]


def unknown_key_hint(group: str, key: str) -> str:
    """'; scheduler.patience belongs to scheduler=plateau' when another option of the group has it."""
    owners = options_with_key(group, key)
    if not owners or len(set(SCHEMAS[group].values())) == 1:
        return ""
    return f"; {group}.{key} belongs to {' or '.join(f'{group}={o}' for o in owners)}"


def _unknown_keys(node: dict, schema: type, prefix: str) -> list[str]:
    known = {f.name for f in dataclasses.fields(schema)}
    return [f"{prefix}.{k}" for k in node.keys() if k not in known]


def plain(value):
    """Config dataclasses -> JSON-ready dicts (enums by value): run_info.json's and the checkpoint's config."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def validate(cfg: DictConfig) -> TrainConfig:
    """Typed config from a composed one, or ConfigError naming the first bad key."""
    extra = [k for k in cfg.keys() if k not in SCHEMAS and k != "hydra"]
    if extra:
        raise ConfigError(f"unknown top-level key {extra[0]!r}; groups: {', '.join(SCHEMAS)}")
    try:  # interpolations (model.num_classes: ${data.num_classes}) need the whole tree
        tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        raise ConfigError(_omegaconf_message(e)) from None
    typed: dict[str, Any] = {}
    for group in SCHEMAS:
        node = tree.get(group)
        if not isinstance(node, dict):
            raise ConfigError(f"config group {group!r} is missing")
        schema = _schema_for(group, node)
        unknown = _unknown_keys(node, schema, group)
        if unknown:
            key = unknown[0].partition(".")[2]
            raise ConfigError(f"unknown key {unknown[0]} (not in {schema.__name__}"
                              f"{unknown_key_hint(group, key) or '; check the spelling'})")
        try:
            merged = OmegaConf.merge(OmegaConf.structured(schema), node)
            typed[group] = OmegaConf.to_object(merged)
        except ConfigError:
            raise
        except OmegaConfBaseException as e:
            raise ConfigError(_omegaconf_message(e, group + ".")) from None
        except ValueError as e:  # raised by a schema's __post_init__ range check
            raise ConfigError(str(e)) from None
        check_numbers(group, typed[group])
    from analysis.rules import CATALOG  # numpy only; no torch

    unknown = [i for i in typed["trainer"].stop_on if i not in CATALOG]
    if unknown:
        raise ConfigError(f"trainer.stop_on names unknown finding id {unknown[0]!r}; known: {', '.join(CATALOG)}")
    config = TrainConfig(**typed)
    check_paths(config)
    check_combinations(config)
    return config


# ───────────────────────────── bounds of every number ─────────────────────────────

# Every float must be finite (NaN and infinity pass `x > 0`-style checks and then crash or poison the run)
# unless its field's metadata says otherwise: `field(default=..., metadata={ALLOW_NONFINITE: True})`.
ALLOW_NONFINITE = "allow_nonfinite"

# Every int lies in [INT_MIN, INT_MAX] unless INT_LIMITS below gives the key its own bounds. The ceiling is
# the largest C int: torch, numpy and the DataLoader hand these to C code, where a larger value overflows
# (diagnostics.update_every=10**20 crashed at the end of the first epoch). Every int of the schema counts
# something, so none is negative.
INT_MIN, INT_MAX = 0, 2**31 - 1

# key -> (lowest, highest, why); a test checks that every key exists in a schema.
INT_LIMITS: dict[str, tuple[int, int, str]] = {
    "trainer.seed": (0, 2**32 - 1, "numpy seeds are 32-bit"),
    "trainer.epochs": (1, 100_000, "more passes than any real run makes; a larger number is a typo"),
    "data.in_channels": (1, 64, "image channels; 64 is far beyond any image format"),
    "model.in_channels": (1, 64, "interpolated from data.in_channels"),
    "data.image_size": (1, 1024, "images are held in memory as float32: 12 MB per RGB image at 1024"),
    "data.size": (2, 1_000_000, "fake images are generated in memory"),
    "model.width": (1, 1024, "the ResNets double it per stage: 1024 makes an 8192-channel last stage"),
    "augmentation.num_ops": (0, 16, "each image goes through num_ops transformations; RandAugment has 14 kinds"),
}


def check_numbers(group: str, conf: Any) -> None:
    """Finite floats and bounded ints, derived from the schema's field types (bools are neither)."""
    for f in dataclasses.fields(conf):
        key, value = f"{group}.{f.name}", getattr(conf, f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not f.metadata.get(ALLOW_NONFINITE) and any(
                isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{key} must be finite, got {value}")
        low, high, why = INT_LIMITS.get(key, (INT_MIN, INT_MAX, "larger values overflow in C code"))
        for v in (v for v in values if isinstance(v, int) and not isinstance(v, bool)):
            if v > high:
                raise ConfigError(f"{key} must be <= {high} ({why}), got {v}")
            if v < low:
                raise ConfigError(f"{key} must be >= {low}, got {v}")


def check_paths(c: TrainConfig) -> None:
    """Path values that name no place: an empty string is the current directory to Path()."""
    if not c.diagnostics.dir.strip():
        raise ConfigError("diagnostics.dir is empty (DIAGNOSTICS_DIR set to nothing?); unset DIAGNOSTICS_DIR "
                          "or name a directory")
    if c.data.root is not None and not c.data.root.strip():
        raise ConfigError("data.root is empty; name the dataset directory or leave data.root unset")


def check_combinations(c: TrainConfig) -> None:
    """Settings that are valid one by one but cannot work, or do nothing, together."""
    padding = getattr(c.augmentation, "crop_padding", 0)
    if padding > c.data.image_size:  # a random crop of mostly padding; 100000 asked for 120 GB
        raise ConfigError(f"augmentation.crop_padding={padding} must be <= data.image_size={c.data.image_size}")
    warmup = getattr(c.scheduler, "warmup_epochs", 0.0)
    if warmup >= c.trainer.epochs:
        raise ConfigError(f"scheduler.warmup_epochs={warmup} must be < trainer.epochs={c.trainer.epochs}: "
                          "the run would end before the learning rate reaches optimizer.lr")
    min_lr = getattr(c.scheduler, "min_lr", None)
    if min_lr is not None and min_lr >= c.optimizer.lr:
        effect = ("cosine would never lower the LR (it decays from optimizer.lr to min_lr)"
                  if c.scheduler.name == "cosine" else
                  "the plateau scheduler could never cut the LR (it stops at min_lr)")
        raise ConfigError(f"scheduler.min_lr={min_lr} is not below optimizer.lr={c.optimizer.lr}: {effect}; set "
                          f"scheduler.min_lr < optimizer.lr, or scheduler=constant for a constant LR")
    # A fault that changes nothing in this config would make its "detection" meaningless.
    if c.fault.name == "clip_before_unscale" and (c.trainer.amp.value != "fp16" or c.regularization.grad_clip is None):
        raise ConfigError("fault=clip_before_unscale only acts with trainer.amp=fp16 and regularization.grad_clip "
                          "set (e.g. regularization.grad_clip=1.0)")
    if c.fault.name == "shared_transforms" and c.augmentation.name == "none":
        raise ConfigError("fault=shared_transforms only acts with a random augmentation (e.g. augmentation=basic): "
                          "with augmentation=none both pipelines are the same")


def _omegaconf_message(e: OmegaConfBaseException, prefix: str = "") -> str:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{prefix}{key}: {first}" if key else f"{prefix.rstrip('.') or 'config'}: {first}"

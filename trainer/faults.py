"""The deliberate bugs of `conf/fault/`, each applied to objects the builders made correctly.

A fault reproduces a real mistake so that a test or `benchmarks/detection.py` can check that the
diagnostics catch it. Keeping them here, as edits of already-built objects, keeps every builder and
the training step free of them: `data.py`, `device_data.py`, `models.py` and the loop know nothing
about faults, and the training step reads as it should (backward, unscale, norm, clip, step). The
list of faults, each with what it breaks, is FAULTS in config.py; each has its code in one table below.

The device loader (device_data.py) reads the pipelines of the datasets it is given, so the data
faults reach the GPU path without being named there.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .config import FAULTS, FaultConf
from .data import Data, FolderDataset, SourceDataset
from .errors import ConfigError

# ───────────────────────────── data ─────────────────────────────


def share_transforms(d: Data, seed: int) -> None:
    """One dataset instance's pipeline for both splits: the bug the seed fixed (an image folder is
    shared whole, as `ImageFolder(transform=train_tf)` serving both splits would be)."""
    if isinstance(d.val, FolderDataset):
        d.val.folder = d.train.folder
    d.val.transform = d.train.transform


def drop_normalize(d: Data, seed: int) -> None:
    """Normalize removed from both pipelines: inputs stay in [0, 1]."""
    from torchvision.transforms import v2

    for pipeline in {id(p): p for p in (d.train.transform, d.val.transform)}.values():
        pipeline.transforms = [t for t in pipeline.transforms if not isinstance(t, v2.Normalize)]


def overlap_train_val(d: Data, seed: int) -> None:
    """Validation images drawn (as many as before) from the training images."""
    train_idx = d.train.indices.numpy()
    val_idx = np.random.default_rng(seed + 1).choice(train_idx, size=len(d.val), replace=False)
    if isinstance(d.val, FolderDataset):  # both folders list the same files in the same order
        d.val = FolderDataset(d.val.folder, val_idx)
    else:
        d.val = SourceDataset(d.train.source, val_idx, d.val.transform)
    d.same_source = True


def shuffle_labels(d: Data, seed: int) -> None:
    """Training labels permuted at random (the class counts stay)."""
    g = torch.Generator().manual_seed(seed + 7)
    d.train.labels = d.train.labels[torch.randperm(len(d.train.labels), generator=g)]


def imbalance_classes(d: Data, seed: int, fraction: float) -> None:
    """Every class but class 0 keeps a random (1 - fraction) of its training images, at least one: a
    dominant class, the others rare (a scraped data set's shape); validation is left as it was."""
    labels = d.train.labels.numpy()
    rng = np.random.default_rng(seed + 11)
    keep = [np.flatnonzero(labels == 0)]
    for c in np.unique(labels[labels != 0]):
        members = np.flatnonzero(labels == c)
        keep.append(rng.choice(members, size=max(1, round(len(members) * (1 - fraction))), replace=False))
    rows = np.sort(np.concatenate(keep))
    source_indices = d.train.indices.numpy()[rows]
    if isinstance(d.train, FolderDataset):
        d.train = FolderDataset(d.train.folder, source_indices)
    else:
        d.train = SourceDataset(d.train.source, source_indices, d.train.transform)


def duplicate_images(d: Data, seed: int, fraction: float) -> None:
    """A share of the validation images replaced by copies of random training images (with their labels),
    appended to the source under new indices: the same pictures saved again under new names, which the
    index check cannot see. Tensor datasets only (an image folder would need new files)."""
    if not isinstance(d.val, SourceDataset) or not isinstance(d.train, SourceDataset):
        raise ConfigError("fault=duplicated_images needs a tensor dataset (data=digits, cifar10, cifar100 or fake)")
    rng = np.random.default_rng(seed + 13)
    n = round(len(d.val) * fraction)
    rows = rng.choice(len(d.val), size=n, replace=False)
    copies = d.train.indices[torch.from_numpy(rng.choice(len(d.train), size=n, replace=False))]
    source = d.val.source
    start = len(source)
    merged = type(source)(torch.cat([source.images, source.images[copies]]), torch.cat([source.labels, source.labels[copies]]))
    val_idx = d.val.indices.clone()
    val_idx[torch.from_numpy(rows)] = torch.arange(start, start + n)
    d.val = SourceDataset(merged, val_idx, d.val.transform)
    d.train = SourceDataset(merged, d.train.indices, d.train.transform)
def flip_labels(d: Data, seed: int, fraction: float) -> None:
    """round(fraction x N) training labels, drawn at random, each moved to another class drawn at random
    (uniform noise, as in the label-noise literature); validation keeps its true labels."""
    rng = np.random.default_rng(seed + 11)
    labels = d.train.labels.clone()
    flipped = rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False)
    shift = torch.from_numpy(rng.integers(1, d.conf.num_classes, size=len(flipped)))
    labels[flipped] = (labels[flipped] + shift) % d.conf.num_classes
    d.train.labels = labels


# ───────────────────────────── model ─────────────────────────────


def kill_relus(model: nn.Module, bias: float = -10.0) -> None:
    """Every normalization shift pushed far below zero, so the ReLUs after them never fire."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                m.bias.fill_(bias)


# ───────────────────────────── training step ─────────────────────────────


class UnscaleAtStep:
    """A GradScaler whose `unscale_` does nothing, so the step measures and clips the still-scaled
    gradients (the seed's AMP bug); `GradScaler.step` then unscales them itself, as it does whenever
    `unscale_` was not called, and skips the step on an overflow as usual."""

    def __init__(self, scaler: torch.amp.GradScaler):
        self.scaler = scaler

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        pass

    def __getattr__(self, name: str):  # scale, step, update, get_scale, state_dict, load_state_dict
        return getattr(self.scaler, name)


# ───────────────────────────── registry ─────────────────────────────

DATA_FAULTS: dict[str, Callable[[Data, int], None]] = {
    "shared_transforms": share_transforms,
    "unnormalized_input": drop_normalize,
    "train_val_overlap": overlap_train_val,
    "shuffled_labels": shuffle_labels,
}
DOSED_DATA_FAULTS: dict[str, Callable[[Data, int, float], None]] = {  # the dose: fault.fraction
    "class_imbalance": imbalance_classes,
    "duplicated_images": duplicate_images,
    "noisy_labels": flip_labels,
}
MODEL_FAULTS: dict[str, Callable[[nn.Module], None]] = {"dead_relu": kill_relus}
SCALER_FAULTS: dict[str, Callable[[torch.amp.GradScaler], object]] = {"clip_before_unscale": UnscaleAtStep}

assert set(DATA_FAULTS) | set(DOSED_DATA_FAULTS) | set(MODEL_FAULTS) | set(SCALER_FAULTS) | {"none"} == set(FAULTS), "a fault without code"


def break_data(fault: FaultConf, d: Data, seed: int) -> Data:
    """The datasets as the fault leaves them (unchanged for the others); seed: trainer.seed."""
    if fault.name in DATA_FAULTS:
        DATA_FAULTS[fault.name](d, seed)
    if fault.name in DOSED_DATA_FAULTS:
        DOSED_DATA_FAULTS[fault.name](d, seed, fault.fraction)
    return d


def break_model(fault: FaultConf, model: nn.Module) -> nn.Module:
    if fault.name in MODEL_FAULTS:
        MODEL_FAULTS[fault.name](model)
    return model


def break_scaler(fault: FaultConf, scaler: Optional[torch.amp.GradScaler]):
    """The GradScaler the training step uses (None without fp16 AMP, where no scaler fault acts)."""
    if scaler is not None and fault.name in SCALER_FAULTS:
        return SCALER_FAULTS[fault.name](scaler)
    return scaler

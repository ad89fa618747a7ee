"""Datasets, transform pipelines and loaders.

`build_datasets(cfg.data, cfg.augmentation, seed)` returns the two datasets and the facts that
`run_info.json` records (sizes, class counts, both pipelines as text, index overlap, label range),
which the data checks and the analysis turn into findings; `build_loaders(datasets, cfg.data, ...)`
batches them.

Every dataset ends up as uint8 images plus integer labels, then goes through torchvision's v2
transforms. Train and val always get their own dataset instance and their own pipeline: that is
the seed's transform-separation fix, and `fault=shared_transforms` (faults.py) undoes it on purpose.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, get_worker_info

from rundir.format import SKIPPED_IMAGES

from .config import AugmentationConf, DataConf
from .errors import DataError
from .ranks import Ranks

log = logging.getLogger("trainer")

# ───────────────────────────── sources: uint8 images and labels ─────────────────────────────


@dataclass
class Source:
    """Images of one origin (N, C, H, W uint8) and their labels (N, int64)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(image_size: int) -> Source:
    """scikit-learn's 8x8 digits (values 0..16), upsampled bilinearly to image_size, as RGB."""
    pixels, labels = digits_arrays()
    x = torch.from_numpy(pixels.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return Source(images, torch.from_numpy(labels.astype(np.int64)))


DIGITS_FILE = ("datasets", "data", "digits.csv.gz")  # in scikit-learn's package: 1797 rows of 64 pixels, label


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as (N, 8, 8) pixels and (N,) labels, read from the file scikit-learn ships: importing
    scikit-learn to read it costs 1.4 s of every run's start-up. Its own loader where the file moved."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise DataError("data=digits needs scikit-learn: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations or ["?"])), *DIGITS_FILE)
    if not path.is_file():
        from sklearn.datasets import load_digits as sk_digits

        bunch = sk_digits()
        return bunch.images, bunch.target
    import gzip

    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def load_cifar(name: str, root: str, train: bool, download: bool) -> Source:
    """CIFAR-10/100 through torchvision's classes, which own the download and integrity checks."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(root=root, train=train, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted..."
        hint = "" if download else " (set data.download=true to fetch it)"
        raise DataError(f"{name} not found or corrupted in data.root={root}{hint}: {e}") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read data.root={root}: {e}") from None
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    return Source(images, torch.as_tensor(ds.targets, dtype=torch.int64))


def load_fake(size: int, num_classes: int, image_size: int, in_channels: int, seed: int) -> Source:
    """torchvision FakeData, materialized once so speed tests time the model, not PIL."""
    from torchvision import datasets
    from torchvision.transforms.v2.functional import pil_to_tensor

    ds = datasets.FakeData(size=size, image_size=(in_channels, image_size, image_size),
                           num_classes=num_classes, random_offset=seed)
    images, labels = zip(*((pil_to_tensor(img), int(y)) for img, y in ds))
    return Source(torch.stack(images), torch.tensor(labels, dtype=torch.int64))


class SourceDataset(Dataset):
    """A view of a Source through a list of indices and one transform pipeline."""

    def __init__(self, source: Source, indices: Sequence[int], transform: Callable):
        self.source = source
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.transform = transform
        self.labels = source.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.transform(self.source.images[self.indices[i]]), self.labels[i]

    def __getitems__(self, batch: list[int]) -> list:
        with augmentation_seed(batch):
            return [self[i] for i in batch]


class FolderDataset(Dataset):
    """A view of a scanned image folder (image_folder.ScannedFolder) through a list of indices (the folder
    owns its transform)."""

    def __init__(self, folder: Any, indices: Sequence[int]):
        self.folder = folder
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.labels = torch.as_tensor(folder.targets, dtype=torch.int64)[self.indices]

    @property
    def transform(self):  # the folder's: an image folder decodes and transforms in one call
        return self.folder.transform

    @transform.setter
    def transform(self, pipeline) -> None:
        self.folder.transform = pipeline

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, _ = self.folder[int(self.indices[i])]
        return image, self.labels[i]

    def __getitems__(self, batch: list[int]) -> list:
        with augmentation_seed(batch):
            return [self[i] for i in batch]


class SeededBatch(list):
    """A training batch's dataset indices, with the seed its random augmentation draws from."""

    def __init__(self, indices: Sequence[int], seed: int):
        super().__init__(indices)
        self.seed = seed


@contextlib.contextmanager
def augmentation_seed(batch: list[int]) -> Iterator[None]:
    """Draw a SeededBatch's augmentation from its own seed, wherever the batch is loaded.

    The draws of batch k of an epoch are then a function of (seed, epoch, rank, k) alone: the same
    for any data.num_workers, and repeated exactly by a resumed run (persistent workers keep their
    RNG from epoch to epoch, which a resume could not reproduce). In the main process the global
    RNG is put back afterwards, so the draws of the model (dropout) stay where the checkpoint has
    them. A plain list (validation) is loaded as it is.
    """
    seed = getattr(batch, "seed", None)
    if seed is None:
        yield
        return
    in_worker = get_worker_info() is not None  # a worker's RNG serves the transforms alone
    state = None if in_worker else torch.random.get_rng_state()
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if state is not None:
            torch.random.set_rng_state(state)


# ───────────────────────────── transforms ─────────────────────────────


def build_transforms(aug: AugmentationConf, data: DataConf, train: bool, from_pil: bool = False):
    """The v2 pipeline for one split; validation never augments."""
    from torchvision.transforms import v2

    steps: list = []
    if from_pil:
        steps += [v2.ToImage(), v2.Resize((data.image_size, data.image_size), antialias=True)]
    if train and aug.name != "none":
        if aug.crop_padding > 0:
            steps.append(v2.RandomCrop(data.image_size, padding=aug.crop_padding))
        if aug.horizontal_flip:
            steps.append(v2.RandomHorizontalFlip())
        if aug.name == "randaugment":
            steps.append(v2.RandAugment(num_ops=aug.num_ops, magnitude=aug.magnitude))
        elif aug.name == "trivialaugment":
            steps.append(v2.TrivialAugmentWide())
    steps.append(v2.ToDtype(torch.float32, scale=True))
    steps.append(v2.Normalize(mean=list(data.mean), std=list(data.std)))
    return v2.Compose(steps)


def normalizes(pipeline) -> bool:
    """True when a v2 Compose ends in Normalize (fault=unnormalized_input removes it)."""
    from torchvision.transforms import v2

    return any(isinstance(t, v2.Normalize) for t in getattr(pipeline, "transforms", [pipeline]))


def is_deterministic(pipeline) -> bool:
    """True when no step of a v2 Compose draws random numbers."""
    from torchvision.transforms import v2

    random_types = (v2.RandomCrop, v2.RandomHorizontalFlip, v2.RandAugment, v2.TrivialAugmentWide,
                    v2.AutoAugment, v2.AugMix, v2.RandomResizedCrop)
    return not any(isinstance(t, random_types) for t in getattr(pipeline, "transforms", [pipeline]))


# ───────────────────────────── split, order, loaders ─────────────────────────────


# Validation images below which accuracy moves in steps of 1 % or more and its sampling noise (0.5 / sqrt(n)
# at 50 % accuracy: 5 points at 100 images) hides the epoch-to-epoch changes the diagnosis reads: a warning.
FEW_VAL_IMAGES = 100


def split_indices(n: int, val_fraction: float, seed: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint (train, val) index arrays, each sorted.

    The validation share must hold at least num_classes images: fewer cannot contain every class once, so
    its accuracy cannot say whether each class is learnt (data.val_fraction=1e-300 once left one image)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if n_val < num_classes:
        if num_classes >= n:
            raise DataError(f"{n} images are too few to hold out one per class for validation "
                            f"(data.num_classes={num_classes}) and train on the rest")
        raise DataError(f"data.val_fraction={val_fraction} holds out {n_val} of {n} images for validation, fewer "
                        f"than one per class (data.num_classes={num_classes}); use data.val_fraction >= "
                        f"{_ceil_2_digits(num_classes / n)}")
    if n_val >= n:
        raise DataError(f"data.val_fraction={val_fraction} leaves no training images out of {n}")
    if n_val < FEW_VAL_IMAGES:
        log.warning("data.val_fraction=%s holds out only %d validation images: accuracy moves in steps of %.1f "
                    "points and its noise is about +-%.0f points", val_fraction, n_val, 100 / n_val,
                    50 / math.sqrt(n_val))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _ceil_2_digits(x: float) -> float:
    """x rounded up to two significant digits (a fraction to suggest that is never below x)."""
    scale = 10.0 ** (1 - math.floor(math.log10(x)))
    return math.ceil(x * scale) / scale


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's permutation of range(n), from (seed, epoch) alone: a resumed run repeats it."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def rank_share(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank r's part of an epoch order under DDP: every world_size-th index from position r, after
    cutting the order to a multiple of world_size (equal shares, so equal step counts).

    With a per-rank batch of B / world_size, the ranks' batches at step t together hold exactly the
    indices of batch t of one process with batch B, and skipping t local batches on every rank skips
    t global ones: a resume is exact even when the number of processes changed.
    """
    if world_size == 1:
        return order
    return order[: len(order) - len(order) % world_size][rank::world_size]


class EpochShuffle(Sampler[int]):
    """A fresh permutation per epoch, seeded by (seed, epoch): resuming at an epoch gives its batches.

    Under DDP it is the DistributedSampler too: the same permutation on every rank, split by
    `rank_share`, without padding duplicates.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's permutation; skip its first `skip` indices of this rank (resuming mid-epoch)."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        order = rank_share(epoch_order(self.n, self.seed, self.epoch), self.rank, self.world_size)
        return iter(order[self.skip:].tolist())

    def __len__(self) -> int:
        return self.n // self.world_size - self.skip


class SeededBatches(BatchSampler):
    """EpochShuffle's indices in batches, each a SeededBatch seeded by (seed, epoch, rank, batch number)."""

    sampler: EpochShuffle

    def __iter__(self) -> Iterator[SeededBatch]:
        s = self.sampler
        first = s.skip // self.batch_size  # resumed mid-epoch: the batch numbers go on where they stopped
        base = (s.seed * 1_000_003 + s.epoch + (s.rank << 40)) * 1_000_033
        for k, batch in enumerate(super().__iter__(), start=first):
            yield SeededBatch(batch, seed=(base + k) % (1 << 63))


class ShardSampler(Sampler[int]):
    """Validation under DDP: rank r takes indices r, r + world_size, ... in order, with no padding,
    so the ranks' summed counts are exactly the one-process counts (shares differ by at most one)."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.indices = range(rank, n, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def worker_context(num_workers: int) -> Optional[str]:
    """The start method for DataLoader workers: None (torch's default) except inside a loky worker.

    `hydra/launcher=joblib` runs each job in a loky worker process, where loky has made its own
    context the multiprocessing default; DataLoader workers started through it crash ("'Process'
    object has no attribute 'env'": facebookresearch/hydra#964, joblib/joblib#1104). There we
    name the start method a plain process would use: fork on Linux (the dataset need not be
    picklable and nothing is re-imported), spawn where fork is unsafe or missing (macOS, Windows).
    """
    import multiprocessing
    import sys

    if num_workers == 0 or multiprocessing.get_start_method(allow_none=True) != "loky":
        return None
    return "fork" if sys.platform.startswith("linux") else "spawn"


def make_loader(ds: Dataset, batch_size: int, num_workers: int, train: bool, seed: int,
                pin_memory: bool, sampler: Optional[Sampler] = None) -> DataLoader:
    if train and sampler is None:
        sampler = EpochShuffle(len(ds), seed)
    n = len(sampler) if sampler is not None else len(ds)  # this rank's share under DDP
    # A last batch of one image breaks BatchNorm in train mode; dropping a partial batch does not.
    drop_last = train and n > batch_size
    batching = ({"batch_sampler": SeededBatches(sampler, batch_size, drop_last)} if train else
                {"batch_size": batch_size, "sampler": sampler, "drop_last": drop_last})
    return DataLoader(
        ds,
        **batching,
        num_workers=num_workers,
        multiprocessing_context=worker_context(num_workers),  # joblib sweeps: see worker_context
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        # Each iterator draws its workers' base seed; from here, not from the global RNG, so the global
        # RNG (the checkpoint's) advances alike for any data.num_workers. Augmentation: SeededBatches.
        generator=torch.Generator().manual_seed(seed),
    )


# ───────────────────────────── the builder ─────────────────────────────


@dataclass
class Data:
    train: Dataset
    val: Dataset
    conf: DataConf
    same_source: bool  # train and val indices point into the same images (false: an official test split)

    @property
    def facts(self) -> dict:
        """What run_info.json records, from the datasets as they are now (a fault may have changed them)."""
        return describe(self.train, self.val, self.conf, self.same_source)


def build_datasets(data: DataConf, aug: AugmentationConf, seed: int) -> Data:
    """Train and val datasets for data.name, each with its own pipeline (seed: split and fake images)."""
    train_tf = build_transforms(aug, data, train=True, from_pil=data.name == "imagefolder")
    val_tf = build_transforms(aug, data, train=False, from_pil=data.name == "imagefolder")

    overlap_sources = True  # train and val indices point into the same images
    if data.name == "imagefolder":
        train_ds, val_ds = _imagefolder(data, train_tf, val_tf, seed)
    else:
        if data.name == "digits":
            train_src = val_src = load_digits(data.image_size)
        elif data.name == "fake":
            train_src = val_src = load_fake(data.size, data.num_classes, data.image_size, data.in_channels, seed)
        elif data.name in ("cifar10", "cifar100"):
            root = data.root or f"data/{data.name}"
            train_src = load_cifar(data.name, root, train=True, download=data.download)
            if data.val_fraction is None:
                val_src = load_cifar(data.name, root, train=False, download=data.download)
                overlap_sources = False
            else:
                val_src = train_src
        else:
            raise DataError(f"data={data.name} is unknown")
        if overlap_sources:
            train_idx, val_idx = split_indices(len(train_src), data.val_fraction or 0.2, seed, data.num_classes)
        else:
            train_idx, val_idx = np.arange(len(train_src)), np.arange(len(val_src))
        train_ds = SourceDataset(train_src, train_idx, train_tf)
        val_ds = SourceDataset(val_src, val_idx, val_tf)

    return Data(train_ds, val_ds, data, overlap_sources)


def _imagefolder(data: DataConf, train_tf, val_tf, seed: int):
    from .image_folder import ScannedFolder, scan

    root = Path(data.root)
    if not root.is_dir():
        raise DataError(f"data.root={data.root} is not a directory")
    # One scan (image_folder.py: regular files, links once, every image decoded within bounds) serves both
    # splits; a second dataset instance for validation: its transform can never be the train one by accident.
    found = scan(data.root, skip_bad=data.skip_bad_images, decode_size=data.image_size)
    train_folder, val_folder = ScannedFolder(found, train_tf), ScannedFolder(found, val_tf)
    if len(train_folder.classes) != data.num_classes:
        raise DataError(f"data.root={data.root} has {len(train_folder.classes)} class folders "
                        f"but data.num_classes={data.num_classes}")
    train_idx, val_idx = split_indices(len(train_folder), data.val_fraction, seed, data.num_classes)
    return FolderDataset(train_folder, train_idx), FolderDataset(val_folder, val_idx)


def describe(train_ds, val_ds, data: DataConf, same_source: bool) -> dict:
    """What run_info.json records about the data, for the data checks and the analysis."""
    c = data.num_classes
    train_labels = train_ds.labels.numpy()
    val_labels = val_ds.labels.numpy()
    overlap = int(np.intersect1d(train_ds.indices.numpy(), val_ds.indices.numpy()).size) if same_source else 0
    lo = int(min(train_labels.min(), val_labels.min()))
    hi = int(max(train_labels.max(), val_labels.max()))
    folder = getattr(train_ds, "folder", None)  # an image folder: what its scan left out
    skipped = {SKIPPED_IMAGES: folder.skipped} if getattr(folder, "skipped", None) is not None else {}
    return {
        "dataset": data.name,
        "num_classes": c,
        "train_size": len(train_ds),
        "val_size": len(val_ds),
        "class_counts": np.bincount(train_labels[(train_labels >= 0) & (train_labels < c)], minlength=c).tolist(),
        "val_class_counts": np.bincount(val_labels[(val_labels >= 0) & (val_labels < c)], minlength=c).tolist(),
        "label_range": [lo, hi],
        "train_val_overlap": overlap,
        "train_transform": repr(train_ds.transform),
        "val_transform": repr(val_ds.transform),
        "transforms_shared": train_ds.transform is val_ds.transform,
        "val_transform_deterministic": is_deterministic(val_ds.transform),
        "train_transform_random": not is_deterministic(train_ds.transform),
        **skipped,
    }


def check_labels(facts: dict, num_classes: int) -> None:
    """Labels outside [0, C) would crash the loss mid-epoch: refuse them up front, naming the range."""
    lo, hi = facts["label_range"]
    if lo < 0 or hi >= num_classes:
        raise DataError(f"labels span [{lo}, {hi}] but data.num_classes={num_classes}: "
                        f"every label must lie in [0, {num_classes})")


def batch_stats(ds: Dataset, n: int, seed: int) -> dict:
    """Per-channel mean and std of n transformed images, without disturbing the global RNG. Given the
    validation set (its pipeline never augments, but normalizes as training does): whether the inputs are
    normalized is a fact of the data and of data.mean/std, and a random crop's black padding or a
    TrivialAugment draw would shift the statistics of augmented training images by a quarter of a std."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = torch.stack([ds[i][0] for i in range(min(n, len(ds)))]).float()
    return {
        "input_mean": x.mean(dim=(0, 2, 3)).tolist(),
        "input_std": x.std(dim=(0, 2, 3)).tolist(),
        "input_min": float(x.min()),
        "input_max": float(x.max()),
    }


def set_epoch(loader, epoch: int, skip: int = 0) -> None:
    """Fix this epoch's order and augmentation draws from (seed, epoch, rank) alone: a resumed run
    repeats them. skip: indices of this rank's share already trained on (resuming mid-epoch)."""
    if isinstance(loader, DataLoader):
        loader.batch_sampler.sampler.set_epoch(epoch, skip)
    else:  # the device loader (device_data.py) draws its own
        loader.set_epoch(epoch, skip)


def epoch_indices(loader) -> torch.Tensor:
    """This rank's training indices for the epoch set by `set_epoch`, in the order its steps take them:
    step k trains on the k-th slice of batch_size (both loaders batch their order in sequence)."""
    if isinstance(loader, DataLoader):
        s = loader.batch_sampler.sampler
        return rank_share(epoch_order(s.n, s.seed, s.epoch), s.rank, s.world_size)
    return loader.order  # the device loader's, already on the device


def val_indices(loader) -> torch.Tensor:
    """This rank's validation indices in the order its batches take them: every image once, in order (under DDP
    rank r takes r, r + world_size, ...: ShardSampler, or the device loader's order)."""
    if isinstance(loader, DataLoader):
        s = loader.sampler
        return torch.as_tensor(s.indices) if isinstance(s, ShardSampler) else torch.arange(len(loader.dataset))
    return loader.order


def build_loaders(d: Data, data: DataConf, *, seed: int, pin_memory: bool, ranks: Ranks = Ranks()):
    """The DataLoader path: (train, val) loaders over this rank's shares, each batch this rank's share
    of data.batch_size (the global batch). seed: trainer.seed; pin_memory: true for CUDA."""
    workers = data.num_workers
    if workers > (os.cpu_count() or 1) * 4:
        raise DataError(f"data.num_workers={workers} is far more than this machine's {os.cpu_count()} cores")
    batch_size = ranks.share_of_batch(data.batch_size)
    rank, world_size = ranks.rank, ranks.world_size
    train_sampler = EpochShuffle(len(d.train), seed, rank, world_size)
    val_sampler = ShardSampler(len(d.val), rank, world_size) if world_size > 1 else None
    train = make_loader(d.train, batch_size, workers, True, seed, pin_memory, train_sampler)
    val = make_loader(d.val, batch_size, workers, False, seed, pin_memory, val_sampler)
    return train, val

"""The GPU fast path: a uint8 tensor dataset held on the training device, augmented there in batches.

airbench's approach (reference §3): the images stay on the GPU as uint8; each step gathers its batch
by index, crops and flips every sample with its own random draw using batched tensor ops (random
transforms of torchvision applied to a batch draw once for the whole batch), converts and
normalizes on the device, in channels-last layout. No worker processes, no host copies per step.

The semantics are those of the DataLoader path (`data.py`): the same (seed, epoch) permutation split
the same way over DDP ranks, a mid-epoch `skip` for resuming, RandomCrop with zero padding followed by
RandomHorizontalFlip, then ToDtype(scale) and Normalize. The random draws differ (they come from a
generator seeded by (seed, epoch, rank), drawn for the whole epoch at `set_epoch`, so a resumed
epoch repeats its augmentation exactly). RandAugment and TrivialAugment have no batched version:
those configs, and image folders, use the DataLoader path.

Every function here is device-agnostic: the tests run them on CPU tensors.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch
import torch.nn.functional as F

from .config import AugmentationConf, DataConf
from .data import Data, SourceDataset, epoch_order, normalizes, rank_share
from .errors import ConfigError
from .ranks import Ranks

BATCHED_AUGMENTATIONS = ("none", "basic")


# ───────────────────────────── batched augmentation ─────────────────────────────


def crop_offsets(n: int, padding: int, generator: Optional[torch.Generator] = None,
                 device: Optional[torch.device] = None) -> torch.Tensor:
    """(n, 2) top-left corners (row, column) of per-sample crops, each uniform in [0, 2 * padding]."""
    return torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=device)


def batch_crop(images: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Crop sample k of images (N, C, H, W) at offsets[k] from its zero-padded copy (RandomCrop(padding=p)).

    One gather for the whole batch: the row and column indices of every sample's window are built by
    broadcasting, so each sample is shifted by its own offset.
    """
    if padding == 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # zeros, like torchvision's fill=0
    device = images.device
    rows = offsets[:, 0, None] + torch.arange(h, device=device)  # (N, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=device)  # (N, W)
    return padded[torch.arange(n, device=device)[:, None, None, None],
                  torch.arange(c, device=device)[None, :, None, None],
                  rows[:, None, :, None],
                  cols[:, None, None, :]]


def flip_mask(n: int, generator: Optional[torch.Generator] = None,
              device: Optional[torch.device] = None) -> torch.Tensor:
    """(n,) booleans, each true with probability 0.5."""
    return torch.rand(n, generator=generator, device=device) < 0.5


def batch_flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the samples whose mask is true (airbench's batch_flip_lr)."""
    return torch.where(mask[:, None, None, None], images.flip(-1), images)


# ───────────────────────────── the loader ─────────────────────────────


class DeviceLoader:
    """Batches (x, y) of a dataset held on the device: x normalized float32, y int64.

    Train: the epoch's (seed, epoch) order, this rank's share, full batches only (as the DataLoader
    path's drop_last), crop and flip per sample. Validation: this rank's share in order, every image
    once, not augmented (except under fault=shared_transforms, which gives it crop and flip on purpose).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, train: bool, seed: int,
                 mean: Sequence[float], std: Sequence[float], normalize: bool = True, crop_padding: int = 0,
                 flip: bool = False, rank: int = 0, world_size: int = 1, channels_last: bool = False):
        self.images, self.labels = images, labels
        self.device = images.device
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size = rank, world_size
        self.crop_padding, self.flip = crop_padding, flip
        self.channels_last = channels_last
        n = len(labels)
        share = n // world_size if train else len(range(rank, n, world_size))
        self.drop_last = train and share > batch_size
        self.steps = share // batch_size if self.drop_last else -(-share // batch_size)
        # ToDtype(float32, scale=True) then Normalize, as the DataLoader path's v2 transforms compute them
        # (x * (1/255), - mean, / std: bit-identical inputs, so the two paths train identically).
        self.normalize = normalize
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).to(self.device)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).to(self.device)
        self.order: torch.Tensor = torch.arange(rank, n, world_size, device=self.device)
        self.offsets: Optional[torch.Tensor] = None
        self.flips: Optional[torch.Tensor] = None
        self.skip = 0
        # Validation augments only under fault=shared_transforms: fresh draws at every pass, as there.
        self._val_generator = torch.Generator(device=self.device).manual_seed(seed + 1 + (rank << 40))
        if train:
            self.set_epoch(0)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The epoch's order and every augmentation draw of the epoch, from (seed, epoch, rank) alone."""
        self.skip = skip
        if not self.train:
            return
        order = rank_share(epoch_order(len(self.labels), self.seed, epoch), self.rank, self.world_size)
        self.order = order.to(self.device)
        self._draw(torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + epoch + (self.rank << 40)))

    def _draw(self, g: torch.Generator) -> None:
        n = len(self.order)
        self.offsets = crop_offsets(n, self.crop_padding, g, self.device) if self.crop_padding else None
        self.flips = flip_mask(n, g, self.device) if self.flip else None

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        b = self.batch_size
        if not self.train and (self.crop_padding or self.flip):
            self._draw(self._val_generator)
        for start in range(self.skip, self.steps * b if self.drop_last else len(self.order), b):
            stop = min(start + b, len(self.order))
            idx = self.order[start:stop]
            x = self.images.index_select(0, idx)
            if self.offsets is not None:
                x = batch_crop(x, self.crop_padding, self.offsets[start:stop])
            if self.flips is not None:
                x = batch_flip(x, self.flips[start:stop])
            x = x.float().mul_(1.0 / 255)
            if self.normalize:
                x = x.sub_(self.mean).div_(self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels.index_select(0, idx)


# ───────────────────────────── the builder ─────────────────────────────


def unavailable(d: Data, aug: AugmentationConf) -> Optional[str]:
    """Why this data cannot take the device path, or None when it can."""
    if not (isinstance(d.train, SourceDataset) and isinstance(d.val, SourceDataset)):
        return "image folders are decoded by the DataLoader's workers"
    if aug.name not in BATCHED_AUGMENTATIONS:
        return f"augmentation={aug.name} has no batched GPU version"
    return None


def use_device_loader(data: DataConf, aug: AugmentationConf, d: Data, device: torch.device) -> bool:
    """data.loader=auto: on CUDA whenever possible; device: always (ConfigError when impossible)."""
    if data.loader == "dataloader":
        return False
    reason = unavailable(d, aug)
    if data.loader == "device":
        if reason is not None:
            raise ConfigError(f"data.loader=device is not possible: {reason} (use data.loader=auto)")
        return True
    return device.type == "cuda" and reason is None


def build_device_loaders(d: Data, data: DataConf, aug: AugmentationConf, *, seed: int, device: torch.device,
                         ranks: Ranks = Ranks(), channels_last: bool = False) -> tuple[DeviceLoader, DeviceLoader]:
    """(train, val) device loaders, each batch this rank's share of data.batch_size (the global batch).

    They compute what the datasets' own pipelines compute: crop and flip as `aug` configures the
    training pipeline, Normalize only where the pipeline has it, and validation augmented only when it
    shares the training pipeline (so the data faults of faults.py carry over). seed: trainer.seed.
    """
    crop = aug.crop_padding if aug.name != "none" else 0
    flip = aug.name != "none" and aug.horizontal_flip
    common = dict(seed=seed, mean=data.mean, std=data.std, normalize=normalizes(d.train.transform),
                  rank=ranks.rank, world_size=ranks.world_size, channels_last=channels_last)
    batch_size = ranks.share_of_batch(data.batch_size)

    def on_device(ds: SourceDataset) -> tuple[torch.Tensor, torch.Tensor]:
        return ds.source.images.index_select(0, ds.indices).to(device), ds.labels.to(device)

    train = DeviceLoader(*on_device(d.train), batch_size, train=True, crop_padding=crop, flip=flip, **common)
    shared = d.val.transform is d.train.transform  # fault=shared_transforms
    val = DeviceLoader(*on_device(d.val), batch_size, train=False, crop_padding=crop if shared else 0,
                       flip=flip and shared, **common)
    return train, val

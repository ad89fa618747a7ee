"""Each training image's loss, margin and predicted class, every epoch, by its index in the training set.

The analysis reads these to find labels that look wrong (analysis/label_noise.py): a mislabeled image stays
unlearned while the rest are learned, then is memorized late (Pleiss et al. 2020, area under the margin).

On the device, without a host sync and without a torch call in the step: each step's detached logits are
kept by reference (the tensor the forward pass made anyway); every BUFFER_ELEMENTS of them (for small data:
once an epoch) one batched reduction turns them into (loss, margin, prediction) rows of a (3, N) device
tensor, written by dataset index. The indices come from the epoch's order, which the loop gives once an
epoch (both loaders draw it from (seed, epoch, rank) and batch it in sequence: `data.epoch_indices`), and the
labels from the training set as trained. At the epoch's end one transfer (under DDP one SUM all-reduce
first: each image was trained on by exactly one rank) gives the arrays rundir/format.py's PER_SAMPLE_FIELDS
name, one small file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from rundir.files import write_arrays
from rundir.format import PER_SAMPLE_DIR, PER_SAMPLE_EPOCH, PER_SAMPLE_LABELS, TOP_LOSSES

from . import distributed

LOSS, MARGIN, PREDICTED = range(3)  # rows of the device buffer; PREDICTED holds class + 1 (0: not trained on)
TOP_LOSS_IMAGES = 32  # thumbnails of the highest-loss training images written at the end (about 100 KB at 32x32)


class SampleRecorder:
    # Logits held between two reductions, in elements (64 MB of float32): CIFAR-100's 50,000 x 100 are reduced
    # once an epoch; ImageNet's batches of 256 x 1000 every 66 steps.
    BUFFER_ELEMENTS = 2**24

    def __init__(self, labels: torch.Tensor, device: torch.device):
        self.labels = labels.to(device)  # the training set's labels as trained, by dataset index
        self.n, self.device = len(labels), device
        self.order: Optional[torch.Tensor] = None
        self.start_epoch()

    def start_epoch(self) -> None:
        self.rows = torch.zeros((3, self.n), device=self.device)
        self.offset = 0  # position in this rank's epoch order of the first batch not yet reduced
        self.pending: list[torch.Tensor] = []  # the steps' logits since the last reduction
        self.held = 0  # their elements

    def set_order(self, order: torch.Tensor, skip: int = 0) -> None:
        """This rank's training indices for the epoch in step order; skip: those of steps already taken."""
        self.order = order.to(self.device, non_blocking=True)
        self.offset, self.pending, self.held = skip, [], 0

    def record(self, logits: torch.Tensor) -> None:
        """One step's logits (B, C), detached: kept by reference, no device work (a reduction when enough are)."""
        self.pending.append(logits)
        self.held += logits.numel()
        if self.held >= self.BUFFER_ELEMENTS:
            self.flush()

    def flush(self) -> None:
        """Reduce the held steps into rows: cross-entropy, margin (Pleiss et al. 2020), prediction."""
        if not self.pending:
            return
        z = torch.cat(self.pending).float()
        self.pending, self.held = [], 0
        idx = self.order[self.offset:self.offset + len(z)]
        self.offset += len(z)
        y = self.labels[idx]
        top = z.topk(2, dim=1)
        predicted = top.indices[:, 0]
        assigned = z.gather(1, y[:, None]).squeeze(1)
        other = torch.where(predicted == y, top.values[:, 1], top.values[:, 0])  # the largest logit of another class
        self.rows[:, idx] = torch.stack((torch.logsumexp(z, 1) - assigned, assigned - other, predicted + 1.0))

    def end_epoch(self) -> dict[str, np.ndarray]:
        self.flush()
        rows = distributed.all_reduce_sum_(self.rows)
        host = rows.cpu().numpy()
        seen = host[PREDICTED] > 0
        with np.errstate(over="ignore"):  # a diverged run's losses beyond float16's 65504 are stored as inf
            return {"loss": np.where(seen, host[LOSS], np.nan).astype(np.float16),
                    "margin": np.where(seen, host[MARGIN], np.nan).astype(np.float16),
                    "predicted": (host[PREDICTED] - 1).astype(np.int16)}


def sample_dir(diag_dir: Path) -> Path:
    return Path(diag_dir) / PER_SAMPLE_DIR


def write_labels(diag_dir: Path, labels: torch.Tensor) -> None:
    write_arrays(sample_dir(diag_dir) / PER_SAMPLE_LABELS, {"labels": labels.numpy().astype(np.int32)})


def write_epoch(diag_dir: Path, epoch: int, arrays: dict[str, np.ndarray]) -> None:
    write_arrays(sample_dir(diag_dir) / PER_SAMPLE_EPOCH.format(epoch=epoch), arrays)


def discard_after(diag_dir: Path, last_epoch: int) -> None:
    """Epoch files past the checkpoint's epoch (a crash after they were written, or a run started over)."""
    prefix, _, suffix = PER_SAMPLE_EPOCH.partition("{epoch:04d}")
    for path in sample_dir(diag_dir).glob(f"{prefix}*{suffix}"):
        number = path.name[len(prefix):len(path.name) - len(suffix)]
        if number.isdigit() and int(number) > last_epoch:  # only the files this module names
            path.unlink(missing_ok=True)


def write_top_losses(diag_dir: Path, train_ds, arrays: dict[str, np.ndarray], k: int = TOP_LOSS_IMAGES) -> None:
    """Thumbnails of the k highest-loss training images of the last epoch, with label, prediction and loss."""
    loss = arrays["loss"].astype(np.float32)
    seen = np.flatnonzero(np.isfinite(loss))
    top = seen[np.argsort(-loss[seen], kind="stable")[:k]]
    images = np.stack([thumbnail(train_ds, int(i)) for i in top]) if len(top) else np.zeros((0, 3, 1, 1), np.uint8)
    names = getattr(getattr(train_ds, "folder", None), "classes", None) or []
    write_arrays(sample_dir(diag_dir) / TOP_LOSSES, {
        "index": top.astype(np.int64), "image": images, "label": train_ds.labels.numpy()[top].astype(np.int32),
        "predicted": arrays["predicted"][top].astype(np.int32), "loss": loss[top],
        "class_names": np.array([str(c) for c in names], dtype=str)})


THUMBNAIL = 64  # pixels: the side of a (square) thumbnail decoded from an image folder


def thumbnail(ds, i: int) -> np.ndarray:
    """Training image i as stored, (C, H, W) uint8: a tensor dataset's pixels, an image folder's file resized."""
    source = getattr(ds, "source", None)
    if source is not None:
        return source.images[ds.indices[i]].numpy()
    from PIL import Image

    path, _ = ds.folder.samples[int(ds.indices[i])]
    with Image.open(path) as img:
        img = img.convert("RGB").resize((THUMBNAIL, THUMBNAIL))
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()

"""Each training image's loss, margin and predicted class, every epoch, by its index in the training set.

The analysis reads these to find labels that look wrong (analysis/label_noise.py): a mislabeled image stays
unlearned while the rest are learned, then is memorized late (Pleiss et al. 2020, area under the margin).

On the device, without a host sync in the step: the loop tells the recorder the epoch's order of training
indices once per epoch (both loaders draw it from (seed, epoch, rank): `data.epoch_indices`), and step k's
batch is the next slice of it, so each step writes its rows into a preallocated (3, N) device tensor by
index. At the epoch's end one transfer (under DDP one SUM all-reduce first: each image was trained on by
exactly one rank) gives the arrays rundir/format.py's PER_SAMPLE_FIELDS name, written as one small file.
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
    def __init__(self, num_samples: int, device: torch.device):
        self.n, self.device = num_samples, device
        self.order: Optional[torch.Tensor] = None
        self.start_epoch()

    def start_epoch(self) -> None:
        self.rows = torch.zeros((3, self.n), device=self.device)
        self.offset = 0  # position in this rank's epoch order of the next step's batch

    def set_order(self, order: torch.Tensor) -> None:
        """This rank's training indices for the epoch, in the order its steps take them (before any skip)."""
        self.order = order.to(self.device, non_blocking=True)

    def record(self, logits: torch.Tensor, targets: torch.Tensor, predicted: torch.Tensor,
               runner_up: torch.Tensor, top: torch.Tensor) -> None:
        """One step: logits (B, C) float32 detached, predicted / top / runner_up from its top-2."""
        n = targets.shape[0]
        idx = self.order[self.offset:self.offset + n]
        self.offset += n
        assigned = logits.gather(1, targets[:, None]).squeeze(1)
        other = torch.where(predicted == targets, runner_up, top)  # the largest logit of another class
        self.rows[:, idx] = torch.stack((torch.logsumexp(logits, 1) - assigned, assigned - other, predicted + 1.0))

    def end_epoch(self) -> dict[str, np.ndarray]:
        rows = distributed.all_reduce_sum_(self.rows)
        host = rows.cpu().numpy()
        seen = host[PREDICTED] > 0
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
    for path in sample_dir(diag_dir).glob(PER_SAMPLE_EPOCH.replace("{epoch:04d}", "[0-9][0-9][0-9][0-9]")):
        if int(path.stem.rpartition("_")[2]) > last_epoch:
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

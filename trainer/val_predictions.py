"""Each validation image's predicted probabilities, from the validation pass of the best epoch so far.

The analysis runs confident learning on them (Northcutt et al. 2021, analysis/label_noise.py): per class j the
threshold t_j is the mean predicted probability of j over the images labelled j, and an image labelled i looks
mislabelled when the most probable class at or above its threshold is another class. What that needs per image:
its label, the probability of its label (the thresholds) and its K most probable classes with their
probabilities (rundir/format.py VAL_PREDICTION_FIELDS).

On the device, without a host sync: every validation batch adds one softmax, one top-k and one indexed write
into a (2K + 2, N) device tensor, by position in the validation set (each rank's share in order: the
DataLoader's ShardSampler, or the device loader's order, `data.val_indices`). Only when the validation accuracy
improved, so at most once an epoch, `gather` takes one SUM all-reduce under DDP (each image was validated by
exactly one rank; classes are stored + 1, 0 meaning not validated) and one transfer; rank 0 writes one small
file (46 bytes an image for 10 classes, 70 from 16 on: CIFAR-10's 10,000 images take 460 KB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rundir.files import write_arrays
from rundir.format import PER_SAMPLE_DIR, VAL_PREDICTION_TOP_K, VAL_PREDICTIONS
from rundir.per_sample import read_val_predictions

from . import distributed

LABEL, LABEL_PROBABILITY = range(2)  # rows of the device buffer; then K probabilities, then K classes + 1


class ValPredictions:
    def __init__(self, order: torch.Tensor, size: int, num_classes: int, device: torch.device):
        """order: this rank's validation indices in the order its batches take them; size: the validation set's."""
        self.k = min(VAL_PREDICTION_TOP_K, num_classes)
        self.order = order.to(device)
        self.rows = torch.zeros((2 + 2 * self.k, size), device=device)
        self.offset = 0

    def start(self) -> None:
        """Before a validation pass: every image's row is written again (a rank validates the same images)."""
        self.offset = 0

    def record(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        """One validation batch's float logits (B, C) and labels (B,): device work only."""
        n = y.shape[0]
        idx = self.order[self.offset:self.offset + n]
        self.offset += n
        p = logits.softmax(dim=1)
        top = p.topk(self.k, dim=1)
        self.rows[:, idx] = torch.cat((torch.stack((y + 1.0, p.gather(1, y[:, None]).squeeze(1))),
                                       top.values.T, top.indices.T + 1.0))

    def gather(self) -> dict[str, np.ndarray]:
        """The last pass's arrays on the host (a collective under DDP: every rank calls it)."""
        host = distributed.all_reduce_sum_(self.rows.clone()).cpu().numpy()
        k = self.k
        return {"label": (host[LABEL] - 1).astype(np.int32),
                "label_probability": host[LABEL_PROBABILITY].astype(np.float16),
                "probabilities": host[2:2 + k].T.astype(np.float16),
                "classes": (host[2 + k:] - 1).T.astype(np.int16)}


def path(diag_dir: Path) -> Path:
    return Path(diag_dir) / PER_SAMPLE_DIR / VAL_PREDICTIONS


def write(diag_dir: Path, epoch: int, arrays: dict[str, np.ndarray]) -> None:
    write_arrays(path(diag_dir), {"epoch": np.array([epoch], dtype=np.int32), **arrays})


def discard_after(diag_dir: Path, last_epoch: int) -> None:
    """The file when it is of an epoch past the checkpoint's (a crash after it was written, or a run started
    over): the epoch that replaces it is trained again."""
    target = path(diag_dir)
    if not target.is_file():
        return
    recorded = read_val_predictions(Path(diag_dir), None, [])
    if recorded is None or int(recorded["epoch"][0]) > last_epoch:
        target.unlink(missing_ok=True)

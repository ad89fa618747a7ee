"""The step loop on CUDA performs no host-device synchronisation (skipped without a GPU).

The real `train()` runs with its train loader wrapped: from the second step of every epoch until the
epoch's last step has finished, `torch.cuda.set_sync_debug_mode("error")` turns any sync (an
`.item()`, a blocking copy, GradScaler's inf check on the host...) into a RuntimeError. The first
step is left out (cuDNN autotuning, lazy initializations) and so is the epoch's end, where the loop
reads the device once on purpose.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import train_here
import trainer.loop as loop
from trainer.data import set_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


class SyncGuard:
    """A train loader whose steps 2..N of each epoch run under sync debug mode "error"."""

    def __init__(self, loader):
        self.loader = loader
        self.guarded_steps = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        set_epoch(self.loader, epoch, skip)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        try:
            for k, batch in enumerate(self.loader):
                if k == 1:
                    torch.cuda.synchronize()
                    torch.cuda.set_sync_debug_mode("error")
                self.guarded_steps += k >= 1
                yield batch
            # Reached when the loop asks for a batch after its last step: that step ran guarded too.
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.fixture
def guarded(monkeypatch):
    guards = []

    def wrap(builder):
        def build(*args, **kwargs):
            train, val = builder(*args, **kwargs)
            guards.append(SyncGuard(train))
            return guards[-1], val
        return build

    monkeypatch.setattr(loop, "build_loaders", wrap(loop.build_loaders))
    monkeypatch.setattr(loop, "build_device_loaders", wrap(loop.build_device_loaders))
    return guards


@pytest.mark.parametrize("loader", ["device", "dataloader"])
@pytest.mark.parametrize("precision", [
    ["trainer.amp=bf16"],
    ["trainer.amp=fp16", "regularization.grad_clip=0.5"],  # GradScaler (fused optimizer) and clipping
])
def test_training_steps_do_not_sync_the_host(tmp_path, guarded, loader, precision):
    _, train, val = train_here(tmp_path, ["trainer.device=cuda", "trainer.epochs=2", "augmentation=basic",
                                          f"data.loader={loader}", "model=resnet18", "model.width=8", *precision])
    [guard] = guarded
    assert guard.guarded_steps == 2 * (len(guard) - 1)
    assert [r["epoch"] for r in train] == [1, 2] and all(r["nonfinite_steps"] == 0 for r in train)
    assert "dead_relu_fraction" in train[-1]  # the activation probe ran (on the guarded last step)
    info = json.loads((tmp_path / "diagnostics" / "run_info.json").read_text())
    assert info["loader"] == loader


def test_the_guard_catches_a_sync():
    """The harness can fail: an .item() under the same mode raises."""
    x = torch.ones(4, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            (x * 2).sum().item()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_auto_loader_takes_the_device_path_on_cuda_with_channels_last_batches(tmp_path):
    from conftest import compose
    from trainer.config import validate
    from trainer.data import build_datasets
    from trainer.device_data import build_device_loaders, use_device_loader

    cfg = validate(compose(["augmentation=basic"]))
    d = build_datasets(cfg.data, cfg.augmentation, 0)
    cuda = torch.device("cuda")
    assert use_device_loader(cfg.data, cfg.augmentation, d, cuda)
    train, _ = build_device_loaders(d, cfg.data, cfg.augmentation, 0, cuda, 64, channels_last=True)
    train.set_epoch(1)
    x, y = next(iter(train))
    assert x.is_cuda and y.is_cuda and x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last)

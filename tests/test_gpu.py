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

from conftest import guard_train_steps, train_here

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def sync_errors() -> None:
    torch.cuda.synchronize()  # what was queued before the window may sync freely
    torch.cuda.set_sync_debug_mode("error")


@pytest.fixture
def guarded(monkeypatch):
    return guard_train_steps(monkeypatch, sync_errors, lambda: torch.cuda.set_sync_debug_mode("default"),
                             guard_loader=("dataloader", "device"))


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
    train, _ = build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=cuda, channels_last=True)
    train.set_epoch(1)
    x, y = next(iter(train))
    assert x.is_cuda and y.is_cuda and x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last)

"""The deliberate bugs of conf/fault/ (trainer/faults.py) act on built objects, on either data path."""

from __future__ import annotations

import pytest
import torch

from conftest import compose
from trainer import faults
from trainer.config import FAULTS, validate
from trainer.data import build_datasets, build_loaders, set_epoch
from trainer.device_data import build_device_loaders

CPU = torch.device("cpu")


def test_every_fault_has_exactly_one_piece_of_code():
    tables = (faults.DATA_FAULTS, faults.DOSED_DATA_FAULTS, faults.MODEL_FAULTS, faults.SCALER_FAULTS)
    for name in FAULTS:
        assert sum(name in t for t in tables) == (name != "none"), name


def broken(overrides):
    cfg = validate(compose(overrides))
    return cfg, faults.break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, seed=0), seed=0)


def test_unnormalized_input_reaches_the_device_loader(one_thread):
    cfg, d = broken(["fault=unnormalized_input"])
    device_train, _ = build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=CPU)
    ref_train, _ = build_loaders(d, cfg.data, seed=0, pin_memory=False)
    set_epoch(device_train, 1)
    set_epoch(ref_train, 1)
    (x, _), (rx, _) = next(iter(device_train)), next(iter(ref_train))
    assert torch.equal(x, rx) and x.min() >= 0 and x.max() <= 1 and x.mean() > 0.1  # raw [0, 1] pixels


@pytest.mark.parametrize("fault,augmented", [("none", False), ("shared_transforms", True)])
def test_shared_transforms_augment_validation_on_the_device_path(fault, augmented, one_thread):
    cfg, d = broken([f"fault={fault}", "augmentation=basic"])
    _, val = build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=CPU)
    first, second = next(iter(val))[0], next(iter(val))[0]
    assert torch.equal(first, second) is not augmented  # a fresh crop and flip at every pass


@pytest.mark.parametrize("fused", [False, True])  # fused (CUDA's kernel; torch has a CPU one): step unscales in it
def test_clip_before_unscale_measures_the_scaled_gradients(fused):
    cfg = validate(compose(["fault=clip_before_unscale", "trainer.amp=fp16", "regularization.grad_clip=1.0"]))
    w = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.SGD([w], lr=0.1, fused=fused)
    scaler = faults.break_scaler(cfg.fault, torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))
    scaler.scale((w * w).sum()).backward()
    scaler.unscale_(optimizer)  # the fault: nothing happens here...
    assert torch.allclose(w.grad, torch.full((4,), 2.0 * 2 ** 10))
    scaler.step(optimizer)  # ...and the step unscales
    scaler.update()
    assert torch.allclose(w.detach(), torch.full((4,), 1 - 0.1 * 2.0))
    assert faults.break_scaler(validate(compose([])).fault, None) is None

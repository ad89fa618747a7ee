"""The GPU fast path's data side, on CPU tensors (every function of device_data.py is device-agnostic).

Batched augmentation: shapes, per-sample draws, determinism, the crop window and the flip are
checked against a per-image reference. The device loader: the same (seed, epoch) order as the
DataLoader path, the same split over DDP ranks, an exact mid-epoch skip, and one end-to-end epoch
through the real loop that matches the DataLoader path.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import compose, train_here
from trainer.config import validate
from trainer.data import build_datasets, build_loaders, set_epoch
from trainer.device_data import (batch_crop, batch_flip, build_device_loaders, crop_offsets,
                                 flip_mask, use_device_loader)
from trainer.errors import ConfigError
from trainer.ranks import Ranks


def images(n=16, c=3, h=8, w=8, seed=0):
    return torch.randint(0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


# ───────────────────────────── batched augmentation ─────────────────────────────


def test_batch_crop_cuts_each_sample_at_its_own_offset_of_the_zero_padded_image():
    x, p = images(), 4
    g = torch.Generator().manual_seed(1)
    offsets = crop_offsets(len(x), p, g)
    out = batch_crop(x, p, offsets)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert offsets.min() >= 0 and offsets.max() <= 2 * p
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    for k in range(len(x)):  # the per-image reference: RandomCrop(padding=p)'s window
        i, j = offsets[k].tolist()
        assert torch.equal(out[k], padded[k, :, i:i + 8, j:j + 8])
    # Offset (p, p) is the identity; the extremes bring in p rows/columns of zero padding.
    assert torch.equal(batch_crop(x, p, torch.full((len(x), 2), p)), x)
    corner = batch_crop(x, p, torch.zeros(len(x), 2, dtype=torch.long))
    assert (corner[:, :, :p, :] == 0).all() and (corner[:, :, :, :p] == 0).all()
    assert torch.equal(corner[:, :, p:, p:], x[:, :, :8 - p, :8 - p])


def test_crop_draws_differ_per_sample_and_repeat_under_a_seeded_generator():
    n, p = 256, 4
    a = crop_offsets(n, p, torch.Generator().manual_seed(7))
    b = crop_offsets(n, p, torch.Generator().manual_seed(7))
    c = crop_offsets(n, p, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # every offset of [0, 2p] occurs in both axes: one draw per sample, not one for the batch
    assert set(a[:, 0].tolist()) == set(range(2 * p + 1)) and set(a[:, 1].tolist()) == set(range(2 * p + 1))
    x = images(n=n, h=32, w=32)
    out = batch_crop(x, p, a)
    assert len({tuple(o) for o in a.tolist()}) > 40  # distinct windows across the batch
    shifted = [k for k in range(n) if a[k].tolist() != [p, p]]
    assert all(not torch.equal(out[k], x[k]) for k in shifted[:20])


def test_batch_flip_mirrors_exactly_the_masked_samples():
    x = images(n=64)
    mask = flip_mask(len(x), torch.Generator().manual_seed(3))
    assert 10 < int(mask.sum()) < 54  # about half, per sample
    assert torch.equal(mask, flip_mask(len(x), torch.Generator().manual_seed(3)))
    out = batch_flip(x, mask)
    assert out.shape == x.shape and out.dtype == x.dtype
    for k in range(len(x)):
        expected = x[k].flip(-1) if mask[k] else x[k]
        assert torch.equal(out[k], expected)
    assert torch.equal(out[mask][:, :, :, 0], x[mask][:, :, :, -1])  # first column was the last


# ───────────────────────────── the device loader ─────────────────────────────


def digits(overrides=()):
    cfg = validate(compose(["data.batch_size=64", *overrides]))
    return cfg, build_datasets(cfg.data, cfg.augmentation, seed=0)


def test_device_loader_keeps_the_dataloader_order_normalization_and_rank_split(one_thread):
    cfg, d = digits()
    cpu = torch.device("cpu")
    train, val = build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=cpu)
    ref_train, ref_val = build_loaders(d, cfg.data, seed=0, pin_memory=False)
    set_epoch(train, 2)
    set_epoch(ref_train, 2)
    ours, ref = list(train), list(ref_train)
    assert len(ours) == len(ref) == len(train) == 1438 // 64
    for (x, y), (rx, ry) in zip(ours, ref):
        assert torch.equal(y, ry)  # the same (seed, epoch) permutation, batch by batch
        assert torch.equal(x, rx)  # the same ToDtype(scale) + Normalize arithmetic
    assert sum(len(y) for _, y in val) == len(d.val)  # validation: every image once
    # Epochs differ, and two ranks with half the batch together hold the one-process batch, step by step.
    set_epoch(train, 1)
    whole = [y for _, y in train]
    set_epoch(train, 2)
    assert not torch.equal(whole[0], next(iter(train))[1])
    halves = [build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=cpu, ranks=Ranks(r, 2))
              for r in (0, 1)]
    ranks = [rank_train for rank_train, _ in halves]
    for r in ranks:
        r.set_epoch(1)
        assert len(r) == len(whole)
    for t, (a, b) in enumerate(zip(*ranks)):
        assert sorted(torch.cat([a[1], b[1]]).tolist()) == sorted(whole[t].tolist())
    shares = [rank_val for _, rank_val in halves]
    assert sum(len(y) for s in shares for _, y in s) == len(d.val) == 359  # odd: no padded duplicate


def test_augmented_epoch_is_fixed_by_seed_and_epoch_and_resumes_exactly_mid_epoch(one_thread):
    cfg, d = digits(["augmentation=basic"])
    train, _ = build_device_loaders(d, cfg.data, cfg.augmentation, seed=0, device=torch.device("cpu"))
    train.set_epoch(3)
    full = list(train)
    train.set_epoch(3, skip=5 * 64)  # resuming after 5 steps
    rest = list(train)
    assert len(rest) == len(full) - 5
    for (x, y), (fx, fy) in zip(rest, full[5:]):
        assert torch.equal(x, fx) and torch.equal(y, fy)
    train.set_epoch(4)
    assert not torch.equal(next(iter(train))[0], full[0][0])
    # Augmented: the same labels in the same order as without augmentation, different pixels.
    plain, _ = build_device_loaders(d, cfg.data, validate(compose([])).augmentation, seed=0, device=torch.device("cpu"))
    plain.set_epoch(3)
    px, py = next(iter(plain))
    assert torch.equal(py, full[0][1]) and not torch.allclose(px, full[0][0])


def test_device_loader_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    cfg, d = digits(["augmentation=basic"])
    assert use_device_loader(cfg.data, cfg.augmentation, d, cuda)  # auto on CUDA
    assert not use_device_loader(cfg.data, cfg.augmentation, d, cpu)  # the CPU path stays a DataLoader
    cfg, d = digits(["augmentation=randaugment", "data.loader=device"])
    with pytest.raises(ConfigError, match="augmentation=randaugment has no batched GPU version"):
        use_device_loader(cfg.data, cfg.augmentation, d, cpu)
    cfg, d = digits(["augmentation=randaugment"])
    assert not use_device_loader(cfg.data, cfg.augmentation, d, cuda)  # auto falls back to the DataLoader
    with pytest.raises(ConfigError, match="data.loader must be"):
        validate(compose(["data.loader=gpu"]))


def test_one_epoch_on_the_device_path_matches_the_dataloader_path(tmp_path, one_thread):
    """Without augmentation both paths feed bit-identical batches in the same order (the same
    permutation, the same normalization arithmetic), so the loop computes the same epoch exactly."""
    from rundir.format import TIMING_FIELDS

    common = ["trainer.epochs=1", "trainer.device=cpu", "scheduler=constant"]
    _, ref, ref_val = train_here(tmp_path / "dataloader", common + ["data.loader=dataloader"])
    _, dev, dev_val = train_here(tmp_path / "device", common + ["data.loader=device"])

    def untimed(record):
        return {k: v for k, v in record.items() if k not in TIMING_FIELDS}

    assert ref[0]["num_batches"] == 1438 // 64 and math.isfinite(ref[0]["loss"])
    assert untimed(dev[0]) == untimed(ref[0])
    assert untimed(dev_val[0]) == untimed(ref_val[0])

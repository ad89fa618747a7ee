"""Dataset loading and the train/val split: real files written by the tests."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from conftest import compose
from trainer.config import FaultConf, validate
from trainer.data import build_datasets, build_loaders, is_deterministic, set_epoch
from trainer.errors import DataError
from trainer.faults import break_data


def typed(overrides):
    return validate(compose(overrides))


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / f"class{c}").mkdir()
        for i in range(10):
            pixels = rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"class{c}" / f"{i}.png")
    return tmp_path


def test_imagefolder_split_has_separate_pipelines_and_disjoint_indices(image_folder):
    cfg = typed(["data=imagefolder", f"data.root={image_folder}", "data.num_classes=3", "augmentation=basic"])
    d = build_datasets(cfg.data, cfg.augmentation, seed=0)
    assert d.train.folder is not d.val.folder  # one dataset instance per split: the seed's fix
    assert d.train.transform is not d.val.transform
    assert not is_deterministic(d.train.transform) and is_deterministic(d.val.transform)
    train_idx, val_idx = set(d.train.indices.tolist()), set(d.val.indices.tolist())
    assert not train_idx & val_idx and len(train_idx | val_idx) == 30 and len(val_idx) == 6
    x, y = d.val[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= int(y) < 3
    # validation is repeatable, training is augmented
    assert torch.equal(d.val[0][0], d.val[0][0])
    assert d.facts["transforms_shared"] is False and d.facts["train_val_overlap"] == 0


def test_shared_transforms_fault_uses_one_instance(image_folder):
    cfg = typed(["data=imagefolder", f"data.root={image_folder}", "data.num_classes=3", "augmentation=basic",
                 "fault=shared_transforms"])
    d = break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, seed=0), seed=0)
    assert d.train.folder is d.val.folder and d.facts["transforms_shared"]
    assert not d.facts["val_transform_deterministic"]


def test_split_is_seeded(image_folder):
    cfg = typed(["data=imagefolder", f"data.root={image_folder}", "data.num_classes=3"])
    a = build_datasets(cfg.data, cfg.augmentation, seed=0).val.indices
    b = build_datasets(cfg.data, cfg.augmentation, seed=0).val.indices
    c = build_datasets(cfg.data, cfg.augmentation, seed=1).val.indices
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_imagefolder_class_count_mismatch_is_named(image_folder):
    cfg = typed(["data=imagefolder", f"data.root={image_folder}", "data.num_classes=10"])
    with pytest.raises(DataError, match="3 class folders but data.num_classes=10"):
        build_datasets(cfg.data, cfg.augmentation, seed=0)


def write_cifar10(root, n_train=50, n_test=20):
    """A small file set in the CIFAR-10 python format (pickled dicts, as torchvision reads them)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = n_train // 5
    for i in range(1, 6):
        batch = {"data": rng.integers(0, 255, (per, 3072), dtype=np.uint8), "labels": (np.arange(per) % 10).tolist()}
        (base / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test = {"data": rng.integers(0, 255, (n_test, 3072), dtype=np.uint8), "labels": (np.arange(n_test) % 10).tolist()}
    (base / "test_batch").write_bytes(pickle.dumps(test))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return test


def test_cifar_loading_code_reads_the_cifar_format(tmp_path, monkeypatch):
    from torchvision.datasets import cifar

    test = write_cifar10(tmp_path)
    # The md5 sums of the real archive cannot match generated files: skip only that check.
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    cfg = typed(["data=cifar10", f"data.root={tmp_path}", "augmentation=basic"])
    d = build_datasets(cfg.data, cfg.augmentation, seed=0)
    assert (len(d.train), len(d.val)) == (50, 20)  # official test split as validation
    assert d.facts["class_counts"] == [5] * 10 and d.facts["train_val_overlap"] == 0
    # pixel (0, 0) of the first test image, red channel, is byte 0 of its row; normalized by the CIFAR-10 stats
    raw = d.val.source.images[0, 0, 0, 0].item()
    assert raw == test["data"][0][0]
    x, y = d.val[0]
    assert x.shape == (3, 32, 32) and int(y) == 0
    assert x[0, 0, 0].item() == pytest.approx((raw / 255 - 0.4914) / 0.2470, abs=1e-5)


def test_missing_cifar_without_download_names_the_fix(tmp_path):
    cfg = typed(["data=cifar100", f"data.root={tmp_path}"])
    with pytest.raises(DataError, match="data.download=true"):
        build_datasets(cfg.data, cfg.augmentation, seed=0)


@pytest.mark.parametrize("fault,check", [
    ("train_val_overlap", lambda f: f["train_val_overlap"] == f["val_size"]),
    ("shared_transforms", lambda f: f["transforms_shared"]),
])
def test_data_faults_show_in_the_facts(fault, check):
    cfg = typed(["augmentation=basic", f"fault={fault}"])
    assert check(break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, seed=0), seed=0).facts)


def test_shuffled_labels_keep_the_class_counts():
    cfg = typed([])
    clean = build_datasets(cfg.data, cfg.augmentation, seed=0)
    broken = break_data(FaultConf("shuffled_labels"), build_datasets(cfg.data, cfg.augmentation, seed=0), seed=0)
    assert broken.facts["class_counts"] == clean.facts["class_counts"]
    assert (broken.train.labels != clean.train.labels).float().mean() > 0.5


def _epoch(loader, epoch, skip=0):
    set_epoch(loader, epoch, skip)
    return list(loader)


@pytest.mark.parametrize("source", ["digits", "imagefolder"])
def test_augmented_batches_depend_on_seed_epoch_and_batch_number_only(source, image_folder):
    """Whatever data.num_workers, whatever epochs came before (persistent workers keep their RNG), and
    when resumed mid-epoch: batch k of an epoch holds the same images with the same augmentation."""
    extra = ["data=imagefolder", f"data.root={image_folder}", "data.num_classes=3"] if source == "imagefolder" else []
    cfg = validate(compose(["augmentation=basic", "data.batch_size=8", *extra]))
    d = build_datasets(cfg.data, cfg.augmentation, seed=0)
    cfg.data.num_workers = 0
    in_process, _ = build_loaders(d, cfg.data, seed=0, pin_memory=False)
    cfg.data.num_workers = 2
    workers, _ = build_loaders(d, cfg.data, seed=0, pin_memory=False)

    rng_before = torch.random.get_rng_state()
    reference = _epoch(in_process, 3)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the model's RNG is left alone
    _epoch(workers, 1), _epoch(workers, 2)  # the workers' RNGs have moved on since they started
    for (x, y), (rx, ry) in zip(_epoch(workers, 3), reference, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    for (x, _), (rx, _) in zip(_epoch(in_process, 3, skip=2 * 8), reference[2:], strict=True):
        assert torch.equal(x, rx)  # resumed after two steps
    assert not torch.equal(_epoch(in_process, 4)[0][0], reference[0][0])  # another epoch, other draws


def test_digits_read_from_the_shipped_file_equal_scikit_learns_loader():
    from sklearn.datasets import load_digits as sk_digits

    from trainer.data import digits_arrays, load_digits

    pixels, labels = digits_arrays()
    reference = sk_digits()
    assert np.array_equal(pixels, reference.images) and np.array_equal(labels, reference.target)
    source = load_digits(16)
    assert source.images.shape == (1797, 3, 16, 16) and source.images.dtype == torch.uint8
    assert sorted(set(source.labels.tolist())) == list(range(10))


def test_input_statistics_are_measured_without_augmentation():
    """Normalization is judged on the data (the validation pipeline), not on augmented images: on digits a random
    crop's black padding and TrivialAugment shift the training images' mean by about a quarter of a std, which
    read as "inputs not normalized" on every augmented run."""
    from analysis.rules import diagnose
    from rundir.read import run_from_records
    from trainer.data import batch_stats

    cfg = typed(["augmentation=trivialaugment", "data.image_size=16"])
    d = build_datasets(cfg.data, cfg.augmentation, seed=0)
    augmented, plain = batch_stats(d.train, 256, 0), batch_stats(d.val, 256, 0)
    assert augmented["input_mean"][0] < -0.15  # what the augmentation does to the statistics
    assert abs(plain["input_mean"][0]) < 0.15 and 0.8 < plain["input_std"][0] < 1.2

    def flagged(stats):
        run = run_from_records([], [], name="stats", info={**d.facts, **stats})
        return "input_not_normalized" in [f.id for f in diagnose(run)]

    assert not flagged(plain)
    unnormalized = break_data(FaultConf(name="unnormalized_input"), d, 0)
    assert flagged(batch_stats(unnormalized.val, 256, 0))  # a missing Normalize is still found

"""Duplicate images across the split by content (trainer/duplicates.py): exact copies and perceptual-hash near
duplicates, with a threshold calibrated on each data set; recorded in run_info.json as evidence for
train_val_overlap."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from analysis.rules import diagnose
from conftest import compose, run_module
from rundir import format as fmt
from rundir.read import run_from_records
from trainer import duplicates, faults
from trainer.config import validate
from trainer.data import build_datasets


def built(overrides: list[str]):
    cfg = validate(compose(overrides))
    return faults.break_data(cfg.fault, build_datasets(cfg.data, cfg.augmentation, seed=0), seed=0)


def overlap_finding(data, result, fault: str = "none"):
    run = run_from_records([], [], info={**data.facts, fmt.DUPLICATE_IMAGES: result}, config={"fault": {"name": fault}})
    return next((f for f in diagnose(run, ids=["train_val_overlap"])), None)


@pytest.mark.parametrize("size", [8, 32])
def test_digits_themselves_hold_no_copies_across_the_split(size):
    """scikit-learn's digits have no two identical images, and distinct digits come within 2 bits of each
    other's pHash: the calibration must keep them apart at any image size."""
    data = built([f"data.image_size={size}"])
    result = duplicates.check(data)
    assert (result["exact_pairs"], result["near_pairs"], result["val_images_with_duplicate"]) == (0, 0, 0)
    assert result["calibration"]["expected_unrelated_pairs"] < duplicates.FALSE_PAIRS
    assert overlap_finding(data, result) is None


def test_copies_under_new_indices_are_found_by_content_where_the_index_check_sees_none():
    data = built(["fault=duplicated_images"])  # 10 % of val replaced by copies of training images
    result = duplicates.check(data)
    assert data.facts["train_val_overlap"] == 0
    assert result["val_images_with_duplicate"] == result["exact_pairs"] == round(0.1 * len(data.val))
    f = overlap_finding(data, result, "duplicated_images")
    assert f.severity == "critical" and f.evidence["duplicates_by_content"] == result["exact_pairs"]
    assert ["fault=none"] in [r.overrides for r in f.recommendations]


def test_near_duplicates_within_the_calibrated_threshold_and_unrelated_images_outside_it():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(3000, 3, 8, 8), dtype=np.uint8)  # smooth random pictures
    images = (np.repeat(np.repeat(base, 4, axis=2), 4, axis=3) // 2 + rng.integers(0, 16, (3000, 3, 32, 32))
              ).astype(np.uint8)
    train, val = np.arange(2500), np.arange(2500, 3000)
    images[val[:20]] = np.clip(images[train[:20]].astype(int) + 6, 0, 255)  # brighter copies
    images[val[20:40]] = images[train[20:40]][:, :, :, ::-1][:, :, :, ::-1]  # exact copies
    result = duplicates.find(duplicates.hash_tensor_images(images, train), duplicates.hash_tensor_images(images, val))
    assert result["threshold_bits"] >= 2  # unlike digits, such pictures spread out: near copies can be told
    assert result["exact_pairs"] == 20 and result["near_pairs"] == 20 and result["val_images_with_duplicate"] == 40


def test_the_pigeonhole_join_finds_every_pair_within_the_threshold():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    b = a[:100] ^ (np.uint64(1) << rng.integers(0, 63, size=100).astype(np.uint64))  # 1 bit away
    b = np.concatenate([b, rng.integers(0, 2**63, size=300, dtype=np.uint64)])
    for t in (1, 3, 8):
        i, j, d = duplicates.near_pairs(a, b, t)
        brute = np.argwhere(np.bitwise_count(a[:, None] ^ b[None, :]) <= t)
        assert sorted(zip(i.tolist(), j.tolist())) == sorted(map(tuple, brute.tolist()))
        assert (d <= t).all()


def _picture(rng) -> "Image.Image":
    from PIL import Image

    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((24, 24), Image.Resampling.BILINEAR)


def copied_folder(tmp_path):
    """Two classes of 30 pictures, each saved three times under other names: the PNG, a byte copy of it, and a
    JPEG re-encoding."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for k in range(30):
            pic = _picture(rng)
            pic.save(root / c / f"{k:02d}.png")
            shutil.copy(root / c / f"{k:02d}.png", root / c / f"copy_of_{k:02d}.png")
            buf = io.BytesIO()
            pic.save(buf, "JPEG", quality=92)
            (root / c / f"{k:02d}_reencoded.jpg").write_bytes(buf.getvalue())
    return ["data=imagefolder", f"data.root={root}", "data.num_classes=2", "data.image_size=24"]


def test_an_image_folder_with_every_picture_saved_several_times_is_caught(tmp_path):
    """The seeded split puts copies on both sides; every val picture with a copy in train must be found, and
    nothing else."""
    data = built(copied_folder(tmp_path))
    result = duplicates.check(data)

    def group(i) -> str:  # the picture a file is a copy of
        path = data.train.folder.samples[int(i)][0]
        return path.rsplit("/", 2)[-2] + path.rsplit("/", 1)[-1].replace("copy_of_", "")[:2]

    train_groups = {group(i) for i in data.train.indices}
    expected = sum(group(i) in train_groups for i in data.val.indices)
    assert expected > 0.8 * len(data.val)
    assert result["val_images_with_duplicate"] == expected and result["exact_pairs"] > 0 and result["near_pairs"] > 0
    assert data.facts["train_val_overlap"] == 0  # the index check alone sees nothing
    assert all("/" in e["train"] and not e["train"].startswith("/") for e in result["examples"])  # relative paths
    assert overlap_finding(data, result).severity == "critical"


@pytest.mark.slow  # a subprocess: ~8 s on 2 cores; the check itself is covered above
def test_check_data_lists_the_copies_of_an_image_folder(tmp_path):
    overrides = copied_folder(tmp_path)
    proc = run_module("trainer.check_data", overrides, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # a critical finding
    assert "val images with a copy in train" in proc.stdout and "exact)" in proc.stdout
    assert "[CRITICAL] train_val_overlap" in proc.stdout


def test_a_run_records_its_duplicate_check_in_run_info(digits_run):
    info = json.loads((digits_run / fmt.DIAGNOSTICS / fmt.RUN_INFO).read_text())
    dup = info[fmt.DUPLICATE_IMAGES]
    assert dup["val_images_with_duplicate"] == 0 and dup["calibration"]["pairs_sampled"] == duplicates.CALIBRATION_PAIRS

"""Image folders a user really has (trainer/image_folder.py): hostile files refused in one line or skipped,
links followed once, FIFOs never opened, and a real run on a folder with both."""

from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, compose
from reliability_helpers import no_hang

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_images as fi  # noqa: E402 - the fuzzer's builders of real and hostile files

from trainer.errors import DataError  # noqa: E402
from trainer.image_folder import scan  # noqa: E402
from rundir.format import SKIPPED_IMAGES  # noqa: E402


def learnable_folder(root, per_class: int = 20, size: int = 16):
    """Two classes a (dark) and b (bright) of noisy PNG and JPEG images: a small CNN separates them."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("a", 60), ("b", 190)):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / (f"{i}.png" if i % 2 else f"{i}.jpg"), quality=90)
    return root


def hostile_files(folder) -> dict[str, str]:
    """Write one file of each kind the issue names into folder; name -> the reason the scan must give."""
    good_png = fi.image_bytes("PNG", "RGB", (20, 20), 1)
    good_jpg = fi.image_bytes("JPEG", "RGB", (40, 40), 2)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (folder / "truncated.png").write_bytes(good_png[: len(good_png) * 2 // 3])
    (folder / "truncated.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "bomb.png").write_bytes(fi.with_png_size(good_png, 30_000, 30_000))  # 900 M pixels claimed
    (folder / "ztxt_bomb.png").write_bytes(fi.with_chunk_after_header(good_png, fi.ztxt_bomb_chunk(8)))
    os.mkfifo(folder / "fifo.png")
    (folder / "dangling.png").symlink_to("nowhere.png")
    (folder / "loop.jpg").symlink_to("loop.jpg")
    return {"corrupt.png": "not an image Pillow can read", "truncated.png": "truncated",
            "truncated.jpg": "truncated", "empty.jpg": "an empty file",
            "bomb.png": "more than Pillow's Image.MAX_IMAGE_PIXELS=", "ztxt_bomb.png": "MAX_TEXT_CHUNK",
            "fifo.png": "a FIFO, not a regular file", "dangling.png": "a link to nothing",
            "loop.jpg": "Too many levels of symbolic links"}


def test_each_hostile_file_is_named_with_its_reason_and_refused_in_one_line(tmp_path):
    root = learnable_folder(tmp_path / "f", per_class=3)
    expected = hostile_files(root / "a")
    with no_hang(30), pytest.raises(DataError) as refused:
        scan(str(root))
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"data.root={root}: 9 of 15 images cannot be used: ")
    first = sorted(expected)[:5]  # the first five, sorted by path, then the count of the rest
    assert all(f"a/{name} ({expected[name]}" in line for name in first), line
    assert line.endswith("; and 4 more; fix or remove them, or set data.skip_bad_images=true to train without them")

    with no_hang(30):
        found = scan(str(root), skip_bad=True)
    reasons = {os.path.basename(b.path): b.reason for b in found.bad}
    assert set(reasons) == set(expected)
    for name, reason in expected.items():
        assert reason in reasons[name], (name, reasons[name])
    assert sorted(os.path.basename(p) for p, _ in found.samples) == ["0.jpg", "0.jpg", "1.png", "1.png",
                                                                      "2.jpg", "2.jpg"]


def test_links_are_followed_once_and_never_loop(tmp_path):
    root = learnable_folder(tmp_path / "f", per_class=4)
    (root / "b" / "self").symlink_to(".")  # a class folder that links to itself, twice
    (root / "b" / "parent").symlink_to("..")
    (root / "b" / "deeper").mkdir()
    (root / "b" / "deeper" / "back").symlink_to("../..")
    (root / "a" / "again.png").symlink_to("1.png")  # the same file under a second name
    with no_hang(30):
        found = scan(str(root))
    paths = [p for p, _ in found.samples]
    assert len(paths) == 8 and len({os.stat(p).st_ino for p in paths}) == 8  # each image once, not 40 times
    assert [label for _, label in found.samples] == [0] * 4 + [1] * 4
    assert found.repeated == 4 and not found.bad


def test_order_is_imagefolders_on_a_plain_folder(tmp_path):
    """Runs made before the scan existed keep their split: the same samples in the same order."""
    from torchvision.datasets import ImageFolder

    root = learnable_folder(tmp_path / "f", per_class=6)
    (root / "a" / "sub").mkdir()
    fi_bytes = fi.image_bytes("PNG", "L", (8, 8))
    for name in ("z.png", "0.PNG", "m.webp.png"):
        (root / "a" / "sub" / name).write_bytes(fi_bytes)
    (root / "a" / "notes.txt").write_text("not an image")
    assert scan(str(root)).samples == [(p, y) for p, y in ImageFolder(str(root)).samples]


def test_a_class_left_without_images_is_named(tmp_path):
    root = learnable_folder(tmp_path / "f", per_class=2)
    (root / "c").mkdir()
    (root / "c" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"no usable image in the class folder\(s\) c \(image files end in"):
        scan(str(root), skip_bad=True)


def test_an_image_changed_after_the_scan_is_a_data_error_naming_it(tmp_path):
    from trainer.image_folder import ScannedFolder

    root = learnable_folder(tmp_path / "f", per_class=2)
    folder = ScannedFolder(scan(str(root)))
    path = folder.samples[0][0]
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{path}: .*[Tt]runcated.*changed after the start-up scan"):
        folder[0]


def test_a_run_on_a_folder_with_links_and_bad_images_trains_on_each_good_image_once(tmp_path, one_thread, caplog):
    """data.skip_bad_images=true: the bad files are left out with a count, the self-links add nothing, no
    image is on both sides of the split, and the two classes are learnt."""
    from trainer.config import validate
    from trainer.loop import train

    root = learnable_folder(tmp_path / "f", per_class=20)
    (root / "b" / "self").symlink_to(".")
    (root / "b" / "self2").symlink_to(".")
    hostile_files(root / "a")
    run = tmp_path / "run"
    cfg = validate(compose(["data=imagefolder", f"data.root={root}", "data.num_classes=2", "data.image_size=16",
                            "data.batch_size=8", "data.skip_bad_images=true", "data.val_fraction=0.25",
                            "model.width=4", "trainer.epochs=3", "trainer.device=cpu", "optimizer.lr=0.05",
                            "scheduler=constant"], diag_dir=run / "diagnostics"))
    with no_hang(240), caplog.at_level(logging.WARNING, logger="trainer"):
        best = train(cfg, run)
    info = json.loads((run / "diagnostics" / "run_info.json").read_text())
    assert info["train_size"] + info["val_size"] == 40 and info["val_size"] == 10
    assert info["train_val_overlap"] == 0 and sum(info["class_counts"]) + sum(info["val_class_counts"]) == 40
    assert any("skipped 9 of 49 images that cannot be used" in r.getMessage() for r in caplog.records)
    assert best >= 0.9  # dark against bright: learnt in three epochs
    # run_info.json keeps the count and the first few, sorted by path, each with its reason.
    (tmp_path / "reasons").mkdir()
    expected = hostile_files(tmp_path / "reasons")
    skipped = info[SKIPPED_IMAGES]
    first = sorted(expected)[:5]
    assert skipped["count"] == 9 and skipped["of"] == 49
    assert [e["path"] for e in skipped["examples"]] == [f"a/{name}" for name in first]
    assert all(expected[name] in e["reason"] for name, e in zip(first, skipped["examples"]))
    # ... and the run report's Data section says so.
    from analysis import run_report
    from rundir.read import load_run

    [data] = [s for s in run_report.build(load_run(run))["sections"] if s["title"] == "Data"]
    [line] = [x for x in data["lines"] if x.startswith("skipped ")]
    assert line.startswith("skipped 9 of 49 image files that cannot be used (data.skip_bad_images=true): a/bomb.png")
    assert line.endswith("; and 4 more") and data["data"]["skipped_images"] == skipped

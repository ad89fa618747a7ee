"""Per-sample records (trainer/per_sample.py) and the label-noise estimate (analysis/label_noise.py), trained
for real on digits with a known share of labels flipped (fault=noisy_labels)."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import made_once, read_jsonl, run_module, train_here, trained
from rundir.format import PER_SAMPLE_DIR, PER_SAMPLE_EPOCH, PER_SAMPLE_LABELS, TOP_LOSSES

# 10 epochs: the clean majority learned, the noise not yet. 16 px (the fault matrix's size): a third of the 32 px
# epoch's time, and the same estimate (20 %: interval 0.17-0.22, every one of the 32 suspects a flipped label).
CLEAN = ["trainer.epochs=10", "data.image_size=16"]
NOISY = [*CLEAN, "fault=noisy_labels"]


def flipped(fraction: float, seed: int = 0, n: int = 1438) -> np.ndarray:
    """Which of digits' n training labels fault=noisy_labels flips: every chosen one moves to another class,
    so which ones depends on (n, fraction, seed) alone."""
    from types import SimpleNamespace

    import torch

    from trainer.faults import flip_labels

    d = SimpleNamespace(train=SimpleNamespace(labels=torch.arange(n) % 10), conf=SimpleNamespace(num_classes=10))
    before = d.train.labels.clone()
    flip_labels(d, seed, fraction)
    return (d.train.labels != before).numpy()


@pytest.fixture(scope="session")
def noisy_run(tmp_path_factory) -> Path:
    """One real 10-epoch run on digits with 20 % of the training labels flipped."""
    return made_once(tmp_path_factory, "noisy_run_0.2", lambda run_dir: trained(
        [f"hydra.run.dir={run_dir}", *NOISY, "fault.fraction=0.2"]))


def test_noisy_labels_flips_that_share_each_to_another_class_seeded(noisy_run, digits_run):
    mask = flipped(0.2)
    assert mask.sum() == round(0.2 * len(mask))  # every chosen label moved to a different class
    assert (flipped(0.2) == mask).all() and not (flipped(0.2, seed=1) == mask).all()  # seeded by trainer.seed
    noisy, clean = (json.loads((r / "diagnostics" / "run_info.json").read_text()) for r in (noisy_run, digits_run))
    assert noisy["val_class_counts"] == clean["val_class_counts"]  # validation keeps its true labels
    assert noisy["class_counts"] != clean["class_counts"]


def test_bad_fraction_is_refused_in_one_line(tmp_path):
    proc = run_module("trainer", [f"hydra.run.dir={tmp_path}", "fault=noisy_labels", "fault.fraction=1.5"])
    assert proc.returncode == 2 and "fault.fraction must lie in" in proc.stderr and "got 1.5" in proc.stderr


def load_epoch(diag: Path, epoch: int) -> dict:
    with np.load(diag / PER_SAMPLE_DIR / PER_SAMPLE_EPOCH.format(epoch=epoch), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def check_against_records(diag: Path, records: list[dict]) -> None:
    """Each epoch's per-sample arrays say what its record says: the same images, mean loss and accuracy."""
    with np.load(diag / PER_SAMPLE_DIR / PER_SAMPLE_LABELS, allow_pickle=False) as f:
        labels = f["labels"]
    for r in records:
        a = load_epoch(diag, r["epoch"])
        assert (a["loss"].dtype, a["margin"].dtype, a["predicted"].dtype) == (np.float16, np.float16, np.int16)
        seen = a["predicted"] >= 0
        assert seen.sum() == r["num_samples"] and np.isnan(a["loss"][~seen].astype(float)).all()
        # By dataset index: the right image's label, so accuracy matches the record's count exactly.
        assert (a["predicted"][seen] == labels[seen]).sum() == round(r["accuracy"] * r["num_samples"])
        assert np.isclose(a["loss"][seen].astype(np.float64).mean(), r["loss"], rtol=2e-3)
        right = a["predicted"][seen] == labels[seen]
        assert (a["margin"][seen][right] >= 0).all() and (a["margin"][seen][~right] <= 0).all()


def test_per_sample_records_match_the_epoch_records(digits_run):
    diag = digits_run / "diagnostics"
    check_against_records(diag, read_jsonl(diag / "train_diagnostics.jsonl"))
    # A few bytes per image an epoch (1438 images: loss and margin float16, prediction int16).
    assert (diag / PER_SAMPLE_DIR / PER_SAMPLE_EPOCH.format(epoch=1)).stat().st_size < 6 * 1438 + 1024


@pytest.mark.parametrize("loader,buffered_steps", [("device", None), ("dataloader", 2)])
def test_both_loaders_record_by_dataset_index_however_often_the_buffer_is_reduced(loader, buffered_steps, tmp_path,
                                                                                  one_thread, monkeypatch):
    from trainer.per_sample import SampleRecorder

    if buffered_steps:  # reduced every 2 steps (and the odd step at the end), as large data is
        monkeypatch.setattr(SampleRecorder, "BUFFER_ELEMENTS", buffered_steps * 256 * 10)
    _, train, val = train_here(tmp_path, [f"data.loader={loader}", "trainer.epochs=1", "data.batch_size=256"])
    assert train[0]["num_batches"] == 5
    check_against_records(tmp_path / "diagnostics", train)
    # The validation pass too, by index: each image's label where the split put it, top-1 as the record counts.
    from rundir.format import VAL_PREDICTIONS

    with np.load(tmp_path / "diagnostics" / PER_SAMPLE_DIR / VAL_PREDICTIONS, allow_pickle=False) as f:
        labels, top1 = f["label"], f["classes"][:, 0]
    info = json.loads((tmp_path / "diagnostics" / "run_info.json").read_text())
    assert np.bincount(labels, minlength=10).tolist() == info["val_class_counts"]
    assert (top1 == labels).sum() == round(val[0]["accuracy"] * val[0]["num_samples"])


def test_resume_keeps_the_epochs_it_has_and_a_fresh_start_drops_the_rest(tmp_path, one_thread):
    directory = tmp_path / "diagnostics" / PER_SAMPLE_DIR
    small = ["scheduler=constant", "data.batch_size=256"]  # few steps: this test is about files
    train_here(tmp_path, ["trainer.epochs=1", *small])
    first = (directory / PER_SAMPLE_EPOCH.format(epoch=1)).read_bytes()
    _, train, _ = train_here(tmp_path, ["trainer.epochs=2", *small])  # resumes after epoch 1
    assert (directory / PER_SAMPLE_EPOCH.format(epoch=1)).read_bytes() == first
    check_against_records(tmp_path / "diagnostics", train)
    (directory / "epoch_0002.npz.keep").write_bytes(b"not ours")
    train_here(tmp_path, ["trainer.epochs=1", *small, "trainer.resume=false"])  # starts over: epoch 2 goes
    assert sorted(p.name for p in directory.iterdir()) == ["epoch_0001.npz", "epoch_0002.npz.keep", "labels.npz",
                                                           "top_losses.npz", "val_predictions.npz"]
    with np.load(directory / "val_predictions.npz", allow_pickle=False) as f:
        assert f["epoch"].tolist() == [1]  # the new run's pass, not the earlier run's epoch 2


def synthetic_run(tmp_path: Path, best_val_accuracy: float = 0.9):
    """1000 images of 10 classes over 10 epochs: 150 wrong labels contradicted (the model predicts their true
    class) until they are memorized from epoch 7, when the val loss starts rising; 20 hard images the model
    gets right every other epoch; the rest learned from epoch 2."""
    from rundir.read import run_from_records

    rng = np.random.default_rng(0)
    n, c = 1000, 10
    labels = rng.integers(0, c, n).astype(np.int32)
    wrong, hard = np.arange(150), np.arange(150, 170)
    true = labels.copy()
    true[wrong] = (labels[wrong] + 1 + rng.integers(0, c - 1, len(wrong))) % c
    directory = tmp_path / "diagnostics" / PER_SAMPLE_DIR
    directory.mkdir(parents=True)
    with open(directory / PER_SAMPLE_LABELS, "wb") as f:
        np.savez(f, labels=labels)
    for epoch in range(1, 11):
        predicted = labels.copy() if epoch > 1 else rng.integers(0, c, n)
        if epoch <= 6:
            predicted[wrong] = true[wrong]
        predicted[hard] = np.where(epoch % 3, (labels[hard] + 1) % c, labels[hard])
        margin = np.where(predicted == labels, 2.0, -2.0).astype(np.float16)
        with open(directory / PER_SAMPLE_EPOCH.format(epoch=epoch), "wb") as f:
            np.savez(f, loss=np.where(margin > 0, 0.1, 3.0).astype(np.float16), margin=margin,
                     predicted=predicted.astype(np.int16))
    train = [{"epoch": e, "loss": 1.0, "accuracy": 0.8} for e in range(1, 11)]
    val = [{"epoch": e, "loss": 1.0, "nll": 0.5 + abs(e - 6) / 10, "accuracy": best_val_accuracy} for e in range(1, 11)]
    run = run_from_records(train, val, info={"train_size": n, "val_size": 400, "num_classes": c},
                           config={"data": {"num_classes": c}})
    run.diagnostics_dir = tmp_path / "diagnostics"
    return run


def test_the_estimate_judges_labels_before_they_are_memorized(tmp_path):
    from analysis.label_noise import estimate

    e = estimate(synthetic_run(tmp_path))
    assert e["memorization_epoch"] == 6 and e["window_epochs"] == [4, 6]  # the later half of epochs 1-6
    assert e["share_contradicted_always"] == 0.15 and e["share_contradicted_mostly"] == 0.17  # + the hard ones
    lo, hi = e["interval"]
    assert lo < 0.15 < hi < 0.2
    assert all(s["index"] < 170 for s in e["suspects"])  # the wrong labels and the hard images alone
    assert estimate(synthetic_run(tmp_path / "poor", best_val_accuracy=0.5)) is None  # predictions too unreliable


def test_estimate_covers_the_true_share_and_names_the_flipped_images(noisy_run):
    from analysis.label_noise import estimate
    from rundir.read import load_run

    e = estimate(load_run(noisy_run))
    lo, hi = e["interval"]
    assert lo <= 0.2 <= hi and abs(e["share"] - 0.2) <= (hi - lo) / 2, e
    assert hi - lo < 0.15  # an interval that says something
    mask = flipped(0.2)
    assert np.mean([mask[s["index"]] for s in e["suspects"]]) >= 0.9  # the most contradicted are flipped ones
    assert e["excess"] > 0 and e["aum_median_suspected"] < 0 < e["aum_median_others"]


def test_noisy_run_is_diagnosed_as_label_noise_with_its_fixes(noisy_run):
    from analysis import run_report
    from rundir.read import load_run

    report = run_report.build(load_run(noisy_run))
    primary = report["cause"]["primary"]
    assert primary["id"] == "label_noise", report["cause"]
    overrides = [o for r in primary["recommendations"] for o in r["overrides"]]
    assert "fault=none" in overrides and "regularization.label_smoothing=0.2" in overrides  # about the share
    assert not any(o.startswith("optimizer.lr=") for o in overrides)
    [finding] = [f for f in report["findings"] if f["id"] == "label_noise_suspected"]
    assert finding["evidence"]["interval"][0] <= 0.2 <= finding["evidence"]["interval"][1]


def test_reports_show_the_top_loss_images_with_labels_escaped(noisy_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(noisy_run, run)
    top = run / "diagnostics" / PER_SAMPLE_DIR / TOP_LOSSES
    with np.load(top, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    assert len(arrays["index"]) == 32 and arrays["image"].shape[1:] == (3, 16, 16)
    assert (np.diff(arrays["loss"]) <= 0).all()  # highest loss first
    arrays["class_names"] = np.array([f"<b>c{i}</b>" for i in range(10)])
    with open(top, "wb") as f:
        np.savez(f, **arrays)
    from analysis import run_report
    from analysis.render import html, markdown, text
    from rundir.read import load_run

    loaded = load_run(run)
    report = run_report.build(loaded)
    page = html.render_run(report, run_report.curves(loaded))
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 32  # PNG signature, base64
    assert "&lt;b&gt;c" in page and "<b>c" not in page
    md = markdown.render_run(report)
    assert "| train index | given label | predicted | loss | area under the margin |" in md
    assert "\\<b\\>c" in md
    row = text.render_run(report).split("highest-loss training images")[1].splitlines()[2].split()
    label = int(arrays["label"][0])
    assert row[:3] == [str(int(arrays["index"][0])), str(label), f"(<b>c{label}</b>)"]  # plain text: as named


def test_check_data_shows_a_runs_top_losses(noisy_run, tmp_path):
    proc = run_module("trainer.check_data", [f"hydra.run.dir={tmp_path}", "fault=noisy_labels",
                                             f"losses_from={noisy_run}"])
    assert proc.returncode == 0, proc.stderr
    assert "highest-loss training images" in proc.stdout and (tmp_path / "top_losses.png").stat().st_size > 0
    with np.load(noisy_run / "diagnostics" / PER_SAMPLE_DIR / TOP_LOSSES, allow_pickle=False) as f:
        first = f"{int(f['index'][0]):>11}  {int(f['label'][0]):<14}{int(f['predicted'][0]):<14}"
    assert first in proc.stdout
    from trainer.check_data import show_top_losses
    from trainer.errors import DataError

    with pytest.raises(DataError, match="losses_from=.*no such file"):
        show_top_losses(tmp_path / "missing", tmp_path)


def test_reader_refuses_pickles_and_damaged_files(tmp_path):
    from rundir.per_sample import read_arrays, read_per_sample

    directory = tmp_path / PER_SAMPLE_DIR
    directory.mkdir()
    with open(directory / PER_SAMPLE_LABELS, "wb") as f:
        np.savez(f, labels=np.array([{"x": 1}], dtype=object))  # an object array: only a pickle can hold it
    (directory / PER_SAMPLE_EPOCH.format(epoch=1)).write_bytes(b"PK\x03\x04 not a zip")
    with open(directory / PER_SAMPLE_EPOCH.format(epoch=2), "wb") as f:
        np.savez(f, loss=np.zeros(3, np.float16), margin=np.zeros(4, np.float16), predicted=np.zeros(3, np.int16))
    warnings: list[str] = []
    assert read_arrays(directory / PER_SAMPLE_LABELS, warnings) is None and "not a readable" in warnings[0]
    assert read_per_sample(tmp_path, [1, 2], 3, warnings) is None
    assert any("epoch_0001" in w for w in warnings) and any("'margin'" in w for w in warnings)


@pytest.mark.slow  # four 10-epoch runs; the default suite trains the 20 % one (noisy_run)
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.4])
def test_estimate_lands_within_its_interval_at_several_rates(fraction, tmp_path):
    from analysis import run_report
    from analysis.label_noise import confident_learning, estimate, signals
    from rundir.read import load_run

    trained([f"hydra.run.dir={tmp_path}", *NOISY, f"fault.fraction={fraction}"] if fraction else
            [f"hydra.run.dir={tmp_path}", *CLEAN])
    run = load_run(tmp_path)
    e = estimate(run)
    lo, hi = e["interval"]
    assert lo <= fraction <= hi or (fraction == 0 and e["share"] <= 0.03), e
    assert abs(e["share"] - fraction) <= max((hi - lo) / 2, 0.03)
    ids = [f["id"] for f in run_report.build(run)["findings"]]
    assert ("label_noise_suspected" in ids) == (fraction > 0)
    # The second signal: the validation labels stay clean at every rate (the fault flips training labels only),
    # so confident learning stays at its floor and disagrees with the training estimate exactly when it is up.
    cl = confident_learning(run)
    assert cl["share"] <= cl["val_error"], cl
    assert signals(run)["comparison"] == ("train_higher" if fraction > 0 else "same")
    if fraction:
        assert run_report.build(load_run(tmp_path))["cause"]["primary"]["id"] == "label_noise"
    json.dumps(e)  # plain data


# ───────────────────── confident learning on the validation predictions (the second signal) ─────────────────────


def test_confident_joint_counts_each_image_under_its_most_probable_class_above_threshold():
    from analysis.label_noise import confident_joint

    # Thresholds: class 0 mean(0.9, 0.7) = 0.8, class 1 mean(0.8, 0.2) = 0.5.
    labels = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.8, 0.2]])
    classes = np.argsort(-p, axis=1, kind="stable")
    probs = np.take_along_axis(p, classes, axis=1)
    joint, looks_like, t = confident_joint(labels, p[np.arange(4), labels], classes, probs, 2)
    assert np.allclose(t, [0.8, 0.5])
    assert looks_like.tolist() == [0, -1, 1, 0]  # image 1: nothing at or above its threshold, not counted
    assert joint.tolist() == [[1, 0], [1, 1]]  # image 3, labelled 1, confidently looks like 0
    # Only the top K kept: a label outside them but above its threshold still counts on the diagonal.
    joint, looks_like, _ = confident_joint(np.array([2, 2]), np.array([0.1, 0.5]), np.array([[0, 1], [2, 0]]),
                                           np.array([[0.5, 0.4], [0.5, 0.3]]), 3)
    assert looks_like.tolist() == [-1, 2] and joint[2, 2] == 1  # threshold of 2: 0.3; classes 0, 1: none


def test_confident_learning_estimates_a_known_share_of_wrong_validation_labels(tmp_path):
    """Synthetic predictions of a good model (the true class at about 0.8) on 2,000 images of which 20 % carry
    another label: the estimate's interval covers 0.2; with the labels right it is near 0."""
    from analysis.label_noise import confident_learning
    from rundir.format import PER_SAMPLE_DIR, VAL_PREDICTIONS
    from rundir.read import run_from_records

    rng = np.random.default_rng(0)
    n, c = 2000, 20  # more classes than the 16 kept: the top-K path
    true = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), true] += 5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = np.argsort(-p, axis=1)[:, :16]

    def share(wrong: float) -> dict:
        labels = true.copy()
        flip = rng.choice(n, int(wrong * n), replace=False)
        labels[flip] = (labels[flip] + rng.integers(1, c, len(flip))) % c
        directory = tmp_path / str(wrong) / "diagnostics"
        (directory / PER_SAMPLE_DIR).mkdir(parents=True)
        with open(directory / PER_SAMPLE_DIR / VAL_PREDICTIONS, "wb") as f:
            np.savez(f, epoch=np.array([2], np.int32), label=labels.astype(np.int32),
                     label_probability=p[np.arange(n), labels].astype(np.float16), classes=classes.astype(np.int16),
                     probabilities=np.take_along_axis(p, classes, axis=1).astype(np.float16))
        val = [{"epoch": e, "loss": 1.0, "accuracy": (true == labels).mean()} for e in (1, 2)]
        run = run_from_records([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}], val,
                               info={"val_size": n, "num_classes": c}, config={"data": {"num_classes": c}})
        run.diagnostics_dir = directory
        return confident_learning(run)

    noisy, clean = share(0.2), share(0.0)
    lo, hi = noisy["interval"]
    assert lo <= 0.2 <= hi and hi - lo < 0.1, noisy
    assert noisy["flips"] and noisy["suspects"][0]["label_probability"] < 0.1
    assert clean["interval"][1] < 0.02 and clean["share"] <= clean["val_error"] + 0.01
    assert noisy["exact"] is True  # every threshold far above 1 / 17


def test_the_best_validation_pass_is_recorded_by_index_and_judges_the_validation_labels(noisy_run):
    """Trained with 20 % of the TRAINING labels flipped (validation keeps its true labels): the recorded pass is
    the best epoch's, its top-1 is that epoch's accuracy, and confident learning finds the validation labels
    cleaner than the training ones, so the finding says the noise is in the training set."""
    from analysis import run_report
    from analysis.label_noise import confident_learning, signals
    from rundir.format import VAL_PREDICTIONS
    from rundir.read import load_run

    diag = noisy_run / "diagnostics"
    with np.load(diag / PER_SAMPLE_DIR / VAL_PREDICTIONS, allow_pickle=False) as f:
        a = {k: f[k] for k in f.files}
    status = json.loads((diag / "status.json").read_text())
    info = json.loads((diag / "run_info.json").read_text())
    assert int(a["epoch"][0]) == status["best_epoch"]
    assert (a["label_probability"].dtype, a["probabilities"].dtype, a["classes"].shape) == (
        np.float16, np.float16, (info["val_size"], 10))
    assert np.bincount(a["label"], minlength=10).tolist() == info["val_class_counts"]  # every image, its label
    assert (a["classes"][:, 0] == a["label"]).sum() == round(status["best_val_accuracy"] * info["val_size"])
    assert np.allclose(a["probabilities"].astype(float).sum(axis=1), 1, atol=0.02)  # all 10 classes kept

    run = load_run(noisy_run)
    cl, both = confident_learning(run), signals(run)
    assert cl["share"] <= cl["val_error"] and both["comparison"] == "train_higher", both
    [finding] = [f for f in run_report.build(run)["findings"] if f["id"] == "label_noise_suspected"]
    assert finding["evidence"]["signals_compared"] == "train_higher"
    assert finding["evidence"]["val_confident_learning"]["interval"] == cl["interval"]
    assert "the wrong labels are in the training set" in finding["message"]
    [section] = [s for s in run_report.build(run)["sections"] if s["title"] == "Label Noise"]
    assert section["data"]["signals"]["comparison"] == "train_higher"
    assert any(line.startswith("validation labels that look wrong by confident learning") for line in section["lines"])


def test_on_clean_validation_labels_confident_learning_stays_at_the_models_own_mistakes(digits_run):
    """A 2-epoch clean run (labels right, the model still learning): what confident learning counts are the
    model's confident mistakes, never more than the images it gets wrong."""
    from analysis.label_noise import confident_learning
    from rundir.read import load_run

    run = load_run(digits_run)
    cl = confident_learning(run)
    best = int(np.nanargmax(run.val["accuracy"]))
    assert cl["epoch"] == int(run.val.epochs[best]) and cl["val_error"] == round(1 - run.val["accuracy"][best], 4)
    assert cl["share"] <= cl["val_error"], cl


def test_validation_predictions_refused_when_damaged_and_dropped_when_stale(tmp_path):
    from rundir.format import VAL_PREDICTIONS
    from rundir.per_sample import read_val_predictions
    from trainer.val_predictions import discard_after, write

    ok = {"label": np.zeros(3, np.int32), "label_probability": np.ones(3, np.float16),
          "classes": np.zeros((3, 2), np.int16), "probabilities": np.ones((3, 2), np.float16)}
    write(tmp_path, 4, ok)
    assert int(read_val_predictions(tmp_path, 3, [])["epoch"][0]) == 4
    warnings: list[str] = []
    assert read_val_predictions(tmp_path, 5, warnings) is None and "'label'" in warnings[0]  # not the val set's size
    discard_after(tmp_path, 4)
    assert (tmp_path / PER_SAMPLE_DIR / VAL_PREDICTIONS).exists()
    discard_after(tmp_path, 3)  # a pass of an epoch the checkpoint does not cover: trained again, so dropped
    assert not (tmp_path / PER_SAMPLE_DIR / VAL_PREDICTIONS).exists()
    write(tmp_path, 1, {**ok, "probabilities": np.ones((3, 3), np.float16)})
    warnings = []
    assert read_val_predictions(tmp_path, 3, warnings) is None and "not (N,) and (N, K" in warnings[0]
    with open(tmp_path / PER_SAMPLE_DIR / VAL_PREDICTIONS, "wb") as f:
        np.savez(f, **ok, epoch=np.array([{"x": 1}], dtype=object))  # a pickle inside: never loaded
    warnings = []
    assert read_val_predictions(tmp_path, 3, warnings) is None and "not a readable" in warnings[0]

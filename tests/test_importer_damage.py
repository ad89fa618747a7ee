"""Other tools' logs as users have them (issue 21 §4): what each importer reads of whole logs it once misread
(the trainer's own TensorBoard files, Keras's TensorBoard layout, nested hparams, class counts, epochs from
1), and what it makes of damaged ones (inf and 400-digit numbers, duplicated columns, an unterminated quote,
NUL bytes, a bad CRC, an accuracy of 250 %, a BOM). Values are checked against
what the builders (tests/damaged_logs.py) wrote. The one-line messages and unchanged files: the analysis rows
of tests/test_bad_input_catalog.py (which also holds the 21 MB trainer_state.json)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import damaged_logs as dl
from analysis import run_report
from analysis.importers import load_runs
from analysis.rules.causes import effective_lr
from importer_logs import keras_tensorboard
from rundir.read import RunError


def one(path: Path):
    runs = load_runs(Path(path))
    assert len(runs) == 1, [r.name for r in runs]
    return runs[0]


def column(cols, name: str) -> dict[int, float]:
    return {int(e): float(v) for e, v in zip(cols.epochs, cols[name]) if np.isfinite(v)}


def finding_ids(run) -> set[str]:
    return {f["id"] for f in run_report.build(run)["findings"]}


def warned(run, *words: str) -> list[str]:
    hits = [w for w in run.warnings if all(word in w for word in words)]
    assert hits, run.warnings
    return hits


# ───────────── whole logs read right ─────────────


def test_the_trainers_own_tensorboard_file_has_its_epochs_and_gradient_norms(tmp_path):
    """Written by the trainer's logger=tensorboard itself (trainer/loggers.py, torch's SummaryWriter): 5 epochs read
    as 5 (its hparam/best_val_accuracy summary at step 0 shifts nothing), gradient norms and a layer imported."""
    from trainer.loggers import TensorBoardLogger

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=0.1\n")
    logger = TensorBoardLogger(tmp_path / "tensorboard", tmp_path)
    for e in range(1, 6):
        logger.epoch(e, {"epoch": e, "loss": 2.0 / e, "learning_rate": 0.1, "mean_grad_norm": 1.0 / e,
                         "max_grad_norm": 4.0 / e, "layer_grad_norms": {"conv1": 0.5 / e, "fc": 0.25 / e}},
                     {"epoch": e, "loss": 2.1 / e, "accuracy": 0.15 * e}, [])
    logger.close(best_val_accuracy=0.75)
    run = one(tmp_path / "tensorboard")
    assert list(run.train.epochs) == [1, 2, 3, 4, 5] and list(run.val.epochs) == [1, 2, 3, 4, 5]
    assert column(run.train, "loss") == pytest.approx({e: 2.0 / e for e in range(1, 6)})
    assert column(run.train, "mean_grad_norm") == pytest.approx({e: 1.0 / e for e in range(1, 6)})
    assert column(run.train, "max_grad_norm") == pytest.approx({e: 4.0 / e for e in range(1, 6)})
    assert [r["layer_grad_norms"]["fc"] for r in run.train.records] == pytest.approx([0.25 / e for e in range(1, 6)])
    assert {"train.mean_grad_norm", "train.max_grad_norm"} <= set(run.imported["fields"])
    assert not any("grad_norm" in k for k in run.imported["not_imported"])


def test_keras_tensorboard_layout_is_one_run_and_each_folder_its_own_stage(tmp_path):
    epochs = 27
    keras_tensorboard(tmp_path, [1 / (e + 1) for e in range(epochs)], [1.2 / (e + 1) for e in range(epochs)],
                      [0.4 + 0.02 * e for e in range(epochs)], train_acc=[0.5 + 0.015 * e for e in range(epochs)])
    runs = load_runs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert list(run.train.epochs) == list(range(1, epochs + 1)) == list(run.val.epochs)
    assert column(run.val, "accuracy")[27] == pytest.approx(0.4 + 0.02 * 26, abs=1e-6)
    assert column(run.train, "loss")[1] == pytest.approx(1.0) and column(run.val, "loss")[1] == pytest.approx(1.2)
    train_only, val_only = one(tmp_path / "train"), one(tmp_path / "validation")
    assert len(train_only.train) == epochs and len(train_only.val) == 0
    assert len(val_only.val) == epochs and column(val_only.val, "loss") == pytest.approx(column(run.val, "loss"))


def test_a_test_folder_evaluated_once_is_a_final_test_pass_left_out(tmp_path):
    """train/ and test/ (TensorFlow's custom-loop layout, v_loss and v_accuracy in test/): a test/ evaluated at one
    step only is the final test pass, no validation curve; at every epoch it is the validation stage (the published
    fixtures: test_real_curves)."""
    from torch.utils.tensorboard import SummaryWriter

    epochs = 6
    with SummaryWriter(str(tmp_path / "train")) as w:
        for e in range(epochs):
            w.add_scalar("loss", 1 / (e + 1), e)
    with SummaryWriter(str(tmp_path / "test")) as w:
        w.add_scalar("v_loss", 0.9, epochs - 1)
        w.add_scalar("v_accuracy", 0.7, epochs - 1)
    (run,) = load_runs(tmp_path)
    assert len(run.train) == epochs and len(run.val) == 0
    assert not any("test/ read as the validation stage" in n for n in run.notes)
    with SummaryWriter(str(tmp_path / "test")) as w:
        for e in range(epochs - 1):
            w.add_scalar("v_loss", 1.2 / (e + 1), e)
            w.add_scalar("v_accuracy", 0.5, e)
    (run,) = load_runs(tmp_path)
    assert list(run.val.epochs) == list(range(1, epochs + 1)) and run.val["accuracy"][-1] == pytest.approx(0.7)
    assert any("test/ read as the validation stage" in n for n in run.notes)


@pytest.mark.parametrize("first", [0, 1])
def test_a_csv_numbered_from_0_or_from_1_keeps_its_epoch_count(tmp_path, first):
    run = one(dl.keras(tmp_path, [dl.KERAS_HEADER, *dl.keras_rows(first)]))
    assert list(run.train.epochs) == [1, 2, 3, 4, 5]
    assert column(run.train, "loss") == pytest.approx({i + 1: 1 / (i + 1) for i in range(5)}, abs=1e-4)


def test_a_keras_csv_with_a_byte_order_mark_is_read(tmp_path):
    run = one(dl.keras(tmp_path, [dl.KERAS_HEADER, *dl.keras_rows()], prefix="\ufeff"))
    assert len(run.train) == 5 and column(run.val, "accuracy")[5] == pytest.approx(0.65)
    assert not run.warnings


def test_lightning_hparams_nested_under_a_key_are_read(tmp_path):
    run = one(dl.lightning(tmp_path, "cfg:\n  optimizer:\n    lr: 0.03\n    momentum: 0.5\n  max_epochs: 10\n"))
    assert run.cfg("optimizer.lr") == 0.03 and run.cfg("trainer.epochs") == 10
    assert "optimizer.lr" not in run.unknown


def test_sgd_momentum_not_stated_is_unknown_never_0_9(tmp_path):
    stated = one(dl.lightning(tmp_path / "a", "optimizer: sgd\nlr: 0.1\nmomentum: 0.5\n"))
    silent = one(dl.lightning(tmp_path / "b", "optimizer: sgd\nlr: 0.1\n"))
    assert effective_lr(stated) == pytest.approx(0.2)  # lr / (1 - 0.5)
    assert effective_lr(silent) is None and "optimizer.momentum" in silent.unknown
    assert "optimizer.momentum" not in stated.unknown


@pytest.mark.parametrize("hparams,extra,source", [
    ("cfg:\n  num_classes: 10\n", None, "cfg.num_classes in the tool's config"),
    ("net:\n  output_size: 10\n", None, "net.output_size in the tool's config"),
    (None, {"num_classes": lambda e: 10}, "the logged num_classes"),
    (None, {f"val_acc_{i}": (lambda e: 0.1) for i in range(10)}, "10 per-class accuracies logged"),
], ids=["nested num_classes", "model output size", "logged num_classes", "per-class accuracies"])
def test_a_lightning_run_at_chance_gets_its_class_count_and_the_finding(tmp_path, hparams, extra, source):
    run = one(dl.at_chance(tmp_path, hparams, extra))
    assert run.imported["num_classes"] == 10 and source in run.imported["num_classes_from"]
    assert run.cfg("data.num_classes") == 10
    assert "accuracy_at_chance" in finding_ids(run)


def test_a_class_count_that_cannot_be_inferred_is_said(tmp_path):
    run = one(dl.at_chance(tmp_path, "lr: 0.1\n"))
    assert run.imported["num_classes"] is None and "data.num_classes" in run.unknown
    assert any(n.startswith("class count unknown") and "chance-level checks stay silent" in n for n in run.notes)
    assert "accuracy_at_chance" not in finding_ids(run)


def test_a_run_at_chance_with_no_finding_does_not_read_as_healthy(tmp_path):
    """Stuck at chance (noise around 0.1 and ln 10), its class count unknown, and no other rule fires: the report
    says which checks did not run, in every format, instead of a bare "no findings"."""
    import random

    from analysis.render.formats import RUN, render

    rng = random.Random(1)
    rows = [f"{e},{10 * e + 9},{2.3026 + rng.uniform(-3e-3, 3e-3):.4f},{2.3026 + rng.uniform(-3e-3, 3e-3):.4f},"
            f"{0.1 + rng.uniform(-0.01, 0.01):.4f}" for e in range(10)]
    run = one(dl.lightning(tmp_path, "lr: 0.1\n", rows=rows))
    report = run_report.build(run)
    assert report["not_checked"] and "class count is unknown" in report["not_checked"][0]
    text = render("text", RUN, report, run_report.curves(run))
    if not report["findings"]:
        assert "no findings: nothing in this run crossed a threshold among the checks that could run" in text
    assert "not checked: the chance-level checks (accuracy at 1/C, loss at ln C) did not run" in text
    for fmt in ("markdown", "html"):
        assert "ot checked: the chance-level checks" in render(fmt, RUN, report, run_report.curves(run))
    known = one(dl.lightning(tmp_path / "known", "lr: 0.1\nnum_classes: 10\n", rows=rows))
    assert run_report.build(known)["not_checked"] == []


def test_a_count_that_is_not_constant_or_a_gap_in_the_indices_is_no_count(tmp_path):
    changing = one(dl.at_chance(tmp_path / "a", None, {"num_classes": lambda e: 10 + e}))
    gap = one(dl.at_chance(tmp_path / "b", None, {f"val_acc_{i}": (lambda e: 0.1) for i in (0, 1, 3)}))
    assert changing.imported["num_classes"] is None and gap.imported["num_classes"] is None


# ───────────── damaged logs: named, never an internal error ─────────────

HUGE = "9" * 400


@pytest.mark.parametrize("build,name", [
    (lambda t: dl.keras_with(t, 2, f"2,inf,0.3,0.6,{HUGE}"), "keras"),
    (lambda t: dl.lightning(t, rows=["0,9,2.0,inf,0.5", f"1,19,{HUGE},1.0,0.6", "2,29,1.0,0.9,0.7"]), "lightning"),
    (lambda t: dl.timm(t, ["0,2.0,1.9,30,60,0.1", f"1,inf,1.5,{HUGE},70,0.1", "2,1.0,1.2,50,80,0.1"]), "timm"),
    (lambda t: dl.hf(t, dl.hf_rows("Infinity", HUGE)), "hf"),
], ids=["keras", "lightning", "timm", "hf"])
def test_inf_and_400_digit_numbers_are_named_and_the_rest_is_read(tmp_path, build, name):
    run = one(build(tmp_path))
    warned(run, "'inf'", "read as non-finite")
    warned(run, "(400 characters)", "beyond the float range, read as non-finite")
    assert len(run.train) >= 2 and len(run.val) >= 2
    report = run_report.build(run)  # the rules on a run holding inf: no exception
    assert isinstance(report["findings"], list)


@pytest.mark.parametrize("epoch", ["inf", HUGE, "2.5", "two"])
def test_an_epoch_that_is_no_epoch_number_is_skipped_and_counted(tmp_path, epoch):
    run = one(dl.keras_with(tmp_path, 2, f"{epoch},0.6,0.3,0.6,0.4"))
    warned(run, "1 row(s) without an epoch number", "skipped")
    assert len(run.train) == 4


def test_an_hf_epoch_of_400_digits_is_skipped_and_counted(tmp_path):
    run = one(dl.hf(tmp_path, '[{"epoch": ' + HUGE + ', "loss": 1.0}, {"epoch": 1.0, "loss": 0.5, "step": 1}]'))
    warned(run, "1 log_history row(s) whose epoch is no epoch number")
    assert column(run.train, "loss") == {1: 0.5}


def test_a_duplicated_column_name_is_named_and_its_last_column_read(tmp_path):
    run = one(dl.keras(tmp_path, ["epoch,accuracy,loss,accuracy,val_loss", "0,0.1,1.0,0.9,1.1", "1,0.2,0.5,0.95,0.6"]))
    warned(run, "column 'accuracy' appears 2 times (columns 2, 4)")
    assert column(run.train, "accuracy") == pytest.approx({1: 0.9, 2: 0.95})


def test_an_unterminated_quote_refuses_the_file(tmp_path):
    with pytest.raises(RunError, match="not a CSV file .*an unterminated quote"):
        one(dl.keras_with(tmp_path, 2, '2,"0.6,0.3,0.6,0.4'))


def test_nul_bytes_skip_their_line_and_are_named(tmp_path):
    run = one(dl.keras_with(tmp_path, 2, "2,0.6\0\0\0\0,0.3,0.6,0.4"))
    warned(run, "NUL bytes in line 4")
    assert list(run.train.epochs) == [1, 2, 4, 5]


def test_a_tensorboard_record_with_a_bad_crc_is_skipped_and_named(tmp_path):
    run = one(dl.bad_crc(tmp_path, record=3))  # records: file version, hparam, then epoch 1's train/loss, train/accuracy
    warned(run, "1 record(s) with a bad checksum (a damaged file): skipped")
    assert list(run.train.epochs) == [1, 2, 3, 4, 5]
    assert sorted(column(run.train, "accuracy")) == [2, 3, 4, 5]  # only the damaged value is gone
    assert column(run.train, "loss")[1] == pytest.approx(2.0)


def test_a_tensorboard_header_with_a_bad_crc_ends_the_file_with_a_warning(tmp_path):
    d = dl.traindx_events_dir(tmp_path)
    f = next(d.iterdir())
    data = bytearray(f.read_bytes())
    off, _ = dl.record_offsets(bytes(data))[10]
    data[off + 8] ^= 0xFF  # the length's own CRC
    f.write_bytes(bytes(data))
    run = one(d)
    warned(run, f"bad checksum in the record header at byte {off}")
    assert 1 <= len(run.train) < 5


@pytest.mark.parametrize("values,scale,bad", [
    ([0.5, 0.55, 2.5, 0.6, 0.65], 1.0, "val_accuracy 2.5 at epoch 3"),
    ([50, 55, 250, 60, 65], 0.01, "val_accuracy 250 (read as a percentage) at epoch 3"),
], ids=["fractions", "percent"])
def test_an_accuracy_of_250_percent_is_named_and_read_as_missing(tmp_path, values, scale, bad):
    rows = [f"{e},0.5,{1 / (e + 1):.3f},{v},{1.1 / (e + 1):.3f}" for e, v in enumerate(values)]
    run = one(dl.keras(tmp_path, [dl.KERAS_HEADER, *rows]))
    warned(run, bad, "not an accuracy")
    expected = {e + 1: v * scale for e, v in enumerate(values) if e != 2}
    assert column(run.val, "accuracy") == pytest.approx(expected)  # the other epochs as logged, not a hundredth


def test_the_fixtures_still_read_without_a_warning():
    """The real logs the fuzzer mutates (tests/data/importers, real_curves/raw) are clean: a warning on them would
    be a false alarm."""
    from analysis.importers import detect
    from conftest import ROOT

    logs = [f for f in sorted((ROOT / "tests" / "data" / "real_curves" / "raw").iterdir()) if detect(f)]
    assert len(logs) >= 8  # (the others are printed logs, converted by tests/data/real_curves/README.md's script)
    for f in logs:
        for run in load_runs(f):
            assert not run.warnings, (f, run.warnings)
            assert all(math.isfinite(v) for v in column(run.train, "loss").values())

"""Published training curves as fixtures (tests/data/real_curves/, sources in its README.md): healthy runs get
no warning, broken ones are caught with the right cause, and every report is valid JSON."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from analysis import run_report
from rundir.read import load_run, run_from_records
from analysis.rules import CATALOG
from analysis.stats import best_vs_last_quantile, decline_from_best
from conftest import ROOT, run_module

CURVES = ROOT / "tests" / "data" / "real_curves"
HEALTHY = ["voc20_resnet18", "mnist_keras_plateau", "cifar10_bnn_resnet18_step", "hf_vit_irrigation",
           "bloodgroup_keras_plateau", "mnist_keras_dense", "betel_qtl_step", "cifar10_cnn_adam_printed",
           "garbage_convnext_lightning", "cifar10_customresnet_lightning", "cifar10_tf_original",
           "voc20_resnet18_50ep_printed"]
# run -> (finding that must fire, primary cause id or None when none is asserted)
FAULTY = {"signdigits_resnet18_step7": ("lr_decayed_to_nothing", "lr_schedule"),
          "cifar10_resnet50_finetune_lowlr": ("overfitting", "overfitting"),
          "cifar10_resnet50_finetune_nan": ("nonfinite_loss", "lr_too_high"),
          "signdigits_resnet18_const": ("loss_plateau_early", None),
          "deepfake_keras_overfit": ("overfitting", "overfitting"),
          "lung_keras_unstable_val": ("loss_oscillating", None),
          "drowsiness_keras_not_learning": ("not_learning", "lr_too_low"),
          "cifar10_customresnet_lightning_overfit": ("overfitting", "overfitting"),
          "cifar10_tf_all_train_eval_mismatch": ("val_far_below_train", "train_eval_mismatch"),
          "cifar10_tf_batchnorm_overfit": ("overfitting", "overfitting"),
          "cifar10_tf_aug_dropout_oscillating": ("loss_oscillating", None),
          "cifar10_tf_all_nobn_undertrained": ("undertrained", None),
          # Adam 1e-5 fine-tune: the loss still falling with 36% of the way to its floor left (a flat run that far
          # out warns too), train accuracy 0.79 no higher than val's.
          "braintumor_resnet50_finetune": ("undertrained", None)}
# Judged mildly overfit by eye (best single epoch vs the tail), but the rise or decline is within the curve's own
# noise by the calibrated best-vs-last window test: no alarm but the generalization ones, no other cause.
BORDERLINE = ["tomato_keras_earlystop", "car_keras_gap", "fer_resnet50_keras", "plant_keras_short",
              "cifar10_tf_densenet_overfit_onset"]
GENERALIZATION = {"overfitting", "overtraining"}
# fixture folder -> its original Keras CSVLogger file in raw/ (the fixture must hold exactly its numbers)
KERAS_RAW = {"deepfake_keras_overfit": "deepfake_keras_training_log.csv",
             "tomato_keras_earlystop": "tomato_keras_training_log.csv",
             "bloodgroup_keras_plateau": "bloodgroup_keras_training_log.csv",
             "car_keras_gap": "car_keras_training.log",
             "fer_resnet50_keras": "emotion_resnet50_training.log",
             "mnist_keras_dense": "mnist_keras_run2_training_log.csv",
             "lung_keras_unstable_val": "lung_keras_training_log.csv",
             "plant_keras_short": "plant_keras_training_log.csv",
             "mnist_keras_plateau": "mnist_keras.csv",
             "drowsiness_keras_not_learning": "drowsiness_keras_training_log.csv"}  # history.history, no epoch column


def test_fixtures_of_logs_the_importer_cannot_split_hold_exactly_their_published_numbers():
    """braintumor: the third of four runs appended in one Keras file (the fine-tune)."""
    from analysis.importers import load_runs

    runs = load_runs(CURVES / "raw" / "braintumor_keras_training_log.csv")
    ours = load_run(CURVES / "braintumor_resnet50_finetune")
    assert len(runs) == 4 and list(runs[2].train.epochs) == list(ours.train.epochs) == list(range(1, 11))
    for split in ("train", "val"):
        for field in ("loss", "accuracy"):
            np.testing.assert_allclose(getattr(runs[2], split)[field], getattr(ours, split)[field], rtol=1e-12)


def report(name: str) -> dict:
    return run_report.build(load_run(CURVES / name))


def alarms(rep: dict) -> list[str]:
    return [f["id"] for f in rep["findings"] if f["severity"] in ("warning", "critical")]


def test_every_fixture_is_covered_and_sourced():
    folders = {p.name for p in CURVES.iterdir() if p.is_dir() and p.name != "raw"}
    assert folders == set(HEALTHY) | set(FAULTY) | set(BORDERLINE)
    readme = (CURVES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in folders)  # each with its source repository and path


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_published_runs_get_no_warning(name):
    rep = report(name)
    assert alarms(rep) == [] and rep["cause"] is None


@pytest.mark.parametrize("name", sorted(FAULTY))
def test_faulty_published_runs_are_caught_with_the_right_cause(name):
    finding, cause = FAULTY[name]
    rep = report(name)
    assert finding in alarms(rep), rep["findings"]
    if cause is not None:
        assert rep["cause"]["primary"]["id"] == cause
        assert finding in rep["cause"]["symptoms"]


@pytest.mark.parametrize("name", BORDERLINE)
def test_borderline_published_runs_get_no_alarm_but_a_generalization_one(name):
    rep = report(name)
    assert set(alarms(rep)) <= GENERALIZATION, rep["findings"]
    assert rep["cause"] is None or rep["cause"]["primary"]["id"] == "overfitting"


def test_a_stall_after_the_best_epoch_is_reported_as_spent_epochs_not_as_a_fault():
    """FER-2013, 7 epochs after the best val accuracy, the later ones within the curve's own noise of it."""
    f = next(f for f in report("fer_resnet50_keras")["findings"] if f["id"] == "overtraining")
    assert f["severity"] == "info" and f["evidence"]["best_epoch"] == 10 and f["evidence"]["epochs_after_best"] == 7


@pytest.mark.parametrize("name", sorted(KERAS_RAW))
def test_keras_fixtures_hold_exactly_the_numbers_of_their_published_file(name):
    """The converted run directory and the original file read through the Keras importer agree epoch by epoch."""
    from analysis.importers import load_runs

    (raw,) = load_runs(CURVES / "raw" / KERAS_RAW[name])
    ours = load_run(CURVES / name)
    for split in ("train", "val"):
        a, b = getattr(raw, split), getattr(ours, split)
        assert list(a.epochs) == list(b.epochs)
        for field in ("loss", "accuracy"):
            np.testing.assert_allclose(a[field], b[field], rtol=1e-12)


# fixture folder -> its published Lightning CSVLogger metrics.csv in raw/
LIGHTNING_RAW = {"garbage_convnext_lightning": "garbage_convnext_lightning_metrics.csv",
                 "cifar10_customresnet_lightning": "cifar10_customresnet_lightning_metrics.csv",
                 "cifar10_customresnet_lightning_overfit": "cifar10_customresnet_lightning_metrics_first_run.csv"}
# fixture folder -> its run in raw/cifar10_tf_hw06/ (TensorBoard event files: train/ with tags loss, accuracy and
# test/ with v_loss, v_accuracy, the test set evaluated every epoch: read with --map as the validation stage)
TB_RAW = {"cifar10_tf_all_train_eval_mismatch": "all", "cifar10_tf_batchnorm_overfit": "Normalisation",
          "cifar10_tf_aug_dropout_oscillating": "Aug_Dropout0.5", "cifar10_tf_all_nobn_undertrained": "all_noBatchNorm",
          "cifar10_tf_original": "Original", "cifar10_tf_densenet_overfit_onset": "DenseMode"}
TB_VAL_MAP = ["v_loss=val.loss", "v_accuracy=val.accuracy"]


def same_numbers(a, b, fields=("loss", "accuracy")):
    assert list(a.epochs) == list(b.epochs)
    for field in fields:
        np.testing.assert_allclose(a[field], b[field], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(LIGHTNING_RAW))
def test_lightning_fixtures_hold_exactly_the_numbers_of_their_published_file(name):
    """Per-step train losses averaged per epoch by the Lightning importer, the validation rows as logged."""
    from analysis.importers import load_runs

    (raw,) = load_runs(CURVES / "raw" / LIGHTNING_RAW[name])
    ours = load_run(CURVES / name)
    same_numbers(raw.train, ours.train, ("loss", "accuracy", "learning_rate"))
    same_numbers(raw.val, ours.val)


@pytest.mark.parametrize("name", sorted(TB_RAW))
def test_tensorboard_fixtures_hold_exactly_the_numbers_of_their_event_files(name):
    from analysis.importers import load_runs, options

    (run_dir,) = list((CURVES / "raw" / "cifar10_tf_hw06" / TB_RAW[name]).iterdir())
    (train,) = load_runs(run_dir / "train")
    (val,) = load_runs(run_dir / "test", options(maps=TB_VAL_MAP))
    ours = load_run(CURVES / name)
    same_numbers(train.train, ours.train)
    same_numbers(val.val, ours.val)
    assert len(ours.val) == 15


@pytest.mark.parametrize("name", sorted(TB_RAW))
def test_a_tf_loops_train_and_test_folders_are_one_run_without_map(name):
    """TensorFlow's custom-loop layout (train/ and test/, the test set evaluated every epoch as v_loss, v_accuracy)
    read as it is published: one run, test/ its validation stage, said in a note."""
    from analysis.importers import load_runs

    (run_dir,) = list((CURVES / "raw" / "cifar10_tf_hw06" / TB_RAW[name]).iterdir())
    (run,) = load_runs(run_dir)
    ours = load_run(CURVES / name)
    same_numbers(run.train, ours.train)
    same_numbers(run.val, ours.val)
    assert any("test/ read as the validation stage (test/v_accuracy as validation/accuracy" in n for n in run.notes)


PRINTED_EPOCH = re.compile(r"resnet-18 - Epoch (\d+)/49\n-+\ntrain Loss: ([\d.]+) Top-1 Acc: ([\d.]+) Top-5 Acc: ([\d.]+)\n"
                           r"test Loss: ([\d.]+) Top-1 Acc: ([\d.]+) Top-5 Acc: ([\d.]+)")


def test_printed_fixture_holds_exactly_the_numbers_of_its_published_log():
    """The resnet-18 run of the 50-epoch log: `Epoch k/49` (0-based), percentages, train then test lines."""
    text = (CURVES / "raw" / "voc20_resnet_50epoch_printed_log.md").read_text()
    rows = [[float(g) for g in m.groups()] for m in PRINTED_EPOCH.finditer(text)]
    ours = load_run(CURVES / "voc20_resnet18_50ep_printed")
    assert len(rows) == 50 and [int(r[0]) + 1 for r in rows] == list(ours.train.epochs) == list(ours.val.epochs)
    for split, (loss, acc, top5) in (("train", (1, 2, 3)), ("val", (4, 5, 6))):
        cols = getattr(ours, split)
        np.testing.assert_allclose(cols["loss"], [r[loss] for r in rows], rtol=1e-12)
        np.testing.assert_allclose(cols["accuracy"], [r[acc] / 100 for r in rows], rtol=1e-12)
        np.testing.assert_allclose(cols["top5_accuracy"], [r[top5] / 100 for r in rows], rtol=1e-12)


@pytest.mark.parametrize("name", HEALTHY + sorted(FAULTY) + BORDERLINE)
def test_reports_are_strict_json(name):
    json.dumps(report(name), allow_nan=False)  # raises on NaN or Infinity


def test_json_and_out_on_an_accuracy_only_log_do_not_crash(tmp_path):
    run = CURVES / "cifar10_bnn_resnet18_step"  # no loss at all: every loss-based value is unknown
    proc = run_module("analysis", [str(run), "--format", "json"])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rep = json.loads(proc.stdout)
    assert all(c["bought_loss"] is None for c in rep["sections"][0]["data"]["cuts"])
    proc = run_module("analysis", [str(run), "--out", str(tmp_path / "out")])
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    json.loads((tmp_path / "out" / "report.json").read_text())


def test_constant_lr_plateau_is_not_overtraining_nor_leakage():
    rep = report("signdigits_resnet18_const")
    severity = {f["id"]: f["severity"] for f in rep["findings"]}
    assert severity.get("overtraining", "info") == "info"  # one spike at epoch 34 is not a best to return to
    assert severity.get("val_above_train", "info") == "info"


def test_step_schedule_cut_is_judged_by_what_followed_not_blamed():
    rep = report("signdigits_resnet18_step7")
    ids = {f["id"] for f in rep["findings"]}
    assert not ids & {"lr_reduced_early", "lr_cut_premature"}  # its first cut helped: planned, not premature
    lines = " ".join(rep["sections"][0]["lines"])
    assert "after the cut: val loss -0.396, accuracy +0.125" in lines and "bought" not in lines
    assert rep["cause"]["primary"]["recommendations"][0]["overrides"] == ["scheduler=cosine"]


def test_nan_run_says_the_step_count_is_unknown_not_zero():
    f = next(f for f in report("cifar10_resnet50_finetune_nan")["findings"] if f["id"] == "nonfinite_loss")
    assert f["evidence"]["nonfinite_steps"] is None and "0 steps" not in f["message"]


def test_linear_decay_sampled_per_epoch_is_not_a_series_of_cuts():
    assert report("hf_vit_irrigation")["summary"]["lr_cuts"] == 0


# ── the statistics behind overtraining and overfitting ──

@pytest.mark.parametrize("epochs", [12, 30, 60])
def test_best_vs_last_test_keeps_false_alarms_near_5_percent_on_iid_binomial_epochs(epochs):
    """The old criterion (best epoch vs the tail mean, 2 SE of one measurement) fired on 69% of such curves."""
    rng = np.random.default_rng(epochs)
    n, p = 413, 0.8
    se = np.sqrt(p * (1 - p) / n)
    width = max(4, round(0.2 * epochs))
    hits = sum(decline_from_best(rng.binomial(n, p, epochs) / n, width, se).significant for _ in range(400))
    assert hits / 400 <= 0.08  # 5% by construction, plus Monte Carlo error of 400 draws


def test_best_vs_last_test_catches_a_late_decline_in_a_long_run():
    rng = np.random.default_rng(1)
    acc = 0.9 + 0.01 * rng.standard_normal(100)
    acc[-20:] -= 0.03  # the last 20 of 100 epochs lose 3 points
    assert decline_from_best(acc, 20, 0.01).significant
    assert best_vs_last_quantile(100, 20) < best_vs_last_quantile(10, 4)  # more epochs per window, less noise


def overtrained_run(decline: float, n_val: int = 1000, epochs: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    acc = np.concatenate([np.linspace(0.5, 0.9, epochs // 2), np.full(epochs - epochs // 2, 0.9)])
    acc[-8:] -= decline
    acc = rng.binomial(n_val, acc) / n_val
    train = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "accuracy": 0.95} for i in range(epochs)]
    val = [{"epoch": i + 1, "loss": 0.5, "accuracy": float(a), "num_samples": n_val} for i, a in enumerate(acc)]
    return run_from_records(train, val, config={"trainer": {"epochs": epochs}, "data": {"num_classes": 10}})


def test_overtraining_warns_on_a_real_decline_only():
    assert CATALOG["overtraining"].fn(overtrained_run(0.08)).severity == "warning"
    quiet = CATALOG["overtraining"].fn(overtrained_run(0.0))
    assert quiet is None or quiet.severity == "info"


# ── what the new formats' fixtures must and must not be told (tests/data/real_curves/README.md, issue 18 §4) ──

def ids(rep: dict) -> dict[str, str]:
    return {f["id"]: f["severity"] for f in rep["findings"]}


def test_a_fine_tune_that_reached_most_of_the_way_in_its_first_epoch_is_converged_not_a_plateau():
    """ConvNeXt fine-tune: train loss 0.86 after one epoch (ln 12 = 2.48), then flat 0.66-0.75, floor 0.526."""
    rep = report("garbage_convnext_lightning")
    assert "loss_plateau_early" not in ids(rep)
    assert rep["progress"]["verdict"] == "converged" and rep["progress"]["start_source"].startswith("ln 12")
    assert "validation set: 1545 images, inferred" in " ".join(rep["sections"][2]["lines"])


def test_evaluation_that_does_not_follow_training_is_a_mismatch_never_chance():
    """Train accuracy 0.37 -> 0.64, val accuracy 0.18-0.25 (chance 0.10): twice chance is never 'at chance'."""
    rep = report("cifar10_tf_all_train_eval_mismatch")
    assert "accuracy_at_chance" not in ids(rep) and ids(rep)["val_far_below_train"] == "warning"
    assert "not_learning" not in ids(rep)  # the train loss fell 56% of the way: it learns, evaluation disagrees


def test_a_val_accuracy_swinging_every_epoch_is_oscillation_judged_on_the_inferred_size():
    rep = report("cifar10_tf_aug_dropout_oscillating")
    f = next(f for f in rep["findings"] if f["id"] == "loss_oscillating")
    assert "10000" in f["evidence"]["noise_source"] and "inferred" in f["evidence"]["noise_source"]
    assert rep["progress"]["verdict"] != "converged"
    assert {"far_from_converged", "undertrained"} & set(alarms(rep))  # 54% of the way to the floor left
    far = next(f for f in rep["findings"] if f["id"] == "far_from_converged")
    assert "weights move normally" not in far["message"]  # no update ratios in a TensorBoard log: not claimed


def test_single_epoch_val_crashes_that_recover_are_no_decline_nor_oscillation():
    """VOC ResNet-18, 50 printed epochs: drops of 4-10 points at epochs 27, 31, 37, each recovered the next epoch."""
    rep = report("voc20_resnet18_50ep_printed")
    assert not set(ids(rep)) & {"loss_oscillating", "ended_below_best", "loss_plateau_early", "far_from_converged"}
    assert ids(rep).get("overtraining", "info") == "info"
    assert rep["progress"]["verdict"] == "still improving"


def test_overfitting_outranks_an_lr_whose_only_symptom_is_an_info():
    """ERA-S12's first run: Adam's OneCycle peak 0.0159 is above the usual range (info), the val loss rose after
    epoch 10 (warning): the primary cause is the one that explains the warning."""
    rep = report("cifar10_customresnet_lightning_overfit")
    assert rep["cause"]["primary"]["id"] == "overfitting"
    assert "lr_too_high" in [a["id"] for a in rep["cause"]["alternatives"]]
    assert ids(report("cifar10_customresnet_lightning")).get("lr_out_of_range") == "info"


def test_an_imported_log_without_its_smoothing_has_an_unknown_floor_in_the_loss_section():
    """The garbage run's own metrics.csv (no config beside it): its smoothing 0.1 is not in the log."""
    from analysis.importers import load_runs

    (run,) = load_runs(CURVES / "raw" / "garbage_convnext_lightning_metrics.csv")
    loss = next(s for s in run_report.build(run)["sections"] if "floor" in s["data"])
    assert loss["data"]["floor"] is None and "loss floor unknown" in " ".join(loss["lines"])
    assert "loss floor 0.5262 (label smoothing 0.1 over 12 classes)" in " ".join(
        s for sec in report("garbage_convnext_lightning")["sections"] for s in sec["lines"])

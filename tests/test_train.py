"""Real training on digits: the JSONL fields, their values, and where the files land."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
import yaml

from conftest import read_jsonl, run_trainer, train_here

TRAIN_FIELDS = ["epoch", "loss", "accuracy", "learning_rate", "mean_grad_norm", "min_grad_norm", "max_grad_norm",
                "weight_update", "weight_update_ratio", "num_batches", "num_samples", "clipped_fraction",
                "nonfinite_steps", "epoch_time_s", "samples_per_s", "grad_norm_first_layer",
                "grad_norm_last_layer", "layer_grad_norms", "dead_relu_fraction"]
VAL_FIELDS = ["epoch", "loss", "accuracy", "top5_accuracy"]


def test_subprocess_run_writes_every_field_with_sane_values(digits_run):
    diag = digits_run / "diagnostics"
    train, val = read_jsonl(diag / "train_diagnostics.jsonl"), read_jsonl(diag / "val_diagnostics.jsonl")
    assert [r["epoch"] for r in train] == [1, 2] and [r["epoch"] for r in val] == [1, 2]
    for r in train:
        for f in TRAIN_FIELDS:
            assert f in r, f
        for f in ("loss", "accuracy", "mean_grad_norm", "weight_update", "weight_update_ratio"):
            assert math.isfinite(r[f]) and r[f] > 0, (f, r[f])
        assert r["min_grad_norm"] <= r["mean_grad_norm"] <= r["max_grad_norm"]
        assert r["learning_rate"] == 0.05  # scheduler=constant keeps optimizer.lr
        assert r["num_batches"] == 1437 // 64 and r["num_samples"] == 64 * r["num_batches"]
        assert r["nonfinite_steps"] == 0 and r["clipped_fraction"] == 0.0
        assert 0 < r["weight_update_ratio"] < 1
        assert set(r["layer_grad_norms"]) == {"stage1.conv", "stage2.conv", "stage3.conv", "fc"}
        assert r["grad_norm_first_layer"] == r["layer_grad_norms"]["stage1.conv"]
    assert train[1]["loss"] < train[0]["loss"]  # learning happens
    assert train[1]["accuracy"] > 0.5
    for r in val:
        for f in VAL_FIELDS:
            assert f in r, f
        assert 0 <= r["accuracy"] <= r["top5_accuracy"] <= 1
    status = json.loads((diag / "status.json").read_text())
    assert status["status"] == "completed" and status["epoch"] == 2
    assert status["best_val_accuracy"] == max(r["accuracy"] for r in val)
    info = json.loads((diag / "run_info.json").read_text())
    assert info["dataset"] == "digits" and info["num_classes"] == 10
    assert info["train_size"] + info["val_size"] == 1797 and sum(info["class_counts"]) == info["train_size"]
    assert info["train_val_overlap"] == 0 and info["num_parameters"] > 1000
    assert "Normalize" in info["val_transform"] and info["versions"]["torch"]
    assert abs(info["input_mean"][0]) < 0.3 and 0.7 < info["input_std"][0] < 1.3  # normalized input
    assert (digits_run / ".hydra" / "config.yaml").exists() and (digits_run / "train.log").exists()
    assert "epoch 2/2" in (digits_run / "train.log").read_text()


def test_jq_lines_of_the_seed_work(digits_run):
    jq = subprocess.run(["which", "jq"], capture_output=True).stdout.strip()
    if not jq:
        pytest.skip("jq is not installed")
    path = digits_run / "diagnostics" / "train_diagnostics.jsonl"
    for field in ("learning_rate", "loss", "mean_grad_norm"):
        out = subprocess.run([jq, f".{field}", str(path)], capture_output=True, text=True, check=True).stdout
        assert [float(v) for v in out.split()] == [r[field] for r in read_jsonl(path)]


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_diagnostics_dir_environment_variable_is_honoured(tmp_path):
    target = tmp_path / "elsewhere"
    proc = run_trainer([f"hydra.run.dir={tmp_path / 'run'}", "trainer.epochs=1"],
                       env={"DIAGNOSTICS_DIR": str(target)})
    assert proc.returncode == 0, proc.stderr
    assert len(read_jsonl(target / "train_diagnostics.jsonl")) == 1
    assert not (tmp_path / "run" / "diagnostics").exists()


def test_task_function_returns_best_val_accuracy(tmp_path):
    best, train, val = train_here(tmp_path, ["trainer.epochs=2", "scheduler=step", "scheduler.step_size=1",
                                             "scheduler.gamma=0.5"])
    assert best == max(r["accuracy"] for r in val)
    assert [r["learning_rate"] for r in train] == [0.05, 0.025]  # StepLR halves each epoch


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_plateau_cuts_the_lr_when_val_loss_stalls(tmp_path):
    # patience 0 and a huge threshold: every epoch counts as "no improvement", so each one cuts.
    _, train, _ = train_here(tmp_path, ["trainer.epochs=3", "scheduler=plateau", "scheduler.patience=0",
                                        "scheduler.threshold=10", "scheduler.factor=0.1"])
    lrs = [r["learning_rate"] for r in train]
    assert lrs[0] == 0.05 and lrs[1] == pytest.approx(0.005) and lrs[2] == pytest.approx(0.0005)


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_grad_clip_records_clipped_fraction_and_bounds_update(tmp_path):
    _, free, _ = train_here(tmp_path / "a", ["trainer.epochs=1", "scheduler=constant"])
    _, clipped, _ = train_here(tmp_path / "b", ["trainer.epochs=1", "scheduler=constant",
                                                "regularization.grad_clip=0.01"])
    assert free[0]["clipped_fraction"] == 0.0
    assert clipped[0]["clipped_fraction"] == 1.0  # every step's norm is above 0.01
    # norms are recorded before clipping, so they match the unclipped scale...
    assert clipped[0]["mean_grad_norm"] > 0.05
    # ...while the updates shrink with the clipped gradients
    assert clipped[0]["weight_update"] < 0.5 * free[0]["weight_update"]


@pytest.mark.parametrize("model", ["resnet18"])
def test_resnet_trains_a_step_on_cpu(tmp_path, model):
    _, train, val = train_here(tmp_path, [f"model={model}", "model.width=8", "trainer.epochs=1",
                                          "data=fake", "data.size=96", "data.batch_size=32"])
    assert train[0]["num_batches"] == 2 and math.isfinite(train[0]["loss"])
    assert "stem.conv" in train[0]["layer_grad_norms"] and "fc" in train[0]["layer_grad_norms"]


def test_amp_bf16_on_cpu_trains(tmp_path):
    _, train, _ = train_here(tmp_path, ["trainer.epochs=1", "trainer.amp=bf16", "trainer.device=cpu"])
    assert math.isfinite(train[0]["loss"]) and "amp_scale" not in train[0]


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_fp16_scaler_records_unscaled_norms_and_clips_after_unscaling(tmp_path):
    # A small model on 16x16 inputs: fp16 runs slowly on CPU; the ratios asserted hold as for the default model.
    common = ["trainer.epochs=1", "trainer.device=cpu", "scheduler=constant", "regularization.grad_clip=0.5",
              "model.width=8", "data.image_size=16"]
    _, fp32, _ = train_here(tmp_path / "fp32", common)
    _, fp16, _ = train_here(tmp_path / "fp16", common + ["trainer.amp=fp16"])
    _, bug, _ = train_here(tmp_path / "bug", common + ["trainer.amp=fp16", "fault=clip_before_unscale"])
    assert fp16[0]["amp_scale"] >= 2.0**10
    # Unscaled norms: the same magnitude as in fp32, not amp_scale times larger.
    assert 0.3 < fp16[0]["mean_grad_norm"] / fp32[0]["mean_grad_norm"] < 3
    # Clipping after unscaling moves the weights as much as in fp32...
    assert 0.3 < fp16[0]["weight_update"] / fp32[0]["weight_update"] < 3
    # ...while clipping the scaled gradients (the seed's bug) shrinks every update by about the scale.
    assert bug[0]["mean_grad_norm"] > 100 * fp32[0]["mean_grad_norm"]
    assert bug[0]["weight_update"] < 0.05 * fp32[0]["weight_update"]


def test_multirun_2x2_gives_four_job_dirs_with_their_overrides(sweep_2x2):
    expected = [(1, 0), (1, 0.1), (3, 0), (3, 0.1)]  # first override varies slowest
    for num, (patience, smoothing) in enumerate(expected):
        job = sweep_2x2 / str(num)
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"scheduler.patience={patience}" in overrides
        assert f"regularization.label_smoothing={smoothing}" in overrides
        assert len(read_jsonl(job / "diagnostics" / "train_diagnostics.jsonl")) == 2
        info = json.loads((job / "diagnostics" / "run_info.json").read_text())
        assert info["config"]["scheduler"]["patience"] == patience
        assert info["config"]["regularization"]["label_smoothing"] == smoothing
    assert (sweep_2x2 / "multirun.yaml").exists()


def test_a_batch_larger_than_the_training_set_is_named(tmp_path, caplog, one_thread):
    _, train, _ = train_here(tmp_path, ["trainer.epochs=1", "data.batch_size=5000", "model.width=4"])
    assert train[0]["num_batches"] == 1 and train[0]["num_samples"] == 1438
    assert "data.batch_size=5000 is more than the 1438 training images: one step per epoch" in caplog.text

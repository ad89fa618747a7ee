"""Each rule on hand-made records: it fires on the pattern it names, and stays quiet on a healthy one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.facts import loss_floor
from rundir.read import run_from_records
from analysis.rules import CATALOG, diagnose
from analysis.stats import first_flat_window, noise, oscillations, trend


def curves(n=30, start=2.3, end=0.2, noise_sd=0.01, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return end + (start - end) * np.exp(-t / (n / 5)) + rng.normal(0, noise_sd, n)


def make(n=30, *, train=None, val=None, config=None, info=None, status=None, **cols):
    """A run of n epochs; healthy by default, any column replaceable by keyword (train_x= / val_x=)."""
    loss = curves(n)
    acc = np.clip(1 - loss / 2.5, 0, 1)
    base_train = {"loss": loss, "accuracy": acc, "learning_rate": np.full(n, 0.05), "mean_grad_norm": np.full(n, 1.0),
                  "min_grad_norm": np.full(n, 0.5), "max_grad_norm": np.full(n, 2.0), "weight_update": np.full(n, 0.05),
                  "weight_update_ratio": np.full(n, 1e-3), "clipped_fraction": np.zeros(n), "nonfinite_steps": np.zeros(n),
                  "dead_relu_fraction": np.zeros(n)}
    base_val = {"loss": curves(n, seed=1) + 0.05, "accuracy": np.clip(acc - 0.02, 0, 1), "num_samples": np.full(n, 10000)}
    for k, v in cols.items():
        split, _, field = k.partition("_")
        (base_train if split == "train" else base_val)[field] = np.asarray(v, dtype=object)
    def records(cols_):
        out = []
        for i in range(n):
            r = {"epoch": i + 1}
            for k, v in cols_.items():
                x = v[i]
                r[k] = None if x is None or (isinstance(x, float) and math.isnan(x)) else (x.item() if hasattr(x, "item") else x)
            out.append(r)
        return out
    cfg = {"data": {"num_classes": 10, "batch_size": 128}, "trainer": {"epochs": n},
           "scheduler": {"name": "cosine"}, "optimizer": {"name": "sgd", "lr": 0.05},
           "regularization": {"label_smoothing": 0.0, "weight_decay": 5e-4, "grad_clip": None},
           "augmentation": {"name": "none"}, **(config or {})}
    return run_from_records(train or records(base_train), val or records(base_val), config=cfg,
                            info=info, status=status)


def ids(run):
    return {f.id for f in diagnose(run)}


def finding(run, id_):
    return next(f for f in diagnose(run) if f.id == id_)


def test_healthy_run_has_no_warning():
    found = diagnose(make())
    assert not [f.id for f in found if f.severity != "info"]


def test_every_rule_is_documented_with_source_and_thresholds():
    for r in CATALOG.values():
        assert r.source and r.title and r.section and r.thresholds, r.id


# ── stats ──

def test_trend_separates_slope_from_noise():
    rng = np.random.default_rng(0)
    assert trend(10 - 0.5 * np.arange(10) + rng.normal(0, 0.1, 10)).falling()
    flat = trend(5 + rng.normal(0, 0.1, 10))
    assert not flat.falling() and not flat.rising()
    assert noise(np.linspace(0, 10, 200) + rng.normal(0, 0.2, 200)) == pytest.approx(0.2, rel=0.2)


def test_flat_window_ignores_a_loss_at_its_floor():
    y = np.concatenate([np.linspace(2.3, 0.5, 5), np.full(15, 0.5)])
    assert first_flat_window(y, 4, floor=0.0) == 4  # flat far above 0
    assert first_flat_window(y, 4, floor=0.5) is None  # at the floor: converged, not a plateau


def test_oscillation_count():
    assert oscillations(np.array([0.5, 0.6, 0.5, 0.6, 0.5, 0.6]), 0.03) == 4
    assert oscillations(np.linspace(0.1, 0.9, 10), 0.03) == 0


def test_label_smoothing_floor():
    run = make(config={"regularization": {"label_smoothing": 0.1}})
    on, off = 0.9 + 0.01, 0.01
    assert loss_floor(run) == pytest.approx(-(on * math.log(on)) - 9 * off * math.log(off))
    assert loss_floor(make()) == 0.0


# ── schedule ──

def plateau_run(cut_epoch, n=40, val_loss=None, patience=3, val_accuracy=None):
    lr = np.where(np.arange(1, n + 1) < cut_epoch, 0.1, 0.01)
    kw = {"val_loss": val_loss} if val_loss is not None else {}
    if val_accuracy is not None:
        kw["val_accuracy"] = val_accuracy
    return make(n, config={"scheduler": {"name": "plateau", "patience": patience}}, train_learning_rate=lr, **kw)


def test_lr_reduced_early_recommends_more_patience():
    f = finding(plateau_run(4), "lr_reduced_early")
    assert f.evidence["cuts"][0]["epoch"] == 4 and f.evidence["early_limit_epoch"] == 10
    overrides = [o for r in f.recommendations for o in r.overrides]
    assert "scheduler.patience=6" in overrides and "scheduler=cosine" in overrides
    assert "lr_reduced_early" not in ids(plateau_run(20))


def test_cut_while_val_loss_still_falls_is_premature():
    rng = np.random.default_rng(0)
    falling = 2.0 - 0.05 * np.arange(40) + rng.normal(0, 0.005, 40)
    # The cut cost accuracy: the val accuracy falls from its best after it.
    acc = np.concatenate([np.linspace(0.5, 0.9, 12), np.linspace(0.9, 0.7, 28)])
    f = finding(plateau_run(12, val_loss=falling, val_accuracy=acc), "lr_cut_premature")
    assert f.evidence["premature_cuts"][0]["verdict"] == "still improving"
    # The same cut that cost nothing (the val loss kept falling after it, the run ended at its best) is no warning.
    assert "lr_cut_premature" not in ids(plateau_run(12, val_loss=falling))
    stalled = np.concatenate([np.linspace(2.0, 1.0, 8), 1.0 + rng.normal(0, 0.01, 32)])
    assert "lr_cut_premature" not in ids(plateau_run(14, val_loss=stalled))


def test_smooth_schedules_have_no_cuts():
    lr = 0.05 * 0.5 * (1 + np.cos(np.pi * np.arange(30) / 30))
    assert "lr_reduced_early" not in ids(make(train_learning_rate=lr))


# ── loss and accuracy ──

def test_loss_plateau_early_is_config_aware():
    n = 40
    stuck = np.concatenate([np.linspace(4.6, 3.0, 5), 3.0 + np.random.default_rng(0).normal(0, 0.005, n - 5)])
    cfg = {"data": {"num_classes": 100}, "regularization": {"label_smoothing": 0.1, "weight_decay": 5e-4},
           "augmentation": {"name": "randaugment", "magnitude": 11}, "scheduler": {"name": "plateau", "patience": 3}}
    f = finding(make(n, config=cfg, train_loss=stuck), "loss_plateau_early")
    assert f.evidence["plateau_start_epoch"] <= 8
    overrides = {o for r in f.recommendations for o in r.overrides}
    assert {"regularization.label_smoothing=0.05", "regularization.weight_decay=0.0001",
            "augmentation.magnitude=9", "scheduler=cosine"} <= overrides
    # The same flat curve at the label-smoothing floor is convergence, not a plateau.
    floor = loss_floor(make(config={"data": {"num_classes": 10}, "regularization": {"label_smoothing": 0.1}}))
    at_floor = np.concatenate([np.linspace(2.3, floor, 5), np.full(n - 5, floor)])
    assert "loss_plateau_early" not in ids(make(n, config={"regularization": {"label_smoothing": 0.1}},
                                                train_loss=at_floor))


def test_nonfinite_loss_names_the_first_epoch():
    loss = list(curves(10))
    loss[3] = None
    steps = [0, 0, 0, 5, 12, 12, 12, 12, 12, 12]
    f = finding(make(10, train_loss=loss, train_nonfinite_steps=steps), "nonfinite_loss")
    assert f.severity == "critical" and f.epoch == 4 and f.evidence["nonfinite_steps"] == sum(steps)


def test_loss_diverging():
    loss = np.concatenate([np.linspace(2.0, 0.5, 10), np.linspace(0.6, 2.5, 10)])
    assert "loss_diverging" in ids(make(20, train_loss=loss))
    assert "loss_diverging" not in ids(make(20))


def test_loss_oscillating():
    acc = np.tile([0.5, 0.6], 10)
    assert "loss_oscillating" in ids(make(20, val_accuracy=acc))


def test_accuracy_at_chance_uses_the_runs_classes():
    n = 10
    run = make(n, val_accuracy=np.full(n, 0.101), val_loss=np.full(n, 2.30))
    f = finding(run, "accuracy_at_chance")
    assert f.evidence["chance_accuracy"] == 0.1 and f.evidence["chance_loss"] == pytest.approx(math.log(10))
    assert "accuracy_at_chance" not in ids(make(n, val_accuracy=np.full(n, 0.3), val_loss=np.full(n, 2.0)))
    # with 100 classes, 0.1 accuracy is ten times chance
    assert "accuracy_at_chance" not in ids(make(n, config={"data": {"num_classes": 100}},
                                                val_accuracy=np.full(n, 0.101), val_loss=np.full(n, 4.0)))


# ── gradients and updates ──

def test_vanishing_gradients():
    n = 10
    f = finding(make(n, train_mean_grad_norm=np.full(n, 1e-4), train_weight_update=np.full(n, 1e-8)),
                "vanishing_gradients")
    assert f.evidence["min_mean_grad_norm"] == pytest.approx(1e-4)


def test_exploding_gradients_and_clip_recommendation():
    n = 10
    f = finding(make(n, train_mean_grad_norm=np.geomspace(1, 100, n)), "exploding_gradients")
    assert any(o.startswith("regularization.grad_clip=") for r in f.recommendations for o in r.overrides)


def test_a_first_epoch_gradient_spike_in_a_run_that_converged_is_a_transient():
    """A real run (tests/data/own_runs: ResNet-18, digits at 16 px, 10 epochs, 0.983): its first epoch's steps
    reached 106, 111x the later norms, as a ResNet's first steps at the usual LR do; it converged all the same."""
    from pathlib import Path

    from rundir.read import load_run

    run = load_run(Path(__file__).parent / "data" / "own_runs" / "resnet18_first_epoch_spike")
    f = finding(run, "exploding_gradients")
    assert f.severity == "info" and "first epoch only" in f.message and f.evidence["spike_epochs"] == [1]
    assert f.recommendations[0].overrides == ["scheduler.warmup_epochs=1"]
    n = 30
    late = np.full(n, 2.0)
    late[20] = 500.0  # the same spike in a later epoch of a converged run: a warning
    assert finding(make(n, train_max_grad_norm=late), "exploding_gradients").severity == "warning"
    early = np.full(n, 2.0)
    early[0] = 500.0  # in the first epoch: a transient
    assert finding(make(n, train_max_grad_norm=early), "exploding_gradients").severity == "info"


def test_lr_never_cut_only_for_a_plateau_scheduler_that_had_the_chance():
    n = 10
    plateau = {"scheduler": {"name": "plateau", "patience": 3, "cooldown": 0}}
    assert "lr_never_cut" in ids(make(n, config=plateau))
    assert "lr_never_cut" not in ids(make(4, config=plateau))  # 4 epochs: patience 3 had no chance to act
    assert "lr_never_cut" not in ids(make(n))  # cosine anneals without cuts
    cut = np.full(n, 0.05)
    cut[6:] = 0.005
    assert "lr_never_cut" not in ids(make(n, config=plateau, train_learning_rate=cut))


def test_lr_never_cut_for_a_step_scheduler_whose_step_is_past_the_run():
    """scheduler=step at its default step_size (30) in a 10-epoch run can never cut: a constant-LR run, told a
    step size that cuts within it (one that composes on its command line)."""
    from analysis.rules.schedule import lr_never_cut
    from conftest import compose

    step = {"scheduler": {"name": "step", "step_size": 30, "gamma": 0.1}, "trainer": {"epochs": 10}}
    f = lr_never_cut(make(10, config=step))
    assert f.severity == "info" and "cannot cut within the run's 10 epochs" in f.message
    assert f.recommendations[0].overrides == ["scheduler.step_size=3"]
    assert compose(["scheduler=step", *f.recommendations[0].overrides]).scheduler.step_size == 3
    short = {"scheduler": {"name": "step", "step_size": 3, "gamma": 0.1}, "trainer": {"epochs": 10}}
    assert lr_never_cut(make(10, config=short)) is None  # it could cut within the run: not this finding


def test_weights_not_updating():
    assert "weights_not_updating" in ids(make(8, train_weight_update_ratio=np.full(8, 1e-10)))


def test_clipping_saturated_recommends_a_threshold_from_the_norms():
    n = 6
    f = finding(make(n, config={"regularization": {"grad_clip": 0.01}}, train_clipped_fraction=np.ones(n),
                     train_mean_grad_norm=np.full(n, 1.5)), "clipping_saturated")
    assert "regularization.grad_clip=3.0" in f.recommendations[0].overrides


def test_amp_scaled_gradients():
    n = 4
    bug = make(n, train_mean_grad_norm=np.full(n, 3e4), train_amp_scale=np.full(n, 65536.0))
    ok = make(n, train_mean_grad_norm=np.full(n, 1.0), train_amp_scale=np.full(n, 65536.0))
    assert "amp_scaled_gradients" in ids(bug) and "amp_scaled_gradients" not in ids(ok)


def test_dead_relu():
    n = 4
    run = make(n, train_dead_relu_fraction=np.full(n, 0.8))
    run.train.records[-1]["dead_relu_layers"] = {"stage1.relu": 0.8, "stage2.relu": 0.1}
    f = finding(run, "dead_relu")
    assert f.evidence["layers_over_threshold"] == {"stage1.relu": 0.8}


def test_dead_relu_under_a_huge_step_is_info_only_when_the_run_held_its_level():
    """Dead units under a step above the usual maximum cost nothing when the run converged and its val accuracy
    held its level over the last window (AdamW at LR 1 in the fault matrix: 73% of a layer dead, 0.981 like the
    reference); when most of the level came in the last epochs (a schedule's rescue of a run that sat at chance, or
    swung) they stay the warning that names the LR."""
    n = 30
    huge = dict(train_dead_relu_fraction=np.full(n, 0.8), train_weight_update_ratio=np.full(n, 0.3))
    held = make(n, val_accuracy=np.concatenate([np.linspace(0.3, 0.9, 10), np.full(n - 10, 0.9)]), **huge)
    rescued = make(n, val_accuracy=np.concatenate([np.full(n - 3, 0.1), [0.5, 0.8, 0.9]]), **huge)
    # still rising a little at the end, as SGD at LR 1.5 did on digits (0.953 -> 0.986 in its last 4 of 10 epochs,
    # 0.986 like the reference): most of the gain came before the last window
    rising = make(n, val_accuracy=np.concatenate([np.linspace(0.1, 0.95, n - 6), [0.95, 0.955, 0.96, 0.985, 0.986,
                                                                                  0.986]]), **huge)
    assert finding(held, "dead_relu").severity == "info"
    assert finding(rising, "dead_relu").severity == "info"
    assert finding(rescued, "dead_relu").severity == "warning"
    swung = make(n, val_accuracy=np.concatenate([np.linspace(0.1, 0.9, n - 4), [0.32, 0.35, 0.91, 0.97]]), **huge)
    assert finding(swung, "dead_relu").severity == "warning"  # Adam at LR 1: 0.32 -> 0.97 within its last window


# ── generalization ──

def test_overfitting():
    n = 30
    val_nll = np.concatenate([np.linspace(2.0, 0.8, 10), np.linspace(0.8, 1.6, 20)])
    run = make(n, val_nll=val_nll, train_accuracy=np.full(n, 0.99), val_accuracy=np.full(n, 0.8))
    assert "overfitting" in ids(run)


def test_overfitting_never_advises_stopping_at_or_after_the_end_of_the_run():
    """Val loss rising while val accuracy is still best at the last epoch (a published 7-epoch Keras run): "stop
    near the best epoch" would be trainer.epochs past the run's own end, so the advice is to regularize."""
    n = 12
    val_loss = np.concatenate([np.linspace(0.8, 0.45, 6), np.linspace(0.47, 0.6, 6)])
    rising_acc = np.linspace(0.6, 0.82, n)
    run = make(n, val_loss=val_loss, train_accuracy=np.linspace(0.7, 0.99, n), val_accuracy=rising_acc,
               config={"trainer": {"epochs": n}})
    f = finding(run, "overfitting")
    stops = [o for r in f.recommendations for o in r.overrides if o.startswith("trainer.epochs=")]
    assert all(int(o.split("=")[1]) < n for o in stops) and f.recommendations
    early_best = np.concatenate([np.linspace(0.6, 0.85, 4), np.full(n - 4, 0.8)])  # best at epoch 4: stopping helps
    f = finding(make(n, val_loss=val_loss, train_accuracy=np.linspace(0.7, 0.99, n), val_accuracy=early_best,
                     config={"trainer": {"epochs": n}}), "overfitting")
    assert "trainer.epochs=6" in f.recommendations[-1].overrides


def test_overtraining_says_how_many_epochs_were_spent_after_the_best():
    n = 50
    acc = np.concatenate([np.linspace(0.3, 0.8, 10), np.full(40, 0.75)])
    f = finding(make(n, val_accuracy=acc), "overtraining")
    assert f.severity == "warning" and f.evidence["best_epoch"] == 10 and f.evidence["epochs_after_best"] == 40
    assert "trainer.epochs=12" in f.recommendations[0].overrides
    # within noise of the best (small validation set): info, not warning
    noisy = make(n, val_accuracy=acc, val_num_samples=np.full(n, 100))
    assert finding(noisy, "overtraining").severity == "info"


def test_over_regularization():
    n = 20
    cfg = {"regularization": {"label_smoothing": 0.2, "weight_decay": 1e-3}, "augmentation": {"name": "trivialaugment"}}
    stuck = np.linspace(2.3, 1.8, n)
    run = make(n, config=cfg, train_loss=stuck, train_accuracy=np.full(n, 0.4), val_accuracy=np.full(n, 0.45))
    f = finding(run, "over_regularization")
    assert len(f.evidence["strong"]) == 3
    assert "over_regularization" not in ids(make(n, train_loss=stuck, train_accuracy=np.full(n, 0.4),
                                                 val_accuracy=np.full(n, 0.45)))


def test_val_above_train_without_augmentation_is_a_warning():
    n = 10
    run = make(n, train_accuracy=np.full(n, 0.7), val_accuracy=np.full(n, 0.8))
    assert finding(run, "val_above_train").severity == "warning"


def test_run_failed_carries_the_error():
    f = finding(make(5, status={"status": "failed", "error": "boom", "epoch": 5}), "run_failed")
    assert f.evidence["error"] == "boom"


# ── data ──

@pytest.mark.parametrize("info,expected", [
    ({"transforms_shared": True, "val_transform_deterministic": False}, "transforms_not_separated"),
    ({"train_val_overlap": 12, "val_size": 100}, "train_val_overlap"),
    ({"label_range": [0, 99], "num_classes": 10}, "label_out_of_range"),
    ({"class_counts": [100, 5, 100]}, "class_imbalance"),
    ({"input_mean": [0.45, 0.45, 0.45], "input_std": [0.25, 0.25, 0.25]}, "input_not_normalized"),
])
def test_data_rules(info, expected):
    assert expected in ids(make(3, info=info))


def test_input_not_normalized_recommends_the_measured_statistics():
    run = make(3, config={"data": {"num_classes": 10, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
               info={"input_mean": [0.8, 0.8, 0.8], "input_std": [0.4, 0.4, 0.4],
                     "train_transform": "Compose(Normalize(...))"})
    f = finding(run, "input_not_normalized")
    assert f.recommendations[0].overrides == ["data.mean=[0.7,0.7,0.7]", "data.std=[0.1,0.1,0.1]"]


# ── issue 11: statistics that hold on real curves, one root cause per run ──

def step_run(n=30, val_loss=None, step=10, **kw):
    lr = 0.1 * 0.1 ** (np.arange(n) // step)
    if val_loss is not None:
        kw["val_loss"] = val_loss
    return make(n, config={"scheduler": {"name": "step", "step_size": step}}, train_learning_rate=lr, **kw)


def test_planned_step_cuts_are_not_premature_unless_they_hurt():
    rng = np.random.default_rng(0)
    falling = 2.0 - 0.05 * np.arange(30) + rng.normal(0, 0.005, 30)
    found = ids(step_run(val_loss=falling, step=5))
    assert not found & {"lr_cut_premature", "lr_reduced_early"}
    hurt = falling.copy()
    hurt[5:] += 1.0  # the val loss jumps up right after the first cut
    assert "lr_reduced_early" in ids(step_run(val_loss=hurt, step=5))


def test_a_large_but_insignificant_fall_is_unclear_not_stalled():
    from analysis.schedule import find_cuts
    val_loss = np.array([3.0, 2.2, 2.9, 1.6, 2.5, 1.4, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9])  # falls ~0.3/epoch, noisily
    cuts = find_cuts(plateau_run(6, n=12, val_loss=val_loss))
    assert cuts[0].verdict == "unclear"


def test_lr_decayed_to_nothing_is_named():
    frozen = np.concatenate([np.linspace(2.3, 0.8, 20), np.full(20, 0.8)])  # no progress once the LR is ~0
    f = finding(step_run(n=40, step=5, train_loss=frozen), "lr_decayed_to_nothing")
    assert f.evidence["final_lr"] < 1e-6 and f.recommendations[0].overrides == ["scheduler=cosine"]


def test_loss_oscillating_without_a_validation_size_assumes_a_small_one_never_the_curves_own_noise():
    acc = 0.9 + np.random.default_rng(0).normal(0, 0.003, 20)
    acc[2::3] = 0.6  # every third epoch collapses, to the end
    run = make(20, val_accuracy=acc, val_num_samples=[None] * 20)
    f = finding(run, "loss_oscillating")
    assert f.evidence["noise_source"].startswith("binomial at an assumed 100 images")
    # The curve's own second-difference noise (which the collapses inflate) would have set the bar at ~0.5.
    assert f.evidence["amplitude"] < 0.1


def test_loss_oscillating_counts_a_turn_at_the_first_epoch_of_the_late_part():
    """SGD momentum 0.999 on digits (359 val images): a crash to 0.35 and a recovery in the second half. The swing
    into the crash turns at epoch 6, the late part's first epoch; counted from there it was one reversal, and the
    run that ends 11 points under a healthy one got "no findings"."""
    acc = [0.337, 0.256, 0.379, 0.847, 0.563, 0.777, 0.747, 0.345, 0.827, 0.852]
    f = finding(make(10, val_accuracy=acc, val_num_samples=np.full(10, 359)), "loss_oscillating")
    assert f.evidence["reversals_late"] == 2
    calm = [0.337, 0.256, 0.379, 0.847, 0.563, 0.777, 0.80, 0.82, 0.84, 0.852]  # the same start, a calm second half
    assert "loss_oscillating" not in ids(make(10, val_accuracy=calm, val_num_samples=np.full(10, 359)))


def test_loss_oscillating_not_for_a_run_that_settles_at_its_best():
    acc = np.concatenate([np.tile([0.80, 0.90], 6), np.full(8, 0.994)])
    assert "loss_oscillating" not in ids(make(20, val_accuracy=acc))


def test_val_above_train_with_unknown_augmentation_is_info():
    n = 10
    run = make(n, config={"augmentation": {}}, train_accuracy=np.full(n, 0.7), val_accuracy=np.full(n, 0.8))
    assert finding(run, "val_above_train").severity == "info"


def test_overfitting_judges_the_rise_from_the_minimum_against_noise():
    n = 11  # the published fine-tune: val loss rising for 5 epochs from its minimum by about 1.5%
    val_loss = np.array([1.2858, 1.2631, 1.247, 1.2419, 1.2316, 1.2306, 1.2361, 1.2348, 1.2425, 1.2425, 1.2495])
    train_loss = np.linspace(0.91, 0.20, n)
    run = make(n, val_loss=val_loss, train_loss=train_loss, train_accuracy=np.linspace(0.72, 0.95, n),
               val_accuracy=np.linspace(0.65, 0.68, n))
    assert "overfitting" in ids(run)
    flat = make(n, val_loss=1.23 + np.random.default_rng(0).normal(0, 0.01, n), train_loss=train_loss,
                train_accuracy=np.linspace(0.72, 0.95, n), val_accuracy=np.linspace(0.65, 0.68, n))
    assert "overfitting" not in ids(flat)


def test_val_far_below_train_from_the_start_is_a_warning_with_a_cause():
    from analysis import run_report
    n = 8
    run = make(n, config={"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.999}},
               train_accuracy=np.linspace(0.5, 0.99, n), val_accuracy=np.array([0.1, 0.2, 0.3, 0.15, 0.4, 0.2, 0.3, 0.35]))
    f = finding(run, "val_far_below_train")
    assert f.severity == "warning" and f.recommendations[0].overrides == ["optimizer.momentum=0.9"]
    rep = run_report.build(run)
    assert rep["cause"]["primary"]["id"] == "lr_too_high"
    assert "val_far_below_train" in rep["cause"]["symptoms"]


def test_weight_decay_is_a_candidate_cause_when_the_weight_norm_collapses():
    from analysis.rules import causes
    n = 10
    norm = np.linspace(20, 2, n)
    run = make(n, config={"regularization": {"weight_decay": 0.5, "label_smoothing": 0.0}},
               train_weight_update=1e-3 * norm, train_weight_update_ratio=np.full(n, 1e-3),
               train_loss=np.full(n, 2.3), val_loss=np.full(n, 2.3), train_accuracy=np.full(n, 0.1),
               val_accuracy=np.full(n, 0.1))
    best = causes.primary(run)
    assert best.id == "weight_decay_too_strong"
    assert best.recommendations[0].overrides == ["regularization.weight_decay=0.0005"]
    assert "weight_decay_too_strong" in finding(run, "accuracy_at_chance").message or \
        "weight decay" in finding(run, "accuracy_at_chance").message


def test_no_recommendation_contradicts_the_primary_cause():
    from analysis import run_report
    n = 10
    run = make(n, train_weight_update_ratio=np.full(n, 0.5), train_loss=np.full(n, 2.3), val_loss=np.full(n, 2.3),
               train_accuracy=np.full(n, 0.1), val_accuracy=np.full(n, 0.1))
    rep = run_report.build(run)
    assert rep["cause"]["primary"]["id"] == "lr_too_high"
    lrs = [o for f in rep["findings"] for r in f["recommendations"] for o in r["overrides"] if o.startswith("optimizer.lr=")]
    assert lrs and all(float(o.split("=")[1]) < 0.05 for o in lrs)


def test_report_json_never_holds_nan():
    import json

    from analysis import run_report
    n = 6
    run = make(n, train_loss=[None] * n, val_loss=[None] * n, val_num_samples=[None] * n)
    json.dumps(run_report.build(run), allow_nan=False)

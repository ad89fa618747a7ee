"""Recommendations point the right way: real short runs on digits whose top advice, applied, fixes the run.

Each case is a user report: the top finding of a broken run recommended a change in the wrong
direction (a lower LR for a run whose LR was 1e-5), a tenfold step that needed five reruns, advice
that contradicted another finding's, or the base LR where the scheduler had frozen the weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.findings import Finding
from analysis.overrides import lower_lr, raise_lr
from rundir.read import load_run
from analysis.rules import diagnose
from conftest import train_here
from test_rules import finding, ids, make

# A small model on small images: each epoch takes well under a second on one CPU thread.
TINY = ["trainer.device=cpu", "model.width=4", "data.image_size=16"]
HAIR_TRIGGER = ["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.5", "trainer.epochs=12"]


def findings_of(tmp_path, overrides: list[str]) -> list[Finding]:
    from trainer.errors import StopRun

    try:
        train_here(tmp_path, TINY + overrides)
    except StopRun:
        pass  # nonfinite_loss stops the run by default; its files remain
    return diagnose(load_run(tmp_path))


def top(found: list[Finding]) -> Finding:
    return found[0]  # diagnose sorts the most severe first


def lr_overrides(found: list[Finding]) -> list[float]:
    return [float(o.split("=", 1)[1]) for f in found for r in f.recommendations for o in r.overrides
            if o.startswith("optimizer.lr=")]


def all_overrides(f: Finding) -> list[str]:
    return [o for r in f.recommendations for o in r.overrides]


def top_override(f: Finding) -> str:
    return next(o for r in f.recommendations for o in r.overrides)


# ── real runs ──

def test_lr_too_low_top_advice_raises_the_lr_and_the_rerun_learns(tmp_path, one_thread):
    found = findings_of(tmp_path / "low", ["optimizer.lr=1e-5", "trainer.epochs=4"])
    f = top(found)
    assert (f.id, f.severity, f.evidence["cause"]) == ("accuracy_at_chance", "critical", "lr_too_low")
    fix = top_override(f)
    assert fix.startswith("optimizer.lr=") and float(fix.split("=")[1]) >= 1e-2  # a sane LR, not 1e-6
    assert all(lr > 1e-5 for lr in lr_overrides(found))  # no finding says "lower"
    assert not any(o.startswith("trainer.epochs=") for g in found for o in all_overrides(g))
    rerun = findings_of(tmp_path / "rerun", ["optimizer.lr=1e-5", "trainer.epochs=4", fix])
    assert "accuracy_at_chance" not in {g.id for g in rerun}


def test_lr_far_too_high_lands_in_the_stable_range_in_one_step(tmp_path, one_thread):
    found = findings_of(tmp_path, ["optimizer.lr=1e5", "scheduler=constant", "trainer.epochs=2"])
    f = top(found)
    assert f.id == "nonfinite_loss" and top_override(f) == "optimizer.lr=0.5"  # SGD's usual maximum, not 1e4
    assert max(lr_overrides(found)) <= 0.5


def test_dead_relu_advice_is_consistent_and_undoes_the_fault(tmp_path, one_thread):
    found = findings_of(tmp_path, ["fault=dead_relu", "trainer.epochs=3"])
    by_id = {f.id: f for f in found}
    assert {"dead_relu", "vanishing_gradients"} <= set(by_id)
    assert not lr_overrides(found)  # neither "raise" (vanishing) nor "lower" (dead_relu): the LR is not the cause
    for id_ in ("dead_relu", "vanishing_gradients", "accuracy_at_chance"):
        if id_ in by_id:
            assert top_override(by_id[id_]) == "fault=none", id_


def test_shuffled_labels_point_at_the_labels_not_the_lr(tmp_path, one_thread):
    found = findings_of(tmp_path, ["fault=shuffled_labels", "trainer.epochs=3"])
    f = top(found)
    assert f.id == "accuracy_at_chance" and f.evidence["cause"] == "data"
    assert top_override(f) == "fault=none" and "labels" in f.recommendations[0].text
    assert not lr_overrides(found)


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_frozen_by_the_scheduler_points_at_the_scheduler_and_the_rerun_trains(tmp_path, one_thread):
    found = findings_of(tmp_path / "hair", HAIR_TRIGGER)
    f = top(found)
    assert f.id == "weights_not_updating" and f.evidence["lr_cuts_before"] >= 1
    assert top_override(f) == "scheduler.threshold=0.0001"
    overrides = all_overrides(f)
    assert any(o.startswith("scheduler.patience=") for o in overrides)
    assert any(o.startswith("scheduler.min_lr=") for o in overrides)
    assert not any(o.startswith("optimizer.lr=") for o in overrides)
    rerun = findings_of(tmp_path / "rerun", HAIR_TRIGGER + [top_override(f)])
    assert "weights_not_updating" not in {g.id for g in rerun}


# ── the helpers and the rules on hand-made records ──

def sgd(lr, name="sgd"):
    return make(3, config={"optimizer": {"name": name, "lr": lr}})


@pytest.mark.parametrize("name,lr,expected", [
    ("sgd", 1e5, "optimizer.lr=0.5"),  # capped at SGD's usual maximum
    ("sgd", 0.05, "optimizer.lr=0.005"),  # inside the range: plain x0.1
    ("adam", 1.0, "optimizer.lr=0.003"),
])
def test_lower_lr_lands_in_the_stable_range(name, lr, expected):
    assert lower_lr(sgd(lr, name), 10) == [expected]


@pytest.mark.parametrize("name,lr,expected", [
    ("sgd", 1e-5, ["optimizer.lr=0.05"]),  # at least the usual LR: x10 would still learn nothing
    ("sgd", 0.05, ["optimizer.lr=0.5"]),
    ("sgd", 0.5, []),  # already at the usual maximum: raising is no fix
    ("adamw", 1e-6, ["optimizer.lr=0.001"]),
])
def test_raise_lr_moves_toward_the_usual_lr(name, lr, expected):
    assert raise_lr(sgd(lr, name), 10) == expected


def never_learned(n=10, **cols):
    flat = 2.3 + np.random.default_rng(0).normal(0, 0.002, n)
    base = dict(train_loss=flat, val_loss=flat + 0.01, train_accuracy=np.full(n, 0.1), val_accuracy=np.full(n, 0.1))
    return make(n, **{**base, **cols})


def test_chance_is_judged_on_recent_epochs_not_the_noisiest_one():
    n = 10
    swinging = np.array([0.12, 0.09, 0.05, 0.15, 0.18, 0.02, 0.06, 0.05, 0.04, 0.04])  # shuffled labels, 10 epochs
    f = finding(never_learned(n, val_accuracy=swinging), "accuracy_at_chance")
    assert f.evidence["best_val_accuracy"] == 0.18 and f.evidence["recent_val_accuracy"] < 0.1
    assert "overtraining" not in ids(never_learned(n, val_accuracy=swinging))  # its best epoch is noise


@pytest.mark.parametrize("cols,cause,first", [
    ({"train_weight_update_ratio": np.full(10, 3e-6)}, "lr_too_low", "optimizer.lr=0.5"),
    ({"train_dead_relu_fraction": np.full(10, 1.0)}, "dead_relu", None),
    ({"train_weight_update_ratio": np.full(10, 0.5)}, "lr_too_high", "optimizer.lr=0.005"),
    ({}, "data", None),
])
def test_chance_advice_follows_the_cause(cols, cause, first):
    f = finding(never_learned(**cols), "accuracy_at_chance")
    assert f.evidence["cause"] == cause
    assert (f.recommendations[0].overrides or [None])[0] == first
    plateau = finding(never_learned(**cols), "loss_plateau_early")
    assert plateau.recommendations == f.recommendations  # the same advice from both sides


def test_dead_relu_blames_the_lr_only_after_huge_updates():
    n = 4
    quiet = finding(make(n, train_dead_relu_fraction=np.full(n, 0.8)), "dead_relu")
    assert not any(o.startswith("optimizer.lr=") for o in all_overrides(quiet))
    loud = finding(make(n, train_dead_relu_fraction=np.full(n, 0.8), train_weight_update_ratio=np.full(n, 0.3)),
                   "dead_relu")
    assert all_overrides(loud) == ["optimizer.lr=0.0167"]


def test_weights_frozen_without_cuts_still_ask_for_a_higher_lr():
    f = finding(make(8, train_weight_update_ratio=np.full(8, 1e-10)), "weights_not_updating")
    assert top_override(f) == "optimizer.lr=0.5" and f.evidence["lr_cuts_before"] == 0

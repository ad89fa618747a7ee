"""The progress verdict (analysis/progress.py), the rules on runs that ended far from converged, the causes the
differential diagnosis gives them, and the rules that must stay sound without a validation-set size.

Real runs: tiny digits runs trained once per session (a healthy default run reaches 0.98 in 10 epochs); the
issue's full-dose reproductions run with -m slow. Imported logs: tests/data/real_curves/raw/."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from analysis import run_report
from analysis.facts import infer_val_size, val_size_info
from analysis.importers import load_runs
from analysis.progress import progress
from analysis.render import html, markdown, text
from analysis.rules import CATALOG, diagnose
from conftest import ROOT, made_once, run_module, train_here
from rundir.read import load_run, run_from_records

RAW = ROOT / "tests" / "data" / "real_curves" / "raw"

# name -> overrides: each breaks one knob by a moderate dose (the default: SGD 0.05, cosine, width 16, 10 epochs).
BROKEN = {"lr_low": ["optimizer.lr=0.0005", "trainer.epochs=3", "data.image_size=16"],  # LR 100x below
          "narrow": ["model.width=1", "trainer.epochs=4"],  # 1/16 of the width
          "short": ["trainer.epochs=2"],  # 2 of 10 epochs
          # Adam at a third of its usual LR (16 px: cheap), cut short (still falling) and a little longer (stalled
          # under cosine, most of the way ahead): one grid step too low, not a decade.
          "adam_third_short": ["optimizer=adam", "optimizer.lr=0.00033", "data.image_size=16", "trainer.epochs=4"],
          "adam_third": ["optimizer=adam", "optimizer.lr=0.00033", "data.image_size=16", "trainer.epochs=6"],
          # the LR x0.1 every epoch (16 px): the loss falls fast, then sits flat with about a third of the way ahead
          "schedule": ["scheduler=step", "scheduler.step_size=1", "trainer.epochs=4", "data.image_size=16"],
          # 5 of 10 epochs under cosine: the LR decays to ~0 within them and the loss flattens with 28% of the way ahead
          "short_cosine": ["trainer.epochs=5"],
          # SGD without momentum at the usual LR: a tenth of the usual effective step (0.80 against 0.99)
          "no_momentum": ["optimizer.momentum=0", "optimizer.nesterov=false", "data.image_size=16", "trainer.epochs=3"],
          # half the usual momentum: an effective step 5x below the usual (a grid step, not a decade)
          "half_momentum": ["optimizer.momentum=0.5", "data.image_size=16", "trainer.epochs=3"],
          # a clip 6x below the median gradient norm, on every step: the clip, not the epochs, shortened the steps
          "clip_moderate": ["regularization.grad_clip=0.2", "data.image_size=16", "trainer.epochs=4"],
          # RandAugment at a moderate magnitude: train accuracy 0.58 on the augmented batches, val 0.77
          "randaugment_mild": ["augmentation=randaugment", "augmentation.magnitude=5", "data.image_size=16",
                               "trainer.epochs=4"]}


class BrokenRuns:
    """`broken_runs / name`: the BROKEN run `name`, trained in this process (no start-up per run) the first time
    any worker asks for it (conftest.made_once), so two workers train two different runs at once rather than one
    waiting for all of them."""

    def __init__(self, tmp_path_factory):
        self.factory = tmp_path_factory

    def __truediv__(self, name: str):
        def make(root):
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                (root / name).mkdir(parents=True)
                train_here(root / name, BROKEN[name])
            finally:
                torch.set_num_threads(threads)
        return made_once(self.factory, f"progress_{name}", make) / name  # a run directory named as in BROKEN


@pytest.fixture(scope="session")
def broken_runs(tmp_path_factory):
    return BrokenRuns(tmp_path_factory)


def report_of(path) -> dict:
    return run_report.build(load_run(path))


def alarms(rep: dict) -> list[str]:
    return [f["id"] for f in rep["findings"] if f["severity"] in ("warning", "critical")]


def primary(rep: dict) -> dict:
    assert rep["cause"] and rep["cause"]["primary"], rep["findings"]
    return rep["cause"]["primary"]


def first_fix(rep: dict) -> list[str]:
    return primary(rep)["recommendations"][0]["overrides"]


# ── each moderate fault: a warning, and the cause that names its knob ──

def test_lr_too_low_is_not_learning_with_the_lr_as_its_cause(broken_runs):
    rep = report_of(broken_runs / "lr_low")
    assert rep["progress"]["verdict"] == "not learning" and rep["progress"]["loss_progress"] < 0.1
    assert "not_learning" in alarms(rep)
    assert primary(rep)["id"] == "lr_too_low" and first_fix(rep) == ["optimizer.lr=0.05"]
    assert any("100x below the usual" in e for e in primary(rep)["evidence_for"])


def test_a_model_too_narrow_is_blamed_on_its_capacity(broken_runs):
    rep = report_of(broken_runs / "narrow")
    assert set(alarms(rep)) & {"not_learning", "far_from_converged"}
    assert primary(rep)["id"] == "too_little_capacity" and first_fix(rep) == ["model.width=4"]
    assert any("parameters for 1438 training images" in e for e in primary(rep)["evidence_for"])


def test_a_run_cut_short_is_undertrained_and_told_to_train_longer(broken_runs):
    rep = report_of(broken_runs / "short")
    p = rep["progress"]
    assert p["verdict"] == "still improving" and p["still_falling"] and p["remaining"] > 0.5
    assert "undertrained" in alarms(rep)
    assert primary(rep)["id"] == "too_few_epochs"
    (fix,) = first_fix(rep)
    assert fix.startswith("trainer.epochs=") and int(fix.split("=")[1]) >= 10  # the way left takes many epochs


def test_a_schedule_that_took_the_lr_away_is_blamed_on_the_schedule(broken_runs):
    rep = report_of(broken_runs / "schedule")
    assert rep["progress"]["verdict"] == "stalled" and "far_from_converged" in alarms(rep)
    assert primary(rep)["id"] == "lr_schedule"
    assert any("of the training time" in e for e in primary(rep)["evidence_for"])
    assert any("schedule, not the model" in c["evidence_against"][0] for c in rep["cause"]["alternatives"]
               if c["id"] == "too_little_capacity" and c["evidence_against"]) or all(
        c["id"] != "too_little_capacity" for c in rep["cause"]["alternatives"])


def test_a_run_flat_with_a_third_of_the_way_ahead_warns_and_names_the_schedule(broken_runs):
    """Between converged and far: flat at the end with over a quarter of the way to a known floor ahead (0.93
    on digits, where the setup reaches 0.99). The fix switches the scheduler and runs on the run's command line."""
    from analysis.overrides import rerun
    from conftest import compose

    run = load_run(broken_runs / "schedule")
    rep = run_report.build(run)
    p = rep["progress"]
    assert p["verdict"] == "stalled" and 0.25 < p["remaining"] < 0.5 and p["floor"] == 0
    assert "far_from_converged" in alarms(rep)
    assert primary(rep)["id"] == "lr_schedule" and first_fix(rep) == ["scheduler=cosine"]
    cfg = compose(rerun(run, first_fix(rep)))
    assert cfg.scheduler.name == "cosine" and "step_size" not in cfg.scheduler


def test_a_run_its_short_schedule_flattened_is_told_to_train_longer(broken_runs):
    """Per epoch the loss went flat as the cosine LR reached ~0; against the training time it got (LR x steps) it
    was still falling: too few epochs, not a run at its floor."""
    rep = report_of(broken_runs / "short_cosine")
    assert rep["progress"]["verdict"] == "stalled" and "far_from_converged" in alarms(rep)
    assert primary(rep)["id"] == "too_few_epochs"
    (fix,) = first_fix(rep)
    assert fix.startswith("trainer.epochs=") and int(fix.split("=")[1]) >= 10
    assert any("per doubling of the training time" in e for e in primary(rep)["evidence_for"])


def test_sgd_without_momentum_is_told_to_restore_it_not_to_raise_a_usual_lr(broken_runs):
    from analysis.overrides import rerun
    from conftest import compose

    run = load_run(broken_runs / "no_momentum")
    rep = run_report.build(run)
    assert "undertrained" in alarms(rep) and primary(rep)["id"] == "lr_too_low"
    assert first_fix(rep) == ["optimizer.momentum=0.9"]  # the knob that differs from the usual recipe
    assert any("10x below the usual" in e for e in primary(rep)["evidence_for"])
    cfg = compose(rerun(run, first_fix(rep)))
    assert cfg.optimizer.momentum == 0.9 and cfg.optimizer.lr == 0.05


@pytest.mark.parametrize("name,cause,evidence", [
    ("half_momentum", "lr_too_low", "set the pace"),
    ("clip_moderate", "clipping_too_tight", "x below the usual"),
    ("randaugment_mild", "augmentation_too_strong", "fit no better than validation"),
])
def test_a_knob_that_shortened_the_steps_or_hardened_the_task_is_named_before_the_epochs(broken_runs, name, cause,
                                                                                         evidence):
    """Runs still falling far from their floor whose knob is not the epochs: half the usual momentum (the step 5x
    below the usual), a clip that cut every step to a sixth (a usual LR, a short step), RandAugment that makes the
    training batches far harder than validation. Each is told its own knob first, never only to train longer."""
    rep = report_of(broken_runs / name)
    assert "undertrained" in alarms(rep), alarms(rep)
    assert primary(rep)["id"] == cause and any(evidence in e for e in primary(rep)["evidence_for"]), primary(rep)
    fix = first_fix(rep)
    assert not any(o.startswith("trainer.epochs=") for o in fix), fix
    if cause == "clipping_too_tight":
        assert fix[0].startswith("regularization.grad_clip=") and float(fix[0].split("=")[1]) > 1.0
    else:
        assert fix == {"lr_too_low": ["optimizer.momentum=0.9"], "augmentation_too_strong": ["augmentation=none"]}[cause]


def test_the_same_flat_third_with_the_floor_unknown_is_no_warning():
    """With the label smoothing unrecorded (an imported log) the way is measured against an assumed floor: a
    flat end with a third of it ahead is not enough to warn; over half is."""
    loss = np.concatenate([np.linspace(2.3, 1.0, 6), 1.0 + 0.002 * (np.arange(6) % 2)])  # then flat, +-0.002
    acc = np.concatenate([np.linspace(0.3, 0.6, 6), np.full(6, 0.6)])
    rep = run_report.build(curve_run(loss, acc=acc))
    p = rep["progress"]
    assert p["floor"] is None and p["verdict"] == "stalled" and 0.25 < p["remaining"] < 0.5, p
    assert "far_from_converged" not in alarms(rep)
    known = run_report.build(curve_run(loss, acc=acc, config={"regularization": {"label_smoothing": 0.0}}))
    assert known["progress"]["floor"] == 0 and "far_from_converged" in alarms(known)


OWN_RUNS = ROOT / "tests" / "data" / "own_runs"


def with_info(run, **info):
    """The same records with run_info fields changed."""
    return run_from_records(run.train.records, run.val.records, config=run.config, info={**run.info, **info},
                            status=run.status, overrides=run.overrides)


def test_a_loss_still_falling_far_from_a_known_floor_is_undertrained_whatever_its_rate():
    """Adam at its default LR, digits at 32 px (tests/data/own_runs): 0.944 where SGD reaches 0.983, the loss
    falling 1.2% of the way an epoch with 38% of it ahead. A flat run that far out is far_from_converged; one
    still falling there is no more finished. With the floor unknown (no smoothing recorded) only the steep
    fall counts."""
    run = load_run(OWN_RUNS / "adam_default_lr_32px")
    rep = run_report.build(run)
    p = rep["progress"]
    assert p["verdict"] == "still improving" and not p["steep"] and 0.25 < p["remaining"] < 0.5, p
    assert "undertrained" in alarms(rep)
    assert primary(rep)["id"] == "too_few_epochs" and first_fix(rep) == ["trainer.epochs=33"]
    config = {k: v for k, v in run.config.items() if k != "regularization"}
    unknown = run_report.build(run_from_records(run.train.records, run.val.records, config=config, info=run.info))
    assert unknown["progress"]["floor"] is None and alarms(unknown) == []


def test_augmented_batches_that_fit_no_better_than_validation_blame_the_augmentation():
    """Crop and flip on digits at 32 px (tests/data/own_runs): 0.886 against 0.983 without them. The loss
    flattened 24% of the way above its floor, train accuracy 0.881 on the augmented batches, val 0.886: the
    model fits its own training images no better than unseen ones. With validation augmented too (shared
    transforms) the comparison means nothing and is not made."""
    run = load_run(OWN_RUNS / "crop_flip_32px")
    rep = run_report.build(run)
    (over,) = [f for f in rep["findings"] if f["id"] == "over_regularization"]
    assert over["severity"] == "warning" and over["evidence"]["measured"]["gap"] >= 0
    assert primary(rep)["id"] == "augmentation_too_strong" and first_fix(rep) == ["augmentation=none"]
    shared = run_report.build(with_info(run, transforms_shared=True))
    assert "over_regularization" not in [f["id"] for f in shared["findings"]]
    assert "transforms_not_separated" in alarms(shared)


@pytest.mark.parametrize("name,verdict,alarm", [("adam_third_short", "still improving", "undertrained"),
                                                ("adam_third", "stalled", "far_from_converged")])
def test_an_lr_one_grid_step_low_is_blamed_on_the_lr_and_never_on_the_labels(broken_runs, name, verdict, alarm):
    """A step 3x below the usual that left the run still paying for epochs, or stalled under a decaying schedule
    with most of the way ahead, set its pace: the LR is the cause, and a run that learned is not told to check
    its labels or its loop."""
    rep = report_of(broken_runs / name)
    assert rep["progress"]["verdict"] == verdict and alarm in alarms(rep)
    assert primary(rep)["id"] == "lr_too_low" and first_fix(rep) == ["optimizer.lr=0.003"]
    assert any("3x below the usual" in e and "set the pace" in e for e in primary(rep)["evidence_for"])
    texts = [r["text"] for f in rep["findings"] for r in f["recommendations"]] + [f["message"] for f in rep["findings"]]
    assert not any("labels" in t or "check the loop" in t for t in texts), texts


def test_a_run_still_improving_without_a_cause_is_not_sent_to_check_its_labels():
    from analysis.rules.causes import STILL_IMPROVING

    loss = 2.3 * np.exp(-0.08 * np.arange(1, 9))  # still falling steeply, far from 0; no config: no LR to blame
    rep = run_report.build(curve_run(loss, acc=np.linspace(0.3, 0.7, 8)))
    assert "undertrained" in alarms(rep) and rep["cause"]["primary"] is None
    (finding,) = [f for f in rep["findings"] if f["id"] == "undertrained"]
    assert finding["message"].endswith(STILL_IMPROVING)
    assert [r["overrides"] for r in finding["recommendations"]] in ([], [["trainer.epochs=16"]])


# ── the verdict in every report format and every sweep row ──

def test_every_format_shows_the_progress_verdict(broken_runs):
    path = broken_runs / "lr_low"
    rep = report_of(path)
    assert rep["progress"] == rep["summary"]["progress"] and rep["summary"]["progress_verdict"] == "not learning"
    json.dumps(rep, allow_nan=False)
    sentence = rep["progress"]["sentence"]
    assert "of the way from" in sentence and "95% interval" in sentence
    assert f"== Progress ==\n  {sentence}" in text.render_run(rep)
    assert "## Progress" in markdown.render_run(rep) and "<h2>Progress</h2>" in html.render_run(rep, run_report.curves(load_run(path)))


def test_runs_compared_carry_progress_columns_and_rows(broken_runs, tmp_path):
    proc = run_module("analysis", [str(broken_runs / "lr_low"), str(broken_runs / "short"), "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    rows = {r["job"]: r for r in csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text()))}
    assert rows["lr_low"]["progress_verdict"] == "not learning" and rows["short"]["still_falling"] == "True"
    assert float(rows["short"]["loss_progress"]) > float(rows["lr_low"]["loss_progress"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["job"]: r["progress"]["verdict"] for r in summary["runs"]} == {"lr_low": "not learning",
                                                                            "short": "still improving"}


# ── the floor: known, assumed conservatively, never 0 when unknown ──

def curve_run(loss, acc=None, config=None, val=None, n_classes=10):
    n = len(loss)
    acc = acc if acc is not None else np.linspace(0.2, 0.9, n)
    train = [{"epoch": i + 1, "loss": float(loss[i]), "accuracy": float(acc[i])} for i in range(n)]
    val = val or [{"epoch": i + 1, "loss": float(loss[i]) + 0.05, "accuracy": float(acc[i])} for i in range(n)]
    cfg = {"data": {"num_classes": n_classes}, **(config or {})}
    return run_from_records(train, val, config=cfg, status={"status": "completed"})


def test_a_first_epoch_that_diverged_does_not_make_a_run_above_ln_c_look_converged():
    """SGD at LR x1000 on digits: the first epoch's mean loss was 5e14, the last 10.8, far above ln 10. Measured from
    the first epoch the loss went "100% of the way"; measured from an untrained model's loss it went none of it."""
    loss = [5.0e14, 7.0e15, 3.3e19, 4.3e22, 6.1e23, 1.1e25, 3.6e22, 2.1e21, 8.8e7, 10.78]
    p = progress(curve_run(loss, acc=[0.1] * 10, config={"regularization": {"label_smoothing": 0.0}}))
    assert p["verdict"] == "not learning" and p["loss_progress"] < 0
    assert p["start"] == pytest.approx(math.log(10), rel=1e-3) and "rose within it" in p["start_source"]
    assert "above where it started" in p["sentence"] and "nothing to project" in p["sentence"]
    assert "train_loss" not in p["projection"]


def test_an_unknown_label_smoothing_leaves_the_floor_unknown_not_zero():
    run = curve_run(np.linspace(2.3, 0.7, 12))  # no regularization in the config
    p = progress(run)
    assert p["floor"] is None and p["floor_source"].startswith("unknown")
    assert p["judged_floor"] > 0.4  # the floor at smoothing 0.1 over 10 classes, 0.50
    assert "floor unknown" in p["sentence"]
    known = progress(curve_run(np.linspace(2.3, 0.7, 12), config={"regularization": {"label_smoothing": 0.0}}))
    assert known["floor"] == 0.0 and known["loss_progress"] < p["loss_progress"]  # a higher floor: less way to go


def test_a_loss_below_the_assumed_floor_lowers_it():
    p = progress(curve_run(np.linspace(2.3, 0.05, 12)))
    assert p["judged_floor"] <= 0.05 + 1e-9 and p["loss_progress"] <= 1


def test_the_projection_says_when_the_tail_allows_none():
    flat = progress(curve_run(np.concatenate([np.linspace(2.3, 1.0, 4), np.full(8, 1.0)]),
                              config={"regularization": {"label_smoothing": 0.0}}))
    assert "flat" in flat["projection"]["statement"]
    falling = progress(curve_run(2.3 * np.exp(-0.1 * np.arange(12)), config={"regularization": {"label_smoothing": 0.0}}))
    assert falling["projection"]["train_loss"]["projected"] < falling["end"]


# ── the validation-set size: recorded, inferred, or unknown (and judged conservatively) ──

@pytest.mark.parametrize("log,size", [("lung_keras_training_log.csv", 258), ("tomato_keras_training_log.csv", 2000),
                                      ("bloodgroup_keras_training_log.csv", 192),
                                      ("mnist_keras_run2_training_log.csv", 10000)])
def test_the_val_size_is_inferred_from_imported_accuracies(log, size):
    """The sizes the fixtures' README states (258, 2000, 10000; bloodgroup's accuracies step in 1/48 and 1/64)."""
    (run,) = load_runs(RAW / log)
    assert val_size_info(run) == (size, "inferred: every logged val accuracy is a multiple of 1/n")
    lines = run_report.build(run)["sections"][2]["lines"]
    assert f"validation set: {size} images, inferred" in " ".join(lines)


def test_coarse_or_unrelated_accuracies_leave_the_size_unknown():
    assert infer_val_size(np.array([0.91, 0.93, 0.95, 0.96])) is None  # two decimals fit too many sizes
    assert infer_val_size(np.random.default_rng(0).uniform(0.5, 0.9, 10)) is None  # no common denominator
    assert infer_val_size(np.array([k / 359 for k in (100, 250, 300, 340, 352)])) == 359
    (hf,) = load_runs(RAW / "hf_trainer_state.json")  # evaluation reports F1, not accuracy
    assert val_size_info(hf)[0] == 0 and "unknown" in val_size_info(hf)[1]


def swinging_3_class_run(acc):
    n = len(acc)
    train = [{"epoch": i + 1, "loss": 1.05 - 0.01 * i, "accuracy": 0.5} for i in range(n)]
    val = [{"epoch": i + 1, "loss": 1.06, "accuracy": float(a)} for i, a in enumerate(acc)]
    return run_from_records(train, val, config={"data": {"num_classes": 3}})


def test_an_accuracy_at_twice_chance_is_never_at_chance_whatever_the_val_size():
    """A Keras validation accuracy swinging 0.37-0.80 (chance 0.33), no val size in the log: it was called critical
    'stuck at chance' when the unknown size made the binomial band infinite."""
    swinging = [0.37, 0.80, 0.41, 0.75, 0.39, 0.78, 0.44, 0.71, 0.38, 0.80]
    run = swinging_3_class_run(swinging)
    assert val_size_info(run)[0] == 0
    assert CATALOG["accuracy_at_chance"].fn(run) is None
    stuck = CATALOG["accuracy_at_chance"].fn(swinging_3_class_run([0.33, 0.36, 0.31, 0.34, 0.35, 0.32, 0.34, 0.33]))
    assert stuck is not None and stuck.evidence["noise_source"].startswith("binomial at an assumed")


def test_an_oscillating_imported_run_is_caught_without_a_recorded_size():
    """lung_keras: val accuracy 0.59, 0.39, 0.80, 0.86, 0.66, 0.93 ... while train accuracy rises smoothly. The raw
    Keras log records no size; its own swings used to set the noise bar, and the run got no findings."""
    (run,) = load_runs(RAW / "lung_keras_training_log.csv")
    f = next(f for f in diagnose(run) if f.id == "loss_oscillating")
    assert "258" in f.evidence["noise_source"] and "inferred" in f.evidence["noise_source"]


# ── plateaus judged on the whole curve ──

def test_a_flat_stretch_followed_by_a_real_fall_is_no_plateau():
    rng = np.random.default_rng(0)
    known = {"regularization": {"label_smoothing": 0.0}}
    fall = np.concatenate([np.linspace(2.3, 1.0, 5), np.full(6, 1.0), np.linspace(1.0, 0.76, 19)])
    fall = fall + rng.normal(0, 0.002, len(fall))  # flat for 6 epochs, then 24% lower by the end
    assert "loss_plateau_early" not in {f.id for f in diagnose(curve_run(fall, config=known))}
    held = np.concatenate([np.linspace(2.3, 1.0, 5), np.full(25, 1.0)]) + rng.normal(0, 0.002, 30)
    assert "loss_plateau_early" in {f.id for f in diagnose(curve_run(held, config=known))}


def test_a_plateau_near_an_unknown_smoothing_floor_is_not_far_above_0():
    """Smoothing unknown: a loss flat at 0.6 over 10 classes may sit on its floor (0.50 at smoothing 0.1)."""
    rng = np.random.default_rng(1)
    loss = np.concatenate([np.linspace(2.3, 0.6, 5), np.full(25, 0.6)]) + rng.normal(0, 0.002, 30)
    ids = {f.id for f in diagnose(curve_run(loss))}
    assert "loss_plateau_early" not in ids
    assert "loss_plateau_early" in {f.id for f in diagnose(curve_run(
        loss, config={"regularization": {"label_smoothing": 0.0}}))}  # with no smoothing, 0.6 is far above 0


def test_published_fixtures_all_get_a_verdict_and_healthy_ones_no_progress_warning():
    from test_real_curves import HEALTHY, CURVES

    for name in HEALTHY:
        rep = run_report.build(load_run(CURVES / name))
        assert rep["progress"]["verdict"] in ("converged", "still improving", "unknown"), name
        assert not set(alarms(rep)) & {"not_learning", "undertrained", "far_from_converged"}, name
        lp = rep["progress"].get("loss_progress")
        assert lp is None or (math.isfinite(lp) and lp <= 1.0), name


# ── the reproductions at full dose (digits reaches 0.98) ──

@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
@pytest.mark.parametrize("overrides,cause,fix", [
    (["optimizer.lr=0.0005", "trainer.epochs=8"], "lr_too_low", "optimizer.lr=0.05"),  # ended at 0.20, "no findings"
    (["model.width=1"], "too_little_capacity", "model.width=4"),  # ended at 0.27 with an info only
    (["optimizer=adam", "optimizer.lr=1e-5"], "lr_too_low", "optimizer.lr=0.001"),  # was told to lower the decay
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_the_reported_runs_far_below_healthy_get_a_warning_and_their_knob(tmp_path, one_thread, overrides, cause, fix):
    best, _, _ = train_here(tmp_path, overrides)
    rep = report_of(tmp_path)
    assert best < 0.5 and set(alarms(rep)) & {"not_learning", "far_from_converged", "undertrained"}
    assert primary(rep)["id"] == cause and first_fix(rep) == [fix]


@pytest.mark.slow
@pytest.mark.parametrize("overrides,cause", [
    (["optimizer=adam"], "too_few_epochs"),  # tests/data/own_runs/adam_default_lr_32px: 0.944
    (["augmentation=basic"], "augmentation_too_strong"),  # tests/data/own_runs/crop_flip_32px: 0.886
    (["regularization.grad_clip=0.2"], "clipping_too_tight"),  # 0.875; its fix reached 0.983
    (["augmentation=randaugment", "augmentation.magnitude=5"], "augmentation_too_strong"),  # 0.830
    (["optimizer.momentum=0.5"], "lr_too_low"),  # 0.877
    (["regularization.label_smoothing=0.8"], "label_smoothing_too_strong"),  # 0.950, its targets nearly uniform
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_runs_a_few_points_below_healthy_are_fixed_by_their_first_advice(tmp_path, one_thread, overrides, cause):
    """Trained again, as the own_runs fixtures were: the warning, the cause, and its first fix appended to the
    run's command line reaches the healthy default's accuracy (0.98)."""
    from analysis.overrides import rerun

    _, _, val = train_here(tmp_path / "broken", overrides)
    run = load_run(tmp_path / "broken")
    run.overrides = list(overrides)  # trained through the compose API: no .hydra/overrides.yaml to read them from
    rep = run_report.build(run)
    assert val[-1]["accuracy"] < 0.96 and alarms(rep), alarms(rep)
    assert primary(rep)["id"] == cause
    _, _, fixed = train_here(tmp_path / "fixed", rerun(run, first_fix(rep)))
    assert fixed[-1]["accuracy"] > 0.97, (first_fix(rep), fixed[-1]["accuracy"])


@pytest.mark.slow
def test_the_healthy_default_run_is_converged_and_quiet(tmp_path, one_thread):
    best, _, _ = train_here(tmp_path, [])
    rep = report_of(tmp_path)
    assert best > 0.95 and rep["progress"]["verdict"] == "converged" and alarms(rep) == []


@pytest.mark.slow
def test_dead_units_of_a_huge_step_that_held_its_level_cost_nothing(tmp_path, one_thread):
    """AdamW at LR 1 (the fault matrix's x1000 dose): a layer 73% dead, but the run fit its training set and held
    the reference's accuracy over its last epochs: dead_relu is info, and no warning is left."""
    best, _, _ = train_here(tmp_path, ["data.image_size=16", "trainer.epochs=10", "optimizer=adamw",
                                       "optimizer.lr=1"])
    rep = report_of(tmp_path)
    dead = next(f for f in rep["findings"] if f["id"] == "dead_relu")
    assert best > 0.95 and dead["severity"] == "info" and alarms(rep) == []

"""python -m trainer.lr_find: Smith's LR range test on digits, its suggestion, and the analysis citing it."""

from __future__ import annotations

import json
import math

import pytest

from analysis import verify
from analysis.rules import causes, diagnose
from conftest import compose, run_module, train_here
from rundir.format import LR_FIND_DIR, LR_FIND_FIELDS, LR_FIND_JSON, LR_FIND_PNG
from rundir.lr_find import lr_find_for, lr_override
from test_rules import make
from trainer.config import validate

SETUP = ["data.image_size=16"]  # digits at 16 px: the fault matrix's setup, a quarter of the default's compute
DEFAULT_LR = 0.05  # SGDConf.lr


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """An outputs/ folder holding one range test, started at an LR 100x too low (its own run directory)."""
    import torch

    from trainer.lr_find import find

    root = tmp_path_factory.mktemp("outputs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        find(compose([*SETUP, f"optimizer.lr={DEFAULT_LR / 100}"]), root / LR_FIND_DIR / "2026-12-07" / "10-00-00")
    finally:
        torch.set_num_threads(before)
    return root


def result(outputs) -> dict:
    return json.loads((outputs / LR_FIND_DIR / "2026-12-07" / "10-00-00" / LR_FIND_JSON).read_text())


def test_the_range_test_from_an_lr_100x_too_low_suggests_one_within_10x_of_the_default(outputs):
    r = result(outputs)
    assert set(r) == set(LR_FIND_FIELDS)  # the documented fields, no more, no less
    assert DEFAULT_LR / 10 <= r["suggested_lr"] <= DEFAULT_LR * 10, r["method"]
    lrs = r["lrs"]
    assert len(lrs) == len(r["losses"]) == len(r["smoothed_losses"]) > 50 and lrs[0] == r["start_lr"]
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] > 1  # exponentially rising
    assert r["suggested_lr"] == pytest.approx(r["lr_at_min_loss"] / 10, rel=1e-2)
    assert min(r["smoothed_losses"]) < r["smoothed_losses"][0] - 0.3  # the loss fell before it rose
    assert r["override"] == f"optimizer.lr={r['suggested_lr']!r}"  # cosine: optimizer.lr is its starting LR
    assert (outputs / LR_FIND_DIR / "2026-12-07" / "10-00-00" / LR_FIND_PNG).stat().st_size > 1000


def test_the_override_is_translated_through_the_scheduler():
    assert lr_override(0.03, {"name": "cosine", "warmup_epochs": 2}) == "optimizer.lr=0.03"  # the warmup's target
    assert lr_override(0.03, {"name": "onecycle"}) == "optimizer.lr=0.09"  # onecycle's peak


def stalled_run(outputs, lr: float, extra: tuple[str, ...] = ()):
    """A run of the range test's setup at `lr` whose weights did not move, in outputs/<date>/<time>/."""
    from trainer.loop import plain

    n = 6
    run = make(n, train_loss=[2.3] * n, train_accuracy=[0.1] * n, val_accuracy=[0.1] * n,
               train_weight_update_ratio=[1e-9] * n, val_loss=[2.3] * n,
               config=plain(validate(compose([*SETUP, f"optimizer.lr={lr}", *extra]))))
    run.path = outputs / "2026-12-07" / "11-00-00"
    return run


def test_the_analysis_cites_the_range_test_of_the_same_setup_only(outputs):
    suggested = result(outputs)["suggested_lr"]
    run = stalled_run(outputs, 1e-5)
    low = next(c for c in causes.candidates(run, diagnose(run)) if c.id == "lr_too_low")
    assert any("LR range test of this setup" in e and "1/" in e for e in low.evidence_for), low.evidence_for
    assert low.recommendations[0].overrides == [f"optimizer.lr={suggested!r}"]
    other = stalled_run(outputs, 1e-5, ("model.width=4",))  # another model: not its setup
    assert lr_find_for(other.path, other.config) is None
    low = next(c for c in causes.candidates(other, diagnose(other)) if c.id == "lr_too_low")
    assert not any("LR range test" in e for e in low.evidence_for)


def test_verify_includes_the_suggestion_as_a_candidate(outputs, tmp_path):
    run = stalled_run(outputs, 1e-5)
    findings = [{"id": "x", "severity": "warning", "recommendations": [{"text": "t", "overrides": ["optimizer.lr=1.0"]}]}]
    p = verify.plan(run, findings, tmp_path / "verify")
    assert [fx["finding"] for fx in p["fixes"]] == ["x", "lr_find"]
    assert p["fixes"][1]["overrides"] == [f"optimizer.lr={result(outputs)['suggested_lr']!r}"]


@pytest.mark.slow
def test_the_suggestion_trains_to_the_healthy_accuracy(outputs, tmp_path, one_thread):
    best, _, val = train_here(tmp_path, [*SETUP, f"optimizer.lr={result(outputs)['suggested_lr']}"])
    assert val[-1]["accuracy"] >= 0.95  # the healthy reference at 16 px: 0.992 (noise 0.037, fault matrix)


@pytest.mark.slow
def test_the_command_writes_into_its_own_run_directory_and_refuses_bad_input(tmp_path):
    out = tmp_path / "lf"
    proc = run_module("trainer.lr_find", [*SETUP, "optimizer=adam", "scheduler=onecycle", f"hydra.run.dir={out}"])
    assert proc.returncode == 0, proc.stderr
    r = json.loads((out / LR_FIND_JSON).read_text())
    assert (out / LR_FIND_PNG).is_file() and r["override"] in proc.stdout and "onecycle's peak" in proc.stdout
    assert math.isclose(float(r["override"].split("=")[1]), 3 * r["suggested_lr"], rel_tol=0.01)
    bad = run_module("trainer.lr_find", ["optimizer.lrr=1", f"hydra.run.dir={tmp_path / 'bad'}"])
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr

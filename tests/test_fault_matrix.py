"""The dose-response fault matrix (benchmarks/fault_matrix.py): its case table, how a case is judged against the
replicated reference, the blind held-out third, and (-m slow, -m matrix) real runs of its cases."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fault_matrix as fm  # noqa: E402

CASES = {c.name: c for c in fm.generate_cases()}


def names(setup: str, knob: str) -> set[str]:
    return {c.name.split(" ", 2)[2] for c in CASES.values() if c.setup == setup and c.knob == knob}


def test_every_knob_is_turned_at_several_doses_each_way_for_every_setup():
    doses = {f"{way}{f}" for f in fm.SCALE for way in "x/"}
    for opt in ("sgd", "adam", "adamw"):
        assert names(opt, "optimizer.lr") == doses, opt
        assert {"x3", "x10", "x100"} <= names(opt, "regularization.weight_decay")
    assert names("sgd", "model.width") == {"1", "2", "4"}
    assert names("sgd", "trainer.epochs") == names("adam", "trainer.epochs") == {"1", "2", "3"}
    assert {"32", "1438"} <= names("sgd", "data.batch_size")
    for knob in ("optimizer.momentum", "regularization.label_smoothing", "regularization.grad_clip", "scheduler",
                 "augmentation"):
        assert len(names("sgd", knob)) >= 3, knob
    assert names("resnet", "optimizer.lr") and fm.SETUPS["resnet"][1:] == ("model=resnet18", "model.width=8")
    faults = {p.stem for p in (ROOT / "conf" / "fault").glob("*.yaml")} - {"none"}
    injected = {o.split("=")[1] for c in CASES.values() for o in c.change if o.startswith("fault=")}
    assert faults <= injected
    assert {"noisy_labels", "class_imbalance"} <= injected  # the kinds being added, guarded until they land
    assert len(fm.SEEDS) >= 3


def test_a_fixed_third_of_every_knob_is_held_out():
    for knob in {c.knob for c in CASES.values()}:
        group = [c for c in CASES.values() if c.knob == knob]
        assert sum(c.held_out for c in group) == round(len(group) / 3), knob
    assert {c.name for c in fm.generate_cases() if c.held_out} == {c.name for c in CASES.values() if c.held_out}


def test_a_case_is_judged_by_its_damage_against_the_reference_noise():
    assert fm.classify(0.96 - 0.54, 0.02) == "broken" and fm.band(0.96 - 0.54) == "20-50 points"
    assert fm.band(0.8) == ">= 50 points" and fm.band(0.05) == "5-20 points"
    assert fm.classify(0.015, 0.02) == "healthy" and fm.classify(-0.03, 0.02) == "healthy"
    assert fm.classify(0.04, 0.02) == "mild"  # beyond the noise but under 5 points
    assert fm.classify(0.07, 0.09) == "healthy"  # 7 points inside a wide noise band: within the noise
    assert fm.classify(0.0, 0.02, silent=True) == "silent fault"


def test_the_reference_noise_is_a_prediction_interval_floored_by_the_binomial():
    flat = [0.5, 0.9, 0.97, 0.97, 0.97]
    ref = fm.reference([0.97, 0.98, 0.96], [flat] * 3, 359)
    assert ref.noise == pytest.approx(4.303 * 0.01 * (4 / 3) ** 0.5, rel=1e-3) and ref.converged
    tight = fm.reference([0.97, 0.97, 0.97], [flat] * 3, 359)  # three equal seeds: the binomial floor
    assert tight.noise == pytest.approx(1.96 * (0.97 * 0.03 / 359) ** 0.5 * (4 / 3) ** 0.5, rel=1e-3)
    assert not fm.reference([0.97] * 3, [[0.5, 0.7, 0.8, 0.9, 0.97]] * 3, 359).converged  # still rising


def test_a_fault_kind_the_config_does_not_know_is_skipped_and_said():
    guarded = fm.Case("sgd fault not_yet", "sgd", ("fault=not_a_fault_yet",), "fault", guarded=True)
    ok, skipped = fm.known_cases([guarded])
    assert ok == [] and skipped[0][0] is guarded and "not_a_fault_yet" in skipped[0][1]
    with pytest.raises(SystemExit, match="does not compose"):  # an unguarded typo in the table stops the script
        fm.known_cases([fm.Case("sgd typo", "sgd", ("optimizer.lrr=1",), "optimizer.lr")])


def test_the_right_knob_is_the_broken_key_or_its_group():
    case = CASES["sgd scheduler step every epoch"]
    assert fm.touches(["scheduler=cosine"], case) and not fm.touches(["optimizer.lr=0.5"], case)
    assert fm.touches(["fault=none"], CASES["sgd fault dead_relu"])
    assert fm.touches(["data.batch_size=32"], CASES["sgd trainer.epochs 1"])  # steps: epochs or a smaller batch
    assert not fm.touches(["regularization.weight_decay=0.0001"], CASES["sgd optimizer.lr /100"])


def test_held_out_rows_stay_blind_until_revealed():
    def row(name, held, damage):
        return {"case": name, "held_out": held, "accuracy": 0.5, "reference": 0.5 + damage, "noise": 0.02,
                "damage": damage, "kind": fm.classify(damage, 0.02), "band": fm.band(max(damage, 0.05)),
                "alarms": ["x"], "primary": "lr_too_low", "advice": ["optimizer.lr=0.05"], "uncomposable": [],
                "flagged": True, "right_knob": True, "fixed": True}
    rows = [row("tuned case", False, 0.3), row("secret case", True, 0.6)]
    refs = {"sgd": fm.Reference([0.97, 0.98, 0.96], 0.05, True)}
    blind = fm.report_text(refs, rows, [], reveal=False, machine="m", wall_s=None)
    assert "tuned case" in blind and "secret case" not in blind
    assert "| >= 50 points: flagged | - | 1/1 | 1/1 |" in blind  # its totals are there
    assert "secret case" in fm.report_text(refs, rows, [], reveal=True, machine="m", wall_s=None)


# ── real runs ──

@pytest.mark.slow
def test_one_case_end_to_end_with_its_reference_and_fix(tmp_path, one_thread):
    """Three reference seeds, one broken case, its fix rerun on its own command line: the matrix's whole path."""
    case = CASES["sgd trainer.epochs 1"]
    refs, rows = fm.evaluate([case], tmp_path, workers=1)
    ref, r = refs["sgd"], rows[0]
    assert ref.converged and len(ref.accuracies) == len(fm.SEEDS) and ref.mean > 0.9
    assert r["damage"] == pytest.approx(ref.mean - r["accuracy"]) and r["uncomposable"] == []
    assert r["kind"] == "broken" and "fixed_accuracy" in r or r["kind"] != "broken"


# Every case: `python -m pytest -m matrix` (its runs cached in outputs/fault_matrix, shared with the script).
@pytest.mark.matrix
@pytest.mark.parametrize("name", list(CASES))
def test_matrix_case(name, one_thread):
    ok, _ = fm.known_cases([CASES[name]])
    if not ok:
        pytest.skip(f"{name}: this config does not have it yet")
    _, rows = fm.evaluate(ok, ROOT / "outputs" / "fault_matrix", workers=1, fix=False)
    r = rows[0]
    assert r["uncomposable"] == []  # every recommendation runs on the run's own command line
    if r["kind"] in ("broken", "silent fault"):
        assert r["flagged"], r
    elif r["kind"] == "healthy":
        assert r["alarms"] == [], r

"""The generated fault matrix (benchmarks/fault_matrix.py): its cases come from the schema, and real runs of
them are flagged with the broken knob as the root cause (a fast subset here, every case with -m matrix)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from fault_matrix import FAST, OPTIMIZERS, analyse, apply, first_advice, generate_cases, touches, train_cached  # noqa: E402

CASES = {c.name: c for c in generate_cases()}


def test_cases_push_every_knob_both_ways_for_every_optimizer():
    for opt in OPTIMIZERS:
        knobs = [c for c in CASES.values() if c.setup[0] == f"optimizer={opt}" and "resnet18" not in c.setup]
        names = " ".join(c.name for c in knobs)
        for part in ("optimizer.lr x1000", "optimizer.lr /1000", "weight_decay x100", "weight_decay x1000",
                     "label_smoothing 0.9", "grad_clip 1e-4", "whole train set", "healthy"):
            assert part in names, (opt, part)
    faults = {p.stem for p in (ROOT / "conf" / "fault").glob("*.yaml")} - {"none"}
    assert faults <= {c.overrides[c.overrides.index(f"fault={f}")].split("=")[1] for c in CASES.values()
                      for f in faults if f"fault={f}" in c.overrides}
    assert any("model=resnet18" in c.setup for c in CASES.values() if c.healthy)


def test_a_fixed_third_is_held_out_among_broken_and_healthy_cases():
    for group in ([c for c in CASES.values() if c.healthy], [c for c in CASES.values() if not c.healthy]):
        assert sum(c.held_out for c in group) == len(group) // 3
    assert {c.name for c in generate_cases() if c.held_out} == {c.name for c in CASES.values() if c.held_out}


def test_pasting_advice_replaces_the_key_and_a_group_choice_drops_its_keys():
    base = ("optimizer=sgd", "scheduler=step", "scheduler.step_size=1", "optimizer.lr=50")
    assert apply(base, ["optimizer.lr=0.5"]) == ("optimizer=sgd", "scheduler=step", "scheduler.step_size=1",
                                                 "optimizer.lr=0.5")
    assert apply(base, ["scheduler=cosine"]) == ("optimizer=sgd", "optimizer.lr=50", "scheduler=cosine")
    assert touches(["fault=none"], "fault") and touches(["scheduler=cosine"], "scheduler")
    assert not touches(["optimizer.lr=0.5"], "regularization.weight_decay")


# Every case: `python -m pytest -m matrix` (about an hour on 2 cores; benchmarks/fault_matrix.py measures the same
# cases with their fixes). `-m slow` (so CI) runs FAST.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n in FAST else pytest.mark.matrix)
                                  for n in CASES])
def test_matrix_case(name, tmp_path, one_thread):
    case = CASES[name]
    report = analyse(train_cached(case.overrides, tmp_path))
    alarms = [f["id"] for f in report["findings"] if f["severity"] in ("warning", "critical")]
    if case.healthy:
        assert alarms == [], alarms
        return
    final = report["summary"]["final_val_accuracy"] or 0.0
    if final >= 0.9 and case.knob != "fault":
        return  # the knob did not break this run: nothing to diagnose (the matrix lists it as "no effect")
    assert alarms, report["findings"]
    assert touches(first_advice(report), case.knob), (report["cause"], first_advice(report))

"""Every recommendation runs on the run's own command line: a fix that switches a group's option takes the run's
overrides of that group off it (Hydra would refuse `scheduler=step scheduler.step_size=1 scheduler=cosine`)."""

from __future__ import annotations

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

from analysis import run_report
from analysis.overrides import mark_replacements, replaced, report_recommendations, rerun
from conftest import compose, train_here
from rundir.read import load_run, run_from_records
from trainer.config import validate

STEP_RUN = ["scheduler=step", "scheduler.step_size=1", "optimizer.lr=0.05"]


def runs(overrides: list[str]) -> bool:
    """The command line composes with Hydra's compose API and passes the trainer's validation."""
    validate(compose(overrides))
    return True


def test_appending_a_group_switch_alone_is_refused_by_hydra():
    with pytest.raises(HydraException, match="scheduler.step_size"):
        compose([*STEP_RUN, "scheduler=cosine"])
    with pytest.raises(HydraException):  # a deletion appended comes too late (and a schema key cannot go)
        compose([*STEP_RUN, "scheduler=cosine", "~scheduler.step_size"])


def test_a_group_switch_replaces_the_old_options_keys_and_the_rerun_composes():
    run = run_from_records([], [], config={"scheduler": {"name": "step", "step_size": 1, "gamma": 0.1}},
                           overrides=STEP_RUN)
    assert replaced(run, ["scheduler=cosine"]) == ["scheduler=step", "scheduler.step_size=1"]
    assert rerun(run, ["scheduler=cosine"]) == ["optimizer.lr=0.05", "scheduler=cosine"]
    assert runs(rerun(run, ["scheduler=cosine"]))
    # a value of the same option stays, the fix's own key replaces the run's value
    assert replaced(run, ["scheduler=step", "scheduler.gamma=0.5"]) == []
    assert rerun(run, ["optimizer.lr=0.5"]) == ["scheduler=step", "scheduler.step_size=1", "optimizer.lr=0.5"]
    recs = [{"text": "decay smoothly", "overrides": ["scheduler=cosine"]}, {"text": "x", "overrides": ["optimizer.lr=1.0"]}]
    mark_replacements(run, recs)
    assert recs[0]["replaces"] == ["scheduler=step", "scheduler.step_size=1"] and "replaces" not in recs[1]


def test_every_recommendation_of_a_real_step_run_runs_on_its_command_line(tmp_path, one_thread):
    own = ["trainer.device=cpu", "model.width=4", "data.image_size=16", "trainer.epochs=6",
           "scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.01"]
    train_here(tmp_path, own)
    run = load_run(tmp_path)
    run.overrides = own  # trained in-process: no .hydra/overrides.yaml, so the command line is given here
    report = run_report.build(run)
    recs = report_recommendations(report)
    fixes = [r["overrides"] for r in recs if r.get("overrides")]
    assert ["scheduler=cosine"] in fixes, fixes
    cosine = next(r for r in recs if r.get("overrides") == ["scheduler=cosine"])
    assert cosine["replaces"] == ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.01"]
    for fix in fixes:
        assert runs(rerun(run, fix)), fix


def test_every_recommendation_of_a_run_with_an_injected_amp_fault_runs_on_its_command_line():
    """fault=clip_before_unscale exists only under fp16: its bf16 alternative must take the fault off too (the fault
    matrix found `trainer.amp=bf16` alone refused by the fault's own check). The records are those of such a run:
    gradient norms read before unscaling track the loss scale."""
    own = ["trainer.device=cpu", "model.width=4", "data.image_size=16", "trainer.epochs=4", "trainer.amp=fp16",
           "regularization.grad_clip=1.0", "fault=clip_before_unscale"]
    config = validate(compose(own))
    plain = OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
    train = [{"epoch": e, "loss": 2.3 - 0.1 * e, "accuracy": 0.1 + 0.05 * e, "mean_grad_norm": 3000.0 + e,
              "amp_scale": 65536.0, "clipped_fraction": 1.0, "learning_rate": 0.05} for e in range(1, 5)]
    val = [{"epoch": e, "loss": 2.3 - 0.1 * e, "accuracy": 0.1 + 0.05 * e} for e in range(1, 5)]
    run = run_from_records(train, val, config=plain, overrides=own, status={"status": "completed"})
    report = run_report.build(run)
    assert "amp_scaled_gradients" in [f["id"] for f in report["findings"]]
    fixes = [r["overrides"] for r in report_recommendations(report) if r.get("overrides")]
    assert ["fault=none", "trainer.amp=bf16"] in fixes, fixes
    for fix in fixes:
        assert runs(rerun(run, fix)), fix

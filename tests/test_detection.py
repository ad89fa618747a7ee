"""Fault injection end to end: real short runs on digits whose analysis reports the matching finding.

The cases are benchmarks/detection.py's planted faults with their expected findings; the slow ones run with -m slow.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from conftest import ROOT, compose, read_jsonl, run_trainer

sys.path.insert(0, str(ROOT / "benchmarks"))
from detection import CASES, caught, run_case  # noqa: E402


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if fast else pytest.mark.slow) for n, (_, _, fast)
                                  in CASES.items()])
def test_fault_is_detected(name):
    overrides, expected, _ = CASES[name]
    findings = run_case(overrides, seed=0)
    assert caught(findings, expected), [(f["id"], f["severity"]) for f in findings]


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_nonfinite_loss_stops_the_run_by_default(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path}", "optimizer.lr=1e5", "scheduler=constant", "trainer.epochs=5"])
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "nonfinite_loss" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    status = json.loads((tmp_path / "diagnostics" / "status.json").read_text())
    assert status["status"] == "failed" and status["finding"] == "nonfinite_loss"
    assert len(read_jsonl(tmp_path / "diagnostics" / "train_diagnostics.jsonl")) < 5  # ended early
    assert "nonfinite_loss" in (tmp_path / "train.log").read_text()


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_stop_on_ends_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    from trainer.config import validate
    from trainer.errors import StopRun
    from trainer.loop import train

    cfg = compose(["scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.5", "trainer.epochs=12",
                   "trainer.stop_on=[lr_reduced_early]"], diag_dir=tmp_path / "diagnostics")
    with pytest.raises(StopRun) as stop:
        train(validate(cfg), tmp_path)
    assert stop.value.finding_id == "lr_reduced_early"
    fired = len(read_jsonl(tmp_path / "diagnostics" / "train_diagnostics.jsonl"))
    # the first cut comes at epoch 3 at the latest (limit: 25% of 12 epochs); the run stops once the
    # finding has held at trainer.stop_persist_epochs (2) consecutive epoch ends
    assert fired <= 4
    live = json.loads((tmp_path / "diagnostics" / "live_findings.json").read_text())
    (entry,) = [e for e in live["findings"] if e["id"] == "lr_reduced_early"]
    assert entry["epochs"][-1] == [fired - 1, fired] and entry["stopped_run"] and live["last_epoch"] == fired
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert saved["epoch"] == fired - 1  # the epoch that fired wrote no checkpoint
    status = json.loads((tmp_path / "diagnostics" / "status.json").read_text())
    assert status["status"] == "failed" and status["finding"] == "lr_reduced_early"


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_live_findings_are_logged_once_at_the_epoch_they_fire(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path}", "fault=shuffled_labels", "trainer.epochs=4"])
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "train.log").read_text()
    assert log.count("accuracy_at_chance") == 1 and "epoch 3: accuracy_at_chance" in log


def test_unknown_stop_on_id_is_a_config_error(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path}", "trainer.stop_on=[nan_loss]"])
    assert proc.returncode == 2 and "trainer.stop_on names unknown finding id 'nan_loss'" in proc.stderr

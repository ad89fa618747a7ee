"""`python -m analysis RUN --verify`: the report's top fixes rerun as one Hydra multirun against a control,
and the run report's `Verified` section; live findings that cleared, and stop_on only after they persist."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import compose, read_jsonl, run_module, run_trainer

HAIR_TRIGGER = ["trainer.device=cpu", "model.width=4", "data.image_size=16", "scheduler=plateau",
                "scheduler.patience=0", "scheduler.threshold=0.5"]
FINDINGS = [{"id": "lr_cut_premature", "severity": "warning", "recommendations": [
    {"text": "lower the threshold", "overrides": ["scheduler.threshold=0.0001"]},
    {"text": "train longer", "overrides": ["trainer.epochs=30"]},  # the verification sets the epochs itself
    {"text": "more patience", "overrides": ["scheduler.patience=2"]},
    {"text": "no early cuts", "overrides": ["scheduler=cosine"]}]},
    {"id": "overtraining", "severity": "info", "recommendations": [{"text": "x", "overrides": ["trainer.epochs=2"]}]}]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def fake_run(path: Path, overrides: list[str], accs: list[float], seed: int = 0) -> Path:
    """A run directory as the trainer leaves it, reduced to what the analysis reads."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    diag = path / "diagnostics"
    write_jsonl(diag / "train_diagnostics.jsonl", [{"epoch": e, "loss": 2.0 / e, "learning_rate": 0.05}
                                                   for e in range(1, len(accs) + 1)])
    write_jsonl(diag / "val_diagnostics.jsonl", [{"epoch": e, "loss": 1.0, "accuracy": a}
                                                 for e, a in enumerate(accs, 1)])
    (diag / "status.json").write_text(json.dumps({"status": "completed", "epoch": len(accs), "epochs": len(accs)}))
    (diag / "run_info.json").write_text(json.dumps({"config": {"trainer": {"seed": seed, "epochs": len(accs)}}}))
    return path


def test_plan_is_one_multirun_whose_options_compose_to_control_and_fixes(tmp_path):
    from rundir.read import load_run
    from analysis.records import plain_overrides
    from analysis.verify import CONF_DIR, FIX_GROUP, plan, write_plan

    run = load_run(fake_run(tmp_path / "run", HAIR_TRIGGER + ["trainer.epochs=6", "trainer.seed=4"],
                            [0.3, 0.5, 0.6, 0.7, 0.72, 0.74], seed=4))
    sweep_dir = tmp_path / "run" / "verify" / "now"
    p = plan(run, FINDINGS, sweep_dir, top=3, epochs=4, seeds=2, extra=("hydra/launcher=joblib",))
    cmd = p["command"]
    assert cmd[:4] == [sys.executable, "-m", "trainer", "-m"]
    assert f"hydra.sweep.dir={sweep_dir.absolute()}" in cmd and cmd[-1] == "hydra/launcher=joblib"
    assert f"+{FIX_GROUP}=control,fix1,fix2,fix3" in cmd and "trainer.seed=4,5" in cmd and "trainer.epochs=4" in cmd
    # the run's own scheduler overrides leave the command line (they would beat the options), the rest stay
    assert "model.width=4" in cmd and not any(c.startswith("scheduler") for c in cmd)
    assert [f["overrides"] for f in p["fixes"]] == [["scheduler.threshold=0.0001"], ["scheduler.patience=2"],
                                                    ["scheduler=cosine"]]  # neither epochs nor the info finding's advice
    assert p["original"]["best_val_accuracy"] == pytest.approx(0.7)  # the run's own, over the same 4 epochs
    write_plan(p)
    assert json.loads((sweep_dir / "verify.json").read_text())["command"] == cmd
    # a best line of the verification sweep, as overrides that need no option files
    assert plain_overrides(sweep_dir, ["model.width=4", "verify_fix=fix1"]) == [
        "model.width=4", "scheduler=plateau", "scheduler.patience=0", "scheduler.threshold=0.0001"]
    assert plain_overrides(sweep_dir, ["verify_fix=fix3"]) == ["scheduler=cosine"]
    assert (sweep_dir / CONF_DIR / FIX_GROUP / "fix3.yaml").is_file()
    cli = [c for c in cmd[4:] if not c.startswith(("hydra.sweep.dir", "hydra/launcher", f"+{FIX_GROUP}",
                                                    "trainer.seed"))]
    sched = {}
    for option in ("control", "fix1", "fix2", "fix3"):
        cfg = compose([*cli, f"+{FIX_GROUP}={option}", "trainer.seed=4"])
        sched[option] = dict(cfg.scheduler)
        assert cfg.model.width == 4 and cfg.trainer.epochs == 4
    assert (sched["control"]["name"], sched["control"]["patience"], sched["control"]["threshold"]) == ("plateau", 0, 0.5)
    assert (sched["fix1"]["patience"], sched["fix1"]["threshold"]) == (0, 0.0001)
    assert (sched["fix2"]["patience"], sched["fix2"]["threshold"]) == (2, 0.5)
    assert sched["fix3"]["name"] == "cosine" and "patience" not in sched["fix3"]


def prepared_verification(tmp_path: Path, accs: dict[str, list[float]]) -> Path:
    """A run with a finished verification sweep: each option's best accuracy per seed."""
    from analysis.verify import MANIFEST, VERIFY_DIR

    run = fake_run(tmp_path / "run", ["scheduler=plateau", "scheduler.threshold=0.5"], [0.5, 0.8, 0.9, 0.916])
    sweep = run / VERIFY_DIR / "2026-11-30_12-00-00"
    num = 0
    seeds = range(len(next(iter(accs.values()))))
    for option, values in accs.items():
        for seed, acc in zip(seeds, values):
            fake_run(sweep / str(num), ["scheduler=plateau", f"+verify_fix={option}", f"trainer.seed={seed}"],
                     [acc - 0.1, acc], seed=seed)
            num += 1
    manifest = {"run": str(run), "sweep_dir": str(sweep), "epochs": 2, "seeds": list(seeds),
                "fixes": [{"name": "fix1", "overrides": ["scheduler.threshold=0.0001"], "finding": "lr_cut_premature"},
                          {"name": "fix2", "overrides": ["scheduler.patience=2"], "finding": "lr_cut_premature"}],
                "original": {"best_val_accuracy": 0.8, "epochs": 2}, "command": ["python", "-m", "trainer"]}
    (sweep / MANIFEST).write_text(json.dumps(manifest))
    return run


def analyze(*args):
    return run_module("analysis", [str(a) for a in args], timeout=120)


def test_a_fix_is_better_beyond_noise_only_past_the_t_test_shared_among_the_fixes(tmp_path):
    """fix1 is 0.04 above the control: 3 SE of the pooled sd (0.013, 3 degrees of freedom), which 2 SE would call
    beyond noise; Student's t at 3 dof with the 5% level shared by the 2 fixes (t = 4.2) does not."""
    from analysis.verification import result
    from analysis.verify import VERIFY_DIR

    run = prepared_verification(tmp_path, {"control": [0.90, 0.92], "fix1": [0.94, 0.96], "fix2": [0.91, 0.925]})
    (sweep,) = (run / VERIFY_DIR).iterdir()
    res = result(sweep)
    fix1 = next(f for f in res["fixes"] if f["name"] == "fix1")
    assert fix1["mean"] - res["control"]["mean"] == pytest.approx(0.04)
    assert 2 * res["noise_sd"] < 0.04  # 2 SE of a difference of two means of 2 runs each: 2 sd
    assert fix1["verdict"] == "within noise of the control"


def test_verified_section_ranks_fixes_against_the_control_with_noise(tmp_path):
    run = prepared_verification(tmp_path, {"control": [0.90, 0.92], "fix1": [0.97, 0.98], "fix2": [0.91, 0.925]})
    proc = analyze(run)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "== Verified ==" in text
    assert ("scheduler.threshold=0.0001: val accuracy 0.800 -> 0.975 (n=2) in 2 epochs, control 0.910: "
            "better beyond noise") in text
    assert "scheduler.patience=2: val accuracy 0.800 -> 0.917 (n=2) in 2 epochs, control 0.910: " \
           "within noise of the control" in text
    assert text.index("scheduler.threshold=0.0001: val") < text.index("scheduler.patience=2: val")  # ranked
    report = json.loads(analyze(run, "--format", "json").stdout)
    (verified,) = [s for s in report["sections"] if s["title"] == "Verified"]
    assert verified["data"]["noise_sd"] == pytest.approx(0.0112, abs=1e-3)
    assert [f["name"] for f in verified["data"]["fixes"]] == ["fix1", "fix2"]
    assert "better beyond noise" in analyze(run, "--format", "markdown").stdout
    html = analyze(run, "--format", "html").stdout
    assert "<h2>Verified</h2>" in html and "scheduler.threshold=0.0001: val accuracy 0.800 -&gt; 0.975" in html


def test_one_seed_says_the_noise_is_unmeasured(tmp_path):
    run = prepared_verification(tmp_path, {"control": [0.91], "fix1": [0.97], "fix2": [0.90]})
    text = analyze(run).stdout
    assert "0.800 -> 0.970 in 2 epochs, control 0.910: better (one seed each: run-to-run noise not measured)" in text
    assert "rerun with --seeds 3" in text


def test_verify_refuses_a_sweep_and_bad_numbers(tmp_path):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "multirun.yaml").write_text("hydra: {}\n")
    proc = analyze(tmp_path / "sweep", "--verify")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --verify takes one run directory")
    run = fake_run(tmp_path / "run", [], [0.5, 0.6])
    proc = analyze(run, "--verify", "--top", "0")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --top must be >= 1, got 0"
    proc = analyze(run, "--", "hydra/launcher=joblib")
    assert proc.returncode == 2 and "for --verify only" in proc.stderr


@pytest.mark.slow
def test_verify_end_to_end_on_a_faulty_digits_run(tmp_path):
    """A hair-trigger plateau run; its top fix (scheduler.threshold=0.0001) rerun against a control."""
    run = tmp_path / "run"
    proc = run_trainer([f"hydra.run.dir={run}", *HAIR_TRIGGER, "trainer.epochs=6"],
                       env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e '.[sweeps]'")
    proc = run_module("analysis", [str(run), "--verify", "--top", "1", "--epochs", "3",
                                   "--", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],  # the user's launcher
                      timeout=600, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (run / "verify").iterdir()
    jobs = {json.loads((sweep / j / "diagnostics" / "run_info.json").read_text())["config"]["scheduler"]["threshold"]:
            sweep / j for j in ("0", "1")}
    assert set(jobs) == {0.5, 0.0001}  # the control, and the fix
    control_acc = max(r["accuracy"] for r in read_jsonl(jobs[0.5] / "diagnostics" / "val_diagnostics.jsonl"))
    fix_acc = max(r["accuracy"] for r in read_jsonl(jobs[0.0001] / "diagnostics" / "val_diagnostics.jsonl"))
    original = max(r["accuracy"] for r in read_jsonl(run / "diagnostics" / "val_diagnostics.jsonl")
                   if r["epoch"] <= 3)
    line = (f"scheduler.threshold=0.0001: val accuracy {original:.3f} -> {fix_acc:.3f} in 3 epochs, "
            f"control {control_acc:.3f}")
    assert line in proc.stdout
    assert line in analyze(run).stdout  # stored: a later analysis shows it too
    assert json.loads((sweep / "verify.json").read_text())["result"]["fixes"][0]["name"] == "fix1"
    sweep_text = analyze(sweep).stdout  # the verification sweep's own report: its best line is pasteable
    best_line = next(line for line in sweep_text.splitlines() if line.startswith("best: "))
    assert "verify_fix" not in best_line and "scheduler.patience=0" in best_line
    assert "scheduler.threshold=" in best_line
    hydra_cfg = (sweep / "0" / ".hydra" / "hydra.yaml").read_text()
    assert "JoblibLauncher" in hydra_cfg


# ── live findings ──

class Scripted:
    """Stands in for the rule catalog: which finding ids hold at each epoch."""

    def __init__(self, script: dict[int, list[str]]):
        self.script, self.epoch = script, 0

    def __call__(self, run):
        from analysis.findings import Finding

        epoch = run.last_epoch
        return [Finding(i, "critical", f"{i} at {epoch}") for i in self.script.get(epoch, [])]


def live(monkeypatch, tmp_path, script, stop_on=("accuracy_at_chance",), persist=2):
    import trainer.live as live_mod

    monkeypatch.setattr(live_mod, "diagnose", Scripted(script))
    lf = live_mod.LiveFindings({}, {}, list(stop_on), [], [], persist, tmp_path)
    stops = {}
    for epoch in range(1, 7):
        stop = lf.epoch_end(epoch, {"epoch": epoch, "loss": 1.0}, {"epoch": epoch, "accuracy": 0.5})
        if stop is not None:
            stops[epoch] = stop
            break
    return stops, json.loads((tmp_path / "live_findings.json").read_text())


def test_a_live_finding_stops_the_run_only_once_it_has_persisted(monkeypatch, tmp_path):
    # held at epoch 1, cleared at 2, back at 4 and 5: the second episode is the one that persisted
    stops, record = live(monkeypatch, tmp_path, {1: ["accuracy_at_chance"], 4: ["accuracy_at_chance"],
                                                 5: ["accuracy_at_chance"], 3: ["loss_plateau_early"]})
    assert list(stops) == [5] and stops[5].finding_id == "accuracy_at_chance"
    by_id = {e["id"]: e for e in record["findings"]}
    assert by_id["accuracy_at_chance"]["epochs"] == [[1, 1], [4, 5]] and by_id["accuracy_at_chance"]["stopped_run"]
    assert by_id["loss_plateau_early"]["epochs"] == [[3, 3]] and not by_id["loss_plateau_early"]["active"]
    stops, _ = live(monkeypatch, tmp_path / "one", {1: ["accuracy_at_chance"]}, persist=1)
    assert list(stops) == [1]  # persist 1: the old behaviour, at once


def test_cleared_live_findings_appear_in_the_final_report(tmp_path):
    run = fake_run(tmp_path / "run", [], [0.3, 0.5, 0.8, 0.9, 0.95])
    (run / "diagnostics" / "live_findings.json").write_text(json.dumps({"persist_epochs": 2, "last_epoch": 5,
        "findings": [{"id": "accuracy_at_chance", "severity": "critical", "message": "at chance",
                      "epochs": [[1, 3]], "active": False, "stopped_run": False}]}))
    text = analyze(run).stdout
    assert "== Live findings that cleared ==" in text
    assert "accuracy_at_chance (critical) fired live at epochs 1-3, cleared by epoch 4: at chance" in text


def test_a_resumed_run_continues_its_live_record_cut_to_the_checkpoint(monkeypatch, tmp_path):
    import trainer.live as live_mod

    (tmp_path / "live_findings.json").write_text(json.dumps({"persist_epochs": 2, "last_epoch": 5, "findings": [
        {"id": "accuracy_at_chance", "severity": "critical", "message": "m", "epochs": [[1, 2], [4, 5]],
         "active": True, "stopped_run": False}]}))
    monkeypatch.setattr(live_mod, "diagnose", Scripted({4: ["accuracy_at_chance"]}))
    kept = [{"epoch": e, "loss": 1.0} for e in (1, 2, 3)]  # the checkpoint covered epoch 3
    lf = live_mod.LiveFindings({}, {}, ["accuracy_at_chance"], kept, [dict(r, accuracy=0.5) for r in kept], 2,
                               tmp_path)
    assert lf.record["accuracy_at_chance"]["epochs"] == [[1, 2]] and not lf.record["accuracy_at_chance"]["active"]
    assert lf.epoch_end(4, {"epoch": 4, "loss": 1.0}, {"epoch": 4, "accuracy": 0.5}) is None  # held once: no stop
    record = json.loads((tmp_path / "live_findings.json").read_text())
    assert record["findings"][0]["epochs"] == [[1, 2], [4, 4]] and record["last_epoch"] == 4

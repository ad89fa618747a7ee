"""Sweep reports from real multiruns: provenance, run table, axes, recommendations, files, safety."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

from conftest import ROOT, read_jsonl, run_module


def analyze(*args, cwd=ROOT):
    return run_module("analysis", [str(a) for a in args], cwd=cwd, timeout=120)


def test_2x2_report_rows_match_the_runs_own_jsonl(sweep_2x2):
    proc = analyze(sweep_2x2, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    s = report["sweep"]
    assert s["axes"] == {"scheduler.patience": [1, 3], "regularization.label_smoothing": [0, 0.1]}
    assert s["jobs"]["expected"] == 4 and s["jobs"]["completed"] == 4 and s["jobs"]["missing"] == 0
    assert "scheduler.patience=1,3" in s["command"]
    rows = {r["job"]: r for r in report["runs"]}
    assert len(rows) == 4
    for num, (patience, smoothing) in enumerate([(1, 0), (1, 0.1), (3, 0), (3, 0.1)]):
        r = rows[str(num)]
        assert r["overrides"]["scheduler.patience"] == patience
        assert r["overrides"]["regularization.label_smoothing"] == smoothing
        val = read_jsonl(sweep_2x2 / str(num) / "diagnostics" / "val_diagnostics.jsonl")
        train = read_jsonl(sweep_2x2 / str(num) / "diagnostics" / "train_diagnostics.jsonl")
        assert r["best_val_accuracy"] == max(v["accuracy"] for v in val)
        assert r["final_val_accuracy"] == val[-1]["accuracy"] and r["final_train_loss"] == train[-1]["loss"]
    # per-axis effect: the mean over the runs at each value, with n
    patience = next(a for a in report["axes"] if a["key"] == "scheduler.patience")
    at1 = [rows["0"]["best_val_accuracy"], rows["1"]["best_val_accuracy"]]
    assert patience["levels"][0]["n"] == 2 and patience["levels"][0]["mean"] == pytest.approx(sum(at1) / 2)
    g = report["grid"]
    assert g["rows"] == "scheduler.patience" and g["mean"][1][1] == pytest.approx(rows["3"]["best_val_accuracy"])
    best = max(report["runs"], key=lambda r: r["best_val_accuracy"])
    assert report["best"]["mean"] == best["best_val_accuracy"]


def test_callback_wrote_the_report_files(sweep_2x2):
    out = sweep_2x2 / "analysis"
    for name in ("report.md", "report.html", "summary.json", "runs.csv"):
        assert (out / name).stat().st_size > 200, name
    rows = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[3]["scheduler.patience"] == "3" and rows[3]["regularization.label_smoothing"] == "0.1"
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["runs"]) == 4


def test_failed_job_is_named_and_the_report_still_comes_out(sweep_with_failure, tmp_path):
    sweep, _ = sweep_with_failure
    assert not (sweep / "analysis").exists()  # Hydra skipped on_multirun_end: a job failed
    proc = analyze(sweep, "--out", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    assert "job 1 failed: optimizer.lr must be > 0, got -1.0" in proc.stdout
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["sweep"]["jobs"]["failed"] == 1 and summary["sweep"]["jobs"]["completed"] == 1
    assert summary["best"]["overrides"] == {"trainer.epochs": 1, "optimizer.lr": 0.05}


def test_missing_running_and_truncated_jobs(sweep_2x2, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, sweep, ignore=shutil.ignore_patterns("checkpoints", "analysis"))
    shutil.rmtree(sweep / "2")  # never started
    shutil.rmtree(sweep / "0" / "diagnostics")  # crashed before its first epoch: .hydra/ and log only
    status = sweep / "1" / "diagnostics" / "status.json"
    status.write_text(status.read_text().replace('"completed"', '"running"'))
    train = sweep / "3" / "diagnostics" / "train_diagnostics.jsonl"
    train.write_text(train.read_text()[:-40])  # cut mid-line
    proc = analyze(sweep, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)["sweep"]["jobs"]
    assert (jobs["missing"], jobs["running"], jobs["completed"], jobs["no diagnostics"]) == (1, 1, 1, 1)
    report = json.loads(proc.stdout)
    assert report["sweep"]["missing_jobs"] == [2]
    assert [f["job"] for f in report["sweep"]["failures"]] == ["0"]
    assert "last line is cut off" in proc.stderr


def test_recommendations_carry_their_runs_and_the_sweeps_support(sweep_2x2):
    from analysis import sweep_report
    from analysis.sweep import load_sweep

    report = sweep_report.build(load_sweep(sweep_2x2))
    for rec in report["recommendations"]:
        assert rec["runs"] and rec["count"] == len(rec["runs"])
        for sup in rec["support"]:
            assert sup["verdict"] in ("supported", "contradicted", "inconclusive", "not tested")


def test_seed_replicates_are_grouped(tmp_path):
    from analysis import sweep_report
    from analysis.render.sweep_text import render_sweep_markdown

    rows = [{"job": str(i), "overrides": {"optimizer.lr": lr, "trainer.seed": seed}, "best_val_accuracy": acc}
            for i, (lr, seed, acc) in enumerate([(0.1, 0, 0.80), (0.1, 1, 0.82), (0.05, 0, 0.70), (0.05, 1, 0.74)])]
    groups = sweep_report.replicate_groups(rows)
    by_lr = {g["overrides"]["optimizer.lr"]: g for g in groups}
    assert by_lr[0.1]["n"] == 2 and by_lr[0.1]["mean"] == pytest.approx(0.81) and by_lr[0.05]["runs"] == ["2", "3"]
    best = sweep_report.best_config(groups, {"optimizer.lr": [0.05, 0.1], "trainer.seed": [0, 1]})
    assert best["overrides"] == {"optimizer.lr": 0.1} and "largest value swept" in best["edge_notes"][0]
    report = {"sweep": {"name": "s", "path": "p", "command": None, "axes": {}, "fixed": {},
                        "jobs": {"expected": 4, "found": 4, "completed": 4, "failed": 0, "running": 0, "preempted": 0,
                                 "no diagnostics": 0, "unreadable": 0, "missing": 0},
                        "missing_jobs": [], "failures": []},
              "runs": [], "axes": [], "grid": None, "configurations": groups, "findings_by_id": {},
              "recommendations": [], "best": best, "warnings": []}
    assert "optimizer.lr=0.1 | 0.8100 ± 0.0141 (n=2)" in render_sweep_markdown(report)


def test_support_compares_runs_in_the_recommended_direction():
    from analysis.sweep_report import _support

    rows = [{"job": str(i), "overrides": {"scheduler.patience": p}, "best_val_accuracy": a}
            for i, (p, a) in enumerate([(3, 0.60), (3, 0.62), (6, 0.70), (6, 0.71), (10, 0.72)])]
    # two runs a side without seeds are no replicates: nothing measured the noise, so nothing is claimed
    sup = _support("scheduler.patience=6", rows[:2], rows, {"scheduler.patience": [3, 6, 10]})
    assert sup["verdict"] == "inconclusive" and "several seeds" in sup["note"]
    sup = _support("scheduler.patience=6", rows[:2], rows, {"scheduler.patience": [3, 6, 10]}, sd=0.01)
    # only the values on the way to the recommended one (6), not the 10 beyond it; the two runs at each value
    # share one seed (none given): one observation each, their mean
    assert sup["verdict"] == "supported" and sup["toward_n"] == 1 and sup["against_n"] == 1
    assert sup["delta"] == pytest.approx((0.70 + 0.71) / 2 - 0.61)
    sup = _support("scheduler.patience=10", rows[:2], rows, {"scheduler.patience": [3, 6, 10]})
    assert sup["toward_n"] == 2 and sup["toward"] == "scheduler.patience = 6, 10"
    assert _support("scheduler.patience=20", rows[:2], rows, {"scheduler.patience": [3, 6, 10]})["verdict"] \
        == "not tested"  # outside the swept range: never run
    # one run per side and no replicates: no noise measured, so a one-image difference supports nothing
    one = [{"job": "0", "overrides": {"regularization.label_smoothing": 0.05}, "best_val_accuracy": 0.9805},
           {"job": "1", "overrides": {"regularization.label_smoothing": 0.1}, "best_val_accuracy": 0.9833}]
    sup = _support("regularization.label_smoothing=0.1", one[:1], one, {"regularization.label_smoothing": [0.05, 0.1]})
    assert sup["verdict"] == "inconclusive" and "trainer.seed=0,1,2" in sup["note"]
    sup = _support("regularization.label_smoothing=0.1", one[:1], one, {"regularization.label_smoothing": [0.05, 0.1]},
                   sd=0.0005)  # replicates elsewhere in the sweep measured the noise
    assert sup["verdict"] == "supported"
    assert _support("optimizer.lr=0.01", rows[:2], rows, {"scheduler.patience": [3, 6, 10]})["verdict"] == "not tested"


def test_two_sweeps_compared_name_their_different_axes(sweep_2x2, sweep_with_failure, tmp_path):
    sweep_b, _ = sweep_with_failure
    proc = analyze(sweep_2x2, sweep_b, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "comparison.json").read_text())
    c = data["comparisons"][0]
    assert c["different_axes"] and c["axes_only_in_other"] == ["optimizer.lr"]
    assert c["best_delta"] == pytest.approx(data["sweeps"][1]["best"]["mean"] - data["sweeps"][0]["best"]["mean"])
    assert (tmp_path / "comparison.md").exists() and (tmp_path / "comparison.html").exists()


def test_html_escapes_override_values(sweep_2x2, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, sweep, ignore=shutil.ignore_patterns("checkpoints", "analysis"))
    evil = "<script>alert(1)</script>"
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text(f"- scheduler.patience={evil}\n")
    mr = sweep / "multirun.yaml"
    mr.write_text(mr.read_text().replace("scheduler.patience=1,3", f"scheduler.patience=1,3,'{evil}'"))
    proc = analyze(sweep, "--out", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("setup,needle", [
    (lambda d: None, "not a run directory"),
    (lambda d: (d / "notes.txt").write_text("x"), "not a run directory"),
])
def test_empty_or_foreign_directory_is_one_clear_line(tmp_path, setup, needle):
    setup(tmp_path)
    proc = analyze(tmp_path)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_html_renders_in_headless_chromium(sweep_2x2, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium package is not installed")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    url = (sweep_2x2 / "analysis" / "report.html").as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=90).stdout
    assert dom.count("<tr>") >= 5 and dom.count("<svg") >= 3 and "<polyline" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", url],
                   capture_output=True, timeout=90)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


# ── advice no stronger than its evidence (hand-made rows: the statistics, not the training) ──

def rows_of(spec: list[tuple[dict, float]], findings: dict | None = None) -> list[dict]:
    return [{"job": str(i), "overrides": o, "best_val_accuracy": a, "status": "completed",
             "findings": (findings or {}).get(str(i), [])} for i, (o, a) in enumerate(spec)]


def test_edge_note_without_replicates_asks_for_seeds_not_a_wider_range():
    """The user's case: label smoothing 0.1 beat 0.05 by one validation image, one seed each."""
    from analysis.sweep_report import best_config, replicate_groups

    rows = rows_of([({"regularization.label_smoothing": 0.05}, 0.9805),
                    ({"regularization.label_smoothing": 0.1}, 0.9833)])
    best = best_config(replicate_groups(rows), {"regularization.label_smoothing": [0.05, 0.1]})
    (note,) = best["edge_notes"]
    assert "extend the range above" not in note and "trainer.seed=0,1,2" in note and "noise" in note
    assert best["edges"][0]["direction"] is None
    # with two seeds each, the run-to-run sd (far above the gap) makes it a tie: no edge advice at all
    rows = rows_of([({"regularization.label_smoothing": ls, "trainer.seed": s}, a) for ls, s, a in
                    [(0.05, 0, 0.9805), (0.05, 1, 0.9505), (0.1, 0, 0.9833), (0.1, 1, 0.9533)]])
    best = best_config(replicate_groups(rows), {"regularization.label_smoothing": [0.05, 0.1], "trainer.seed": [0, 1]})
    assert not any("extend" in n for n in best["edge_notes"]) and "ties with 0.05" in best["edge_notes"][0]


def test_edge_note_needs_a_neighbour_at_the_same_other_settings():
    """Four loose runs: the best weight decay has no run at its LR with another weight decay."""
    from analysis.sweep_report import best_config, replicate_groups

    rows = rows_of([({"optimizer.lr": 0.1, "regularization.weight_decay": 0.0005}, 0.97),
                    ({"optimizer.lr": 0.05, "regularization.weight_decay": 0.0001}, 0.95),
                    ({"optimizer.lr": 0.02, "regularization.weight_decay": 0.0001}, 0.90),
                    ({"optimizer.lr": 0.01, "regularization.weight_decay": 0.0001}, 0.85)])
    best = best_config(replicate_groups(rows), {"optimizer.lr": [0.01, 0.02, 0.05, 0.1],
                                                "regularization.weight_decay": [0.0001, 0.0005]})
    assert best["overrides"]["regularization.weight_decay"] == 0.0005
    assert not any("weight_decay" in n for n in best["edge_notes"])


def test_recommended_value_never_run_is_not_tested_and_advice_does_not_contradict():
    """optimizer.lr=1e5,0.05: the diverged run's 'lower to 0.5' was never run, so it is not supported."""
    from analysis.findings import Finding, Recommendation
    from analysis.sweep_report import best_config, recommendations, reconcile, replicate_groups

    rows = rows_of([({"optimizer.lr": 1e5}, 0.1), ({"optimizer.lr": 0.05}, 0.98)])
    axes = {"optimizer.lr": [0.05, 1e5]}
    diverged = Finding("nonfinite_loss", "critical", "NaN", recommendations=[
        Recommendation("lower the learning rate", ["optimizer.lr=0.5"])])
    recs = recommendations(rows, {"0": [diverged]}, axes)
    best = best_config(replicate_groups(rows), axes)
    reconcile(recs, best)
    (sup,) = recs[0]["support"]
    assert sup["verdict"] == "not tested" and "0.5" in sup["note"]
    assert not any("extend the range" in n for n in best["edge_notes"])  # one run each: no range advice


def test_a_value_on_the_wrong_side_of_a_proven_edge_is_superseded():
    from analysis.findings import Finding, Recommendation
    from analysis.sweep_report import best_config, recommendations, reconcile, replicate_groups

    spec = [({"optimizer.lr": lr, "trainer.seed": s}, a) for lr, a0 in ((0.05, 0.95), (0.1, 0.90), (0.2, 0.80))
            for s, a in ((0, a0 - 0.005), (1, a0 + 0.005))]
    rows = rows_of(spec)
    axes = {"optimizer.lr": [0.05, 0.1, 0.2], "trainer.seed": [0, 1]}
    high = Finding("lr_out_of_range", "warning", "high", recommendations=[
        Recommendation("lower the learning rate", ["optimizer.lr=0.1"])])
    recs = recommendations(rows, {"4": [high], "5": [high]}, axes)
    best = best_config(replicate_groups(rows), axes)
    assert best["edges"][0]["direction"] == "below"
    assert recs[0]["support"][0]["verdict"] == "supported"  # 0.1 did beat 0.2 ...
    reconcile(recs, best)
    sup = recs[0]["support"][0]
    assert sup["verdict"] == "superseded" and "optimizer.lr=0.05" in sup["note"]  # ... but 0.05 beat 0.1


def test_run_table_flags_far_below_with_its_knob_and_lone_instability():
    from analysis.sweep_report import flag_runs

    rows = rows_of([({"optimizer.lr": 0.05, "scheduler.patience": 3}, 0.97),
                    ({"optimizer.lr": 10.0, "scheduler.patience": 3}, 0.10),
                    ({"optimizer.lr": 0.05, "scheduler.patience": 5}, 0.96),
                    ({"optimizer.lr": 10.0, "scheduler.patience": 5}, 0.12)],
                   findings={"1": ["nonfinite_loss"]})
    flag_runs(rows, None)
    assert rows[0]["flags"] == [] and rows[2]["flags"] == []
    assert rows[1]["flags"][0] == "far below the best run 0 (-0.8700); differs from it only in optimizer.lr=10.0"
    assert "unstable (nonfinite_loss) where runs one knob away are not (0, 3)" in rows[1]["flags"]
    assert rows[3]["flags"] == ["far below the best run 0 (-0.8500)"]  # two knobs away: no single knob named


def test_a_sweeps_jobs_are_judged_without_their_per_sample_records(sweep_2x2, tmp_path, monkeypatch, capsys):
    """Every job writes a per-sample file per epoch of the training set's size: a sweep reads none of them (its
    jobs share their data) and says so once, naming a job to analyse alone; that job's own report reads them."""
    from analysis import label_noise
    from analysis.__main__ import main

    read = []
    real = label_noise.read_per_sample
    monkeypatch.setattr(label_noise, "read_per_sample", lambda d, *a: read.append(d) or real(d, *a))
    out = tmp_path / "report"
    assert main([str(sweep_2x2), "--format", "json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert read == [] and len(report["notes"]) == 1
    assert f"label_noise_suspected is judged per run: python -m analysis {sweep_2x2 / '0'}" in report["notes"][0]
    assert "## Notes" in (out / "report.md").read_text()
    assert main([str(sweep_2x2 / "0"), "--format", "json"]) == 0
    capsys.readouterr()
    assert len(read) == 1

"""Report formats and everyday rough edges (issue 10, issue 13 section 3): one format table, the
comparison page, file modes, runs compared, log ticks, the sweep pointer, DIAGNOSTICS_DIR in a
multirun, resume times, the check_data grid."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, read_jsonl, run_module, run_trainer

FAST = ["trainer.epochs=1", "model.width=4", "data.image_size=16"]
ENV = {"OMP_NUM_THREADS": "1"}


def analyze(*args, cwd=ROOT):
    return run_module("analysis", [str(a) for a in args], cwd=cwd, timeout=120)


# ───────────── the format table ─────────────


def test_every_printable_format_is_offered_and_every_file_comes_from_the_table(digits_run, tmp_path):
    from analysis.__main__ import parse_args
    from analysis.render.formats import FORMATS, PRINTABLE, RUN

    assert set(PRINTABLE) == {"text", "markdown", "json", "html", "csv"}
    assert parse_args(["x", "--format", "csv"]).format == "csv"
    proc = analyze(digits_run, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = {f.kinds[RUN].file for f in FORMATS.values() if RUN in f.kinds and f.kinds[RUN].file}
    assert {p.name for p in tmp_path.iterdir()} == expected
    assert "![curves.png](curves.png)" in (tmp_path / "report.md").read_text()  # the PNG is a sibling
    assert "![" not in analyze(digits_run, "--format", "markdown").stdout  # printed: no PNG next to it
    for fmt in PRINTABLE:
        printed = analyze(digits_run, "--format", fmt).stdout
        name = FORMATS[fmt].kinds[RUN].file
        if name and name != "report.md":
            assert printed == (tmp_path / name).read_text(), fmt


# ───────────── several sweeps compared ─────────────


def _report(name: str, axes: dict, groups: list[tuple[dict, list[float]]], findings: dict) -> dict:
    """A sweep report (the fields compare.build reads), seeds as replicates."""
    import statistics

    from analysis.sweep_report import noise_sd

    configs = [{"overrides": o, "n": len(v), "mean": statistics.fmean(v),
                "std": statistics.stdev(v) if len(v) > 1 else 0.0} for o, v in groups]
    best = max(configs, key=lambda g: g["mean"])
    seeds = axes.get("trainer.seed")
    return {"sweep": {"name": name, "path": f"/x/{name}", "command": "", "axes": axes, "fixed": {"trainer.epochs": 2},
                      "jobs": {"completed": 4, "found": 4}},
            "best": {**best, "overrides_cli": [f"{k}={v}" for k, v in best["overrides"].items()]},
            "replicates": {"key": "trainer.seed", "values": seeds, "noise_sd": noise_sd(configs)} if seeds else None,
            "findings_by_id": findings}


def test_comparison_drops_the_seed_axis_and_reads_the_difference_against_its_noise():
    from analysis import compare

    a = _report("a", {"scheduler.patience": [1, 3], "trainer.seed": [0, 1]},
                [({"scheduler.patience": 1}, [0.80, 0.82]), ({"scheduler.patience": 3}, [0.84, 0.88])], {"x": ["0"]})
    b = _report("b", {"scheduler.patience": [3, 5], "trainer.seed": [0, 1]},
                [({"scheduler.patience": 3}, [0.85, 0.87]), ({"scheduler.patience": 5}, [0.90, 0.96])], {})
    data = compare.build([a, b])
    assert all("trainer.seed" not in s["axes"] for s in data["sweeps"])
    assert data["sweeps"][0]["seeds"] == [0, 1]
    (c,) = data["comparisons"]
    assert c["settings_changed"] == [{"key": "scheduler.patience", "baseline": {"kind": "swept", "values": [1, 3]},
                                      "other": {"kind": "swept", "values": [3, 5]}}]
    sa, sb = math.sqrt(2 * 0.02**2 / 1), math.sqrt(2 * 0.03**2 / 1)  # sd of (0.84, 0.88) and (0.90, 0.96)
    assert c["best_delta"] == pytest.approx(0.93 - 0.86)
    assert c["best_delta_se"] == pytest.approx(math.sqrt(sa**2 / 2 + sb**2 / 2))
    assert c["best_delta_within_noise"] is (abs(c["best_delta"]) <= 2 * c["best_delta_se"])
    assert c["findings_disappeared"] == ["x"]
    single = compare.build([_report("a", {"k": [1]}, [({"k": 1}, [0.5])], {}),
                            _report("b", {"k": [1]}, [({"k": 1}, [0.6])], {})])["comparisons"][0]
    assert single["best_delta_se"] is None and single["best_delta_within_noise"] is None


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_comparison_html_is_a_page_with_tables_not_markdown(sweep_2x2, sweep_with_failure, tmp_path):
    sweep_b, _ = sweep_with_failure
    proc = analyze(sweep_2x2, sweep_b, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "comparison.html").read_text()
    assert "<pre>" not in page and "<table>" in page and "|---|" not in page
    c = json.loads((tmp_path / "comparison.json").read_text())["comparisons"][0]
    lr = next(ch for ch in c["settings_changed"] if ch["key"] == "optimizer.lr")
    assert lr["baseline"]["kind"] == "default" and lr["other"] == {"kind": "swept", "values": [-1, 0.05]}
    assert "<code>optimizer.lr</code>" in page and "swept -1, 0.05" in page
    rows = (tmp_path / "comparison.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("sweep,path,best_mean")


# ───────────── files readable by teammates ─────────────


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_report_files_get_the_umask_mode(tmp_path, umask):
    from analysis.dispatch import write_files

    before = os.umask(umask)
    try:
        written = write_files(tmp_path, {"a.md": "text", "b.png": lambda p: Path(p).write_bytes(b"png")})
        plain = tmp_path / "plain"
        plain.write_text("")
    finally:
        os.umask(before)
    for p in written:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask == plain.stat().st_mode & 0o777, p.name


# ───────────── runs compared, imported runs ─────────────


def test_runs_compared_write_their_files_only_with_out(digits_run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.copytree(digits_run, d, ignore=shutil.ignore_patterns("checkpoints"))
    (b / "diagnostics" / "status.json").unlink()  # as an imported log has none
    here, out = tmp_path / "here", tmp_path / "out"
    here.mkdir()
    proc = analyze(a, b, "--out", out, cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert list(here.iterdir()) == []  # nothing in the working directory
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "runs.csv", "summary.json"]
    assert f"HTML report: {out / 'report.html'}" in proc.stdout
    report = json.loads((out / "summary.json").read_text())
    assert {r["job"]: r["status"] for r in report["runs"]} == {"a": "completed", "b": "completed"}
    assert report["sweep"]["jobs"]["running"] == 0


# ───────────── error lines ─────────────


def test_a_run_error_reads_error_in_every_format(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    status = run / "diagnostics" / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "status": "failed", "error": "boom"}))
    for fmt in ("text", "markdown", "html"):
        out = analyze(run, "--format", fmt).stdout
        assert "error: boom" in out and "Error:" not in out, fmt


def test_a_sweep_without_m_keeps_the_multirun_hint(tmp_path):
    proc = run_trainer([f"hydra.run.dir={tmp_path / 'r'}", "scheduler=plateau", "scheduler.patience=1,3"])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: Ambiguous value for argument 'scheduler.patience=1,3'")
    assert "add -m (--multirun)" in lines[0]
    assert not (tmp_path / "r").exists()


# ───────────── log-scale ticks ─────────────


def test_log_scale_learning_rate_ticks_are_round_values():
    from analysis.render.svg import line_chart

    lrs = [0.05 * 0.1 ** (i / 9) for i in range(10)]  # 0.05 down to 0.005
    svg = line_chart([("lr", list(range(1, 11)), lrs)], "learning rate", ylog=True)
    ticks = re.findall(r'text-anchor="end" class="tick">([^<]+)<', svg)
    assert ticks == ["0.005", "0.01", "0.02", "0.05"]


# ───────────── sweeps that stop early ─────────────


def test_a_sweep_with_a_failed_job_points_to_its_report(sweep_with_failure):
    sweep, proc = sweep_with_failure
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (f"sweep report (failed jobs included): "
                                                    f"python -m analysis {sweep}")


def test_a_sweep_that_fails_at_composition_leaves_no_directory(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_trainer(["-m", f"hydra.sweep.dir={sweep}", "optimizer=nope,sgd"])
    assert proc.returncode == 2 and "no option 'nope'" in proc.stderr
    assert not sweep.exists() and "missing" not in proc.stderr


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_an_exported_diagnostics_dir_gets_a_subfolder_per_multirun_job(tmp_path):
    shared = tmp_path / "diag"
    sweep = tmp_path / "sweep"
    proc = run_trainer(["-m", f"hydra.sweep.dir={sweep}", *FAST, "optimizer.lr=0.05,0.1"],
                       env={**ENV, "DIAGNOSTICS_DIR": str(shared)})
    assert proc.returncode == 0, proc.stderr
    for job in ("0", "1"):
        assert len(read_jsonl(shared / job / "train_diagnostics.jsonl")) == 1
        assert json.loads((shared / job / "status.json").read_text())["status"] == "completed"
        assert "diagnostics go to " + str(shared / job) in (sweep / job / "train.log").read_text()
    report = json.loads(analyze(sweep, "--format", "json").stdout)
    assert report["sweep"]["jobs"]["completed"] == 2


# ───────────── resume ─────────────


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_resume_keeps_the_first_start_and_adds_resumed_at(tmp_path):
    run = tmp_path / "run"
    # scheduler=constant: a cosine schedule refuses another trainer.epochs on resume (its LR would jump)
    args = [f"hydra.run.dir={run}", "model.width=4", "data.image_size=16", "scheduler=constant"]
    assert run_trainer([*args, "trainer.epochs=1"], env=ENV).returncode == 0
    first = json.loads((run / "diagnostics" / "status.json").read_text())
    assert first["resumed_at"] is None
    proc = run_trainer([*args, "trainer.epochs=2"], env=ENV)
    assert proc.returncode == 0, proc.stderr
    second = json.loads((run / "diagnostics" / "status.json").read_text())
    assert second["started_at"] == first["started_at"] and second["epoch"] == 2
    assert second["resumed_at"] >= first["updated_at"]


# ───────────── check_data ─────────────


@pytest.mark.slow  # default suite budget (README: Set up); CI runs it with -m slow
def test_check_data_grid_is_a_seeded_random_sample_of_a_class_sorted_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "folder"
    for name, shade in (("a_black", 0), ("b_white", 255)):
        (root / name).mkdir(parents=True)
        for i in range(40):
            Image.new("RGB", (8, 8), (shade,) * 3).save(root / name / f"{i}.png")
    out = tmp_path / "out"
    proc = run_module("trainer.check_data", [f"hydra.run.dir={out}", "data=imagefolder", f"data.root={root}",
                                             "data.num_classes=2", "data.image_size=8"], env=ENV)
    assert proc.returncode in (0, 1), proc.stderr
    import numpy as np

    grid = np.asarray(Image.open(out / "train_batch.png").convert("L"))
    tiles = [grid[2 + 10 * r: 10 + 10 * r, 2 + 10 * c: 10 + 10 * c].mean() for r in range(4) for c in range(8)]
    white = sum(t > 192 for t in tiles)  # of 64 training images, 32 per class
    assert 8 <= white <= 24 and white + sum(t < 64 for t in tiles) == 32, tiles  # not 31 black and 1 white
    from trainer.check_data import GRID_IMAGES, grid_indices

    assert grid_indices(64, 0) == grid_indices(64, 0) != grid_indices(64, 1)
    assert len(set(grid_indices(64, 0))) == GRID_IMAGES

"""`python -m analysis` on real and on broken inputs: reports, formats, exit codes, warnings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_module

REPORT_KEYS = {"cause", "run", "summary", "progress", "per_class", "sections", "findings", "not_checked", "warnings"}
FINDING_KEYS = {"id", "severity", "message", "evidence", "recommendations", "epoch"}
SECTIONS = ["Learning Rate Analysis", "Loss Analysis", "Accuracy Analysis", "Gradient Norm Analysis",
            "Weight Update Analysis"]


def analyze(*args, cwd=None):
    return run_module("analysis", [str(a) for a in args], cwd=cwd, timeout=60)


def test_text_report_of_a_real_run_has_the_seed_sections(digits_run):
    proc = analyze(digits_run)
    assert proc.returncode == 0, proc.stderr
    for title in SECTIONS + ["Diagnosis & Recommendations"]:
        assert f"== {title} ==" in proc.stdout
    assert "initial LR 0.05, final LR 0.05 (scheduler constant)" in proc.stdout


def test_json_schema_and_numbers_match_the_jsonl(digits_run):
    proc = analyze(digits_run, "--format", "json")
    report = json.loads(proc.stdout)
    assert set(report) == REPORT_KEYS
    val = [json.loads(x) for x in (digits_run / "diagnostics" / "val_diagnostics.jsonl").read_text().splitlines()]
    s = report["summary"]
    assert s["best_val_accuracy"] == max(r["accuracy"] for r in val)
    assert s["final_val_accuracy"] == val[-1]["accuracy"] and s["epochs"] == 2 and s["status"] == "completed"
    assert [sec["title"] for sec in report["sections"]][:5] == SECTIONS
    for f in report["findings"]:
        assert set(f) == FINDING_KEYS and f["severity"] in ("info", "warning", "critical")
        assert all(set(r) == {"text", "overrides"} for r in f["recommendations"])
    assert report["run"]["choices"]["scheduler"] == "constant"


def test_lone_jsonl_file_the_seed_form(digits_run):
    proc = analyze("--file", digits_run / "diagnostics" / "train_diagnostics.jsonl")
    assert proc.returncode == 0 and "== Loss Analysis ==" in proc.stdout


def test_out_writes_markdown_json_html_and_png(digits_run, tmp_path):
    proc = analyze(digits_run, "--out", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "report.json", "report.html", "curves.png", "epochs.csv"):
        assert (tmp_path / "report" / name).stat().st_size > 100, name
    assert (tmp_path / "report" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Diagnosis & Recommendations" in (tmp_path / "report" / "report.md").read_text()
    rows = (tmp_path / "report" / "epochs.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss") and len(rows) == 3


def test_analysis_imports_no_torch():
    code = ("import sys, runpy; sys.argv=['analysis','--rules']; "
            "import analysis.__main__ as m; m.main(['--rules']); "
            "import analysis.run_report, analysis.dispatch; assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ── bad input ──

def copy_run(digits_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(digits_run, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst, dst / "diagnostics" / "train_diagnostics.jsonl"


def test_missing_path_is_one_line_and_exit_2(tmp_path):
    proc = analyze(tmp_path / "nope")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "random.txt").write_text("hello")
    proc = analyze(tmp_path)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_file_still_reports(tmp_path):
    f = tmp_path / "train_diagnostics.jsonl"
    f.write_text("")
    proc = analyze("--file", f)
    assert proc.returncode == 0 and "empty file" in proc.stderr and "Traceback" not in proc.stderr


def test_cut_off_last_line_is_skipped_with_a_warning(digits_run, tmp_path):
    run, train = copy_run(digits_run, tmp_path)
    train.write_text(train.read_text() + '{"epoch": 3, "loss": 0.4, "accur')
    proc = analyze(run, "--format", "json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["summary"]["epochs"] == 2
    assert "train_diagnostics.jsonl:3: last line is cut off" in proc.stderr


def test_non_json_line_is_named_by_line_number(digits_run, tmp_path):
    run, train = copy_run(digits_run, tmp_path)
    lines = train.read_text().splitlines()
    train.write_text(lines[0] + "\nthis is not json\n" + lines[1] + "\n")
    proc = analyze(run)
    assert proc.returncode == 0 and "train_diagnostics.jsonl:2: not JSON" in proc.stderr


def test_nan_infinity_and_missing_fields_of_older_files(tmp_path):
    f = tmp_path / "train_diagnostics.jsonl"
    # the seed's fields only, with NaN and Infinity tokens (Python's json writes them)
    f.write_text("\n".join(json.dumps(r) for r in [
        {"epoch": 1, "loss": 2.3, "learning_rate": 0.1, "mean_grad_norm": 1.0},
        {"epoch": 2, "loss": float("nan"), "learning_rate": 0.1, "mean_grad_norm": float("inf")},
        {"epoch": 3, "loss": 1.9, "learning_rate": 0.01},
    ]) + "\n")
    proc = analyze("--file", f, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["final_train_loss"] == 1.9
    assert "nonfinite_loss" in [x["id"] for x in report["findings"]]


def test_html_escapes_user_strings(digits_run, tmp_path):
    run, _ = copy_run(digits_run, tmp_path)
    (run / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=<script>alert(1)</script>\n")
    proc = analyze(run, "--format", "html")
    assert proc.returncode == 0
    assert "<script>" not in proc.stdout and "&lt;script&gt;alert(1)&lt;/script&gt;" in proc.stdout


@pytest.mark.parametrize("content,warning", [('{"epoch": 1, "loss": "high"}\n', ':1: "loss" is not a number ("high")'),
                                             ('{"epoch": 1, "loss": 1e400}\n', ':1: Infinity in "loss"')])
def test_wrong_types_never_crash(tmp_path, content, warning):
    f = tmp_path / "train_diagnostics.jsonl"
    f.write_text(content)
    proc = analyze("--file", f)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert f"warning: {f}{warning}" in proc.stderr


@pytest.mark.parametrize("content", ['[1, 2, 3]\n', '{"epoch": "one"}\n', '{"epoch": 1e400}\n', '{"epoch": -1}\n'])
def test_a_file_without_one_diagnostics_record_is_refused(tmp_path, content):
    f = tmp_path / "train_diagnostics.jsonl"
    f.write_text(content)
    proc = analyze("--file", f)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {f} is not a diagnostics JSONL file (")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""

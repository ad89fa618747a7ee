"""The benchmark scripts run end to end on a tiny budget and print what docs/benchmarks.md quotes.

They patch trainer classes (Collector, ActivationProbe, JsonlWriter) to time them, so a rename in
the trainer breaks them: these runs catch that. Slow (about half a minute): `pytest -m slow`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def bench(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


RATIO = r"ratio median (\d+\.\d+), geometric mean (\d+\.\d+), 95% CI \[(\d+\.\d+), (\d+\.\d+)\]"


def test_diagnostics_overhead_prints_paired_ratios_and_the_per_step_breakdown():
    out = bench("diagnostics_overhead.py", "--runs", "1", "--pairs", "2")
    for clock in ("wall", "cpu"):
        m = re.search(rf"{clock} .*{RATIO}", out)
        assert m, out
        median, geomean, lo, hi = map(float, m.groups())
        # Two pairs on a machine shared with other tests: the interval is wide, the estimates are not absurd.
        assert lo <= geomean <= hi and 0.5 < geomean < 2.0 and 0.5 < median < 2.0
    for call in ("grad_norm", "before_update", "after_update", "probe.hooks", "jsonl.write"):
        assert re.search(rf"^\s+{re.escape(call)}\s+\d", out, re.M), call
    # diagnostics-off epochs really skip the gradient norms: their time is (near) zero there
    on, off = map(float, re.search(r"grad_norm\s+(\d+\.\d+)\s+(\d+\.\d+)", out).groups())
    assert off < on
    assert "estimated ratio" in out and "machine:" in out
    assert re.search(r"3\. validation: evaluate\(\) with the confusion matrix.*\n.*ratio median", out), out


def test_duplicate_images_finds_every_planted_copy():
    out = bench("duplicate_images.py", "--train", "5000", "--val", "1000", "--planted", "40")
    assert "found: 20 exact, 20 near pairs; 40 val images (planted 40)" in out, out


def test_bare_loop_prints_trainer_over_bare():
    out = bench("bare_loop.py", "--runs", "1", "--epochs", "3")
    assert re.search(r"cpu\s+trainer \d+\.\d+ s, bare \d+\.\d+ s; trainer/bare median", out), out
    assert "between epochs" in out


def test_throughput_prints_a_table_row_per_model():
    out = bench("throughput.py", "--epochs", "2", "--models", "small_cnn", "--devices", "cpu")
    row = re.search(r"^\| small_cnn \| cpu \| 128 \| (\d+) \|", out, re.M)
    assert row and int(row.group(1)) > 0, out


def test_bad_arguments_fail_with_one_line():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bare_loop.py"), "--epochs", "1"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        "error: --epochs must be >= 2 (the first is warm-up) and --runs >= 1"]


def test_time_to_target_projects_the_preset_from_measured_epochs():
    out = bench("time_to_target.py", "--epochs", "4", "--size", "600", "trainer.device=cpu", "model.width=4",
                "data.batch_size=100")
    assert "loader dataloader, batch 100, 5 steps per epoch" in out
    head = float(re.search(r"set-up \+ first two epochs: (\d+\.\d+) s", out).group(1))
    steady = float(re.search(r"steady epoch period: median (\d+\.\d+) s over 2", out).group(1))
    projected = int(re.search(r"projected for the preset's 80 epochs: (\d+) s", out).group(1))
    assert 0 < steady and abs(projected - (head + 78 * steady)) <= 0.05 * projected + 2  # + the last epoch's tail
    fit = int(re.search(r"epochs that fit 300 s: (\d+)", out).group(1))
    assert fit >= 1 and (fit >= 80) == (projected <= 300 + steady)


def test_digits_load_prints_both_loaders_and_their_ratio():
    out = bench("digits_load.py", "--pairs", "1")
    assert "trainer.data.digits_arrays" in out and "sklearn.datasets.load_digits" in out
    assert re.search(r"ratio \(trainer / scikit-learn\): median \d+\.\d+", out), out


def test_image_scan_prints_both_timings_and_their_ratio():
    out = bench("image_scan.py", "--images", "200", "--pairs", "1")
    assert "scan (trainer.image_folder.scan)" in out and "one epoch of ImageFolder loading" in out
    assert re.search(r"ratio \(scan / one epoch of loading\): median \d+\.\d+", out), out

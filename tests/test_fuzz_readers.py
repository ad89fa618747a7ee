"""The analysis readers on hostile files: mutated JSONL, JSON and YAML, truncations, huge numbers,
wrong types. Whatever the bytes, loading and every report format finish without an uncaught exception."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import run_report, sweep_report
from analysis.render.formats import RUN, render
from rundir.read import load_run
from analysis.render.sweep_text import render_sweep_markdown, render_sweep_text
from analysis.sweep import load_sweep

FIELDS = ["epoch", "loss", "accuracy", "learning_rate", "mean_grad_norm", "min_grad_norm", "max_grad_norm",
          "weight_update", "weight_update_ratio", "clipped_fraction", "nonfinite_steps", "amp_scale",
          "layer_grad_norms", "dead_relu_fraction", "dead_relu_layers", "num_samples", "top5_accuracy", "nll"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.text(max_size=8),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324, 0.0]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)
record = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), values, max_size=10).map(
    lambda d: d) | st.builds(lambda e, l: {"epoch": e, "loss": l}, st.integers(-3, 10**12), scalars)


def jsonl(records: list[dict], cut: int, garbage: bytes) -> bytes:
    data = b"".join(json.dumps(r, default=str).encode() + b"\n" for r in records) + garbage
    return data[: max(0, len(data) - cut)]


FUZZ = settings(max_examples=int(os.environ.get('FUZZ_EXAMPLES', 40)), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(train=st.lists(record, max_size=8), val=st.lists(record, max_size=8), cut=st.integers(0, 30),
       garbage=st.binary(max_size=20), info=values, status=values, overrides=st.text(max_size=40),
       config_yaml=st.text(max_size=60))
def test_run_reader_and_reports_never_raise(train, val, cut, garbage, info, status, overrides, config_yaml):
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        diag = run_dir / "diagnostics"
        (run_dir / ".hydra").mkdir()
        diag.mkdir()
        (diag / "train_diagnostics.jsonl").write_bytes(jsonl(train, cut, garbage))
        (diag / "val_diagnostics.jsonl").write_bytes(jsonl(val, 0, b""))
        (diag / "run_info.json").write_text(json.dumps(info, default=str))
        (diag / "status.json").write_text(json.dumps(status, default=str)[: max(1, 40 - cut)])
        (run_dir / ".hydra" / "overrides.yaml").write_text(overrides)
        (run_dir / ".hydra" / "config.yaml").write_text(config_yaml)
        run = load_run(run_dir)
        report = run_report.build(run)
        for fmt in ("text", "markdown", "json", "html", "csv"):
            assert isinstance(render(fmt, RUN, report, run_report.curves(run)), str)


@FUZZ
@given(jobs=st.lists(st.tuples(st.lists(record, max_size=4), st.text(max_size=30)), min_size=1, max_size=4),
       multirun=st.text(max_size=80))
def test_sweep_reader_never_raises(jobs, multirun):
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp)
        (sweep / "multirun.yaml").write_text(multirun)
        for i, (records, overrides) in enumerate(jobs):
            (sweep / str(i) / "diagnostics").mkdir(parents=True)
            (sweep / str(i) / ".hydra").mkdir()
            (sweep / str(i) / "diagnostics" / "train_diagnostics.jsonl").write_bytes(jsonl(records, 0, b""))
            (sweep / str(i) / ".hydra" / "overrides.yaml").write_text(overrides)
        report = sweep_report.build(load_sweep(sweep))
        assert render_sweep_text(report) and render_sweep_markdown(report)
        json.dumps(report, allow_nan=False, default=str)


@FUZZ
@given(lines=st.lists(st.one_of(record.map(lambda r: json.dumps(r, default=str).encode()), st.binary(max_size=30)),
                      max_size=30), cut=st.integers(0, 10))
def test_lone_file_is_read_or_refused_in_one_line_and_warnings_are_capped(lines, cut):
    from rundir.read import MAX_LINE_WARNINGS, RunError

    data = b"\n".join(lines) + b"\n"
    data = data[: max(0, len(data) - cut)]
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "train_diagnostics.jsonl"
        f.write_bytes(data)
        try:
            run = load_run(f)
        except RunError as e:  # nothing in it is a diagnostics record
            assert str(e).startswith(f"{f} is not a diagnostics JSONL file (") and "\n" not in str(e)
            return
        per_line = [w for w in run.warnings if re.match(rf"{re.escape(str(f))}:\d+: ", w) and "cut off" not in w]
        assert len(per_line) <= MAX_LINE_WARNINGS
        assert len(run.warnings) <= MAX_LINE_WARNINGS + 3  # + the count of the rest, a cut-off line, "no records"
        # refused unless something in it is a record, or its one line is a first record still being written
        assert len(run.train) >= 1 or not data.strip() or any("cut off" in w for w in run.warnings)
        for fmt in ("text", "json"):
            assert isinstance(render(fmt, RUN, run_report.build(run), run_report.curves(run)), str)

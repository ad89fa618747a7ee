"""The whole analysis path on hostile input, through `python -m analysis`'s main() in-process: first the
failure signatures found by fuzzing (traindx issue 12), each a tiny run or sweep written here, then seeded
random mutations of a template run and a template 2x2 sweep (benchmarks/fuzz_analysis.py) in every format,
with and without --out. Reaching `error: internal error` (rundir/errorline.py) is a failure."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_analysis as fz  # noqa: E402

from analysis.__main__ import main  # noqa: E402
from rundir.errorline import INTERNAL_ERROR  # noqa: E402

RUN, SWEEP = fz.template_run(), fz.template_sweep()


def _edit_jsonl(data: bytes, **fields) -> bytes:
    """Each record with these fields set to the given raw JSON tokens."""
    out = []
    for line in data.decode().splitlines():
        rec = json.loads(line)
        for k in fields:
            rec[k] = f"@@{k}@@"
        text = json.dumps(rec)
        for k, token in fields.items():
            text = text.replace(f'"@@{k}@@"', token)
        out.append(text + "\n")
    return "".join(out).encode()


def nan_norm_huge_epoch(files):
    files["diagnostics/train_diagnostics.jsonl"] = _edit_jsonl(files["diagnostics/train_diagnostics.jsonl"],
                                                               mean_grad_norm="5e-324", max_grad_norm="5e-324")
    files["diagnostics/val_diagnostics.jsonl"] += b'{"epoch": 1000000000000000000000, "loss": 1.0, "accuracy": 0.5}\n'


def nonfinite_steps(token):
    def edit(files):
        files["diagnostics/train_diagnostics.jsonl"] = _edit_jsonl(files["diagnostics/train_diagnostics.jsonl"],
                                                                   nonfinite_steps=token)
    return edit


def no_train_file(files):
    del files["diagnostics/train_diagnostics.jsonl"]


def surrogate_status_error(files):
    files["diagnostics/status.json"] = b'{"status": "failed", "error": "boom \\ud800 \\udcff", "epoch": 1}'


def lr_1e308(files):
    files["diagnostics/train_diagnostics.jsonl"] = _edit_jsonl(files["diagnostics/train_diagnostics.jsonl"],
                                                               learning_rate="1e308", learning_rate_end="1e308")


def num_classes_400_digits(files):
    files["diagnostics/run_info.json"] = files["diagnostics/run_info.json"].replace(b'"num_classes": 10',
                                                                                    b'"num_classes": ' + b"9" * 400)
    files[".hydra/config.yaml"] = files[".hydra/config.yaml"].replace(b"num_classes: 10", b"num_classes: " + b"9" * 400)


def sweep_accuracy_1e308(files):
    for num in range(4):
        rel = f"{num}/diagnostics/val_diagnostics.jsonl"
        files[rel] = _edit_jsonl(files[rel], accuracy="1e308")


def sweep_huge_ranges(keys):
    def edit(files):
        task = "".join(f"    - {k}=range(0,10000)\n" for k in keys)
        files["multirun.yaml"] = b"hydra:\n  overrides:\n    task:\n" + task.encode()
    return edit


RUN_SIGNATURES = {
    "nan_from_5e-324_norm_and_huge_epoch": nan_norm_huge_epoch,
    "nonfinite_steps_infinite": nonfinite_steps("1e999"),
    "nonfinite_steps_nan": nonfinite_steps("NaN"),
    "missing_train_file": no_train_file,
    "lone_surrogate_in_status_error": surrogate_status_error,
    "lr_1e308_in_svg_tick": lr_1e308,
    "num_classes_400_digits": num_classes_400_digits,
}
SWEEP_SIGNATURES = {
    "accuracy_1e308_fmean": sweep_accuracy_1e308,
    "range_10000_on_three_keys": sweep_huge_ranges(["optimizer.lr", "trainer.seed", "model.width"]),
    "range_10000_heatmap": sweep_huge_ranges(["optimizer.lr", "model.width"]),
}


def analyse(tmp_path: Path, template: dict, edit, args: list[str], capsys) -> tuple[int, str, str]:
    files = dict(template)
    edit(files)
    fz.write_tree(tmp_path / "in", files)
    try:
        code = main([str(tmp_path / "in"), *args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def json_report(out: Path, name: str) -> dict:
    """A report file of --out, checked to be strict JSON (no NaN or infinity)."""
    return json.loads((out / name).read_text(), parse_constant=lambda c: pytest.fail(f"{c} in {name}"))


# `--format text --out DIR` renders every format at once: the text printed, the others (Markdown, JSON, HTML,
# CSV and, for a run, the PNG) written into DIR by the same renderers --format would print with.
@pytest.mark.parametrize("name", RUN_SIGNATURES)
def test_run_signature_is_reported_not_a_crash(name, tmp_path, capsys):
    out = tmp_path / "o"
    code, text, err = analyse(tmp_path, RUN, RUN_SIGNATURES[name], ["--format", "text", "--out", str(out)], capsys)
    assert INTERNAL_ERROR not in err, err
    if name == "missing_train_file":  # validation records alone still make a report
        assert code in (0, 2), err
    else:
        assert code == 0, err
        assert text
    if code == 0:
        json_report(out, "report.json")
        assert {"report.md", "report.html", "epochs.csv", "curves.png"} <= {f.name for f in out.iterdir()}


@pytest.mark.parametrize("name", SWEEP_SIGNATURES)
def test_sweep_signature_is_reported_not_a_crash(name, tmp_path, capsys):
    out = tmp_path / "o"
    code, text, err = analyse(tmp_path, SWEEP, SWEEP_SIGNATURES[name], ["--format", "text", "--out", str(out)],
                              capsys)
    assert INTERNAL_ERROR not in err, err
    assert code == 0 and text, err
    report = json_report(out, "summary.json")
    assert {"report.md", "report.html", "runs.csv"} <= {f.name for f in out.iterdir()}
    if name.startswith("range_10000"):
        axes_line = next(line for line in text.splitlines() if line.strip().startswith("axes: "))
        assert "optimizer.lr = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (10000 values)" in axes_line  # not 10,000
        expected = 10000 ** (3 if "three" in name else 2)
        assert report["sweep"]["jobs"]["expected"] == expected
        assert report["sweep"]["jobs"]["missing"] == expected - 4  # jobs 0..3 are there
        assert len(report["sweep"]["missing_jobs"]) <= 100
        if report["grid"]:
            assert len(report["grid"]["row_values"]) <= 50 and len(report["grid"]["col_values"]) <= 50


def test_surrogate_error_prints_escaped_on_a_strict_utf8_stdout(tmp_path):
    files = dict(RUN)
    surrogate_status_error(files)
    fz.write_tree(tmp_path / "in", files)
    code = None
    out, err = fz._Stream(), fz._Stream()  # a real UTF-8 encoder behind stdout, strict as a terminal's
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(tmp_path / "in")])
        except SystemExit as e:
            code = e.code
    assert code == 0 and INTERNAL_ERROR not in err.text(), err.text()
    assert "\\ud800" in out.text()


# Seeds the fuzzer failed on before their fixes, replayed on every run: an infinite or NaN float in an
# override (analysis/overrides.py), num_batches of 1e308 summed (rules/causes.py total_steps), stds of 1e308
# squared (sweep_report.noise_sd, compare.difference_se), num_classes of 400 digits (rules/causes.py _num),
# a huge range() sweep enumerated (sweep.missing), a lone surrogate written to a report file, stds of 1e308
# in a recommendation's standard error and an override of 400 digits in its median (sweep_report._support),
# values of -1e308 drawn in the PNG (matplotlib's tick locator: render/png.py _drawable), val accuracies all
# above 1 in the per-value band plot (an empty y range: render/sweep_plots.py band_chart).
FOUND_SEEDS = [12, 24, 33, 87, 129, 371, 494, 889, 971, 1116, 1355, 15327, 19400, 20352, 31410, 33871, 100188, 110827]


@pytest.mark.parametrize("seed", FOUND_SEEDS)
def test_seed_that_once_failed_passes(seed):
    assert fz.run_case(seed, fz.templates()) is None


# About 20 ms of CPU a case (PNG drawn in 5 % of them), in chunks that xdist spreads over its workers. 500 keeps the
# default suite under its 150 s budget on 2 cores (146-153 s with 1,000); the slow suite runs 100,000.
DEFAULT_CASES = int(os.environ.get("FUZZ_CLI_CASES", 500))
CHUNK = 250


@pytest.mark.parametrize("first", range(0, DEFAULT_CASES, CHUNK))
def test_fuzzed_runs_and_sweeps_never_reach_the_internal_error_line(first):
    _all_pass(range(first, min(first + CHUNK, DEFAULT_CASES)))


def _all_pass(seeds: range) -> None:
    with fz.memory_limit():
        count, failures = fz.run_cases(seeds)
    assert count == len(seeds) and not failures, "\n".join(failures[:20])


# The slow run: the seeds of the run measured in docs/reliability.md (benchmarks/fuzz_analysis.py --seed 100000
# --cases 100000), in chunks of a couple of minutes each.
SLOW_FIRST_SEED = 100_000
SLOW_CASES = int(os.environ.get("FUZZ_SLOW_CASES", 100_000))
SLOW_CHUNK = 5_000


@pytest.mark.slow
@pytest.mark.parametrize("first", range(SLOW_FIRST_SEED, SLOW_FIRST_SEED + SLOW_CASES, SLOW_CHUNK))
def test_fuzz_slow_run(first):
    _all_pass(range(first, min(first + SLOW_CHUNK, SLOW_FIRST_SEED + SLOW_CASES)))

"""The readers on files built to hang or exhaust them: FIFOs in place of run files, /dev/zero and
/dev/urandom behind symlinks, files past the read caps, YAML alias bombs, and path names that are not
UTF-8 or too long. Each case runs in a subprocess under a timeout: a reader that blocks fails the test,
it does not hang the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_module

TIMEOUT_S = 60  # each subprocess; the reads themselves take milliseconds

# The classic "billion laughs": 9 levels of 9 aliases expand to 9^9 strings (~390 million) in 500 bytes.
LAUGHS = "\n".join(["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"] + [
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def a_run(run: Path, epochs: int = 2) -> Path:
    """A small run directory as the trainer leaves it (written here: no training needed)."""
    diag = run / "diagnostics"
    write_jsonl(diag / "train_diagnostics.jsonl", [{"epoch": e, "loss": 2.0 / e, "accuracy": 0.3 * e,
                                                    "learning_rate": 0.05} for e in range(1, epochs + 1)])
    write_jsonl(diag / "val_diagnostics.jsonl", [{"epoch": e, "loss": 2.1 / e, "accuracy": 0.3 * e}
                                                 for e in range(1, epochs + 1)])
    (diag / "status.json").write_text(json.dumps({"status": "completed", "epoch": epochs, "epochs": epochs}))
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    (run / ".hydra" / "config.yaml").write_text("trainer:\n  epochs: 2\ndata:\n  num_classes: 10\n")
    (run / ".hydra" / "overrides.yaml").write_text("- trainer.epochs=2\n")
    return run


def in_subprocess(code: str, *args) -> dict:
    """Run code (which prints one JSON line) in a fresh interpreter, under the timeout."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


LOAD = """
import json, sys
from rundir.read import load_run
run = load_run(sys.argv[1])
print(json.dumps({"warnings": run.warnings, "train": len(run.train), "val": len(run.val), "state": run.state,
                  "config": run.config, "overrides": run.overrides, "notes": run.notes}))
"""


def test_fifos_in_place_of_run_files_are_named_never_opened(tmp_path):
    run = a_run(tmp_path / "run")
    fifos = [run / "diagnostics" / "train_diagnostics.jsonl", run / "diagnostics" / "status.json",
             run / ".hydra" / "config.yaml"]
    for f in fifos:
        f.unlink()
        os.mkfifo(f)
    got = in_subprocess(LOAD, run)
    for f in fifos:
        assert f"{f}: a FIFO, not a regular file: not read" in got["warnings"]
    assert got["val"] == 2 and got["train"] == 0 and got["state"] == "unknown"


def test_a_fifo_as_pointer_or_behind_it_is_named(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    a_run(tmp_path / "tmp")
    (tmp_path / "tmp" / "diagnostics").rename(elsewhere)
    (elsewhere / "run_info.json").write_text(json.dumps({"run_dir": str(run.resolve())}))
    pointer = run / "diagnostics_dir.json"
    os.mkfifo(pointer)
    got = in_subprocess(LOAD, run)
    assert f"{pointer}: a FIFO, not a regular file: not read" in got["warnings"]
    assert got["train"] == 0
    # the pointer is fine, what it points at holds a FIFO
    pointer.unlink()
    pointer.write_text(json.dumps({"diagnostics_dir": str(elsewhere)}))
    (elsewhere / "val_diagnostics.jsonl").unlink()
    os.mkfifo(elsewhere / "val_diagnostics.jsonl")
    got = in_subprocess(LOAD, run)
    assert got["notes"] and got["train"] == 2 and got["val"] == 0
    assert f"{elsewhere / 'val_diagnostics.jsonl'}: a FIFO, not a regular file: not read" in got["warnings"]


def test_a_fifo_as_a_sweep_jobs_log_and_as_the_path_given(tmp_path):
    sweep = tmp_path / "sweep"
    a_run(sweep / "0")
    failed = sweep / "1"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=-1\n")
    os.mkfifo(failed / "train.log")
    proc = run_module("analysis", [str(sweep), "--format", "json"], timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jobs = {r["job"]: r for r in report["runs"]}
    assert jobs["1"]["status"] == "no diagnostics"
    assert any(w.endswith(f"{failed / 'train.log'}: a FIFO, not a regular file: not read") for w in report["warnings"])
    for args in ([str(failed / "train.log")], ["--file", str(failed / "train.log")]):
        proc = run_module("analysis", args, timeout=TIMEOUT_S)
        assert proc.returncode == 2 and proc.stderr == (f"error: {failed / 'train.log'}: a FIFO, not a run "
                                                        f"directory or a diagnostics JSONL file\n"), proc.stderr


def test_devices_behind_symlinks_are_refused(tmp_path):
    run = a_run(tmp_path / "run")
    links = {run / "diagnostics" / "train_diagnostics.jsonl": "/dev/zero",
             run / "diagnostics" / "status.json": "/dev/urandom",
             run / ".hydra" / "overrides.yaml": "/dev/zero"}
    for link, target in links.items():
        link.unlink()
        link.symlink_to(target)
    got = in_subprocess(LOAD, run)
    for link in links:
        assert f"{link}: a character device, not a regular file: not read" in got["warnings"]
    lone = tmp_path / "zero.jsonl"
    lone.symlink_to("/dev/zero")
    proc = run_module("analysis", [str(lone)], timeout=TIMEOUT_S)
    assert proc.returncode == 2 and "a character device, not a run directory" in proc.stderr


CAPS = """
import json, sys
import rundir.safe as safe
from rundir.read import load_run
safe.MAX_JSONL_BYTES, safe.MAX_JSON_BYTES, safe.MAX_YAML_BYTES = 100, 60, 30
run = load_run(sys.argv[1])
print(json.dumps({"warnings": run.warnings, "epochs": run.train.epochs.tolist(), "status": run.status,
                  "overrides": run.overrides}))
"""


def test_reads_stop_at_the_caps(tmp_path):
    """Caps lowered in the subprocess: a file past its cap costs the cap, never the whole file."""
    run = a_run(tmp_path / "run", epochs=6)  # ~90 bytes a line: the first line fits in 100 bytes
    (run / "diagnostics" / "status.json").write_text(json.dumps({"status": "completed", "pad": "x" * 100}))
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- a{i}=1\n" for i in range(10)))
    got = in_subprocess(CAPS, run)
    train = run / "diagnostics" / "train_diagnostics.jsonl"
    assert f"{train}: larger than {100 / 2**20:g} MiB: only the lines in its first {100 / 2**20:g} MiB read" \
        in got["warnings"]
    assert got["epochs"] == [1]
    assert got["status"] is None and f"{run / 'diagnostics' / 'status.json'}: larger than {60 / 2**20:g} MiB, ignored" \
        in got["warnings"]
    assert got["overrides"] == []


def test_yaml_alias_bombs_are_refused_quickly(tmp_path):
    assert len(LAUGHS.encode()) < 520
    run = a_run(tmp_path / "run")
    (run / ".hydra" / "config.yaml").write_text(LAUGHS)
    (run / ".hydra" / "overrides.yaml").write_text("- &x a=1\n" + "- *x\n" * 200)  # aliases past the count
    got = in_subprocess(LOAD, run)
    assert f"{run / '.hydra' / 'config.yaml'}: YAML refused (expands to more than 100000 nodes through aliases), " \
           f"ignored" in got["warnings"]
    assert f"{run / '.hydra' / 'overrides.yaml'}: YAML refused (more than 100 aliases), ignored" in got["warnings"]
    assert got["config"] is None and got["overrides"] == [] and got["train"] == 2
    (run / ".hydra" / "config.yaml").write_text("[" * 100 + "]" * 100)  # nesting no Hydra file has
    got = in_subprocess(LOAD, run)
    assert f"{run / '.hydra' / 'config.yaml'}: YAML refused (nested deeper than 64), ignored" in got["warnings"]
    sweep = tmp_path / "sweep"
    a_run(sweep / "0")
    (sweep / "multirun.yaml").write_text(LAUGHS)
    proc = run_module("analysis", [str(sweep), "--format", "json"], timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert f"{sweep / 'multirun.yaml'}: YAML refused (expands to more than 100000 nodes through aliases), ignored" \
        in json.loads(proc.stdout)["warnings"]


def test_yaml_with_a_few_aliases_is_still_read(tmp_path):
    run = a_run(tmp_path / "run")
    (run / ".hydra" / "config.yaml").write_text("base: &b {lr: 0.1}\noptimizer: *b\n")
    got = in_subprocess(LOAD, run)
    assert got["config"] == {"base": {"lr": 0.1}, "optimizer": {"lr": 0.1}} and got["warnings"] == []


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses names that are not UTF-8")
def test_path_names_that_are_not_utf8_are_reported(tmp_path):
    name = os.fsdecode(b"run-\xff\xfe")
    run = a_run(tmp_path / name)
    out = tmp_path / os.fsdecode(b"out-\xff")
    for args in ([str(run)], [str(run), "--format", "json"], [str(run), "--format", "html"],
                 [str(run), "--out", str(out)], [str(run / "diagnostics" / "train_diagnostics.jsonl")]):
        proc = subprocess.run([sys.executable, "-m", "analysis", *args], cwd=tmp_path, capture_output=True,
                              timeout=TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
    assert proc.stdout  # a report was printed
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "epochs.csv", "report.html", "report.json",
                                                      "report.md"]
    sweep = tmp_path / "sweep"
    a_run(sweep / name)
    a_run(sweep / "other")
    proc = subprocess.run([sys.executable, "-m", "analysis", str(sweep)], cwd=tmp_path, capture_output=True,
                          timeout=TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_path_names_too_long_are_one_line(tmp_path):
    long_name = tmp_path / ("a" * 300)
    for args in ([str(long_name)], ["--file", str(long_name / "train_diagnostics.jsonl")],
                 [str(long_name), str(long_name)]):
        proc = run_module("analysis", args, timeout=TIMEOUT_S)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"error: {long_name}") and "File name too long" in proc.stderr
    # a path of more than 300 characters in all, each name short enough: read as usual
    deep = tmp_path.joinpath(*(["d" * 100] * 4))
    run = a_run(deep / "run")
    assert len(str(run)) > 300
    proc = run_module("analysis", [str(run), "--format", "json"], timeout=TIMEOUT_S)
    assert proc.returncode == 0 and json.loads(proc.stdout)["summary"]["epochs"] == 2

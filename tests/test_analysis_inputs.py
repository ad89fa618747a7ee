"""`python -m analysis` on what new users actually give it: report directories it cannot write, files that
are not diagnostics, bad values inside real runs, diagnostics written elsewhere (diagnostics.dir,
DIAGNOSTICS_DIR), single runs compared, sweep summaries (ties, seeds, n=1) and runs killed mid-way.

Every case runs the real command on real files: tiny real runs, or JSONL written here."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, compose, made_once, run_module

FAST = ["trainer.epochs=1", "model.width=4", "data.image_size=16", "data.batch_size=128"]
ENV = {"OMP_NUM_THREADS": "1"}


def analyze(*args, cwd=None, env=None):
    return run_module("analysis", [str(a) for a in args], cwd=cwd, env=env, timeout=120)


def one_error_line(proc, needle: str) -> str:
    """The run failed as bad input must: exit 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, proc.stderr
    assert line.startswith("error: ") and needle in line, line
    return line


def trainers(jobs: list[tuple[list[str], Path, dict]]) -> None:
    """Run several `python -m trainer ...` at once (cwd, extra environment each) and wait for all."""
    base = {k: v for k, v in os.environ.items() if k != "DIAGNOSTICS_DIR"}
    procs = []
    for args, cwd, env in jobs:
        full = {**base, "PYTHONPATH": str(ROOT), **ENV, **env}
        procs.append(subprocess.Popen([sys.executable, "-m", "trainer", *args], cwd=cwd, env=full,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


def copy_run(digits_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(digits_run, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ───────────── 1. --out that cannot be written ─────────────


@pytest.fixture
def sweep_copy(sweep_2x2, tmp_path) -> Path:
    dst = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, dst, ignore=shutil.ignore_patterns("checkpoints", "analysis"))
    return dst


def bad_outs(tmp_path: Path) -> list[tuple[Path, str]]:
    afile = tmp_path / "notes.md"
    afile.write_text("keep me\n")
    return [(Path("/proc/x"), "No such file or directory"),  # a parent that takes no new directory
            (afile, "it is a file, not a directory"),  # an existing file
            (afile / "sub", "Not a directory")]  # below a file


@pytest.mark.parametrize("what", ["run", "sweep", "sweeps", "runs"])
def test_unwritable_out_is_one_line_exit_2_and_nothing_printed_or_lost(what, digits_run, sweep_copy, tmp_path):
    inputs = {"run": [digits_run], "sweep": [sweep_copy], "sweeps": [sweep_copy, sweep_copy],
              "runs": [sweep_copy / "0", sweep_copy / "1"]}[what]
    for out, reason in bad_outs(tmp_path)[: 3 if what == "run" else 2]:
        proc = analyze(*inputs, "--out", out)
        line = one_error_line(proc, f"cannot write reports to {out}: {reason}")
        assert line == f"error: cannot write reports to {out}: {reason}"
        assert proc.stdout == ""  # decided: no report when the files asked for cannot be written
    assert (tmp_path / "notes.md").read_text() == "keep me\n"
    assert not (sweep_copy / "analysis").exists()  # --out given: the default place is not used instead


def test_bad_input_with_out_creates_no_directory(tmp_path):
    proc = analyze(tmp_path / "missing-run", "--out", tmp_path / "new" / "report")
    one_error_line(proc, "no such file or directory")
    assert not (tmp_path / "new").exists()


def test_out_replaces_old_reports_whole_and_leaves_no_temporaries(digits_run, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("old report")
    (out / "mine.txt").write_text("not ours")
    proc = analyze(digits_run, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.md").read_text().startswith("# Run ")
    assert (out / "mine.txt").read_text() == "not ours"
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "epochs.csv", "mine.txt", "report.html",
                                                      "report.json", "report.md"]


def test_sweeps_and_runs_compared_write_nothing_unasked(sweep_copy, digits_run, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for paths in ((sweep_copy, sweep_copy), (digits_run, digits_run)):
        proc = analyze(*paths, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        assert "compared" in proc.stdout and "wrote" not in proc.stdout and "Traceback" not in proc.stderr
        assert list(cwd.iterdir()) == []  # no report.html, runs.csv, summary.json, comparison.* in the cwd


# ───────────── 2. files that are not diagnostics ─────────────


def test_files_that_are_not_diagnostics_are_refused(digits_run, tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("".join(f"user{i}:x:{i}:{i}::/home/user{i}:/bin/sh\n" for i in range(30)))
    no_epoch = tmp_path / "x.jsonl"
    no_epoch.write_text('{"epoch": "x"}\n')
    cases = [(passwd, "none of its 30 line(s) is a JSON object"),
             (digits_run / "diagnostics" / "run_info.json", "one JSON document, not one record per line; "
                                                             "give the run directory instead"),
             (digits_run / "checkpoints" / "last.pt", "binary data: a zip archive, as PyTorch checkpoints are; "
                                                      "the analysis reads no checkpoint"),
             (no_epoch, 'none of its 1 JSON object(s) has an integer "epoch"')]
    for i, (path, reason) in enumerate(cases):
        for args in ([path], ["--file", path, "--fail-on", "warning"])[: 2 if i == 0 else 1]:
            proc = analyze(*args)
            assert one_error_line(proc, f"{path} is not a diagnostics JSONL file ({reason})")
            assert proc.stdout == ""


def test_an_empty_diagnostics_file_is_still_a_run_starting(tmp_path):
    f = tmp_path / "train_diagnostics.jsonl"
    f.write_text("")
    proc = analyze(f)
    assert proc.returncode == 0 and "empty file" in proc.stderr


def test_per_line_warnings_are_capped_per_file(digits_run, tmp_path):
    run = copy_run(digits_run, tmp_path)
    train = run / "diagnostics" / "train_diagnostics.jsonl"
    good = train.read_text()
    train.write_text(good + "".join(f"garbage line {i}\n" for i in range(40)))
    proc = analyze(run, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["warnings"]
    numbers = [w[len(f"{train}:"):].split(":")[0] for w in warnings if w.startswith(f"{train}:")]
    assert numbers == ["3", "4", "5", "6", "7", " and 35 more line(s) with problems like these (lines 8-42), "
                                                "skipped or read as missing"]  # the first five, then a count
    assert warnings[0] == f"{train}:3: not JSON (Expecting value), skipped"
    assert json.loads(proc.stdout)["summary"]["epochs"] == 2  # the good records are all read


# ───────────── 3. bad values inside a run: warnings naming file and line ─────────────


def test_bad_values_missing_val_and_corrupt_config_are_named(digits_run, tmp_path):
    run = copy_run(digits_run, tmp_path)
    train = run / "diagnostics" / "train_diagnostics.jsonl"
    records = [json.loads(x) for x in train.read_text().splitlines()]
    lines = [json.dumps({**records[0], "loss": "abc"}),
             json.dumps({**records[1], "loss": float("nan")})]  # Python's json writes the NaN token
    assert "NaN" in lines[1]
    train.write_text("\n".join(lines) + "\n")
    (run / "diagnostics" / "val_diagnostics.jsonl").unlink()
    (run / ".hydra" / "config.yaml").write_text(": : :\n")
    proc = analyze(run)
    assert proc.returncode == 0, proc.stderr
    expected = [f'{train}:1: "loss" is not a number ("abc"), read as missing',
                f'{train}:2: NaN in "loss", read as non-finite',
                f"{run / 'diagnostics' / 'val_diagnostics.jsonl'}: missing: no validation records",
                f"{run / '.hydra' / 'config.yaml'}:1: unreadable YAML"]
    section = proc.stdout.split("== Reading warnings ==")[1]
    for text in expected:
        assert text in section, (text, section)
        assert f"warning: {text}" in proc.stderr
    assert "== Loss Analysis ==" in proc.stdout  # the report is still made


def test_config_yaml_that_is_no_mapping_and_overrides_that_are_no_list(digits_run, tmp_path):
    run = copy_run(digits_run, tmp_path)
    (run / ".hydra" / "config.yaml").write_text("just text\n")
    (run / ".hydra" / "overrides.yaml").write_text("a: 1\n")
    proc = analyze(run)
    assert proc.returncode == 0
    assert f"{run / '.hydra' / 'config.yaml'}: not a YAML mapping (str), ignored" in proc.stderr
    assert f"{run / '.hydra' / 'overrides.yaml'}: not a YAML list of overrides (dict), ignored" in proc.stderr


def test_a_clean_run_has_no_reading_warnings(digits_run):
    proc = analyze(digits_run, "--format", "json")
    assert json.loads(proc.stdout)["warnings"] == [] and proc.stderr == ""


# ───────────── 4. diagnostics written elsewhere ─────────────


@pytest.fixture(scope="session")
def elsewhere(tmp_path_factory) -> Path:
    """Two real runs launched from `launch/`: one with diagnostics.dir=rel_diag (relative: Hydra 1.3 does not
    chdir, so it lands in launch/rel_diag), one with DIAGNOSTICS_DIR=env_diag. Made once for all workers."""
    def launch_two(root: Path) -> None:
        (root / "launch").mkdir(parents=True)
        trainers([(["hydra.run.dir=runs/explicit", "diagnostics.dir=rel_diag", *FAST], root / "launch", {}),
                  (["hydra.run.dir=runs/env", *FAST], root / "launch", {"DIAGNOSTICS_DIR": "env_diag"})])

    launch = made_once(tmp_path_factory, "elsewhere", launch_two) / "launch"
    for name in ("rel_diag", "env_diag"):
        assert (launch / name / "train_diagnostics.jsonl").exists()
    assert not (launch / "runs" / "explicit" / "diagnostics").exists()
    return launch


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_recorded_diagnostics_dir_is_read_from_the_pointer(elsewhere):
    # analysed from elsewhere (ROOT): the trainer recorded the absolute path in diagnostics_dir.json
    run = elsewhere / "runs" / "explicit"
    proc = analyze(run, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["run"]["status"] == "completed" and report["summary"]["epochs"] == 1
    assert report["run"]["notes"] == [f"diagnostics read from {elsewhere / 'rel_diag'} (recorded by the trainer in "
                                      f"diagnostics_dir.json), not {run / 'diagnostics'}"]
    assert report["warnings"] == []
    text = analyze(run).stdout
    assert f"note: diagnostics read from {elsewhere / 'rel_diag'}" in text.splitlines()[2]


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_diagnostics_dir_from_the_environment(elsewhere, tmp_path):
    run = elsewhere / "runs" / "env"
    # Hydra records ${oc.env:DIAGNOSTICS_DIR,...}, not the value; the trainer records where they went
    proc = analyze(run, "--format", "json")
    report = json.loads(proc.stdout)
    assert report["run"]["status"] == "completed" and report["warnings"] == []
    assert report["run"]["notes"] == [f"diagnostics read from {elsewhere / 'env_diag'} (recorded by the trainer in "
                                      f"diagnostics_dir.json), not {run / 'diagnostics'}"]
    pointer = run / "diagnostics_dir.json"
    saved = pointer.read_text()
    try:
        # without the pointer (moved aside): one warning saying where to look, no guessing
        pointer.unlink()
        report = json.loads(analyze(run, "--format", "json").stdout)
        assert report["run"]["status"] == "unknown"
        assert report["warnings"] == [f"{run}: no diagnostics here (no diagnostics/, and no diagnostics_dir.json "
                                      f"saying where they went); the job may have failed before its first epoch, "
                                      f"or they went elsewhere (DIAGNOSTICS_DIR, diagnostics.dir): then analyse "
                                      f"that directory"]
        # a pointer to another run's diagnostics is not followed
        pointer.write_text(json.dumps({"diagnostics_dir": str(elsewhere / "rel_diag")}))
        report = json.loads(analyze(run, "--format", "json").stdout)
        assert report["run"]["status"] == "unknown"
        assert report["warnings"] == [f"{pointer}: names {elsewhere / 'rel_diag'}, whose run_info.json names "
                                      f"another run; no diagnostics read"]
    finally:
        pointer.write_text(saved)
    # the diagnostics directory given itself: its run_info.json leads back to the run's .hydra/
    proc = analyze(elsewhere / "env_diag", "--format", "json")
    report = json.loads(proc.stdout)
    assert report["run"]["name"] == "env" and report["run"]["overrides"] == FAST


# ───────────── 5. single runs compared ─────────────


@pytest.fixture(scope="session")
def four_runs(tmp_path_factory) -> list[Path]:
    """Single real runs differing in optimizer.lr, the augmentation option, and crop_padding within basic.
    Made once for all workers."""
    def launch_four(root: Path) -> None:
        root.mkdir()
        trainers([([f"hydra.run.dir={root / 'a'}", *FAST], root, {}),
                  ([f"hydra.run.dir={root / 'b'}", "optimizer.lr=0.1", *FAST], root, {}),
                  ([f"hydra.run.dir={root / 'c'}", "augmentation=basic", *FAST], root, {}),
                  ([f"hydra.run.dir={root / 'd'}", "augmentation=basic", "augmentation.crop_padding=2", *FAST],
                   root, {})])

    root = made_once(tmp_path_factory, "four_runs", launch_four)
    return [root / n for n in "abcd"]


def composed(overrides: list[str]) -> dict:
    """The config `python -m trainer OVERRIDES` runs with, as run_info.json records it."""
    from trainer.config import validate
    from trainer.config import plain

    return plain(validate(compose(overrides)))


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_runs_compared_axes_are_group_choices_and_best_lines_run(four_runs):
    proc = analyze(*four_runs, "--format", "json", cwd=four_runs[0].parent)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["sweep"]["axes"] == {"augmentation": ["none", "basic"], "optimizer.lr": [0.05, 0.1],
                                       "augmentation.crop_padding": [2, 4]}
    assert report["sweep"]["kind"] == "runs" and report["sweep"]["name"] == "4 runs"
    assert report["sweep"]["path"] == str(four_runs[0].parent)
    assert report["sweep"]["fixed"] == {"trainer.epochs": 1, "model.width": 4, "data.image_size": 16,
                                        "data.batch_size": 128}
    rows = {r["job"]: r for r in report["runs"]}
    assert rows["a"]["overrides"] == {**report["sweep"]["fixed"], "augmentation": "none", "optimizer.lr": 0.05}
    assert rows["d"]["overrides"]["augmentation.crop_padding"] == 2
    # the best line, and every configuration's overrides, compose into exactly that run's config
    from analysis.overrides import fmt

    best = report["best"]["overrides_cli"]
    assert best == [f"{k}={fmt(v)}" for k, v in report["best"]["overrides"].items()]
    assert len(report["configurations"]) == 4
    for g in report["configurations"]:
        cli = [f"{k}={fmt(v)}" for k, v in g["overrides"].items()]
        (run,) = [p for p in four_runs if p.name in g["runs"]]
        recorded = json.loads((run / "diagnostics" / "run_info.json").read_text())["config"]
        mine = composed(cli)
        for cfg in (recorded, mine):
            cfg["diagnostics"].pop("dir")
        assert mine == recorded, cli


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_runs_compared_text_header_and_table(four_runs):
    proc = analyze(*four_runs, cwd=four_runs[0].parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"4 runs compared (under {four_runs[0].parent})"
    assert "augmentation.horizontal_flip" not in proc.stdout and "augmentation.name" not in proc.stdout
    table = {ln.split()[0]: ln.split()[1:4] for ln in lines if ln[:2] in ("a ", "b ", "c ", "d ")}
    assert table["a"] == ["none", "0.05", "-"] and table["d"] == ["basic", "0.05", "2"]
    best = next(ln for ln in lines if ln.startswith("best: "))
    assert " ± " not in best and best.endswith("(n=1)")


def test_config_axes_skip_derived_keys_and_other_options_keys():
    from analysis.sweep import config_axes

    flat = [{"data.name": "digits", "data.num_classes": 10, "model.name": "small_cnn", "model.num_classes": 10,
             "augmentation.name": "none"},
            {"data.name": "cifar10", "data.num_classes": 10, "model.name": "small_cnn", "model.num_classes": 10,
             "augmentation.name": "randaugment", "augmentation.num_ops": 2},
            {"data.name": "cifar100", "data.num_classes": 100, "model.name": "small_cnn", "model.num_classes": 100,
             "augmentation.name": "randaugment", "augmentation.num_ops": 3}]
    axes = config_axes(flat, skip={"model.num_classes"})
    assert axes == {"data": ["digits", "cifar10", "cifar100"], "augmentation": ["none", "randaugment"],
                    "augmentation.num_ops": [2, 3]}


# ───────────── 6. sweep summaries: ties, seeds, n=1 ─────────────


def write_sweep(root: Path, jobs: list[tuple[dict, float]], task: list[str]) -> Path:
    """A sweep directory as Hydra's BasicSweeper leaves it, each job's val JSONL reaching `acc` at epoch 2."""
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text(
        "hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "  overrides:\n    task:\n" + "".join(f"    - {t}\n" for t in task))
    for i, (overrides, acc) in enumerate(jobs):
        job = root / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {k}={v}\n" for k, v in overrides.items()))
        diag = job / "diagnostics"
        write_jsonl(diag / "train_diagnostics.jsonl", [{"epoch": e, "loss": 2.0 / e, "learning_rate": 0.05}
                                                       for e in (1, 2)])
        write_jsonl(diag / "val_diagnostics.jsonl", [{"epoch": 1, "loss": 2.0, "accuracy": acc / 2},
                                                     {"epoch": 2, "loss": 1.0, "accuracy": acc}])
        (diag / "status.json").write_text(json.dumps({"status": "completed", "epoch": 2, "epochs": 2}))
    return root


def test_an_axis_without_effect_gets_no_extend_advice_and_seeds_are_replicates(tmp_path):
    jobs, acc = [], {0.05: 0.70, 0.1: 0.80}
    for p in (1, 3):
        for lr in (0.05, 0.1):
            for seed, noise in ((0, -0.005), (1, 0.005)):  # patience changes nothing: identical results
                jobs.append(({"scheduler.patience": p, "optimizer.lr": lr, "trainer.seed": seed}, acc[lr] + noise))
    sweep = write_sweep(tmp_path / "sw", jobs, ["scheduler.patience=1,3", "optimizer.lr=0.05,0.1",
                                                "trainer.seed=0,1"])
    proc = analyze(sweep, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    effects = {a["key"]: a for a in report["axes"]}
    assert set(effects) == {"scheduler.patience", "optimizer.lr"}  # the seed is no axis
    # no run cut its LR, so patience never acted: "not exercised" (issue 20), never counted as an effect
    assert effects["scheduler.patience"]["effect"] == "not exercised" and effects["optimizer.lr"]["effect"] == "some"
    assert effects["scheduler.patience"]["not_exercised_why"]
    best = report["best"]
    assert best["n"] == 2 and best["mean"] == pytest.approx(0.80) and best["std"] == pytest.approx(0.00707, abs=1e-4)
    assert "trainer.seed" not in best["overrides"]
    assert not any(n.startswith("scheduler.patience=") for n in best["edge_notes"])
    assert any(n.startswith("optimizer.lr=0.1 is the largest value swept: extend the range above it (")
               for n in best["edge_notes"])
    assert report["replicates"]["values"] == [0, 1] and report["replicates"]["n"] == [2]
    text = analyze(sweep).stdout
    assert "effect of trainer.seed" not in text
    assert "scheduler.patience was not exercised: no run cut the LR" in text
    assert "seeds (trainer.seed = 0, 1) are replicates, not an axis" in text
    assert "extend the range below" not in text


def test_single_run_values_show_no_spread(tmp_path):
    sweep = write_sweep(tmp_path / "sw", [({"optimizer.lr": 0.05}, 0.6), ({"optimizer.lr": 0.1}, 0.7),
                                          ({"optimizer.lr": 0.2}, 0.65)], ["optimizer.lr=0.05,0.1,0.2"])
    proc = analyze(sweep)
    assert proc.returncode == 0, proc.stderr
    assert "± 0.0000" not in proc.stdout
    assert "  0.1: 0.7000 (n=1)" in proc.stdout and "best: optimizer.lr=0.1: 0.7000 (n=1)" in proc.stdout
    assert "extend the range" not in proc.stdout  # the best is inside the range
    md = (sweep / "analysis" / "report.md").read_text()
    assert "| 0.1 | 0.7000 (n=1) |" in md


def test_best_line_keeps_the_exact_values_the_runs_used(tmp_path):
    """An Optuna trial's lr has 16 digits; the best line must rerun that trial, not a rounded neighbour."""
    lr = 0.06260326907499733
    sweep = write_sweep(tmp_path / "sw", [({"optimizer.lr": lr}, 0.8), ({"optimizer.lr": 0.00123456789}, 0.6)],
                        [f"optimizer.lr={lr},0.00123456789"])
    proc = analyze(sweep)
    assert proc.returncode == 0, proc.stderr
    assert f"best: optimizer.lr={lr}: 0.8000 (n=1)" in proc.stdout


def test_real_sweep_best_line_composes(sweep_2x2):
    from analysis import sweep_report
    from analysis.sweep import load_sweep

    report = sweep_report.build(load_sweep(sweep_2x2))
    composed(report["best"]["overrides_cli"])
    rows = {r["job"]: r["best_val_accuracy"] for r in report["runs"]}
    if rows["0"] == rows["2"] and rows["1"] == rows["3"]:  # patience made no difference in 2 epochs
        assert not any(n.startswith("scheduler.patience=") for n in report["best"]["edge_notes"])


# ───────────── 7. a run killed while status.json said running ─────────────


def set_status(run: Path, minutes_ago: float, epoch_time: float | None = None) -> None:
    status = run / "diagnostics" / "status.json"
    data = json.loads(status.read_text())
    data["status"] = "running"
    data["updated_at"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)).isoformat(
        timespec="seconds")
    status.write_text(json.dumps(data))
    if epoch_time is not None:
        train = run / "diagnostics" / "train_diagnostics.jsonl"
        records = [json.loads(x) for x in train.read_text().splitlines()]
        write_jsonl(train, [{**r, "epoch_time_s": epoch_time} for r in records])


def test_running_without_updates_for_long_says_it_may_have_been_killed(digits_run, tmp_path):
    run = copy_run(digits_run, tmp_path)
    set_status(run, minutes_ago=42)
    proc = analyze(run)
    assert proc.stdout.splitlines()[1] == ("status running (no update for 42 min: the process may have been "
                                           "killed; rerun to resume), 2 epochs of 2")
    assert json.loads(analyze(run, "--format", "json").stdout)["run"]["status"] == "running"
    set_status(run, minutes_ago=3)  # recent: still running
    assert analyze(run).stdout.splitlines()[1] == "status running, 2 epochs of 2"
    set_status(run, minutes_ago=42, epoch_time=1000.0)  # 3 x a 1000 s epoch = 50 min: not yet
    assert analyze(run).stdout.splitlines()[1] == "status running, 2 epochs of 2"
    set_status(run, minutes_ago=51, epoch_time=1000.0)
    assert "(no update for 51 min: the process may have been killed" in analyze(run).stdout


def test_a_stale_job_is_named_in_the_sweep_report(sweep_copy):
    set_status(sweep_copy / "1", minutes_ago=90)
    proc = analyze(sweep_copy)
    assert proc.returncode == 0, proc.stderr
    assert "  job 1 running: no update for 90 min: the process may have been killed; rerun to resume" \
        in proc.stdout.splitlines()

"""`python -m analysis PATH` on runs traindx did not train: Lightning, TensorBoard, Keras, Hugging Face,
timm, and a lightning-hydra-template multirun. The files are the real libraries' (written by Lightning
and torch.utils.tensorboard here, or published ones in tests/data/importers/, see SOURCES.md); expected
values are recomputed from the raw files in each test."""

from __future__ import annotations

import csv
import json
import os
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_module
from importer_logs import hydra_job, lightning_fit, lightning_hydra_multirun, summary_writer_per_epoch, \
    summary_writer_per_step, write_yaml

from analysis.importers import load_runs, options
from rundir.read import RunError
from analysis.schedule import find_cuts

DATA = ROOT / "tests" / "data" / "importers"
LIGHTNING_CSV = DATA / "lightning" / "csv" / "version_0"
LIGHTNING_TB = DATA / "lightning" / "tb" / "version_0"


def analyze(*args, cwd=None):
    return run_module("analysis", [str(a) for a in args], cwd=cwd, timeout=120)


def analyze_json(*args) -> dict:
    proc = analyze(*args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one(path, **kw):
    runs = load_runs(Path(path), options(**kw))
    assert len(runs) == 1
    return runs[0]


def column(run, stage: str, name: str) -> dict[int, float]:
    cols = getattr(run, stage)
    return {int(e): float(v) for e, v in zip(cols.epochs, cols[name]) if np.isfinite(v)}


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ───────────── Lightning CSVLogger ─────────────


def lightning_expected(metrics: Path, train_loss: str, val_acc: str, val_loss: str) -> dict:
    """Per 1-based epoch, from the sparse metrics.csv: mean of the per-step train loss, the val values,
    with rows after the last training epoch (trainer.validate/test) left out."""
    rows = csv_rows(metrics)
    train: dict[int, list[float]] = {}
    val_a, val_l = {}, {}
    for r in rows:
        if r["epoch"] == "":
            continue
        e = int(r["epoch"]) + 1
        if r.get(train_loss):
            train.setdefault(e, []).append(float(r[train_loss]))
        if r.get(val_acc):
            val_a[e], val_l[e] = float(r[val_acc]), float(r[val_loss])
    last = max(train)
    return {"train_loss": {e: sum(v) / len(v) for e, v in train.items()},
            "val_acc": {e: v for e, v in val_a.items() if e <= last},
            "val_loss": {e: v for e, v in val_l.items() if e <= last}, "dropped": sorted(e for e in val_a if e > last)}


def check_lightning_run(run, metrics: Path):
    exp = lightning_expected(metrics, "train_loss", "val_acc", "val_loss")
    assert exp["dropped"], "the file has a trailing trainer.validate() row"
    assert column(run, "val", "accuracy") == pytest.approx(exp["val_acc"])
    assert column(run, "val", "loss") == pytest.approx(exp["val_loss"])
    assert column(run, "train", "loss") == pytest.approx(exp["train_loss"])
    # LearningRateMonitor rows carry no epoch: StepLR(2, 0.1) from 0.1
    assert column(run, "train", "learning_rate") == pytest.approx({1: 0.1, 2: 0.1, 3: 0.01, 4: 0.01})
    assert run.state == "completed"  # a test pass followed training


def test_lightning_csvlogger_file_written_by_lightning():
    run = one(LIGHTNING_CSV)
    check_lightning_run(run, LIGHTNING_CSV / "metrics.csv")
    assert run.imported["fields"] == {"train.accuracy": "train_acc", "train.learning_rate": "lr-SGD",
                                      "train.loss": "train_loss", "val.accuracy": "val_acc", "val.loss": "val_loss"}
    assert run.cfg("optimizer.lr") == 0.1 and run.cfg("data.batch_size") == 64  # hparams.yaml read as the config
    assert {"augmentation.name", "val_size", "regularization.grad_clip"} <= run.unknown
    report = analyze_json(LIGHTNING_CSV)
    assert report["summary"]["epochs"] == 4 and report["summary"]["lr_cuts"] == 1
    assert report["run"]["status"] == "completed"
    assert "augmentation.name" in report["run"]["imported"]["unknown"]
    assert any("test_acc" in n for n in report["run"]["notes"])  # named as not imported


def test_lightning_published_metrics_csv_drops_trailing_revalidation_and_test_rows():
    run = one(DATA / "lightning_metrics.csv")
    exp = lightning_expected(DATA / "lightning_metrics.csv", "train_loss", "val_accuracy", "val_loss")
    assert exp["dropped"] == [6]
    assert column(run, "val", "accuracy") == pytest.approx(exp["val_acc"])
    assert column(run, "train", "loss") == pytest.approx(exp["train_loss"])
    assert max(column(run, "val", "accuracy").values()) == pytest.approx(0.9868000149726868)  # not 0.9964
    assert run.state == "completed" and run.last_epoch == 5
    proc = analyze(DATA / "lightning_metrics.csv", "--fail-on", "warning")
    assert proc.returncode == 0, proc.stdout  # a healthy run: no warning
    assert "status completed, 5 epochs" in proc.stdout and "test_loss (not a field the rules read)" in proc.stdout


def test_map_renames_and_ignores_metrics_and_bad_options_are_one_line(tmp_path):
    text = (DATA / "lightning_metrics.csv").read_text().replace("val_accuracy", "val_score", 1)
    (tmp_path / "metrics.csv").write_text(text)
    run = one(tmp_path / "metrics.csv")
    assert not run.val.has("accuracy") and "val_score" in run.imported["not_imported"]
    mapped = one(tmp_path / "metrics.csv", maps=["val_score=val.accuracy", "val_loss=ignore"])
    assert max(column(mapped, "val", "accuracy").values()) == pytest.approx(0.9868000149726868)
    assert not mapped.val.has("loss") and mapped.imported["not_imported"]["val_loss"] == "ignored by --map"
    for bad, said in ((["--map", "val_score=val.acc"], "error: --map 'val_score=val.acc': FIELD must be"),
                      (["--map", "novalue"], "error: --map 'novalue': expected NAME=FIELD"),
                      (["--from", "hf"], "no Hugging Face trainer_state.json found (--from hf)"),
                      (["--steps-per-epoch", "0"], "error: --steps-per-epoch 0"),
                      (["--from", "jsonl"], "is not a diagnostics JSONL file")):
        proc = analyze(tmp_path / "metrics.csv", *bad)
        assert proc.returncode == 2 and said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ───────────── TensorBoard ─────────────


def test_tensorboard_from_lightning_matches_its_csv():
    tb, csv_run = one(LIGHTNING_TB), one(LIGHTNING_CSV)
    for stage, name in (("val", "accuracy"), ("val", "loss"), ("train", "loss"), ("train", "learning_rate"),
                        ("train", "accuracy")):
        assert column(tb, stage, name) == pytest.approx(column(csv_run, stage, name)), (stage, name)
    assert tb.state == "completed" and any("epoch tag" in n for n in tb.notes)
    # TensorBoard stores float32: the same run, to float32's precision
    tb_summary, csv_summary = analyze_json(LIGHTNING_TB)["summary"], analyze_json(LIGHTNING_CSV)["summary"]
    assert tb_summary.keys() == csv_summary.keys()
    for key, value in csv_summary.items():
        assert tb_summary[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value), key


def test_summary_writer_by_epoch_through_a_torch_free_analysis(tmp_path):
    val_acc, train_loss = [0.3, 0.6, 0.7, 0.72], [2.0, 1.2, 0.9, 0.8]
    summary_writer_per_epoch(tmp_path / "runs", val_acc, train_loss)
    code = ("import sys, json, io, contextlib; from analysis.__main__ import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): rc = main([sys.argv[1], '--format', 'json'])\n"
            "assert rc == 0 and 'torch' not in sys.modules, 'torch imported'; print(out.getvalue())")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["epochs"] == 4 and report["summary"]["best_val_accuracy"] == pytest.approx(0.72)
    run = one(tmp_path / "runs")
    assert column(run, "val", "accuracy") == pytest.approx(dict(enumerate(val_acc, start=1)))
    assert column(run, "train", "loss") == pytest.approx(dict(enumerate(train_loss, start=1)))
    assert run.state == "unknown"  # no status file, and nothing in the log says it ended: not "running"


def test_summary_writer_per_step_epochs_inferred_or_given(tmp_path):
    summary_writer_per_step(tmp_path / "runs", epochs=4, steps_per_epoch=22)
    expected = {e + 1: 2.0 / (1 + e) + 0.01 * np.mean(range(22)) for e in range(4)}
    inferred = one(tmp_path / "runs")
    assert column(inferred, "train", "loss") == pytest.approx(expected)
    assert column(inferred, "val", "accuracy") == pytest.approx({1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8})
    assert column(inferred, "train", "learning_rate") == pytest.approx({e + 1: 0.01 * 0.5 ** e for e in range(4)})
    assert any("22 steps per epoch" in n for n in inferred.notes)
    given = one(tmp_path / "runs", steps_per_epoch=22)
    assert column(given, "train", "loss") == pytest.approx(expected)
    halves = one(tmp_path / "runs", steps_per_epoch=11)
    assert halves.last_epoch == 8
    report = analyze_json(tmp_path / "runs", "--steps-per-epoch", "22")
    assert report["summary"]["epochs"] == 4


def test_runs_of_different_tools_given_together_are_compared(tmp_path):
    report = analyze_json(LIGHTNING_CSV, LIGHTNING_TB, DATA / "mnist_keras.csv")
    assert report["sweep"]["kind"] == "runs" and [r["epochs"] for r in report["runs"]] == [4, 4, 30]
    assert [r["status"] for r in report["runs"]] == ["completed", "completed", "unknown"]


def test_missing_tensorboard_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto.event_pb2", None)
    with pytest.raises(RunError, match=r"pip install traindx\[tensorboard\]"):
        load_runs(LIGHTNING_TB)


# ───────────── Keras CSVLogger ─────────────


def test_keras_published_log_zero_based_epochs_and_plateau_cuts():
    run = one(DATA / "mnist_keras.csv")
    rows = csv_rows(DATA / "mnist_keras.csv")
    assert run.last_epoch == len(rows) == 30
    assert column(run, "val", "accuracy") == pytest.approx({int(r["epoch"]) + 1: float(r["val_accuracy"]) for r in rows})
    assert [c.epoch for c in find_cuts(run)] == [18, 28]  # ReduceLROnPlateau x0.5, as the source describes
    assert run.state == "unknown" and run.config is None and "augmentation.name" in run.unknown
    proc = analyze(DATA / "mnist_keras.csv", "--fail-on", "warning")
    assert proc.returncode == 0, proc.stdout  # healthy


def test_keras_append_true_file_is_split_into_runs(tmp_path):
    lines = [line for line in (DATA / "mnist_keras.csv").read_text().splitlines() if line.strip()]
    log = tmp_path / "training.log"
    log.write_text("\n".join(lines + lines[1:11]) + "\n")  # a second fit appended: epochs restart at 0
    runs = load_runs(log)
    assert [r.last_epoch for r in runs] == [30, 10]
    report = analyze_json(tmp_path)  # the directory: training.log found by name
    assert [r["epochs"] for r in report["runs"]] == [30, 10]
    assert [r["status"] for r in report["runs"]] == ["unknown", "unknown"]  # never "running"
    assert report["sweep"]["jobs"]["running"] == 0


REAL_RAW = ROOT / "tests" / "data" / "real_curves" / "raw"


def test_keras_history_dump_without_an_epoch_column_is_numbered_by_its_rows(tmp_path):
    """pd.DataFrame(history.history).to_csv(...): drowsiness-detection-ai's published training_log.csv (index=False),
    and the same numbers with pandas's unnamed index column; epochs are the rows, 1-based."""
    published = REAL_RAW / "drowsiness_keras_training_log.csv"
    rows = csv_rows(published)
    run = one(published)
    assert run.last_epoch == len(rows) == 39 and list(run.val.epochs) == list(range(1, 40))
    assert column(run, "val", "accuracy") == pytest.approx({i: float(r["val_accuracy"]) for i, r in enumerate(rows, 1)})
    assert column(run, "train", "loss") == pytest.approx({i: float(r["loss"]) for i, r in enumerate(rows, 1)})
    assert any("no epoch column" in n for n in run.notes)
    lines = published.read_text().splitlines()
    indexed = tmp_path / "history.csv"  # found by name in its directory, the index column no metric
    indexed.write_text("\n".join(["," + lines[0]] + [f"{i},{line}" for i, line in enumerate(lines[1:])]) + "\n")
    again = one(tmp_path)
    assert again.imported["fields"] == run.imported["fields"] and "" not in again.imported.get("skipped", {})
    assert column(again, "val", "loss") == pytest.approx(column(run, "val", "loss"))
    assert analyze_json(published)["summary"]["epochs"] == 39  # the command line detects it too


def test_a_csv_that_is_no_keras_log_is_refused_in_one_line(tmp_path):
    log = tmp_path / "training.log"
    log.write_text("accuracy,val_accuracy\n0.5,0.4\n")  # no loss column: no Keras history
    proc = analyze(log, "--from", "keras")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "history.history" in proc.stderr


# ───────────── Hugging Face trainer_state.json ─────────────


def hf_expected(state: dict) -> dict:
    train, evals = {}, {}
    for row in state["log_history"]:
        e = max(1, math.ceil(row["epoch"]))
        if "loss" in row:
            train.setdefault(e, []).append(row)
        elif "eval_loss" in row:
            evals[e] = row  # the last evaluation of the epoch
    return {"loss": {e: np.mean([r["loss"] for r in rs]) for e, rs in train.items()},
            "lr": {e: rs[0]["learning_rate"] for e, rs in train.items()},
            "lr_end": {e: rs[-1]["learning_rate"] for e, rs in train.items()},
            "val_loss": {e: r["eval_loss"] for e, r in evals.items()}, "f1": {e: r["eval_f1"] for e, r in evals.items()}}


def test_hf_trainer_state_buckets_fractional_epochs(tmp_path):
    state = json.loads((DATA / "hf_trainer_state.json").read_text())
    exp = hf_expected(state)
    run = one(DATA / "hf_trainer_state.json")
    assert column(run, "train", "loss") == pytest.approx(exp["loss"])
    assert column(run, "train", "learning_rate") == pytest.approx(exp["lr"])
    assert column(run, "train", "learning_rate_end") == pytest.approx(exp["lr_end"])
    assert column(run, "val", "loss") == pytest.approx(exp["val_loss"])
    assert column(run, "val", "accuracy") == pytest.approx(exp["f1"])  # no accuracy logged: F1, said so
    assert any("eval_f1" in n and "no accuracy" in n for n in run.notes)
    assert run.state == "completed" and run.planned_epochs == 3 and "scheduler.name" in run.unknown
    # TrainingArguments from the model card: a linear decay, not a series of cuts
    out = tmp_path / "vit-base-riego"
    out.mkdir()
    shutil.copy(DATA / "hf_trainer_state.json", out / "trainer_state.json")
    (out / "training_args.bin").write_bytes(b"\x80\x04not read: a pickle")
    (out / "README.md").write_text("# vit\n\n### Training hyperparameters\n\nThe following hyperparameters were "
                                   "used during training:\n- learning_rate: 0.0002\n- train_batch_size: 16\n"
                                   "- optimizer: Adam with betas=(0.9,0.999) and epsilon=1e-08\n"
                                   "- lr_scheduler_type: linear\n- num_epochs: 3\n\n### Training results\n")
    carded = one(out)
    assert carded.cfg("scheduler.name") == "linear" and carded.cfg("optimizer.lr") == 0.0002
    assert carded.cfg("optimizer.name") == "adam" and carded.cfg("data.batch_size") == 16
    report = analyze_json(out)
    assert report["summary"]["lr_cuts"] == 0 and report["run"]["status"] == "completed"


def test_hf_grad_norm_and_accuracy(tmp_path):
    log = []
    for step in range(1, 21):
        log.append({"epoch": step / 10, "step": step, "loss": 1.0 / step, "learning_rate": 1e-3, "grad_norm": float(step)})
        if step % 10 == 0:
            log.append({"epoch": step / 10, "step": step, "eval_loss": 0.5, "eval_accuracy": 0.8 + step / 1000,
                        "eval_f1": 0.1})
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": log, "global_step": 20, "max_steps": 40}))
    run = one(tmp_path)
    assert column(run, "train", "mean_grad_norm") == pytest.approx({1: 5.5, 2: 15.5})
    assert column(run, "train", "max_grad_norm") == pytest.approx({1: 10.0, 2: 20.0})
    assert column(run, "val", "accuracy") == pytest.approx({1: 0.81, 2: 0.82})  # accuracy, not F1
    assert run.state == "unknown"  # 20 of 40 steps: not shown to have ended


# ───────────── timm summary.csv ─────────────


def test_timm_summary_csv_percent_top1(tmp_path):
    rows = [(0, 2.1, 1.9, 35.2, 80.1, 0.1), (1, 1.5, 1.4, 55.0, 90.3, 0.1), (2, 1.2, 1.3, 61.5, 93.0, 0.05)]
    with open(tmp_path / "summary.csv", "w", newline="") as f:  # timm's update_summary: this header, this order
        w = csv.writer(f)
        w.writerow(["epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "lr"])
        w.writerows(rows)
    write_yaml(tmp_path / "args.yaml", {"model": "resnet18", "opt": "sgd", "lr": 0.1, "sched": "cosine",
                                        "epochs": 3, "batch_size": 128, "weight_decay": 2e-5, "smoothing": 0.1})
    run = one(tmp_path)
    assert column(run, "val", "accuracy") == pytest.approx({1: 0.352, 2: 0.55, 3: 0.615})
    assert column(run, "val", "top5_accuracy") == pytest.approx({1: 0.801, 2: 0.903, 3: 0.93})
    assert column(run, "train", "loss") == pytest.approx({1: 2.1, 2: 1.5, 3: 1.2})
    assert run.cfg("scheduler.name") == "cosine" and run.cfg("regularization.label_smoothing") == 0.1
    assert run.state == "completed"  # the 3 epochs of args.yaml trained
    report = analyze_json(tmp_path / "summary.csv", "--from", "timm")
    assert report["summary"]["best_val_accuracy"] == pytest.approx(0.615)


# ───────────── lightning-hydra-template multirun ─────────────


def lht_sweep_from_fixtures(root: Path) -> Path:
    """The template's multirun layout around the committed Lightning logs (job 0: csv/, job 1: tensorboard/)."""
    sweep = root / "logs" / "train" / "multiruns" / "2026-11-30" / "06-00-00"
    sweep.mkdir(parents=True)
    write_yaml(sweep / "multirun.yaml", {"hydra": {
        "mode": "MULTIRUN", "job": {"name": "train", "config_name": "train.yaml"},
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "overrides": {"task": ["logger=csv", "model.optimizer.lr=0.01,0.5"]}}})
    for num, lr in enumerate((0.01, 0.5)):
        shutil.copytree(DATA / "lht" / str(num), sweep / str(num))
        hydra_job(sweep / str(num), num, lr, epochs=3)
    return sweep


def check_lht_sweep(sweep: Path, out: Path):
    job0 = lightning_expected(next((sweep / "0").glob("csv/version_0/metrics.csv")), "train/loss", "val/acc", "val/loss")
    job1 = one(sweep / "1")
    report = analyze_json(sweep, "--out", out)
    assert report["sweep"]["axes"] == {"model.optimizer.lr": [0.01, 0.5]}
    assert report["sweep"]["command"] == "python src/train.py -m logger=csv model.optimizer.lr=0.01,0.5"
    assert report["sweep"]["jobs"]["expected"] == 2 and report["sweep"]["jobs"]["completed"] == 2
    runs = {r["job"]: r for r in report["runs"]}
    assert runs["0"]["best_val_accuracy"] == pytest.approx(max(job0["val_acc"].values()))
    assert runs["1"]["best_val_accuracy"] == pytest.approx(max(column(job1, "val", "accuracy").values()))
    assert runs["0"]["overrides"]["model.optimizer.lr"] == 0.01 and runs["0"]["epochs"] == 3
    levels = {lv["value"]: lv for lv in report["axes"][0]["levels"]}
    assert report["axes"][0]["key"] == "model.optimizer.lr" and levels[0.5]["n"] == 1
    assert report["best"]["overrides"]["model.optimizer.lr"] == 0.5  # lr 0.01 learns little in 3 epochs
    assert "recommendations" in report
    assert job1.cfg("optimizer.lr") == 0.5 and job1.cfg("trainer.epochs") == 3  # from the job's .hydra/config.yaml
    assert (out / "report.html").is_file() and (out / "runs.csv").is_file()
    text = analyze(sweep, "--out", out)
    assert text.returncode == 0 and "axes: model.optimizer.lr = 0.01, 0.5" in text.stdout


def test_lightning_hydra_template_multirun(tmp_path):
    check_lht_sweep(lht_sweep_from_fixtures(tmp_path), tmp_path / "report")


def test_lightning_hydra_template_job_that_failed_is_named(tmp_path):
    sweep = lht_sweep_from_fixtures(tmp_path)
    write_yaml(sweep / "multirun.yaml", {"hydra": {
        "mode": "MULTIRUN", "job": {"name": "train", "config_name": "train.yaml"},
        "overrides": {"task": ["logger=csv", "model.optimizer.lr=0.01,0.5,5.0"]}}})
    hydra_job(sweep / "2", 2, 5.0, epochs=3)  # crashed before Lightning logged anything
    (sweep / "2" / "train.log").write_text("[2026-11-30 06:00:09][__main__][ERROR] - RuntimeError: CUDA error: "
                                           "out of memory\n")
    report = analyze_json(sweep, "--out", tmp_path / "report")
    assert report["sweep"]["jobs"]["completed"] == 2 and report["sweep"]["jobs"]["expected"] == 3
    failed = {f["job"]: f for f in report["sweep"]["failures"]}
    assert failed["2"]["status"] == "no diagnostics" and "out of memory" in failed["2"]["error"]


# ───────────── written live by Lightning (slow: Lightning's import and fits) ─────────────


@pytest.mark.slow
def test_lightning_live_csv_and_tensorboard(tmp_path):
    pytest.importorskip("lightning")
    lightning_fit(tmp_path, lr=0.1, epochs=4, csv="csv", tensorboard="tb")
    csv_dir = tmp_path / "csv" / "version_0"
    check_lightning_run(one(csv_dir), csv_dir / "metrics.csv")
    check_lightning_run(one(tmp_path / "tb" / "version_0"), csv_dir / "metrics.csv")


@pytest.mark.slow
def test_lightning_hydra_template_multirun_live(tmp_path):
    pytest.importorskip("lightning")
    check_lht_sweep(lightning_hydra_multirun(tmp_path, [0.01, 0.5], epochs=3, tensorboard_jobs=(1,)), tmp_path / "out")


# ───────────── hostile files ─────────────


@pytest.mark.parametrize("name", ["metrics.csv", "training.log", "summary.csv", "trainer_state.json",
                                  "events.out.tfevents.1.host"])
def test_a_fifo_in_place_of_a_log_is_refused_without_hanging(tmp_path, name):
    """Logs are read through rundir's safe reader (regular files only): a FIFO never blocks the analysis."""
    os.mkfifo(tmp_path / name)
    for target in (tmp_path / name, tmp_path):  # the file named, and the directory searched for a log
        proc = analyze(target, "--format", "json")  # the subprocess has a timeout: a hang fails
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr

"""logger=tensorboard and logger=mlflow: the viewer holds the JSONL's values, the findings, the overrides."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from conftest import read_jsonl, run_trainer
from trainer.loggers import BEST_METRIC, MlflowLogger, metric_name, scalars

# Both extras are in dev: CI runs every test here.
needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason='the tensorboard extra: pip install "traindx[tensorboard]"')
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason='the mlflow extra: pip install "traindx[mlflow]"')
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true"}  # the tests reach no network


def events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@needs_tensorboard
@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
def test_tensorboard_scalars_equal_the_jsonl_and_hparams_carry_the_overrides(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_trainer([f"hydra.run.dir={run_dir}", "logger=tensorboard", "trainer.epochs=2", "model.width=4",
                        "data.image_size=16", "optimizer.lr=0.07"], env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    acc = events(run_dir / "tensorboard")
    tags = set(acc.Tags()["scalars"])
    checked = 0
    for prefix, name in (("train", "train_diagnostics.jsonl"), ("val", "val_diagnostics.jsonl")):
        records = read_jsonl(run_dir / "diagnostics" / name)
        assert len(records) == 2
        for rec in records:
            for tag, value in scalars(prefix, rec):
                assert tag in tags, tag
                logged = {e.step: e.value for e in acc.Scalars(tag)}
                assert logged[rec["epoch"]] == np.float32(value), (tag, rec["epoch"])
                checked += 1
    assert "train/loss" in tags and "val/accuracy" in tags and any(t.startswith("train_layer_grad_norms/") for t in tags)
    assert checked > 40
    # the HParams tab: the override with the best validation accuracy
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    start = next(plugin_data_pb2.HParamsPluginData.FromString(c) for t, c in content.items() if "session_start" in t)
    assert start.session_start_info.hparams["optimizer.lr"].number_value == pytest.approx(0.07)
    best = max(r["accuracy"] for r in read_jsonl(run_dir / "diagnostics" / "val_diagnostics.jsonl"))
    assert acc.Scalars(BEST_METRIC)[-1].value == np.float32(best)


@needs_tensorboard
def test_findings_become_text_when_they_fire_and_dicts_are_grouped(tmp_path):
    from analysis.findings import Finding
    from trainer.config import LoggerConf
    from trainer.loggers import build_logger

    logger = build_logger(LoggerConf(name="tensorboard"), tmp_path)
    logger.epoch(1, {"epoch": 1, "loss": 2.5, "layer_grad_norms": {"fc": 0.5}, "flag": True, "note": None},
                 {"epoch": 1, "accuracy": 0.25}, [])
    logger.epoch(2, {"epoch": 2, "loss": 2.0, "layer_grad_norms": {"fc": 0.25}}, {"epoch": 2, "accuracy": 0.5},
                 [Finding("lr_reduced_early", "warning", "the LR was cut at epoch 2")])
    logger.close(0.5)  # no .hydra/overrides.yaml here: no hparams, and no failure
    acc = events(tmp_path / "tensorboard")
    assert sorted(acc.Tags()["scalars"]) == ["train/loss", "train_layer_grad_norms/fc", "val/accuracy"]
    assert [(e.step, e.value) for e in acc.Scalars("train_layer_grad_norms/fc")] == [(1, 0.5), (2, 0.25)]
    (text,) = acc.Tensors("findings/lr_reduced_early/text_summary")  # add_text's suffix
    assert text.step == 2 and text.tensor_proto.string_val[0] == b"**warning** epoch 2: the LR was cut at epoch 2"


def test_a_missing_tensorboard_package_is_one_config_error(tmp_path, monkeypatch):
    from trainer.config import LoggerConf
    from trainer.errors import ConfigError
    from trainer.loggers import build_logger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "traindx\[tensorboard\]"'):
        build_logger(LoggerConf(name="tensorboard"), tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def mlflow_client(store: Path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for k, v in NO_TELEMETRY.items():
        monkeypatch.setenv(k, v)
    return MlflowClient(tracking_uri=f"file:{store}")


def history(client, run_id: str, tag: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, metric_name(tag))}


@pytest.mark.slow  # default suite budget (150 s on 2 cores); CI runs it with -m slow
@needs_mlflow
def test_mlflow_sweep_one_experiment_one_run_per_job_metrics_equal_the_jsonl(tmp_path, monkeypatch):
    # the sweep directory as Hydra's default has it: a time interpolation (.hydra/hydra.yaml keeps it unresolved)
    proc = run_trainer(["-m", f"hydra.sweep.dir={tmp_path}/sweep_${{now:%H-%M-%S-%f}}", "logger=mlflow",
                        "trainer.epochs=2", "model.width=4", "data.image_size=16", "optimizer.lr=0.03,0.07"],
                       env={"OMP_NUM_THREADS": "1", **NO_TELEMETRY})
    assert proc.returncode == 0, proc.stderr
    (sweep,) = tmp_path.glob("sweep_*")
    client = mlflow_client(sweep / "mlruns", monkeypatch)  # one store for the sweep, in its directory
    experiment = client.get_experiment_by_name(str(sweep))
    runs = client.search_runs([experiment.experiment_id])
    by_lr = {r.data.params["optimizer.lr"]: r for r in runs}
    assert sorted(by_lr) == ["0.03", "0.07"] and len(runs) == 2
    for job, lr in (("0", "0.03"), ("1", "0.07")):
        run = by_lr[lr]
        assert run.info.status == "FINISHED" and run.data.tags[MlflowLogger.RUN_DIR_TAG] == str(sweep / job)
        checked = 0
        for prefix, name in (("train", "train_diagnostics.jsonl"), ("val", "val_diagnostics.jsonl")):
            records = read_jsonl(sweep / job / "diagnostics" / name)
            assert len(records) == 2
            for rec in records:
                for tag, value in scalars(prefix, rec):
                    assert history(client, run.info.run_id, tag)[rec["epoch"]] == value, (tag, rec["epoch"])
                    checked += 1
        assert checked > 40 and any(k.startswith("train_layer_grad_norms/") for k in run.data.metrics)
        best = max(r["accuracy"] for r in read_jsonl(sweep / job / "diagnostics" / "val_diagnostics.jsonl"))
        assert run.data.metrics[MlflowLogger.BEST_METRIC] == best


@needs_mlflow
def test_mlflow_findings_layer_names_resume_and_failure(tmp_path, monkeypatch):
    from analysis.findings import Finding
    from trainer.config import LoggerConf
    from trainer.loggers import build_logger

    client = mlflow_client(tmp_path / "mlruns", monkeypatch)  # a run without .hydra/: file:<run dir>/mlruns
    logger = build_logger(LoggerConf(name="mlflow"), tmp_path)
    logger.epoch(1, {"epoch": 1, "loss": 2.5, "layer_grad_norms": {"blocks[0]": 0.5}, "flag": True, "note": None},
                 {"epoch": 1, "accuracy": 0.25}, [])
    logger.epoch(2, {"epoch": 2, "loss": 2.0, "layer_grad_norms": {"blocks[0]": 0.25}}, {"epoch": 2, "accuracy": 0.5},
                 [Finding("lr_reduced_early", "warning", "the LR was cut at epoch 2")])
    logger.close(0.5)
    (run,) = client.search_runs([client.get_experiment_by_name("traindx").experiment_id])
    run_id = run.info.run_id
    assert sorted(run.data.metrics) == ["best_val_accuracy", "train/loss", "train_layer_grad_norms/blocks_0_",
                                        "val/accuracy"]
    assert history(client, run_id, "train_layer_grad_norms/blocks[0]") == {1: 0.5, 2: 0.25}
    line = "**warning** epoch 2: the LR was cut at epoch 2"
    assert run.data.tags["finding.lr_reduced_early"] == line and run.data.params == {}
    artifact = Path(unquote(urlparse(run.info.artifact_uri).path)) / MlflowLogger.FINDINGS_ARTIFACT
    assert artifact.read_text() == f"- `lr_reduced_early`: {line}\n"
    assert run.info.status == "FINISHED"
    # resumed from epoch 2's checkpoint: the same MLflow run; the run then fails
    resumed = build_logger(LoggerConf(name="mlflow"), tmp_path)
    resumed.epoch(3, {"epoch": 3, "loss": 1.5}, {"epoch": 3, "accuracy": 0.5}, [])
    with pytest.raises(RuntimeError):
        try:
            raise RuntimeError("diverged")
        finally:
            resumed.close(None)
    (again,) = client.search_runs([run.info.experiment_id])
    assert again.info.run_id == run_id and again.info.status == "FAILED"
    assert history(client, run_id, "train/loss") == {1: 2.5, 2: 2.0, 3: 1.5}


def test_a_missing_mlflow_package_is_one_config_error(tmp_path, monkeypatch):
    from trainer.config import LoggerConf
    from trainer.errors import ConfigError
    from trainer.loggers import build_logger

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "traindx\[mlflow\]"'):
        build_logger(LoggerConf(name="mlflow"), tmp_path)
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
@needs_tensorboard
@needs_mlflow
def test_logger_overhead_benchmark_prints_each_loggers_ratio_and_call_time():
    import re
    import subprocess

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "logger_overhead.py"), "--pairs", "2",
                           "model.width=4", "data.image_size=16"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = re.split(r"^\[logger=(\w+)\]$", proc.stdout, flags=re.M)
    assert "machine:" in blocks[0] and blocks[1::2] == ["tensorboard", "mlflow"], proc.stdout
    for block in blocks[2::2]:
        assert re.search(r"ratio on/off: median \d+\.\d+, geometric mean \d+\.\d+, 95% CI", block), proc.stdout
        call = float(re.search(r"logger call: (\d+\.\d+) ms", block).group(1))
        assert 0 < call < 1000

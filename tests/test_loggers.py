"""logger=tensorboard: the event files hold the JSONL's values, the findings as text, the overrides as hparams."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import read_jsonl, run_trainer

pytest.importorskip("tensorboard", reason='the tensorboard extra: pip install "traindx[tensorboard]"')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from trainer.loggers import BEST_METRIC, scalars  # noqa: E402


def events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


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


@pytest.mark.slow
def test_logger_overhead_benchmark_prints_its_ratio_and_the_call_time():
    import re
    import subprocess

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "logger_overhead.py"), "--pairs", "2",
                           "model.width=4", "data.image_size=16"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"ratio on/off: median \d+\.\d+, geometric mean \d+\.\d+, 95% CI", proc.stdout), proc.stdout
    call = float(re.search(r"logger call: (\d+\.\d+) ms", proc.stdout).group(1))
    assert 0 < call < 1000 and "machine:" in proc.stdout

"""Helpers shared by the benchmark scripts: compose a config and train in this process."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compose(overrides: list[str], diag_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import trainer.config  # noqa: F401 - registers the schemas

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=[f"diagnostics.dir={diag_dir}", *overrides])


def train_records(overrides: list[str]) -> list[dict]:
    """Train once in a fresh temporary run directory; returns the train JSONL records."""
    import json
    import logging

    from trainer.config import validate
    from trainer.loop import train

    logging.getLogger("trainer").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        diag = Path(tmp) / "diagnostics"
        train(validate(compose(overrides, diag)), Path(tmp))
        return [json.loads(line) for line in (diag / "train_diagnostics.jsonl").read_text().splitlines()]


def spread(values: list[float]) -> str:
    m = statistics.mean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.4f} ± {s:.4f} (n={len(values)})"


def machine() -> str:
    import os
    import platform

    import torch

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}{gpu}"

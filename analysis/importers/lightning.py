"""Lightning's CSVLogger (`metrics.csv`, with `hparams.yaml` beside it) -> Source.

The file is sparse: each `self.log` call fills its own columns of a row keyed by `step`, with `epoch`
0-based; LearningRateMonitor rows (`lr-SGD`, ...) carry a step and no epoch. Per-step training values
are averaged per epoch; rows after the last training epoch (trainer.validate() or trainer.test() after
fit) are a re-validation, left out, and test_* columns are never validation. A test pass in the file
shows the run ended.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from rundir.numbers import MAX_STEP, as_epoch
from rundir.safe import read_yaml_mapping

from .build import Source
from .config_map import map_config
from .textfile import csv_dicts, csv_header

METRICS = "metrics.csv"
HPARAMS = "hparams.yaml"


def looks_like(path: Path) -> bool:
    head = _header(path)
    return head is not None and "step" in head and "epoch" in head


def _header(path: Path) -> list[str] | None:
    return csv_header(path)


def read(path: Path, hydra_config: dict | None = None, overrides: list[str] | None = None,
         run_dir: Path | None = None) -> Source:
    run_dir = run_dir or path.parent
    name = run_dir.name if path.name == METRICS or run_dir != path.parent else path.stem
    src = Source("Lightning CSVLogger", "lightning", [path], name, run_dir)
    rows = csv_dicts(path, src.warnings)
    # The step at which each epoch's rows end: a row without an epoch (LearningRateMonitor's) belongs to
    # the first epoch that had not ended at its step.
    ends: dict[int, int] = {}
    for r in rows:
        e, s = as_epoch(r.get("epoch")), as_epoch(r.get("step"), MAX_STEP)
        if e is not None and s is not None:
            ends[e] = max(ends.get(e, s), s)
    order = sorted(ends)
    last_steps = [ends[e] for e in order]
    tested = False
    bad = 0
    for r in rows:
        epoch = as_epoch(r.get("epoch"))
        if epoch is None and (r.get("epoch") or "").strip():  # a value that is no epoch number (inf, 1e400)
            bad += 1
            continue
        if epoch is None:
            step = as_epoch(r.get("step"), MAX_STEP)
            if step is None or not order:
                continue
            i = bisect.bisect_left(last_steps, step)
            epoch = order[min(i, len(order) - 1)]
        for name, value in r.items():
            if name in ("epoch", "step") or name is None or value in (None, ""):
                continue
            if name.lower().startswith("test"):
                tested = True
            src.add(name, epoch + 1, value)
    if bad:
        src.warnings.append(f"{path}: {bad} row(s) whose epoch is no epoch number: skipped")
    hparams_path = path.parent / HPARAMS
    hparams = read_yaml_mapping(hparams_path, src.warnings) if hparams_path.exists() else None
    if hparams is not None:
        src.files.append(hparams_path)
    src.source_config = hydra_config or hparams
    src.config = map_config(hydra_config, hparams, origin=src.origin)
    src.overrides = list(overrides or [])
    src.completed = tested or None
    if tested:
        src.notes.append("a test pass follows training: the run ended")
    planned = (src.config or {}).get("trainer", {}).get("epochs")
    if isinstance(planned, int) and planned > 0:
        src.planned_epochs = planned
    return src




def find(path: Path) -> list[Path]:
    """metrics.csv files under a directory: the directory itself, csv/version_*/ (lightning-hydra-template),
    lightning_logs/version_*/, version_*/; several versions are several runs."""
    if path.is_file():
        return [path]
    for pattern in (METRICS, f"csv/version_*/{METRICS}", f"lightning_logs/version_*/{METRICS}",
                    f"version_*/{METRICS}", f"*/version_*/{METRICS}", f"csv/{METRICS}"):
        hits = [p for p in path.glob(pattern) if p.is_file()]
        if hits:
            return sorted(hits, key=_version_key)
    return []


def _version_key(p: Path):
    name = p.parent.name
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), str(p)) if tail.isdigit() else (1, 0, str(p))

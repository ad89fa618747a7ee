"""Experiment loggers: each epoch's diagnostics records, mirrored to a viewer (config group `logger`).

The JSONL files stay the run's record; a logger is a view of the same dicts. `build_logger(cfg.logger,
run_dir)` is called once; the loop then calls `epoch(...)` with the records the JSONL writer got and
the findings that fired that epoch, and `close(best)` at the end.

    logger=none          (default) nothing
    logger=tensorboard   <run dir>/tensorboard/: every numeric field as a scalar (train/<field>,
                         val/<field>; per-layer dicts grouped as train_<field>/<layer>), the findings
                         as text when they fire, and the run's overrides as hparams with the best
                         validation accuracy (TensorBoard's HParams tab: run with
                         `tensorboard --logdir <sweep dir>`). Needs `pip install "traindx[tensorboard]"`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator, Optional

from rundir.format import HYDRA_DIR, HYDRA_OVERRIDES

from .config import LoggerConf
from .errors import ConfigError

BEST_METRIC = "hparam/best_val_accuracy"  # the HParams tab's metric


def scalars(prefix: str, record: dict) -> Iterator[tuple[str, float]]:
    """(tag, value) for every finite number in a record; a dict (per-layer norms) or list becomes a group
    `<prefix>_<field>/<key>`. The epoch itself is the step, not a scalar."""
    for key, value in record.items():
        if key == "epoch":
            continue
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if _number(value):
                yield f"{prefix}/{key}", float(value)
            continue
        for sub, v in items:
            if _number(v):
                yield f"{prefix}_{key}/{sub}", float(v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_overrides(run_dir: Path) -> dict[str, Any]:
    """The run's command-line overrides (`.hydra/overrides.yaml`): in a sweep, the job's swept values."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    path = Path(run_dir) / HYDRA_DIR / HYDRA_OVERRIDES
    try:
        lines = yaml.safe_load(path.read_text()) or []
        parsed = OverridesParser.create().parse_overrides([str(x) for x in lines])
    except Exception:  # noqa: BLE001 - no Hydra directory (train() called directly) or an odd override
        return {}
    out = {}
    for o in parsed:
        if o.is_delete() or o.key_or_group.startswith("hydra"):
            continue
        v = o.value()
        out[o.key_or_group] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


class NoLogger:
    def epoch(self, epoch: int, train: dict, val: dict, findings: list) -> None:
        pass

    def close(self, best_val_accuracy: Optional[float]) -> None:
        pass


class TensorBoardLogger:
    """Writes event files with torch's SummaryWriter (its own thread does the file writing)."""

    def __init__(self, log_dir: Path, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401 - fails without the package
        except ImportError:
            raise ConfigError('logger=tensorboard needs the tensorboard package: pip install "traindx[tensorboard]"') \
                from None
        self.log_dir, self.run_dir = log_dir, run_dir
        self.writer = None  # opened at the first epoch: set-up failures leave no event file

    def _open(self, first_epoch: int):
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run rewrites the epochs after its checkpoint: hide the old events from there on.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=first_epoch if first_epoch > 1 else None)
        return self.writer

    def epoch(self, epoch: int, train: dict, val: dict, findings: list) -> None:
        w = self.writer or self._open(epoch)
        for prefix, record in (("train", train), ("val", val)):
            for tag, value in scalars(prefix, record):
                w.add_scalar(tag, value, epoch)
        for f in findings:
            w.add_text(f"findings/{f.id}", f"**{f.severity}** epoch {epoch}: {f.message}", epoch)

    def close(self, best_val_accuracy: Optional[float]) -> None:
        if self.writer is None:
            return
        hparams = run_overrides(self.run_dir)
        if hparams and best_val_accuracy is not None:
            from torch.utils.tensorboard.summary import hparams as hparams_summary

            # In this run's own directory (SummaryWriter.add_hparams would open a sub-run per call).
            for summary in hparams_summary(hparams, {BEST_METRIC: best_val_accuracy}):
                self.writer.file_writer.add_summary(summary)
            self.writer.add_scalar(BEST_METRIC, best_val_accuracy)
        self.writer.close()


def build_logger(cfg: LoggerConf, run_dir: Path):
    """The logger `cfg.name` names, writing under run_dir (or cfg.dir). ConfigError when its package is missing."""
    if cfg.name == "none":
        return NoLogger()
    log_dir = Path(cfg.dir) if cfg.dir else Path(run_dir) / cfg.name
    if cfg.name == "tensorboard":
        return TensorBoardLogger(log_dir, Path(run_dir))
    raise ConfigError(f"logger={cfg.name} is unknown")  # LoggerConf checks the name first

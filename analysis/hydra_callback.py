"""A Hydra callback that writes the sweep report when a multirun ends, and points to it when it cannot.

Registered in conf/config.yaml (`hydra.callbacks.sweep_report`). Hydra skips `on_multirun_end` when
any job fails, so `python -m analysis <sweep dir>` stays the primary path: a sweep that ends without
it (a failed job, Ctrl-C) prints that command as its last line. A sweep that failed before its first
job (a composition error: Hydra composes every job's config first) leaves no directory behind, as a
single run that fails composition does, rather than a sweep that reads as "N missing". Best effort:
a report problem never turns a finished sweep into a failure.
"""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .dispatch import report_sweep

log = logging.getLogger("analysis")

SWEEP_FILE = "multirun.yaml"  # what Hydra writes into a sweep directory before composing the jobs


class SweepReport(Callback):
    def __init__(self) -> None:
        self.sweep_dir: Optional[Path] = None
        self.existed = True
        self.ended = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.sweep_dir = Path(str(config.hydra.sweep.dir))
            self.existed = self.sweep_dir.exists()
            atexit.register(self.at_exit)
        except Exception as e:  # noqa: BLE001 - best effort, see the module docstring
            log.warning("sweep directory unknown (%s: %s)", type(e).__name__, e)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.ended = True
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir))
            report_sweep(sweep_dir, "text", None)
        except Exception as e:  # noqa: BLE001 - best effort, see the module docstring
            log.warning("sweep report not written (%s: %s); run: python -m analysis <sweep dir>", type(e).__name__, e)

    def at_exit(self) -> None:
        """The sweep stopped before on_multirun_end: point to the report, or remove a directory no job reached."""
        if self.ended or self.sweep_dir is None:
            return
        try:
            entries = [p.name for p in self.sweep_dir.iterdir()] if self.sweep_dir.is_dir() else []
            if not self.existed and entries in ([], [SWEEP_FILE]):
                (self.sweep_dir / SWEEP_FILE).unlink(missing_ok=True)
                self.sweep_dir.rmdir()
            elif entries:
                print(f"sweep report (failed jobs included): python -m analysis {self.sweep_dir}", file=sys.stderr)
        except OSError:
            pass

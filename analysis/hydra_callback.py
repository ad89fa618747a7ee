"""A Hydra callback that writes the sweep report when a multirun ends.

Registered in conf/config.yaml (`hydra.callbacks.sweep_report`). Hydra skips `on_multirun_end` when
any job fails, so `python -m analysis <sweep dir>` stays the primary path; this hook is best effort
and never raises (a report problem must not turn a finished sweep into a failure).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("analysis")


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            sweep_dir = Path(str(config.hydra.sweep.dir))
            from .dispatch import report_sweep

            report_sweep(sweep_dir, "text", None)
        except Exception as e:  # noqa: BLE001 - best effort, see the module docstring
            log.warning("sweep report not written (%s: %s); run: python -m analysis <sweep dir>", type(e).__name__, e)

"""Live findings: the analysis rules run at the end of every epoch, inside the trainer.

Each finding is logged once, the epoch it first fires ("epoch 4: lr_reduced_early: ..."). A finding
whose id is listed in `trainer.stop_on` ends the run: the loop raises StopRun before writing that
epoch's checkpoint, so the last good checkpoint stays in place.
"""

from __future__ import annotations

import logging
from typing import Optional

from analysis.rules import diagnose
from rundir.read import run_from_records

from .errors import StopRun

log = logging.getLogger("trainer")


class LiveFindings:
    def __init__(self, config: dict, info: dict, stop_on: list[str], train: list[dict], val: list[dict]):
        self.config, self.info, self.stop_on = config, info, set(stop_on)
        self.train, self.val = list(train), list(val)
        self.seen: set[str] = {f.id for f in self._diagnose()}  # a resumed run logged these already
        self.fired: list = []  # the findings new at the last epoch_end (the loggers show them)

    def _diagnose(self):
        run = run_from_records(self.train, self.val, config=self.config, info=self.info,
                               status={"status": "running"})
        return diagnose(run)

    def epoch_end(self, epoch: int, train_record: dict, val_record: dict) -> Optional[StopRun]:
        """Add the epoch's records; log new findings; return StopRun when one is listed in stop_on."""
        self.train.append(train_record)
        self.val.append(val_record)
        stop = None
        self.fired = []
        for f in self._diagnose():
            if f.id in self.seen:
                continue
            self.seen.add(f.id)
            self.fired.append(f)
            level = logging.WARNING if f.severity in ("warning", "critical") else logging.INFO
            log.log(level, "epoch %d: %s: %s", epoch, f.id, f.message)
            if f.id in self.stop_on and stop is None:
                stop = StopRun(f.id, f"epoch {epoch}: {f.message}")
        return stop

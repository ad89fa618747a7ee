"""Live findings: the analysis rules run at the end of every epoch, inside the trainer.

A finding is logged when it starts to hold ("epoch 4: lr_reduced_early: ...") and when it clears
("epoch 6: accuracy_at_chance cleared (held at epochs 1-5)"), never on an epoch whose validation
accuracy fell below the previous one's: that epoch made the run worse, so the finding still holds. Every epoch the epoch ranges in which
each finding held are written to `<diagnostics dir>/live_findings.json` (analysis/records.py
reads them), so the final report can name findings that cleared.

A finding whose id is listed in `trainer.stop_on` ends the run only once it has held at
`trainer.stop_persist_epochs` consecutive epoch ends: an early alarm that the run then outgrows (an
image-folder run "at chance" at epoch 3 that reached 0.958) does not end it. The loop raises StopRun
before writing that epoch's checkpoint, so the last checkpoint stays in place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from analysis.rules import diagnose
from rundir.files import write_json
from rundir.format import LIVE_FINDINGS, epoch_ranges
from rundir.read import run_from_records
from rundir.safe import read_json

from .errors import StopRun

log = logging.getLogger("trainer")


class LiveFindings:
    def __init__(self, config: dict, info: dict, stop_on: list[str], train: list[dict], val: list[dict],
                 persist_epochs: int = 1, diag_dir: Optional[Path] = None):
        self.config, self.info, self.stop_on = config, info, set(stop_on)
        self.persist_epochs = persist_epochs
        self.train, self.val = list(train), list(val)
        self.path = Path(diag_dir) / LIVE_FINDINGS if diag_dir is not None else None
        self.last_epoch = max((r.get("epoch", 0) for r in self.train if isinstance(r.get("epoch"), int)), default=0)
        self.record: dict[str, dict] = self._resumed()
        self.fired: list = []  # the findings that started to hold at the last epoch_end (the loggers show them)

    def _resumed(self) -> dict[str, dict]:
        """The record of the epochs already run (a resumed run): read back and cut to the resumed epoch, or,
        with no file, the findings the kept records show, as holding at the last epoch (logged already)."""
        if not self.last_epoch:
            return {}
        saved = read_json(self.path, []) if self.path is not None else None  # gone or damaged: None
        record: dict[str, dict] = {}
        if isinstance(saved, dict) and isinstance(saved.get("findings"), list):
            for e in saved["findings"]:
                if not isinstance(e, dict) or not isinstance(e.get("id"), str):
                    continue
                ranges = [[a, min(b, self.last_epoch)] for a, b in e.get("epochs", []) if a <= self.last_epoch]
                if ranges:
                    record[e["id"]] = {**e, "epochs": ranges, "active": ranges[-1][1] == self.last_epoch,
                                       "stopped_run": False}
            return record
        for f in self._diagnose():
            record[f.id] = {"id": f.id, "severity": f.severity, "message": f.message,
                            "epochs": [[self.last_epoch, self.last_epoch]], "active": True, "stopped_run": False}
        return record

    def _diagnose(self):
        run = run_from_records(self.train, self.val, config=self.config, info=self.info,
                               status={"status": "running"})
        return diagnose(run)

    def epoch_end(self, epoch: int, train_record: dict, val_record: dict) -> Optional[StopRun]:
        """Add the epoch's records; log findings that start or stop holding; record their epoch ranges;
        return StopRun when one listed in stop_on has held for persist_epochs consecutive epochs."""
        self.train.append(train_record)
        self.val.append(val_record)
        held = self._diagnose()
        stop = None
        self.fired = []
        for f in held:
            entry = self.record.get(f.id)
            if entry is None:
                entry = self.record[f.id] = {"id": f.id, "severity": f.severity, "message": f.message,
                                             "epochs": [], "active": False, "stopped_run": False}
            entry.update(severity=f.severity, message=f.message)
            if entry["active"] and entry["epochs"] and entry["epochs"][-1][1] == self.last_epoch:
                entry["epochs"][-1][1] = epoch
            else:
                entry["epochs"].append([epoch, epoch])
                self.fired.append(f)
                level = logging.WARNING if f.severity in ("warning", "critical") else logging.INFO
                again = " (again)" if len(entry["epochs"]) > 1 else ""
                wait = ""
                if f.id in self.stop_on and self.persist_epochs > 1:
                    wait = (f" [in trainer.stop_on: the run stops if it still holds at epoch "
                            f"{epoch + self.persist_epochs - 1}]")
                log.log(level, "epoch %d: %s%s: %s%s", epoch, f.id, again, f.message, wait)
            entry["active"] = True
            first, last = entry["epochs"][-1]
            if f.id in self.stop_on and stop is None and last - first + 1 >= self.persist_epochs:
                entry["stopped_run"] = True
                held_for = f" (held since epoch {first})" if last > first else ""
                stop = StopRun(f.id, f"epoch {epoch}: {f.message}{held_for}")
        ids = {f.id for f in held}
        worse = self._worse()
        for entry in self.record.values():
            if entry["active"] and entry["id"] not in ids and worse and entry["epochs"] \
                    and entry["epochs"][-1][1] == self.last_epoch:
                entry["epochs"][-1][1] = epoch  # an epoch that made the run worse clears nothing: still held
                continue
            if entry["active"] and entry["id"] not in ids:
                entry["active"] = False
                log.info("epoch %d: %s cleared (held at %s)", epoch, entry["id"], epoch_ranges(entry["epochs"]))
        self.last_epoch = epoch
        self._write()
        return stop

    def _worse(self) -> bool:
        """This epoch's validation accuracy fell below the previous epoch's: a warning that stops holding on such
        an epoch (loss_oscillating "clearing" as the accuracy falls furthest) has not cleared."""
        accs = [r.get("accuracy") for r in self.val[-2:]]
        return len(accs) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in accs) \
            and accs[1] < accs[0]

    def _write(self) -> None:
        if self.path is not None and self.record:  # no file until a finding has held: nothing to report
            write_json(self.path, {"persist_epochs": self.persist_epochs, "last_epoch": self.last_epoch,
                                   "findings": list(self.record.values())})

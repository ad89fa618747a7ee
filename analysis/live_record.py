"""Live findings as the trainer recorded them, and the run report's section on those that cleared.

The trainer runs the rules at every epoch end (trainer/live.py) and keeps, per finding id, the epoch
ranges in which it held, in `<diagnostics dir>/live_findings.json`:

    {"persist_epochs": 2, "last_epoch": 6,
     "findings": [{"id": "accuracy_at_chance", "severity": "critical", "message": "...",
                   "epochs": [[1, 3]], "active": false, "stopped_run": false}]}

A finding that held at some epochs and no longer does, or that the final diagnosis (on the whole run)
does not repeat, would otherwise vanish from the report without a word: the run report lists it as
cleared, with its epoch ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rundir.format import DIAGNOSTICS_POINTER, LIVE_FINDINGS, POINTER_KEY, epoch_ranges
from rundir.read import Run, find_diagnostics_dir
from rundir.safe import read_json


def _diagnostics_dirs(run: Run) -> list[Path]:
    if run.path is None:
        return []
    dirs = [d for d in (find_diagnostics_dir(run.path),) if d is not None]
    pointer = read_json(run.path / DIAGNOSTICS_POINTER, [])  # diagnostics.dir sent them elsewhere
    if pointer is not None and isinstance(pointer.get(POINTER_KEY), str):
        dirs.append(Path(pointer[POINTER_KEY]))
    return dirs


def read_live(run: Run) -> Optional[dict]:
    """The run's live findings record, or None (an older trainer, another tool's logs, an unreadable file)."""
    for d in _diagnostics_dirs(run):
        data = read_json(d / LIVE_FINDINGS, [])  # rundir's reader: regular files only, capped
        if data is not None and isinstance(data.get("findings"), list):
            return data
    return None


def _valid(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("epochs"), list)
            and all(isinstance(r, list) and len(r) == 2 and all(isinstance(e, int) for e in r)
                    for r in entry["epochs"]))


def live_section(run: Run, final_ids: set[str]) -> Optional[dict]:
    """Live findings the final diagnosis does not repeat: cleared during training (with the epochs they
    held), or held to the end yet not found on the whole run. None when there are none."""
    record = read_live(run)
    if record is None:
        return None
    entries = [e for e in record["findings"] if _valid(e) and e["epochs"] and e["id"] not in final_ids]
    if not entries:
        return None
    lines, data = [], []
    for e in entries:
        held = epoch_ranges(e["epochs"])
        if e.get("active"):
            state = "held to the last epoch, but the diagnosis of the whole run does not repeat it"
        else:
            state = f"cleared by epoch {e['epochs'][-1][1] + 1}"
        stopped = "; it stopped the run" if e.get("stopped_run") else ""
        lines.append(f"{e['id']} ({e.get('severity', '?')}) fired live at {held}, {state}{stopped}: "
                     f"{e.get('message', '')}")
        data.append({"id": e["id"], "severity": e.get("severity"), "epochs": e["epochs"],
                     "state": "held" if e.get("active") else "cleared", "stopped_run": bool(e.get("stopped_run")),
                     "message": e.get("message")})
    return {"title": "Live findings that cleared", "lines": lines, "data": {"findings": data}}

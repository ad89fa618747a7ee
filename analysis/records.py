"""What the trainer and `--verify` recorded beside a run: its live findings and its verification sweeps.

Read side only (layer 1): the run report shows both (run_report.py), and never imports the command that
wrote them.

Live findings. The trainer runs the rules at every epoch end (trainer/live.py) and keeps, per finding id, the epoch
ranges in which it held, in `<diagnostics dir>/live_findings.json`:

    {"persist_epochs": 2, "last_epoch": 6,
     "findings": [{"id": "accuracy_at_chance", "severity": "critical", "message": "...",
                   "epochs": [[1, 3]], "active": false, "stopped_run": false}]}

A finding that held at some epochs and no longer does, or that the final diagnosis (on the whole run)
does not repeat, would otherwise vanish from the report without a word: the run report lists it as
cleared, with its epoch ranges.

Verifications. `python -m analysis RUN --verify` (verify.py) writes each verification sweep into
`<run>/verify/<date>_<time>/` with a manifest, `verify.json`: what was run and, once the jobs ended, the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rundir.format import DIAGNOSTICS_POINTER, LIVE_FINDINGS, POINTER_KEY, VERIFY_DIR, VERIFY_JSON
from rundir.read import Run, find_diagnostics_dir
from rundir.safe import read_json

from .sweep import split_override

FIX_GROUP = "verify_fix"  # the config group whose options are a verification's fixes (and its control)
CONTROL = "control"  # the option that reruns the run's own config, for comparison


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




def latest_verification(run_dir: Path) -> Optional[Path]:
    """The newest verification sweep of a run (directory names are timestamps), or None."""
    base = Path(run_dir) / VERIFY_DIR
    try:
        found = sorted(d for d in base.iterdir() if (d / VERIFY_JSON).is_file())
    except OSError:
        return None
    return found[-1] if found else None


def read_manifest(sweep_dir: Path) -> Optional[dict]:
    """A verification sweep's verify.json; None when gone or damaged (regular files only, capped)."""
    return read_json(Path(sweep_dir) / VERIFY_JSON, [])


def plain_overrides(sweep_dir: Path, overrides_cli: list[str]) -> list[str]:
    """A verification sweep's configuration as overrides `python -m trainer` takes without the option files:
    `verify_fix=fix1` becomes that option's overrides. Other sweeps' lists come back unchanged."""
    manifest = read_manifest(sweep_dir)
    options = manifest.get("option_overrides") if manifest else None
    if not isinstance(options, dict):
        return overrides_cli
    out = []
    for o in overrides_cli:
        key, value = split_override(o)
        out += options.get(value, [o]) if key == FIX_GROUP else [o]
    return out

"""Read `python -m trainer.lr_find`'s results (lr_find.json, rundir/format.py) and find the one of a run's setup.

The range test writes into its own Hydra run directory, outputs/lr_find/<date>/<time>/, beside the runs under
outputs/<date>/<time>/ (and sweeps under outputs/multirun/...). For a run, the newest lr_find.json of the same
setup (format.LR_FIND_SETUP) is looked for in the run directory itself, then in the `lr_find` folder of each of
its first ANCESTORS ancestors. Files are read capped and parsed as plain JSON (rundir/safe.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from .config_keys import OPTIMIZER_LR
from .format import LR_FIND_DIR, LR_FIND_JSON, LR_FIND_SETUP, LR_FIND_SETUP_IGNORED
from .safe import read_json

ONECYCLE_PEAK = 3.0  # onecycle's peak = 3x the suggestion: the cycle sits near its peak only briefly (Smith 2018)
ANCESTORS = 4  # outputs/<date>/<time> is 2 below outputs/, a sweep job outputs/multirun/<date>/<time>/<n> is 4
MAX_CANDIDATES = 200  # lr_find.json files looked at per run, newest first


def lr_for_scheduler(suggested: float, scheduler: Optional[dict]) -> float:
    """The optimizer.lr that gives a scheduler the suggested LR: optimizer.lr is the start of a constant, step or
    plateau schedule and cosine's peak (a warmup's target); onecycle peaks at it, ONECYCLE_PEAK x the suggestion."""
    name = (scheduler or {}).get("name")
    return float(f"{suggested * (ONECYCLE_PEAK if name == 'onecycle' else 1.0):.3g}")


def lr_override(suggested: float, scheduler: Optional[dict]) -> str:
    return f"{OPTIMIZER_LR}={lr_for_scheduler(suggested, scheduler)!r}"


def setup_of(config: Optional[dict]) -> dict:
    """The setup part of a resolved config: LR_FIND_SETUP's groups without LR_FIND_SETUP_IGNORED."""
    config = config or {}
    out = {}
    for group in LR_FIND_SETUP:
        node = config.get(group)
        if isinstance(node, dict):
            out[group] = {k: v for k, v in node.items() if f"{group}.{k}" not in LR_FIND_SETUP_IGNORED}
    return out


def read_lr_find(path: Path, warnings: Optional[list] = None) -> Optional[dict]:
    """An lr_find.json with a positive, finite suggested_lr and its setup; None otherwise (with a warning when
    the file is there but damaged)."""
    found = read_json(Path(path), warnings if warnings is not None else [])
    if found is None:
        return None
    lr = found.get("suggested_lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0) \
            or not isinstance(found.get("setup"), dict):
        return None
    return {**found, "path": str(path)}


def _candidates(run_path: Path) -> list[Path]:
    own = run_path / LR_FIND_JSON
    found = [own] if own.is_file() else []
    for parent in list(run_path.parents)[:ANCESTORS]:
        folder = parent / LR_FIND_DIR
        if folder.is_dir():
            try:
                found += sorted(folder.glob(f"*/*/{LR_FIND_JSON}"), reverse=True)[:MAX_CANDIDATES]
            except OSError:
                continue
    return found[:MAX_CANDIDATES]


def lr_find_for(run_path: Optional[Path], config: Optional[dict]) -> Optional[dict]:
    """The newest lr_find.json of the run's setup (the run directory's own first), or None."""
    if run_path is None or not config:
        return None
    want = setup_of(config)
    for path in _candidates(Path(run_path)):
        found = read_lr_find(path)
        if found is not None and _same(found["setup"], want):
            return found
    return None


def _same(a: Any, b: Any) -> bool:
    """Equal setups; numbers compare as numbers (1 == 1.0, as JSON and YAML may write them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b

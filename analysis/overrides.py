"""Hydra override strings computed from a run's own config, ready to paste into the next sweep."""

from __future__ import annotations

import math
from typing import Any, Optional

from .records import Run


def fmt(value: Any) -> str:
    """A value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e6:
            return f"{value:.1f}"
        return f"{float(f'{value:.3g}')!r}"
    return str(value)


def override(key: str, value: Any) -> str:
    return f"{key}={fmt(value)}"


def current(run: Run, key: str) -> Any:
    return run.cfg(key)


def uses(run: Run, group: str, option: str) -> bool:
    """True when the run's config selected `option` for `group` (e.g. scheduler=plateau)."""
    return run.cfg(f"{group}.name") == option


def undo_fault(run: Run) -> list[str]:
    """fault=none when the run injected a fault on purpose (the fix for a fault config), else nothing."""
    return ["fault=none"] if run.cfg("fault.name") not in (None, "none") else []


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def raise_patience(run: Run) -> list[str]:
    p = _num(current(run, "scheduler.patience"))
    if not uses(run, "scheduler", "plateau") or p is None:
        return []
    return [override("scheduler.patience", int(max(2 * p, p + 2)))]


def scale(run: Run, key: str, factor: float, minimum: float = 0.0) -> list[str]:
    """key=value*factor, when the run has a numeric value for key."""
    v = _num(current(run, key))
    if v is None:
        return []
    return [override(key, max(minimum, v * factor))]


def lower_label_smoothing(run: Run) -> list[str]:
    e = _num(current(run, "regularization.label_smoothing"))
    if e is None or e <= 0:
        return []
    return [override("regularization.label_smoothing", 0.0 if e <= 0.05 else round(e / 2, 3))]


def lower_weight_decay(run: Run) -> list[str]:
    wd = _num(current(run, "regularization.weight_decay"))
    if wd is None or wd <= 0:
        return []
    return [override("regularization.weight_decay", wd / 5)]


def lower_augmentation(run: Run) -> list[str]:
    name = current(run, "augmentation.name")
    if name == "randaugment":
        m = _num(current(run, "augmentation.magnitude"))
        return [override("augmentation.magnitude", int(max(0, m - 2)))] if m is not None else []
    if name == "trivialaugment":
        return ["augmentation=basic"]
    return []


def lower_lr(run: Run, factor: float) -> list[str]:
    return scale(run, "optimizer.lr", 1 / factor)


def raise_lr(run: Run, factor: float) -> list[str]:
    return scale(run, "optimizer.lr", factor)

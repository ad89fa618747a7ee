"""Hydra override strings computed from a run's own config, ready to paste into the next sweep."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from .sweep import split_override
from rundir.read import Run
from rundir.config_keys import (
    AUGMENTATION_MAGNITUDE, AUGMENTATION_NAME, FAULT_NAME, OPTIMIZER_LR, OPTIMIZER_NAME,
    REGULARIZATION_LABEL_SMOOTHING, REGULARIZATION_WEIGHT_DECAY, SCHEDULER_MIN_LR, SCHEDULER_PATIENCE,
    SCHEDULER_THRESHOLD)


def fmt(value: Any, exact: bool = False) -> str:
    """A value as Hydra's override grammar reads it back. Floats are rounded to 3 significant digits
    (computed advice: `optimizer.lr=0.005`) unless exact, for values a run actually used (a sweep's
    best configuration: Optuna's 0.06260326907499733 must come back as itself to rerun that trial)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):  # Hydra's grammar reads nan, inf and -inf back
            return repr(value)
        if value == int(value) and abs(value) < 1e6:
            return f"{value:.1f}"
        return repr(value) if exact else f"{float(f'{value:.3g}')!r}"
    return str(value)


VALUES_LISTED = 12  # values of one axis a report line lists; a range(0,10000) axis ends in ", … (10000 values)"


def values_text(values: Sequence[Any]) -> str:
    """An axis' values as a report line lists them: '1, 3, 10', or the first VALUES_LISTED and the count."""
    shown = ", ".join(fmt(v) for v in values[:VALUES_LISTED])
    return shown if len(values) <= VALUES_LISTED else f"{shown}, … ({len(values)} values)"


def override(key: str, value: Any) -> str:
    return f"{key}={fmt(value)}"


def current(run: Run, key: str) -> Any:
    return run.cfg(key)


def uses(run: Run, group: str, option: str) -> bool:
    """True when the run's config selected `option` for `group` (e.g. scheduler=plateau)."""
    return run.cfg(f"{group}.name") == option


def undo_fault(run: Run) -> list[str]:
    """fault=none when the run injected a fault on purpose (the fix for a fault config), else nothing."""
    return ["fault=none"] if run.cfg(FAULT_NAME) not in (None, "none") else []


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= 1.7e308:
        return None  # NaN, infinity, and ints of 400 digits (a hostile config), which no float holds
    return float(value)


def raise_patience(run: Run) -> list[str]:
    p = _num(current(run, SCHEDULER_PATIENCE))
    if not uses(run, "scheduler", "plateau") or p is None:
        return []
    return [override(SCHEDULER_PATIENCE, int(max(2 * p, p + 2)))]


def scale(run: Run, key: str, factor: float, minimum: float = 0.0) -> list[str]:
    """key=value*factor, when the run has a numeric value for key."""
    v = _num(current(run, key))
    if v is None:
        return []
    return [override(key, max(minimum, v * factor))]


def lower_label_smoothing(run: Run) -> list[str]:
    e = _num(current(run, REGULARIZATION_LABEL_SMOOTHING))
    if e is None or e <= 0:
        return []
    return [override(REGULARIZATION_LABEL_SMOOTHING, 0.0 if e <= 0.05 else round(e / 2, 3))]


def lower_weight_decay(run: Run) -> list[str]:
    wd = _num(current(run, REGULARIZATION_WEIGHT_DECAY))
    if wd is None or wd <= 0:
        return []
    return [override(REGULARIZATION_WEIGHT_DECAY, wd / 5)]


def lower_augmentation(run: Run) -> list[str]:
    name = current(run, AUGMENTATION_NAME)
    if name == "randaugment":
        m = _num(current(run, AUGMENTATION_MAGNITUDE))
        return [override(AUGMENTATION_MAGNITUDE, int(max(0, m - 2)))] if m is not None else []
    if name == "trivialaugment":
        return ["augmentation=basic"]
    if name == "basic":  # crops and flips: the mildest there is; a flip changes what a digit or a letter is
        return ["augmentation=none"]
    return []


# The LR each optimizer usually trains well at (its conf/optimizer default; AUTOTRAINER's LR sweep starts
# there too: SGD 0.01-0.1, Adam 1e-3), and the largest that usually stays stable (SGD: CIFAR recipes use up
# to 0.4, lr_out_of_range's band ends at 1.0; Adam/AdamW: UMLAUT's LRHigh is 1e-2, recipes stay <= 3e-3).
USUAL_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
MAX_LR = {"sgd": 0.5, "adam": 3e-3, "adamw": 3e-3}


def lower_lr(run: Run, factor: float) -> list[str]:
    """optimizer.lr / factor, but at most the optimizer's usual maximum: an LR of 1e5 lands in the stable
    range in one rerun, not after five reruns of x0.1."""
    lr = _num(current(run, OPTIMIZER_LR))
    if lr is None or lr <= 0:
        return []
    return [override(OPTIMIZER_LR, min(lr / factor, MAX_LR.get(current(run, OPTIMIZER_NAME), math.inf)))]


def raise_lr(run: Run, factor: float) -> list[str]:
    """optimizer.lr x factor, at least the optimizer's usual LR (1e-5 x 10 would still learn nothing) and at
    most its usual maximum; nothing when the LR is already at that maximum (raising it is then no fix)."""
    lr = _num(current(run, OPTIMIZER_LR))
    if lr is None or lr < 0:
        return []
    name = current(run, OPTIMIZER_NAME)
    target = min(max(lr * factor, USUAL_LR.get(name, 0.0)), MAX_LR.get(name, math.inf))
    return [override(OPTIMIZER_LR, target)] if target > lr else []


PLATEAU_THRESHOLD = 1e-4  # torch.optim.lr_scheduler.ReduceLROnPlateau's default (threshold_mode='rel')
MIN_LR_SHARE = 1e-3  # a floor three decades below the initial LR: updates stay above ~1e-5 of the weights


def lower_plateau_threshold(run: Run) -> list[str]:
    """scheduler.threshold back to PyTorch's 1e-4 when it is over 10x that: a relative threshold of 0.5
    asks every epoch to halve the val loss, so ReduceLROnPlateau cuts on every epoch."""
    t = _num(current(run, SCHEDULER_THRESHOLD))
    if not uses(run, "scheduler", "plateau") or t is None or t <= 10 * PLATEAU_THRESHOLD:
        return []
    return [override(SCHEDULER_THRESHOLD, PLATEAU_THRESHOLD)]


def raise_min_lr(run: Run) -> list[str]:
    """scheduler.min_lr = 1e-3 x optimizer.lr, when the scheduler has a lower floor: repeated cuts then stop
    before the weights freeze."""
    floor, lr = _num(current(run, SCHEDULER_MIN_LR)), _num(current(run, OPTIMIZER_LR))
    if floor is None or lr is None or floor >= MIN_LR_SHARE * lr:
        return []
    return [override(SCHEDULER_MIN_LR, MIN_LR_SHARE * lr)]


# ── a fix on the run's own command line ──
# Hydra applies a command line's group choices first and then its key=value overrides in order, so
# `scheduler=step scheduler.step_size=1 scheduler=cosine` fails on `scheduler.step_size=1` (cosine has no such
# key), and no override appended after it can delete the key first (`~scheduler.step_size` comes too late, and a
# schema-backed key cannot be deleted at all). A fix that switches a group's option therefore replaces the run's
# overrides of that group's keys: `replaces` names them, `rerun` is the whole command line.


def _key(override_text: str) -> str:

    return split_override(override_text)[0]


def _switched_groups(run: Run, fix: Sequence[str]) -> set[str]:
    """The groups whose option the fix changes (scheduler=cosine on a step run; not augmentation=basic on a
    run that already uses basic). A top-level key of this config is always a group."""

    out = set()
    for o in fix:
        key, value = split_override(o)
        if "." not in key and key and value != str(run.cfg(f"{key}.name")):
            out.add(key)
    return out


def replaced(run: Run, fix: Sequence[str]) -> list[str]:
    """The run's own overrides that the fix takes off its command line: keys inside a group whose option the fix
    switches, and its choice of that group (`scheduler=step scheduler.step_size=1` under `scheduler=cosine`). Appended alone, the fix would not compose."""
    groups = _switched_groups(run, fix)
    return [o for o in run.overrides if "=" in o and any(_key(o) == g or _key(o).startswith(g + ".") for g in groups)]


def rerun(run: Run, fix: Sequence[str]) -> list[str]:
    """The run's own command line with the fix: what `python -m trainer` takes to rerun it fixed (the overrides
    it replaces, and the run's own values of the keys it sets, leave; the fix comes last)."""
    gone, keys = set(replaced(run, fix)), {_key(o) for o in fix}
    return [o for o in run.overrides if o not in gone and _key(o) not in keys] + list(fix)


def mark_replacements(run: Run, recommendations: Sequence[dict]) -> None:
    """Give each recommendation (a report's plain dict) whose fix replaces some of the run's own overrides the
    list of them (`replaces`), so that every fix a report prints runs on the run's own command line."""
    for r in recommendations:
        gone = replaced(run, r.get("overrides") or [])
        if gone:
            r["replaces"] = gone


def report_recommendations(report: dict) -> list[dict]:
    """Every recommendation of a run report (its findings', its primary cause's and the alternatives')."""
    cause = report.get("cause") or {}
    causes = [c for c in [cause.get("primary"), *(cause.get("alternatives") or [])] if c]
    return [r for holder in [*report.get("findings", []), *causes] for r in holder.get("recommendations") or []]

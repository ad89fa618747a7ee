"""Logged values -> numbers, the one reader for every source: traindx's JSONL records (rundir.jsonl,
rundir.columns) and other tools' logs (analysis/importers). What cannot be a number the rules can use is
named, never an exception: a non-finite value (`inf`, `NaN`, `Infinity`) is kept as non-finite (a diverged
run logs them) with a warning; an integer beyond the float range (400 digits) is read as infinite with a
warning; text is read as missing. An epoch number is an integer in [0, MAX_EPOCH)."""

from __future__ import annotations

import math
from typing import Any, Optional

MAX_STEP = 2**53  # a step number beyond this has no exact float
MAX_EPOCH = 10**7  # an epoch number at or past this is no epoch (the trainer's own limit is 100,000)
NONFINITE = "read as non-finite"
BEYOND_FLOAT = "beyond the float range, read as non-finite"
NOT_A_NUMBER = "not a number, read as missing"


def valid_epoch(value: Any) -> bool:
    """A JSON epoch: an int (not a bool) in [0, MAX_EPOCH)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_EPOCH


def as_epoch(value: Any, limit: int = MAX_EPOCH) -> Optional[int]:
    """A logged epoch (an int, an integral float, or text such as '3' or '3.0') as an int in [0, limit);
    None for anything else (empty, `inf`, 400 digits, 2.5, a word). A step number: limit=MAX_STEP."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 32:
            return None
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < limit else None


def as_number(value: Any) -> tuple[float, Optional[str]]:
    """(the value as a float, why it is not a plain finite number or None). NaN for anything that is no number
    (missing: None, a bool, a word, a list), +-inf for an integer beyond the float range."""
    if value is None or isinstance(value, bool):
        return math.nan, NOT_A_NUMBER if isinstance(value, bool) else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return math.nan, None
        try:
            value = float(text)  # '1e999' and 400 digits become inf here; 'inf', 'nan', 'Infinity' are read
        except ValueError:
            return math.nan, NOT_A_NUMBER
        if math.isinf(value) and text.lstrip("+-").replace("_", "").isdigit():
            return value, BEYOND_FLOAT
        return value, None if math.isfinite(value) else NONFINITE
    if isinstance(value, int):
        try:
            return float(value), None
        except OverflowError:
            return (math.inf if value > 0 else -math.inf), BEYOND_FLOAT
    if isinstance(value, float):
        return value, None if math.isfinite(value) else NONFINITE
    return math.nan, NOT_A_NUMBER

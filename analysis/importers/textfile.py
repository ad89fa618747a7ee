"""Other tools' log files read as text through rundir's safe reader: regular files only (a FIFO named
metrics.csv never blocks), opened non-blocking, capped; bytes that are not UTF-8 are replaced."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

from rundir.read import RunError
from rundir.safe import MAX_JSONL_BYTES, read_capped, read_whole

MAX_LOG_BYTES = MAX_JSONL_BYTES  # a CSV or JSON log holds what a JSONL log would: the same cap
HEAD_BYTES = 64 * 2**10  # what format detection reads of a file: its first line(s)


def read_text(path: Path, cap: int = MAX_LOG_BYTES) -> str:
    """The file's text, or RunError naming why it cannot be read (not a regular file, unreadable, too large)."""
    warnings: list[str] = []
    data = read_whole(path, cap, warnings)
    if data is None:
        raise RunError(warnings[0] if warnings else f"{path}: no such file")
    return data.decode("utf-8", errors="replace")


def head_text(path: Path) -> Optional[str]:
    """The file's first bytes as text, for format detection; None when it cannot be read at all."""
    data = read_capped(path, HEAD_BYTES, [])
    return None if data is None else data[:HEAD_BYTES].decode("utf-8", errors="replace")


def csv_header(path: Path) -> Optional[list[str]]:
    text = head_text(path)
    if text is None:
        return None
    try:
        return next(csv.reader(io.StringIO(text.split("\n", 1)[0])), None)
    except csv.Error:
        return None


def csv_rows(path: Path) -> list[list[str]]:
    text = read_text(path)
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise RunError(f"{path}: not a CSV file ({e})") from None


def csv_dicts(path: Path) -> list[dict]:
    text = read_text(path)
    try:
        return list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise RunError(f"{path}: not a CSV file ({e})") from None

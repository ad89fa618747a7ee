"""Other tools' log files read as text through rundir's safe reader: regular files only (a FIFO named
metrics.csv never blocks), opened non-blocking, capped; bytes that are not UTF-8 are replaced, a leading
byte-order mark (Excel's, PowerShell's) is dropped. CSV is parsed strictly: an unterminated quote refuses
the file (it would swallow every row after it); lines holding NUL bytes (a file cut by a crash, a disk that
zero-filled its end) and duplicated column names are named in a warning."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

from rundir.read import RunError
from rundir.safe import MAX_JSONL_BYTES, read_capped, read_whole

MAX_LOG_BYTES = MAX_JSONL_BYTES  # a CSV or JSON log holds what a JSONL log would: the same cap
HEAD_BYTES = 64 * 2**10  # what format detection reads of a file: its first line(s)


BOM = "\ufeff"


def read_text(path: Path, cap: int = MAX_LOG_BYTES) -> str:
    """The file's text, or RunError naming why it cannot be read (not a regular file, unreadable, too large)."""
    warnings: list[str] = []
    data = read_whole(path, cap, warnings)
    if data is None:
        raise RunError(warnings[0] if warnings else f"{path}: no such file")
    return data.decode("utf-8", errors="replace").removeprefix(BOM)


def head_text(path: Path) -> Optional[str]:
    """The file's first bytes as text, for format detection; None when it cannot be read at all."""
    data = read_capped(path, HEAD_BYTES, [])
    return None if data is None else data[:HEAD_BYTES].decode("utf-8", errors="replace").removeprefix(BOM)


def csv_header(path: Path) -> Optional[list[str]]:
    text = head_text(path)
    if text is None:
        return None
    try:
        return next(csv.reader(io.StringIO(text.split("\n", 1)[0])), None)
    except csv.Error:
        return None


def _without_nul_lines(path: Path, text: str, warnings: list[str]) -> str:
    if "\0" not in text:
        return text
    lines = text.split("\n")
    bad = [i for i, line in enumerate(lines, start=1) if "\0" in line]
    warnings.append(f"{path}: NUL bytes in {'line ' + str(bad[0]) if len(bad) == 1 else f'{len(bad)} lines ({bad[0]}-{bad[-1]})'}"
                    f" (a file cut by a crash, or not text): skipped")
    return "\n".join(line for line in lines if "\0" not in line)


def csv_rows(path: Path, warnings: Optional[list[str]] = None) -> list[list[str]]:
    """The rows of a CSV file (the header first); warnings gets what was skipped."""
    text = _without_nul_lines(path, read_text(path), warnings if warnings is not None else [])
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as e:
        raise RunError(f"{path}: not a CSV file ({e}" + (", an unterminated quote?)" if "end of data" in str(e) else ")"))
    if rows:
        _check_header(path, rows[0], warnings if warnings is not None else [])
    return rows


def _check_header(path: Path, header: list[str], warnings: list[str]) -> None:
    names = [h.strip() for h in header]
    twice = sorted({n for n in names if names.count(n) > 1 and n})
    for n in twice:
        at = [str(i) for i, h in enumerate(names, start=1) if h == n]
        warnings.append(f"{path}: column {n!r} appears {len(at)} times (columns {', '.join(at)}): the last one is read")


def csv_dicts(path: Path, warnings: Optional[list[str]] = None) -> list[dict]:
    """The rows as {column: text} (the header's names stripped); a duplicated name keeps its last column."""
    rows = csv_rows(path, warnings)
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    return [dict(zip(header, row)) for row in rows[1:]]

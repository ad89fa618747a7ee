"""Diagnostics JSONL files, read line by line: one parser (`parse_line`) for the analysis and for the
trainer's resume truncation (rundir.files), and a tolerant reader that skips bad lines and names each in a
warning (the first few per file; the rest are counted in one line)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from operator import countOf
from pathlib import Path
from typing import Any, Iterator, Optional

from . import safe
from .format import NESTED_FIELDS, NUMERIC_FIELDS
from .numbers import BEYOND_FLOAT, as_number, valid_epoch
from .safe import in_mib, read_capped

try:  # a C parser several times faster than json on long lines; strict JSON only, so json stays the fallback
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency, but the analysis must not need it
    _fast_loads = json.loads

MAX_LINE_BYTES = 10_000_000  # a longer "line" is not a diagnostics record
MAX_LINE_WARNINGS = 5  # per file; the rest are counted in one line
# Fields the trainer writes as numbers (or null), from the field table: another type there is named in a
# warning. Fields not listed (a newer trainer's, another tool's) are read as they are, without a word.
_NESTED = tuple(NESTED_FIELDS)
_NUMBER_TYPES = frozenset({int, float, type(None)})
_FAST_OK = _NUMBER_TYPES | {dict}  # with a dict only in a nested field, a record needs no closer look


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _token(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def parse_line(raw: bytes) -> tuple[Any, bool, Optional[str]]:
    """One JSONL line -> (value, tokens, None), or (None, False, why it is not JSON).

    tokens: the line needed Python's json (NaN or Infinity tokens, or what orjson refuses). The one
    line parser of the run format: the analysis reads with it, the trainer's resume truncation too."""
    try:
        return _fast_loads(raw), False, None
    except (ValueError, RecursionError):
        try:  # NaN and Infinity tokens (Python's json writes them) and whatever orjson refuses
            return json.loads(raw), True, None
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, int too long
            return None, False, str(e).split(":")[0]


class _LineWarnings:
    """A file's per-line warnings: the first few as they come, the rest counted in one closing line."""

    def __init__(self, path: Path, warnings: list[str], cap: int = MAX_LINE_WARNINGS):
        self.path, self.warnings, self.cap = path, warnings, cap
        self.shown = 0
        self.more: list[int] = []  # line numbers past the cap

    def add(self, number: int, message: str) -> None:
        if self.shown < self.cap:
            self.warnings.append(f"{self.path}:{number}: {message}")
            self.shown += 1
        elif not self.more or self.more[-1] != number:
            self.more.append(number)

    def close(self) -> None:
        if self.more:
            lines = f"line {self.more[0]}" if len(self.more) == 1 else f"lines {self.more[0]}-{self.more[-1]}"
            self.warnings.append(f"{self.path}: and {len(self.more)} more line(s) with problems like these "
                                 f"({lines}), skipped or read as missing")


def _plain(obj: dict) -> bool:
    """True when every value is a number or null, or a dict in a nested field (the common case)."""
    kinds = set(map(type, obj.values()))
    if kinds <= _NUMBER_TYPES:
        return True
    if not kinds <= _FAST_OK:
        return False
    # A dict only where a nested field belongs; the values inside are not looked at here (38 per ResNet
    # record: as long as parsing the line); the columns read a non-number there as missing.
    dicts = 0
    for k in _NESTED:
        dicts += type(obj.get(k)) is dict
    return countOf(map(type, obj.values()), dict) == dicts


def _check_record(obj: dict, number: int, tokens: bool, out: _LineWarnings) -> None:
    """Warn about what the columns will read as missing: a bad epoch, a non-number, a NaN token."""
    epoch = obj.get("epoch")
    if not valid_epoch(epoch):
        out.add(number, "no \"epoch\", skipped" if "epoch" not in obj
                else f"\"epoch\" is {_short(epoch)}, not an epoch number, skipped")
        return
    if tokens or not _plain(obj):
        for key, value in obj.items():
            if key == "epoch":
                continue
            if key in NESTED_FIELDS and isinstance(value, dict):
                bad = [k for k, v in value.items() if type(v) not in _NUMBER_TYPES]
                nonfinite = [k for k, v in value.items() if isinstance(v, float) and not math.isfinite(v)]
                if bad:
                    out.add(number, f"\"{key}\" holds non-numbers ({', '.join(map(str, bad[:3]))}), read as missing")
                if nonfinite:
                    out.add(number, f"{_token(value[nonfinite[0]])} in \"{key}\" "
                                    f"({', '.join(map(str, nonfinite[:3]))}), read as non-finite")
            elif type(value) not in _NUMBER_TYPES:
                if key in NUMERIC_FIELDS:
                    out.add(number, f"\"{key}\" is not a number ({_short(value)}), read as missing")
            elif isinstance(value, float) and not math.isfinite(value):
                out.add(number, f"{_token(value)} in \"{key}\", read as non-finite")
            elif isinstance(value, int) and as_number(value)[1] == BEYOND_FLOAT:
                out.add(number, f"\"{key}\" is {_short(value)}, {BEYOND_FLOAT}")


def _lines(data: bytes) -> Iterator[bytes]:
    """data.split(b"\n"), one line at a time: a 100,000-epoch file is not held twice (traindx issue 21)."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            yield data[start:]
            return
        yield data[start:end]
        start = end + 1


def _repeated_epochs(path: Path, repeated: list[tuple[Any, int, int]]) -> str:
    """One warning for a file that holds an epoch more than once: two processes wrote the run at once, or a
    run's records were appended to another's. The columns keep each epoch's last record (rundir.columns)."""
    epochs = sorted({e for e, _, _ in repeated})
    epoch, first, again = repeated[0]
    shown = ", ".join(map(str, epochs[:5])) + (f" and {len(epochs) - 5} more" if len(epochs) > 5 else "")
    return (f"{path}: {len(epochs)} epoch(s) recorded more than once ({shown}; epoch {epoch} at lines {first} and "
            f"{again}): two processes wrote this run at once, or records were appended to another run's; "
            f"each epoch's last record is read")


@dataclass
class JsonlStats:
    """What reading one JSONL file found: lines with content, JSON objects, diagnostics records."""

    lines: int = 0
    objects: int = 0
    records: int = 0  # objects with an epoch number
    cut_off: bytes = b""  # the unterminated last line, skipped


def read_jsonl(path: Path, warnings: list[str], stats: Optional[JsonlStats] = None,
               data: Optional[bytes] = None) -> list[dict]:
    """Records of a JSONL file; bad lines are skipped, bad values read as missing, each with a warning
    naming file and line (the first few per file; the rest are counted). A missing file reads as [].
    data: the file's bytes, when the caller has read them already."""
    path = Path(path)
    stats = stats if stats is not None else JsonlStats()
    if data is None:
        data = read_capped(path, safe.MAX_JSONL_BYTES, warnings)
        if data is None:
            return []
    if len(data) > safe.MAX_JSONL_BYTES:
        data = data[: data.rfind(b"\n", 0, safe.MAX_JSONL_BYTES) + 1]
        warnings.append(f"{path}: larger than {in_mib(safe.MAX_JSONL_BYTES)}: only the lines in its first "
                        f"{in_mib(safe.MAX_JSONL_BYTES)} read")
    if not data or data.isspace():  # what `not data.strip()` says, without copying the file
        warnings.append(f"{path}: empty file")
        return []
    tail_unterminated = not data.endswith(b"\n")
    # The number data.split(b"\n") would give the cut-off last line, without a second copy of data; counted only
    # when there is one (counting the newlines of a whole file costs as much as a tenth of parsing it).
    last_line = data.count(b"\n") + 1 if tail_unterminated else 0
    records: list[dict] = []
    problems = _LineWarnings(path, warnings)
    n_lines = n_objects = n_records = 0
    first_line: dict[Any, int] = {}  # epoch -> the line that first held it
    repeated: list[tuple[Any, int, int]] = []  # (epoch, first line, repeating line)
    for number, raw in enumerate(_lines(data), start=1):
        if not raw or raw.isspace():  # isspace stops at the first other byte; strip() would copy the line
            continue
        n_lines += 1
        if number == last_line:
            warnings.append(f"{path}:{number}: last line is cut off (no newline), skipped")
            stats.cut_off = raw[:200]
            break
        if len(raw) > MAX_LINE_BYTES:
            problems.add(number, f"line of {len(raw)} bytes skipped")
            continue
        obj, tokens, error = parse_line(raw)
        if error is not None:
            problems.add(number, f"not JSON ({error}), skipped")
            continue
        if not isinstance(obj, dict):
            problems.add(number, "not a JSON object, skipped")
            continue
        n_objects += 1
        epoch = obj.get("epoch")
        valid = valid_epoch(epoch)
        if valid and not tokens and _plain(obj):  # the common case, fast
            n_records += 1
        else:
            _check_record(obj, number, tokens, problems)
            n_records += valid
        if valid:
            if epoch in first_line:
                repeated.append((epoch, first_line[epoch], number))
            else:
                first_line[epoch] = number
        records.append(obj)
    problems.close()
    if repeated:
        warnings.append(_repeated_epochs(path, repeated))
    stats.lines += n_lines
    stats.objects += n_objects
    stats.records += n_records
    return records

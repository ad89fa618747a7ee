"""Tolerant readers: a run directory (or a lone JSONL file) -> Run.

Run directories come from other people and other machines: nothing here executes or unpickles
what it reads (JSON, and YAML with safe loaders only), and nothing read can hang the reader or
exhaust its memory. Every problem becomes a warning naming the file and line, and the run is read as
far as it can be:

- only regular files are opened (a FIFO, a device, a socket in place of a run file is named in one
  warning, never opened for reading: no read can block), and each read stops at the cap below;
- YAML aliases and nesting are bounded (a "billion laughs" file is refused, not expanded);
- a missing path or a directory that is no run raises `RunError` (one clear line for the CLI);
- an unterminated last line (a run still writing, or a crash mid-write) is skipped with a warning;
- a line that is not JSON, or not an object, is skipped with a warning naming its line;
- a record without an integer "epoch" is skipped with a warning naming its line;
- NaN and Infinity tokens and wrong types (`"loss": "abc"`) become NaN in the columns, with a warning
  naming the line and field; nulls (the trainer writes a non-finite value as null) and fields missing
  from older files become NaN silently;
- past the first few problems of one file, the rest are counted in one line;
- a file given on its own in which no line is a diagnostics record (`/etc/passwd`, `run_info.json`,
  a checkpoint) raises `RunError`: it is not a diagnostics file;
- a run whose diagnostics went elsewhere (`diagnostics.dir`, `DIAGNOSTICS_DIR`) is read from where the
  trainer's `diagnostics_dir.json` says; without that file, one warning says none was found.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .format import (DIAGNOSTICS, DIAGNOSTICS_POINTER, HYDRA_CONFIG, HYDRA_DIR, HYDRA_OVERRIDES, LOG_SUFFIX,
                     NESTED_FIELDS, NUMERIC_FIELDS, POINTER_KEY, RUN_INFO, RUNNING, STATES, STATUS, TRAIN_JSONL,
                     VAL_JSONL)

try:  # a C parser several times faster than json on long lines; strict JSON only, so json stays the fallback
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency, but the analysis must not need it
    _fast_loads = json.loads

# What one read takes at most (bytes). Generous for real runs: a ResNet-18 train record is ~3.5 KB, so a
# JSONL file of 256 MiB holds ~75,000 of its epochs; run_info.json is a few KB (class counts of 21,000
# classes: ~0.5 MB); Hydra's YAML files are a few KB. Beyond the cap a JSONL file is read up to it (with a
# warning), a JSON or YAML file is ignored (with a warning): /dev/zero behind a symlink is refused anyway
# (not a regular file), and a huge regular file costs at most the cap.
MAX_JSONL_BYTES = 256 * 2**20
MAX_JSON_BYTES = 16 * 2**20
MAX_YAML_BYTES = 4 * 2**20
MAX_LOG_TAIL_BYTES = 64 * 2**10  # a log is read from its end: the last error line
# YAML: Hydra writes no aliases at all; a file with more, or that expands past these many nodes or
# nests deeper, is refused before it is built (a 500-byte "billion laughs" expands to 10^9 nodes).
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64
MAX_LINE_BYTES = 10_000_000  # a longer "line" is not a diagnostics record
MAX_LINE_WARNINGS = 5  # per file; the rest are counted in one line
# Fields the trainer writes as numbers (or null), from the field table: another type there is named in a
# warning. Fields not listed (a newer trainer's, another tool's) are read as they are, without a word.
_NESTED = tuple(NESTED_FIELDS)
_NUMBER_TYPES = frozenset({int, float, type(None)})
_FAST_OK = _NUMBER_TYPES | {dict}  # with a dict only in a nested field, a record needs no closer look


class RunError(Exception):
    """The path cannot be read as a run at all."""


# ───────────────────────────── opening files safely ─────────────────────────────

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def exists(path: Path) -> bool:
    """True when something is at path; False for any path that cannot be looked at (too long, no access)."""
    return os.path.lexists(path)


def is_dir(path: Path) -> bool:
    return os.path.isdir(path)  # os.path: False, not an exception, for a name too long or unreadable


def read_capped(path: Path, cap: int, warnings: list[str], tail: bool = False) -> Optional[bytes]:
    """The bytes of a regular file, at most cap + 1 of them (so a caller sees it was longer); None, with a
    warning, when it is no regular file or cannot be read; None, silently, when it does not exist.

    The file is checked before it is opened (a FIFO is never opened for reading) and opened non-blocking
    (should it be swapped for one in between, the read returns at once); the size is never trusted
    (/proc files say 0, a growing file says less): reading stops at the cap. tail: the last cap bytes.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as e:  # ENAMETOOLONG, EACCES, ELOOP; ValueError: a NUL in the name
        warnings.append(f"{path}: cannot read ({_reason(e) if isinstance(e, OSError) else 'bad name'})")
        return None
    if not stat.S_ISREG(mode):
        warnings.append(f"{path}: {_kind(mode)}, not a regular file: not read")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        warnings.append(f"{path}: cannot read ({_reason(e)})")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            warnings.append(f"{path}: {_kind(st.st_mode)}, not a regular file: not read")
            return None
        if tail and st.st_size > cap:
            os.lseek(fd, st.st_size - cap, os.SEEK_SET)
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, min(2**20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    except OSError as e:
        warnings.append(f"{path}: cannot read ({_reason(e)})")
        return None
    finally:
        os.close(fd)


def printable(name: str) -> str:
    """A file name for display: bytes that are not UTF-8 (surrogate escapes) as \\xff, so every renderer
    (text, HTML, a plot's title) can take it."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file system gave (a name from JSON): escaped as text
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def read_log_tail(path: Path, warnings: list[str]) -> str:
    """The last MAX_LOG_TAIL_BYTES of a log file as text ("" when absent or unreadable)."""
    data = read_capped(path, MAX_LOG_TAIL_BYTES, warnings, tail=True)
    return data[-MAX_LOG_TAIL_BYTES:].decode("utf-8", errors="replace") if data else ""


def log_files(run_dir: Path) -> list[Path]:
    """The run's log files (Hydra's job log, `<job name>.log`), sorted; [] when the directory cannot be listed."""
    try:
        return sorted(p for p in Path(run_dir).iterdir() if p.name.endswith(LOG_SUFFIX))
    except OSError:
        return []


# ───────────────────────────── low-level readers ─────────────────────────────


def _number(value: Any) -> float:
    """A JSON value as a float; anything that is not a real number becomes NaN."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float
            return math.inf if value > 0 else -math.inf
    return math.nan


def _valid_epoch(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7


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
    return list(map(type, obj.values())).count(dict) == dicts


def _check_record(obj: dict, number: int, tokens: bool, out: _LineWarnings) -> None:
    """Warn about what the columns will read as missing: a bad epoch, a non-number, a NaN token."""
    epoch = obj.get("epoch")
    if not _valid_epoch(epoch):
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
        data = read_capped(path, MAX_JSONL_BYTES, warnings)
        if data is None:
            return []
    if len(data) > MAX_JSONL_BYTES:
        data = data[: data.rfind(b"\n", 0, MAX_JSONL_BYTES) + 1]
        warnings.append(f"{path}: larger than {_mib(MAX_JSONL_BYTES)}: only the lines in its first "
                        f"{_mib(MAX_JSONL_BYTES)} read")
    if not data.strip():
        warnings.append(f"{path}: empty file")
        return []
    lines = data.split(b"\n")
    tail_unterminated = not data.endswith(b"\n")
    records: list[dict] = []
    problems = _LineWarnings(path, warnings)
    n_lines = n_objects = n_records = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        n_lines += 1
        if number == len(lines) and tail_unterminated:
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
        if type(epoch) is int and 0 <= epoch < 10**7 and not tokens and _plain(obj):  # the common case, fast
            n_records += 1
        else:
            _check_record(obj, number, tokens, problems)
            n_records += _valid_epoch(epoch)
        records.append(obj)
    problems.close()
    stats.lines += n_lines
    stats.objects += n_objects
    stats.records += n_records
    return records


def read_json(path: Path, warnings: list[str]) -> Optional[dict]:
    """A JSON file holding an object (run_info.json, status.json, diagnostics_dir.json); None when absent,
    and None with a warning when it is unreadable, too large, or holds something else."""
    path = Path(path)
    data = read_capped(path, MAX_JSON_BYTES, warnings)
    if data is None:
        return None
    if len(data) > MAX_JSON_BYTES:
        warnings.append(f"{path}: larger than {_mib(MAX_JSON_BYTES)}, ignored")
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        warnings.append(f"{path}: unreadable JSON ({type(e).__name__}), ignored")
        return None
    if not isinstance(obj, dict):
        warnings.append(f"{path}: not a JSON object, ignored")
        return None
    return obj


class YamlRefused(ValueError):
    """A YAML file whose aliases or nesting would expand beyond what any Hydra file holds."""


def _check_yaml_events(text: str, loader) -> None:
    """Walk the parser's events (no objects built): count aliases, the nodes the document expands to
    (an alias counts as the size of what it names), and the nesting depth; raise YamlRefused past a limit."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_nodes: list[tuple[Optional[str], int]] = []  # (anchor, node count when it opened)
    nodes = aliases = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise YamlRefused(f"more than {MAX_YAML_ALIASES} aliases")
            nodes += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append((event.anchor, nodes))
            nodes += 1
            if len(open_nodes) > MAX_YAML_DEPTH:
                raise YamlRefused(f"nested deeper than {MAX_YAML_DEPTH}")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, start = open_nodes.pop()
            if anchor:
                sizes[anchor] = nodes - start
        if nodes > MAX_YAML_NODES:
            raise YamlRefused(f"expands to more than {MAX_YAML_NODES} nodes" + (" through aliases" if aliases else ""))


def read_yaml(path: Path, warnings: list[str]) -> Any:
    """YAML with the safe loader only: plain data, never objects (libyaml's when present: 10x faster).
    Aliases and nesting are bounded (_check_yaml_events) before anything is built."""
    import yaml

    path = Path(path)
    data = read_capped(path, MAX_YAML_BYTES, warnings)
    if data is None:
        return None
    if len(data) > MAX_YAML_BYTES:
        warnings.append(f"{path}: larger than {_mib(MAX_YAML_BYTES)}, ignored")
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = data.decode("utf-8", errors="replace")
    try:
        _check_yaml_events(text, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - safe loader
    except YamlRefused as e:
        warnings.append(f"{path}: YAML refused ({e}), ignored")
        return None
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or type(e).__name__
        warnings.append(f"{where}: unreadable YAML ({problem}), ignored")
        return None


def read_yaml_mapping(path: Path, warnings: list[str]) -> Optional[dict]:
    """A YAML file that must hold a mapping (Hydra's config.yaml, hydra.yaml); anything else is named."""
    obj = read_yaml(path, warnings)
    if obj is None:
        return None
    if not isinstance(obj, dict):
        warnings.append(f"{path}: not a YAML mapping ({type(obj).__name__}), ignored")
        return None
    return obj


def read_yaml_list(path: Path, warnings: list[str]) -> list[str]:
    """Hydra's overrides.yaml: a list of override strings (an empty file is no overrides)."""
    obj = read_yaml(path, warnings)
    if obj is None:
        return []
    if not isinstance(obj, list):
        warnings.append(f"{path}: not a YAML list of overrides ({type(obj).__name__}), ignored")
        return []
    return [str(o) for o in obj]


_REF = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def resolve_simple_refs(cfg: Any, root: Optional[dict] = None) -> Any:
    """Resolve `${a.b}` references of Hydra's unresolved config.yaml; other interpolations stay text."""
    root = cfg if root is None else root
    if isinstance(cfg, dict):
        return {k: resolve_simple_refs(v, root) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [resolve_simple_refs(v, root) for v in cfg]
    if isinstance(cfg, str):
        m = _REF.match(cfg)
        if m:
            value = get(root, m.group(1))
            return cfg if value is None or isinstance(value, (dict, list)) else value
    return cfg


def get(cfg: Optional[dict], dotted: str, default: Any = None) -> Any:
    """cfg['a']['b'] for 'a.b', or default when any part is missing."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# ───────────────────────────── columns ─────────────────────────────


_PLAIN = {float, int, type(None)}


class Columns:
    """Per-epoch records as numpy columns; one row per epoch, sorted, duplicates resolved (last wins)."""

    def __init__(self, records: list[dict]):
        by_epoch: dict[int, dict] = {}
        for r in records:
            epoch = r.get("epoch")
            if isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch < 10**7:
                by_epoch[epoch] = r
        self.records = [by_epoch[e] for e in sorted(by_epoch)]
        self.epochs = np.array(sorted(by_epoch), dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> np.ndarray:
        """Column `name` as floats; NaN where a record lacks it or holds no finite-or-infinite number."""
        col = self._cache.get(name)
        if col is None:
            col = self._cache[name] = self._column([r.get(name) for r in self.records])
        return col

    @staticmethod
    def _column(values: list) -> np.ndarray:
        if set(map(type, values)) <= _PLAIN:
            try:  # the common case, vectorized: None -> NaN
                return np.array(values, dtype=np.float64)
            except OverflowError:  # an int beyond float range
                pass
        return np.array([_number(v) for v in values], dtype=np.float64)

    def nested(self, name: str) -> tuple[list[str], np.ndarray]:
        """A dict-valued field (e.g. layer_grad_norms) as (keys, epochs x keys floats); NaN where absent."""
        key = "\0" + name
        if key not in self._cache:
            rows = [d if isinstance(d, dict) else {} for d in (r.get(name) for r in self.records)]
            first = list(rows[0]) if rows else []
            if rows and all(list(d) == first for d in rows):  # one writer, one key order: a single array
                values = [list(d.values()) for d in rows]
                table = self._column([v for row in values for v in row]).reshape(len(rows), len(first))
                keys = first
            else:
                keys = list(dict.fromkeys(k for d in rows for k in d))
                table = np.full((len(rows), len(keys)), np.nan)
                for j, k in enumerate(keys):
                    table[:, j] = self._column([d.get(k) for d in rows])
            self._cache[key] = ([str(k) for k in keys], table)
        return self._cache[key]

    def finite(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, epochs) of the rows where column `name` is finite."""
        col = self[name]
        ok = np.isfinite(col)
        return col[ok], self.epochs[ok]

    def has(self, name: str) -> bool:
        return bool(np.isfinite(self[name]).any()) if self.records else False

    def raw(self, name: str) -> list:
        return [r.get(name) for r in self.records]


# ───────────────────────────── the run ─────────────────────────────


@dataclass
class Run:
    """Everything the analysis knows about one run; any part may be missing."""

    name: str
    path: Optional[Path]
    train: Columns
    val: Columns
    config: Optional[dict] = None  # resolved; from run_info.json, else .hydra/config.yaml
    overrides: list[str] = field(default_factory=list)  # .hydra/overrides.yaml
    info: Optional[dict] = None  # run_info.json
    status: Optional[dict] = None  # status.json
    warnings: list[str] = field(default_factory=list)
    memo: dict = field(default_factory=dict, repr=False)  # derived values shared by rules and sections
    hydra_config: Optional[dict] = None  # .hydra/config.yaml as written (interpolations unresolved)
    notes: list[str] = field(default_factory=list)  # where things were read from, when not the usual place

    # ── facts derived from what was read ──
    @property
    def num_classes(self) -> Optional[int]:
        return _first_int((get(self.info, "num_classes"), get(self.config, "data.num_classes")), minimum=2)

    @property
    def planned_epochs(self) -> Optional[int]:
        return _first_int((get(self.config, "trainer.epochs"), get(self.status, "epochs")), minimum=1)

    @property
    def last_epoch(self) -> int:
        epochs = [int(c.epochs[-1]) for c in (self.train, self.val) if len(c)]
        return max(epochs) if epochs else 0

    @property
    def state(self) -> str:
        """completed, failed, preempted, running, or unknown (a lone JSONL file)."""
        s = get(self.status, "status")
        return s if s in STATES else "unknown"

    def cfg(self, dotted: str, default: Any = None) -> Any:
        return get(self.config, dotted, default)


def run_from_records(train: list[dict], val: list[dict], *, name: str = "run", path: Optional[Path] = None,
                     config: Optional[dict] = None, info: Optional[dict] = None, status: Optional[dict] = None,
                     overrides: Optional[list[str]] = None, warnings: Optional[list[str]] = None) -> Run:
    """A Run from records in memory (the trainer's live findings use this)."""
    return Run(name=name, path=path, train=Columns(train), val=Columns(val), config=config,
               overrides=list(overrides or []), info=info, status=status, warnings=list(warnings or []))


def _first_int(values, minimum: int) -> Optional[int]:
    """The first of values that is an int (not a bool) of at least minimum: sources in order of trust."""
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= minimum), None)


# ───────────────────────────── finding a run's files ─────────────────────────────


def find_diagnostics_dir(path: Path) -> Optional[Path]:
    """The directory holding the JSONL files: path/diagnostics, or path itself."""
    for candidate in (path / DIAGNOSTICS, path):
        if any(exists(candidate / name) for name in (TRAIN_JSONL, VAL_JSONL, STATUS, RUN_INFO)):
            return candidate
    return None


def is_run_dir(path: Path) -> bool:
    return is_dir(path) and (find_diagnostics_dir(path) is not None or is_dir(path / HYDRA_DIR))


def check_path(path: Path) -> None:
    """Raise RunError, one line, when nothing can be read at path (missing, a name too long, no access)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise RunError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise RunError(f"{path}: cannot read ({_reason(e)})") from None
    except ValueError:  # a NUL byte in the name
        raise RunError(f"{path!r}: not a valid path") from None


def load_run(path: Path | str) -> Run:
    """Read a run directory, its diagnostics directory, or a lone train/val JSONL file."""
    path = Path(path)
    check_path(path)
    warnings: list[str] = []
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return _load_lone_jsonl(path, warnings)
    if not stat.S_ISDIR(mode):
        raise RunError(f"{path}: {_kind(mode)}, not a run directory or a diagnostics JSONL file")
    diag = find_diagnostics_dir(path)
    if diag is None and not is_dir(path / HYDRA_DIR):
        raise RunError(f"{path}: not a run directory (no {DIAGNOSTICS}/ with {TRAIN_JSONL}, and no {HYDRA_DIR}/)")
    hydra_dir = path / HYDRA_DIR if is_dir(path / HYDRA_DIR) else path.parent / HYDRA_DIR
    notes: list[str] = []
    hydra_cfg = read_yaml_mapping(hydra_dir / HYDRA_CONFIG, warnings)
    if diag is None:
        diag, message = _diagnostics_elsewhere(path, warnings)
        if diag is not None:
            notes.append(message)
        else:
            diag = path / DIAGNOSTICS
            warnings.append(message)
    found = is_dir(diag)
    train = read_jsonl(diag / TRAIN_JSONL, warnings)
    val = read_jsonl(diag / VAL_JSONL, warnings)
    if found:
        _warn_missing_jsonl(diag, warnings)
    info = read_json(diag / RUN_INFO, warnings)
    status = read_json(diag / STATUS, warnings)
    run_dir = diag.parent if diag.name == DIAGNOSTICS else diag
    if notes:  # the diagnostics went elsewhere: the run is the directory that was given
        run_dir = path
    elif not is_dir(hydra_dir):  # a diagnostics directory given on its own: its run_info.json names its run
        owner = get(info, "run_dir")
        if isinstance(owner, str) and owner and is_dir(Path(owner) / HYDRA_DIR):
            run_dir, hydra_dir = Path(owner), Path(owner) / HYDRA_DIR
            hydra_cfg = read_yaml_mapping(hydra_dir / HYDRA_CONFIG, warnings)
            notes.append(f"diagnostics read from {diag}; its run directory is {run_dir}")
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if config is None and hydra_cfg is not None:
        config = resolve_simple_refs(hydra_cfg)
    overrides = read_yaml_list(hydra_dir / HYDRA_OVERRIDES, warnings)
    return Run(name=printable(run_dir.name), path=run_dir, train=Columns(train), val=Columns(val), config=config,
               overrides=overrides, info=info, status=status, warnings=warnings, hydra_config=hydra_cfg,
               notes=notes)


def _warn_missing_jsonl(diag: Path, warnings: list[str]) -> None:
    has_train, has_val = exists(diag / TRAIN_JSONL), exists(diag / VAL_JSONL)
    if has_train and not has_val:
        warnings.append(f"{diag / VAL_JSONL}: missing: no validation records (validation accuracy and loss are n/a)")
    elif has_val and not has_train:
        warnings.append(f"{diag / TRAIN_JSONL}: missing: no training records (training loss and gradients are n/a)")
    elif not has_train and not has_val:
        warnings.append(f"{diag}: neither {TRAIN_JSONL} nor {VAL_JSONL} (no epoch recorded yet)")


def _diagnostics_elsewhere(path: Path, warnings: list[str]) -> tuple[Optional[Path], str]:
    """A run directory without diagnostics/: the directory its diagnostics_dir.json names (the trainer
    writes it whenever the diagnostics went elsewhere), with a note saying so; or (None, one warning)."""
    pointer = path / DIAGNOSTICS_POINTER
    if not exists(pointer):
        return None, (f"{path}: no diagnostics here (no {DIAGNOSTICS}/, and no {DIAGNOSTICS_POINTER} saying where "
                      f"they went); the job may have failed before its first epoch, or they went elsewhere "
                      f"(DIAGNOSTICS_DIR, diagnostics.dir): then analyse that directory")
    recorded = get(read_json(pointer, warnings), POINTER_KEY)
    if not isinstance(recorded, str) or not recorded:
        return None, f"{pointer}: names no diagnostics directory (no \"{POINTER_KEY}\" path), no diagnostics read"
    candidate = Path(recorded)
    if find_diagnostics_dir(candidate) != candidate:
        return None, f"{pointer}: names {candidate}, which holds no diagnostics; no diagnostics read"
    if not _belongs_to(candidate, path):
        return None, f"{pointer}: names {candidate}, whose run_info.json names another run; no diagnostics read"
    return candidate, (f"diagnostics read from {candidate} (recorded by the trainer in {DIAGNOSTICS_POINTER}), "
                       f"not {path / DIAGNOSTICS}")


def _belongs_to(diag: Path, run_dir: Path) -> bool:
    """True when diag's run_info.json names run_dir as its run (the trainer writes the resolved path)."""
    owner = get(read_json(diag / RUN_INFO, []), "run_dir")
    if not isinstance(owner, str):
        return False
    try:
        return Path(owner).resolve() == run_dir.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop (Python < 3.13), a name that cannot be encoded
        return False


# ─────────────── status.json that says running long after the last update ───────────────


STALE_MIN_S = 600  # never call a run stale before 10 minutes without an update


def stale_note(run: Run, now: Optional[_dt.datetime] = None) -> Optional[str]:
    """For a run whose status.json says running but has not been updated for longer than
    max(10 min, 3 x its longest epoch): a note that the process may have been killed. Else None."""
    if run.state != RUNNING:
        return None
    updated = get(run.status, "updated_at")
    if not isinstance(updated, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(updated.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    age = (now - when).total_seconds()
    epoch_s = 0.0
    if len(run.train):
        t = run.train["epoch_time_s"]
        if np.isfinite(t).any():
            epoch_s = float(np.nanmax(t))
    if len(run.val):
        v = run.val["val_time_s"]
        if np.isfinite(v).any():
            epoch_s += float(np.nanmax(v))
    if age <= max(STALE_MIN_S, 3 * epoch_s):
        return None
    minutes = age / 60
    ago = f"{minutes:.0f} min" if minutes < 120 else (f"{minutes / 60:.1f} h" if minutes < 48 * 60
                                                        else f"{minutes / 1440:.0f} days")
    return f"no update for {ago}: the process may have been killed; rerun to resume"


def _not_diagnostics(path: Path, stats: JsonlStats, data: bytes) -> Optional[str]:
    """Why the file given is no diagnostics JSONL file, or None when it is one (or empty: a run starting)."""
    if stats.records or not stats.lines:
        return None
    if stats.lines == 1 and stats.cut_off.lstrip().startswith(b"{") and b'"epoch"' in stats.cut_off:
        return None  # the first record, still being written: a run starting
    if stats.objects:
        return f"none of its {stats.objects} JSON object(s) has an integer \"epoch\""
    try:
        whole = json.loads(data) if len(data) <= MAX_JSON_BYTES else None
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, (dict, list)):
        hint = "; give the run directory instead" if path.name in (RUN_INFO, STATUS) else ""
        return f"one JSON document, not one record per line{hint}"
    return f"none of its {stats.lines} line(s) is a JSON object"


def _binary(head: bytes) -> Optional[str]:
    if b"\0" not in head:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "binary data: a zip archive, as PyTorch checkpoints are; the analysis reads no checkpoint"
    return "binary data"


def _load_lone_jsonl(path: Path, warnings: list[str]) -> Run:
    """The seed's form: `--file train_diagnostics.jsonl`; its siblings are read when present.

    The file given must hold diagnostics records (or be empty: a run that has not finished an epoch):
    anything else is named in a RunError, not turned into an empty report."""
    own: list[str] = []
    data = read_capped(path, MAX_JSONL_BYTES, own)
    if data is None:
        raise RunError(own[0] if own else f"{path}: cannot read")
    stats = JsonlStats()
    reason = _binary(data[:8192])
    records = read_jsonl(path, own, stats, data=data) if reason is None else []
    reason = reason or _not_diagnostics(path, stats, data)
    if reason:
        raise RunError(f"{path} is not a diagnostics JSONL file ({reason})")
    siblings = path.parent
    if path.name == VAL_JSONL:
        train = read_jsonl(siblings / TRAIN_JSONL, warnings)
        warnings += own
        val = records
    else:
        warnings += own
        train = records
        val = read_jsonl(siblings / VAL_JSONL, warnings) if path.name == TRAIN_JSONL else []
    if path.name in (TRAIN_JSONL, VAL_JSONL) and (exists(siblings / STATUS) or exists(siblings / RUN_INFO)):
        _warn_missing_jsonl(siblings, warnings)  # a run's diagnostics directory, not a lone file of the seed's form
    info = read_json(siblings / RUN_INFO, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    status = read_json(siblings / STATUS, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if not train and not val and not warnings:
        warnings.append(f"{path}: no records")
    return Run(name=printable(path.stem), path=path.parent, train=Columns(train), val=Columns(val), config=config,
               info=info, status=status, warnings=warnings)

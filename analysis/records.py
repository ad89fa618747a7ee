"""Tolerant readers: a run directory (or a lone JSONL file) -> Run.

Run directories come from other people and other machines: nothing here executes or unpickles
what it reads (JSON and YAML with safe loaders only). Every problem becomes a warning naming the
file and line, and the run is read as far as it can be:

- a missing path or a directory that is no run raises `RunError` (one clear line for the CLI);
- an unterminated last line (a run still writing, or a crash mid-write) is skipped with a warning;
- a line that is not JSON, or not an object, is skipped with a warning naming its line;
- NaN and Infinity tokens, nulls, wrong types and missing fields become NaN in the columns.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

try:  # a C parser several times faster than json on long lines; strict JSON only, so json stays the fallback
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency, but the analysis must not need it
    _fast_loads = json.loads

TRAIN_JSONL, VAL_JSONL = "train_diagnostics.jsonl", "val_diagnostics.jsonl"
RUN_INFO, STATUS = "run_info.json", "status.json"
MAX_LINE_BYTES = 10_000_000  # a longer "line" is not a diagnostics record


class RunError(Exception):
    """The path cannot be read as a run at all."""


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


def read_jsonl(path: Path, warnings: list[str]) -> list[dict]:
    """Records of a JSONL file; bad lines are skipped with a warning naming file and line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except (IsADirectoryError, PermissionError, OSError) as e:
        warnings.append(f"{path}: cannot read ({e.strerror or type(e).__name__})")
        return []
    if not data.strip():
        warnings.append(f"{path}: empty file")
        return []
    lines = data.split(b"\n")
    tail_unterminated = not data.endswith(b"\n")
    records: list[dict] = []
    for number, raw in enumerate(lines, start=1):
        if number == len(lines) and tail_unterminated:
            if raw.strip():
                warnings.append(f"{path}:{number}: last line is cut off (no newline), skipped")
            break
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            warnings.append(f"{path}:{number}: line of {len(raw)} bytes skipped")
            continue
        try:
            obj = _fast_loads(raw)
        except (ValueError, RecursionError):
            try:  # NaN and Infinity tokens (Python's json writes them) and whatever orjson refuses
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                warnings.append(f"{path}:{number}: not JSON ({str(e).split(':')[0]}), skipped")
                continue
        if not isinstance(obj, dict):
            warnings.append(f"{path}:{number}: not a JSON object, skipped")
            continue
        records.append(obj)
    return records


def read_json(path: Path, warnings: list[str]) -> Optional[dict]:
    path = Path(path)
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as e:
        warnings.append(f"{path}: unreadable JSON ({type(e).__name__}), ignored")
        return None
    if not isinstance(obj, dict):
        warnings.append(f"{path}: not a JSON object, ignored")
        return None
    return obj


def read_yaml(path: Path, warnings: list[str]) -> Any:
    """YAML with the safe loader only: plain data, never objects (libyaml's when present: 10x faster)."""
    import yaml

    path = Path(path)
    if not path.exists():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=loader)  # noqa: S506 - safe loader
    except (OSError, yaml.YAMLError, RecursionError, ValueError) as e:
        warnings.append(f"{path}: unreadable YAML ({type(e).__name__}), ignored")
        return None


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

    # ── facts derived from what was read ──
    @property
    def num_classes(self) -> Optional[int]:
        for value in (get(self.info, "num_classes"), get(self.config, "data.num_classes")):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
                return value
        return None

    @property
    def planned_epochs(self) -> Optional[int]:
        for value in (get(self.config, "trainer.epochs"), get(self.status, "epochs")):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value
        return None

    @property
    def last_epoch(self) -> int:
        epochs = [int(c.epochs[-1]) for c in (self.train, self.val) if len(c)]
        return max(epochs) if epochs else 0

    @property
    def state(self) -> str:
        """completed, failed, preempted, running, or unknown (a lone JSONL file)."""
        s = get(self.status, "status")
        return s if s in ("completed", "failed", "preempted", "running") else "unknown"

    def cfg(self, dotted: str, default: Any = None) -> Any:
        return get(self.config, dotted, default)


def run_from_records(train: list[dict], val: list[dict], *, name: str = "run", path: Optional[Path] = None,
                     config: Optional[dict] = None, info: Optional[dict] = None, status: Optional[dict] = None,
                     overrides: Optional[list[str]] = None, warnings: Optional[list[str]] = None) -> Run:
    """A Run from records in memory (the trainer's live findings use this)."""
    return Run(name=name, path=path, train=Columns(train), val=Columns(val), config=config,
               overrides=list(overrides or []), info=info, status=status, warnings=list(warnings or []))


def find_diagnostics_dir(path: Path) -> Optional[Path]:
    """The directory holding the JSONL files: path itself, or path/diagnostics."""
    for candidate in (path / "diagnostics", path):
        if (candidate / TRAIN_JSONL).exists() or (candidate / VAL_JSONL).exists() \
                or (candidate / STATUS).exists() or (candidate / RUN_INFO).exists():
            return candidate
    return None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (find_diagnostics_dir(path) is not None or (path / ".hydra").is_dir())


def load_run(path: Path | str) -> Run:
    """Read a run directory, its diagnostics directory, or a lone train/val JSONL file."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such file or directory")
    warnings: list[str] = []
    if path.is_file():
        return _load_lone_jsonl(path, warnings)
    diag = find_diagnostics_dir(path)
    hydra_dir = path / ".hydra" if (path / ".hydra").is_dir() else path.parent / ".hydra"
    if diag is None and not (path / ".hydra").is_dir():
        raise RunError(f"{path}: not a run directory (no diagnostics/ with {TRAIN_JSONL}, and no .hydra/)")
    if diag is None:
        diag = path / "diagnostics"
        warnings.append(f"{path}: no diagnostics written (the job may have failed before its first epoch)")
    train = read_jsonl(diag / TRAIN_JSONL, warnings)
    val = read_jsonl(diag / VAL_JSONL, warnings)
    info = read_json(diag / RUN_INFO, warnings)
    status = read_json(diag / STATUS, warnings)
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if config is None:
        hydra_cfg = read_yaml(hydra_dir / "config.yaml", warnings)
        config = resolve_simple_refs(hydra_cfg) if isinstance(hydra_cfg, dict) else None
    overrides = read_yaml(hydra_dir / "overrides.yaml", warnings)
    overrides = [str(o) for o in overrides] if isinstance(overrides, list) else []
    run_dir = diag.parent if diag.name == "diagnostics" else diag
    return Run(name=run_dir.name, path=run_dir, train=Columns(train), val=Columns(val), config=config,
               overrides=overrides, info=info, status=status, warnings=warnings)


def _load_lone_jsonl(path: Path, warnings: list[str]) -> Run:
    """The seed's form: `--file train_diagnostics.jsonl`; its siblings are read when present."""
    siblings = path.parent
    if path.name == VAL_JSONL:
        train, val = read_jsonl(siblings / TRAIN_JSONL, warnings), read_jsonl(path, warnings)
    else:
        train = read_jsonl(path, warnings)
        val = read_jsonl(siblings / VAL_JSONL, warnings) if path.name == TRAIN_JSONL else []
    info = read_json(siblings / RUN_INFO, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    status = read_json(siblings / STATUS, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if not train and not val and not warnings:
        warnings.append(f"{path}: no records")
    return Run(name=path.stem, path=path.parent, train=Columns(train), val=Columns(val), config=config,
               info=info, status=status, warnings=warnings)

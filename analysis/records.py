"""Tolerant readers: a run directory (or a lone JSONL file) -> Run.

Run directories come from other people and other machines: nothing here executes or unpickles
what it reads (JSON and YAML with safe loaders only). Every problem becomes a warning naming the
file and line, and the run is read as far as it can be:

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
- a run whose diagnostics went elsewhere (`diagnostics.dir=...`) is read from there when its
  `.hydra/config.yaml` says where.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
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
# In a run directory whose diagnostics went elsewhere (DIAGNOSTICS_DIR, diagnostics.dir): where they went.
# Hydra records `${oc.env:DIAGNOSTICS_DIR,...}`, not its value, so the trainer writes this file itself.
DIAGNOSTICS_POINTER = "diagnostics_dir.json"
MAX_LINE_BYTES = 10_000_000  # a longer "line" is not a diagnostics record
MAX_LINE_WARNINGS = 5  # per file; the rest are counted in one line
# Fields the trainer writes as numbers (or null); another type there is named in a warning. Fields not
# listed (a newer trainer's, another tool's) are read as they are, without a word.
NUMERIC_FIELDS = frozenset({
    "loss", "accuracy", "top5_accuracy", "nll", "learning_rate", "learning_rate_end", "num_batches",
    "num_samples", "nonfinite_steps", "nonfinite_grad_steps", "mean_grad_norm", "min_grad_norm",
    "max_grad_norm", "grad_norm_std", "grad_norm_first_layer", "grad_norm_last_layer", "clipped_fraction",
    "weight_update", "weight_update_ratio", "loss_step_std", "dead_relu_fraction", "relu_zero_fraction",
    "amp_scale", "epoch_time_s", "samples_per_s", "val_time_s", "step"})
NESTED_FIELDS = frozenset({"layer_grad_norms", "dead_relu_layers"})  # {name: number}
_NESTED = tuple(NESTED_FIELDS)
_NUMBER_TYPES = frozenset({int, float, type(None)})
_FAST_OK = _NUMBER_TYPES | {dict}  # with a dict only in a nested field, a record needs no closer look


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


def _valid_epoch(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _token(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


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


def read_jsonl(path: Path, warnings: list[str], stats: Optional[JsonlStats] = None) -> list[dict]:
    """Records of a JSONL file; bad lines are skipped, bad values read as missing, each with a warning
    naming file and line (the first few per file; the rest are counted). A missing file reads as []."""
    path = Path(path)
    stats = stats if stats is not None else JsonlStats()
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
        tokens = False
        try:
            obj = _fast_loads(raw)
        except (ValueError, RecursionError):
            try:  # NaN and Infinity tokens (Python's json writes them) and whatever orjson refuses
                obj = json.loads(raw)
                tokens = True
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                problems.add(number, f"not JSON ({str(e).split(':')[0]}), skipped")
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
    # Another tool's log (analysis/importers): {tool, format, files, fields, ...}; None for traindx's runs.
    imported: Optional[dict] = None
    # Facts the source does not state (config keys like "augmentation.name", "val_size"): unknown, not
    # absent. A rule that needs one stays silent or says so. Empty for traindx's runs, which record all.
    unknown: frozenset = frozenset()

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
    if not path.is_dir():
        raise RunError(f"{path}: not a run directory or a diagnostics JSONL file")
    diag = find_diagnostics_dir(path)
    if diag is None and not (path / ".hydra").is_dir():
        raise RunError(f"{path}: not a run directory (no diagnostics/ with {TRAIN_JSONL}, and no .hydra/)")
    hydra_dir = path / ".hydra" if (path / ".hydra").is_dir() else path.parent / ".hydra"
    notes: list[str] = []
    hydra_cfg = read_yaml_mapping(hydra_dir / "config.yaml", warnings)
    if diag is None:
        diag, message = _diagnostics_elsewhere(path, hydra_dir, hydra_cfg, warnings)
        if diag is not None:
            notes.append(message)
        else:
            diag = path / "diagnostics"
            warnings.append(message)
    found = diag.is_dir()
    train = read_jsonl(diag / TRAIN_JSONL, warnings)
    val = read_jsonl(diag / VAL_JSONL, warnings)
    if found:
        _warn_missing_jsonl(diag, warnings)
    info = read_json(diag / RUN_INFO, warnings)
    status = read_json(diag / STATUS, warnings)
    run_dir = diag.parent if diag.name == "diagnostics" else diag
    if notes:  # diagnostics.dir pointed elsewhere: the run is the directory that was given
        run_dir = path
    elif not hydra_dir.is_dir():  # a diagnostics directory given on its own: its run_info.json names its run
        owner = get(info, "run_dir")
        if isinstance(owner, str) and owner and (Path(owner) / ".hydra").is_dir():
            run_dir, hydra_dir = Path(owner), Path(owner) / ".hydra"
            hydra_cfg = read_yaml_mapping(hydra_dir / "config.yaml", warnings)
            notes.append(f"diagnostics read from {diag}; its run directory is {run_dir}")
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if config is None and hydra_cfg is not None:
        config = resolve_simple_refs(hydra_cfg)
    overrides = read_yaml_list(hydra_dir / "overrides.yaml", warnings)
    return Run(name=run_dir.name, path=run_dir, train=Columns(train), val=Columns(val), config=config,
               overrides=overrides, info=info, status=status, warnings=warnings, hydra_config=hydra_cfg,
               notes=notes)


def _warn_missing_jsonl(diag: Path, warnings: list[str]) -> None:
    has_train, has_val = (diag / TRAIN_JSONL).exists(), (diag / VAL_JSONL).exists()
    if has_train and not has_val:
        warnings.append(f"{diag / VAL_JSONL}: missing: no validation records (validation accuracy and loss are n/a)")
    elif has_val and not has_train:
        warnings.append(f"{diag / TRAIN_JSONL}: missing: no training records (training loss and gradients are n/a)")
    elif not has_train and not has_val:
        warnings.append(f"{diag}: neither {TRAIN_JSONL} nor {VAL_JSONL} (no epoch recorded yet)")


# ─────────────── diagnostics written elsewhere (diagnostics.dir, DIAGNOSTICS_DIR) ───────────────


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` at start, or -1."""
    depth = 0
    for i in range(start, len(text)):
        if text.startswith("${", i):
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _expand(text: str, known: dict[str, str], env: list[str]) -> Optional[list[tuple[str, Optional[str]]]]:
    """The values an (unresolved) config string can stand for: [(value, env var it came from or None)].

    Resolves `${hydra:runtime.output_dir}` and `${hydra:runtime.cwd}` (from `known`) and
    `${oc.env:NAME,DEFAULT}`: the variable as set in this process (only a guess at the launch
    environment, so marked with its name) and the default. None when something else is interpolated.
    Names of the variables met are added to `env`.
    """
    i = text.find("${")
    if i < 0:
        return [(text, None)]
    j = _closing_brace(text, i)
    if j < 0:
        return None
    inner, head, tail = text[i + 2: j], text[:i], text[j + 1:]
    options: list[tuple[str, Optional[str]]] = []
    if inner.startswith("oc.env:"):
        name, _, default = inner[len("oc.env:"):].partition(",")
        name = name.strip()
        env.append(name)
        if os.environ.get(name):
            options.append((os.environ[name], name))
        if default.strip():
            options += _expand(default.strip(), known, env) or []
    elif inner in known:
        options.append((known[inner], None))
    else:
        return None
    rest = _expand(tail, known, env)
    if rest is None:
        return None
    return [(head + a + b, va or vb) for a, va in options for b, vb in rest]


def _logged_epochs(run_dir: Path) -> int:
    """The last `epoch N/M` the trainer's log in run_dir reports (0 when none)."""
    last = 0
    for log in sorted(run_dir.glob("*.log"))[:3]:
        try:
            with open(log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200_000))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        for m in re.finditer(r" - epoch (\d+)/\d+ ", text):
            last = max(last, int(m.group(1)))
    return last


def _diagnostics_elsewhere(path: Path, hydra_dir: Path, hydra_cfg: Optional[dict],
                           warnings: list[str]) -> tuple[Optional[Path], str]:
    """A run directory without diagnostics/: the directory its recorded diagnostics.dir names, with a
    note saying so, or (None, a warning saying why none was found)."""
    default = f"{path}: no diagnostics written (the job may have failed before its first epoch)"
    raw = get(hydra_cfg, "diagnostics.dir")
    if not isinstance(raw, str) or not raw.strip():
        return None, default
    hydra_yaml = read_yaml_mapping(hydra_dir / "hydra.yaml", warnings) if (hydra_dir / "hydra.yaml").exists() \
        else None
    launch_cwd = get(hydra_yaml, "hydra.runtime.cwd")
    launch_cwd = launch_cwd if isinstance(launch_cwd, str) and launch_cwd else None
    # Hydra 1.3 (version_base 1.3) runs the job in the launch directory: a relative diagnostics.dir is
    # relative to it. With hydra.job.chdir=true the job ran in its output directory, this run directory.
    base = path.absolute() if get(hydra_yaml, "hydra.job.chdir") is True else (Path(launch_cwd) if launch_cwd else None)
    here = path.absolute()
    known = {"hydra:runtime.output_dir": str(here)}
    if launch_cwd:
        known["hydra:runtime.cwd"] = launch_cwd
    env: list[str] = []
    options = _expand(raw.strip(), known, env) or []
    tried = []
    for value, from_env in options:
        candidate = Path(value).expanduser()
        if not candidate.is_absolute():
            if base is None:
                continue
            candidate = base / candidate
        if candidate == here / "diagnostics" or candidate in tried:
            continue
        tried.append(candidate)
        if find_diagnostics_dir(candidate) != candidate:
            continue
        if from_env and not _belongs_to(candidate, path):  # this shell's variable, not the launch's
            continue
        how = f"${from_env} in this shell" if from_env else f"diagnostics.dir={raw}"
        return candidate, f"diagnostics read from {candidate} (the run's {how}), not {path / 'diagnostics'}"
    pointed = _pointed_diagnostics(path, warnings)
    if pointed is not None:
        return pointed, (f"diagnostics read from {pointed} (recorded by the trainer in {DIAGNOSTICS_POINTER}), "
                         f"not {path / 'diagnostics'}")
    epochs = _logged_epochs(path)
    if env:
        if epochs:
            return None, (f"{path}: no diagnostics/ here, yet its log shows {epochs} epoch(s): they went to the "
                          f"{env[0]} set at launch, which Hydra does not record; analyse that directory "
                          f"(python -m analysis DIR)")
        return None, default + f"; if {env[0]} was set at launch, analyse that directory instead"
    if tried:
        return None, (f"{path}: no diagnostics here nor in its diagnostics.dir {tried[0]}"
                      + (f", though its log shows {epochs} epoch(s)" if epochs else
                         " (the job may have failed before its first epoch)"))
    return None, default


def _first_int(values, minimum: int) -> Optional[int]:
    """The first of values that is an int (not a bool) of at least minimum: sources in order of trust."""
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= minimum), None)


def _pointed_diagnostics(path: Path, warnings: list[str]) -> Optional[Path]:
    """The diagnostics directory the trainer recorded for this run, when it holds this run's files."""
    pointer = path / DIAGNOSTICS_POINTER
    recorded = get(read_json(pointer, warnings), "diagnostics_dir") if pointer.is_file() else None
    if not isinstance(recorded, str) or not recorded:
        return None
    candidate = Path(recorded)
    if find_diagnostics_dir(candidate) != candidate or not _belongs_to(candidate, path):
        return None
    return candidate


def _belongs_to(diag: Path, run_dir: Path) -> bool:
    """True when diag's run_info.json names run_dir as its run (the trainer writes the resolved path)."""
    owner = get(read_json(diag / RUN_INFO, []), "run_dir")
    if not isinstance(owner, str):
        return False
    try:
        return Path(owner).resolve() == run_dir.resolve()
    except OSError:
        return False


# ─────────────── status.json that says running long after the last update ───────────────


STALE_MIN_S = 600  # never call a run stale before 10 minutes without an update


def stale_note(run: Run, now: Optional[_dt.datetime] = None) -> Optional[str]:
    """For a run whose status.json says running but has not been updated for longer than
    max(10 min, 3 x its longest epoch): a note that the process may have been killed. Else None."""
    if run.state != "running":
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


def _not_diagnostics(path: Path, stats: JsonlStats) -> Optional[str]:
    """Why the file given is no diagnostics JSONL file, or None when it is one (or empty: a run starting)."""
    if stats.records or not stats.lines:
        return None
    if stats.lines == 1 and stats.cut_off.lstrip().startswith(b"{") and b'"epoch"' in stats.cut_off:
        return None  # the first record, still being written: a run starting
    if stats.objects:
        return f"none of its {stats.objects} JSON object(s) has an integer \"epoch\""
    try:
        whole = json.loads(path.read_bytes()) if path.stat().st_size < 50_000_000 else None
    except (OSError, ValueError, RecursionError):
        whole = None
    if isinstance(whole, (dict, list)):
        hint = "; give the run directory instead" if path.name in (RUN_INFO, STATUS) else ""
        return f"one JSON document, not one record per line{hint}"
    return f"none of its {stats.lines} line(s) is a JSON object"


def _sniff_binary(path: Path) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as e:
        raise RunError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    if b"\0" not in head:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "binary data: a zip archive, as PyTorch checkpoints are; the analysis reads no checkpoint"
    return "binary data"


def _load_lone_jsonl(path: Path, warnings: list[str]) -> Run:
    """The seed's form: `--file train_diagnostics.jsonl`; its siblings are read when present.

    The file given must hold diagnostics records (or be empty: a run that has not finished an epoch):
    anything else is named in a RunError, not turned into an empty report."""
    reason = _sniff_binary(path)
    stats = JsonlStats()
    own: list[str] = []
    records = read_jsonl(path, own, stats) if reason is None else []
    reason = reason or _not_diagnostics(path, stats)
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
    if path.name in (TRAIN_JSONL, VAL_JSONL) and ((siblings / STATUS).exists() or (siblings / RUN_INFO).exists()):
        _warn_missing_jsonl(siblings, warnings)  # a run's diagnostics directory, not a lone file of the seed's form
    info = read_json(siblings / RUN_INFO, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    status = read_json(siblings / STATUS, warnings) if path.name in (TRAIN_JSONL, VAL_JSONL) else None
    config = info.get("config") if isinstance(info, dict) and isinstance(info.get("config"), dict) else None
    if not train and not val and not warnings:
        warnings.append(f"{path}: no records")
    return Run(name=path.stem, path=path.parent, train=Columns(train), val=Columns(val), config=config,
               info=info, status=status, warnings=warnings)

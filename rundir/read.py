"""A run directory (or a lone JSONL file) -> Run: everything the analysis knows about one run.

Run directories come from other people and other machines: files are opened through `rundir.safe`
(regular files only, every read capped, YAML bounded; nothing executed or unpickled) and JSONL files
read through `rundir.jsonl`. Every problem becomes a warning naming the file (and line), and the run is
read as far as it can be:

- a missing path or a directory that is no run raises `RunError` (one clear line for the CLI);
- a file given on its own in which no line is a diagnostics record (`/etc/passwd`, `run_info.json`,
  a checkpoint) raises `RunError`: it is not a diagnostics file;
- a run whose diagnostics went elsewhere (`diagnostics.dir`, `DIAGNOSTICS_DIR`) is read from where the
  trainer's `diagnostics_dir.json` says; without that file, one warning says none was found.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config_keys import DATA_NUM_CLASSES, TRAINER_EPOCHS
from . import safe
from .columns import Columns
from .format import (CONFUSION_FIELD, CONFUSION_JSONL, DIAGNOSTICS, DIAGNOSTICS_POINTER, HYDRA_CONFIG, HYDRA_DIR, HYDRA_OVERRIDES, POINTER_KEY, RUN_INFO,
                     RUNNING, STATES, STATUS, TRAIN_JSONL, VAL_JSONL)
# The readers the analysis uses, re-exported: it reads through rundir.read alone.
from .jsonl import MAX_LINE_WARNINGS, JsonlStats, parse_line, read_jsonl  # noqa: F401
from .safe import (exists, file_kind, is_dir, log_files, os_reason, printable, read_capped,  # noqa: F401
                   read_json, read_log_tail, read_yaml, read_yaml_list, read_yaml_mapping)


class RunError(Exception):
    """The path cannot be read as a run at all."""


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
    diagnostics_dir: Optional[Path] = None  # where the diagnostics files were read (per-sample records too)

    # ── facts derived from what was read ──
    @property
    def num_classes(self) -> Optional[int]:
        return _first_int((get(self.info, "num_classes"), get(self.config, DATA_NUM_CLASSES)), minimum=2)

    @property
    def planned_epochs(self) -> Optional[int]:
        return _first_int((get(self.config, TRAINER_EPOCHS), get(self.status, "epochs")), minimum=1)

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


# Larger counts (num_classes with 400 digits) are taken as unknown: no float arithmetic on them can fail.
INT_MAX = 2**31


def _first_int(values, minimum: int) -> Optional[int]:
    """The first of values that is an int (not a bool) of at least minimum and at most INT_MAX: sources in
    order of trust."""
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= INT_MAX),
                None)


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
        raise RunError(f"{path}: cannot read ({os_reason(e)})") from None
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
        raise RunError(f"{path}: {file_kind(mode)}, not a run directory or a diagnostics JSONL file")
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
    _attach_confusion(diag, val, warnings)
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
               notes=notes, diagnostics_dir=diag if found else None)


def _attach_confusion(diag: Path, val: list[dict], warnings: list[str]) -> None:
    """The matrices of CONFUSION_JSONL (written apart for many classes) into their epochs' VAL records, so the
    analysis finds CONFUSION_FIELD in the VAL records wherever the trainer put it."""
    if not exists(diag / CONFUSION_JSONL):
        return
    by_epoch = {r["epoch"]: r.get(CONFUSION_FIELD) for r in read_jsonl(diag / CONFUSION_JSONL, warnings)
                if type(r.get("epoch")) is int}
    for r in val:
        matrix = by_epoch.get(r.get("epoch")) if type(r.get("epoch")) is int else None
        if matrix is not None and CONFUSION_FIELD not in r:
            r[CONFUSION_FIELD] = matrix


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
        whole = json.loads(data) if len(data) <= safe.MAX_JSON_BYTES else None
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
    data = read_capped(path, safe.MAX_JSONL_BYTES, own)
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
               info=info, status=status, warnings=warnings,
               diagnostics_dir=siblings if path.name in (TRAIN_JSONL, VAL_JSONL) else None)

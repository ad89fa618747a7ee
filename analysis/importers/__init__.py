"""Runs logged by other tools -> the same `Run` the rules read (`python -m analysis PATH`).

Formats (`--from`): lightning (CSVLogger metrics.csv), tensorboard (event files), keras (CSVLogger),
hf (Hugging Face trainer_state.json), timm (summary.csv), jsonl (traindx's own diagnostics). Without
--from the format is detected from the path; traindx's own run directories are read as always. A
lightning-hydra-template job directory (.hydra/ plus csv/version_0/metrics.csv or tensorboard/) is a run
whose config and overrides come from .hydra/. How fields map, and what stays unknown: build.py, names.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rundir.format import HYDRA_CONFIG, HYDRA_DIR, HYDRA_OVERRIDES
from rundir.read import Run, RunError, find_diagnostics_dir, load_run
from rundir.safe import read_yaml_list, read_yaml_mapping

from . import hf, keras, lightning, tensorboard, timm
from .build import Source, is_imported, to_run
from .config_map import map_config
from .names import parse_map

FORMATS = ("lightning", "tensorboard", "keras", "hf", "timm", "jsonl")

__all__ = ["FORMATS", "ImportOptions", "detect", "load_runs", "load_job", "is_imported", "parse_map"]


@dataclass(frozen=True)
class ImportOptions:
    """What the command line says about foreign logs: --from, --map, --steps-per-epoch."""

    source: Optional[str] = None  # one of FORMATS; None: detect
    mapping: dict = field(default_factory=dict)  # metric name -> names.Target, or None (ignore)
    steps_per_epoch: Optional[int] = None  # TensorBoard steps -> epochs


def options(source: Optional[str] = None, maps: Optional[list[str]] = None,
            steps_per_epoch: Optional[int] = None) -> ImportOptions:
    """ImportOptions from the CLI's strings; a bad --map or --steps-per-epoch raises RunError."""
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise RunError(f"--steps-per-epoch {steps_per_epoch}: must be a positive number of steps")
    return ImportOptions(source, parse_map(maps or []), steps_per_epoch)


def _ours(path: Path) -> bool:
    if path.is_dir():
        return find_diagnostics_dir(path) is not None
    return path.suffix == ".jsonl"


def detect(path: Path, source: Optional[str] = None) -> Optional[tuple[str, list[Path]]]:
    """(format, the files or directories to read, one per run), or None for traindx's own format."""
    path = Path(path)
    if source == "jsonl" or (source is None and _ours(path)):
        return None
    kinds = [source] if source else ["hf", "timm", "lightning", "tensorboard", "keras"]
    for kind in kinds:
        found = _find(kind, path)
        if found:
            return kind, found
    if source:
        raise RunError(f"{path}: no {_WHAT[source]} found (--from {source})")
    return None


_WHAT = {"lightning": "Lightning metrics.csv", "tensorboard": "TensorBoard event files",
         "keras": "Keras CSVLogger file or history.history dump", "hf": "Hugging Face trainer_state.json", "timm": "timm summary.csv"}


def _find(kind: str, path: Path) -> list[Path]:
    if path.is_file():
        checks = {"hf": hf.looks_like, "timm": timm.looks_like, "lightning": lightning.looks_like,
                  "tensorboard": tensorboard.looks_like, "keras": keras.looks_like}
        return [path] if checks[kind](path) else []
    if not path.is_dir():
        return []
    if kind == "hf":
        return hf.find(path)
    if kind == "timm":
        p = path / timm.SUMMARY
        return [p] if p.is_file() and timm.looks_like(p) else []
    if kind == "lightning":
        return [p for p in lightning.find(path) if lightning.looks_like(p)]
    if kind == "tensorboard":
        return tensorboard.find(path)
    return [p for name in keras.NAMES if (p := path / name).is_file() and keras.looks_like(p)][:1]


def load_runs(path: Path, opts: Optional[ImportOptions] = None) -> list[Run]:
    """Every run at path: one for a run directory or log file, several for a Keras file written with
    append=True or a logger directory holding several versions."""
    opts = opts or ImportOptions()
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such file or directory")
    found = detect(path, opts.source)
    if found is None:
        return [load_run(path)]
    kind, targets = found
    hydra_dir = path / HYDRA_DIR if path.is_dir() and (path / HYDRA_DIR).is_dir() else None
    runs = [to_run(src, opts.mapping) for t in targets for src in _read(kind, t, opts, hydra_dir, path)]
    if len(targets) > 1 and hydra_dir is not None:  # a job directory is one run: its newest log
        runs = runs[-1:]
        runs[0].warnings.append(f"{path}: {len(targets)} logs found, the newest read ({targets[-1]})")
    return runs


def load_job(path: Path, opts: Optional[ImportOptions] = None) -> Run:
    """One sweep job: traindx's own, or another tool's (a lightning-hydra-template job)."""
    runs = load_runs(path, opts)
    if len(runs) > 1:
        runs[-1].warnings.append(f"{path}: {len(runs)} runs found, the last one read")
    return runs[-1]


def _read(kind: str, t: Path, opts: ImportOptions, hydra_dir: Optional[Path], job: Path) -> list[Source]:
    if kind == "keras":
        return keras.read(t)
    if kind == "timm":
        return [timm.read(t)]
    if kind == "hf":
        return [hf.read(t)]
    warnings: list[str] = []
    hydra_cfg = read_yaml_mapping(hydra_dir / HYDRA_CONFIG, warnings) if hydra_dir else None
    overrides = read_yaml_list(hydra_dir / HYDRA_OVERRIDES, warnings) if hydra_dir else []
    run_dir = job if hydra_dir else None
    if kind == "lightning":
        src = lightning.read(t, hydra_cfg, overrides, run_dir)
    else:
        src = tensorboard.read(t, opts.steps_per_epoch)
        if hydra_dir is not None:
            src.path, src.name = job, job.name
            src.source_config, src.overrides = hydra_cfg, overrides
            src.config = map_config(hydra_cfg, origin=src.origin)
            planned = (src.config or {}).get("trainer", {}).get("epochs")
            src.planned_epochs = planned if isinstance(planned, int) and planned > 0 else None
    if hydra_dir is not None:
        src.files.append(hydra_dir / "config.yaml")
    src.warnings += warnings
    return [src]

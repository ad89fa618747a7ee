"""A Hydra multirun directory -> Sweep: its provenance, its axes, and every job as a Run.

Hydra writes `multirun.yaml` before any job runs (its `hydra.overrides.task` holds the swept axes as
raw strings) and one directory per job (`<job.num>/.hydra/overrides.yaml` holds that job's
coordinates). Jobs may have failed, still be running, or never have started: each is named, none
stops the report. Files are read with safe loaders only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .records import Run, RunError, get, is_run_dir, load_run, read_yaml

SEED_KEY = "trainer.seed"  # runs that differ only in this key are replicates


def parse_value(text: str) -> Any:
    """An override value as Hydra reads it, for the simple cases: int, float, bool, null, else text."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() == "null":
        return None
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    return t


def split_override(override: str) -> tuple[str, str]:
    """'scheduler.patience=5' -> ('scheduler.patience', '5'); '+x=1' -> ('x', '1')."""
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: '[1,2],3' -> ['[1,2]', '3']."""
    parts, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


_RANGE = re.compile(r"^range\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*(?:,\s*(-?[\d.]+)\s*)?\)$")
_CHOICE = re.compile(r"^choice\((.*)\)$")


def sweep_values(value: str) -> Optional[list[str]]:
    """The values of a swept override ('3,5,10', 'choice(a,b)', 'range(1,4)'), or None if not a sweep."""
    m = _CHOICE.match(value.strip())
    if m:
        return _split_top_level(m.group(1))
    m = _RANGE.match(value.strip())
    if m:
        start, stop = float(m.group(1)), float(m.group(2))
        step = float(m.group(3)) if m.group(3) else 1.0
        if step == 0:
            return None
        vals, v = [], start
        while (v < stop if step > 0 else v > stop) and len(vals) < 10_000:
            vals.append(f"{v:g}")
            v += step
        return vals
    parts = _split_top_level(value)
    return parts if len(parts) > 1 else None


def sort_values(values: list[Any]) -> list[Any]:
    """Numeric order when every value is a number, else the order they came in."""
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return values


@dataclass
class Job:
    num: Optional[int]  # job.num (directory name), None for directories not named by a number
    path: Path
    run: Optional[Run]  # None when the directory could not be read as a run
    overrides: dict[str, Any] = field(default_factory=dict)  # key -> parsed value, from overrides.yaml
    state: str = "unknown"  # completed, failed, running, preempted, no diagnostics
    error: Optional[str] = None

    @property
    def name(self) -> str:
        return str(self.num) if self.num is not None else self.path.name


@dataclass
class Sweep:
    path: Path
    command: Optional[str]  # the task overrides of the -m command
    axes: dict[str, list[Any]]  # swept key -> its values in order
    fixed: dict[str, Any]  # non-swept task overrides of the command
    jobs: list[Job]
    expected: Optional[int]  # jobs the axes imply (None when unknown, e.g. an Optuna sweep)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def missing(self) -> list[int]:
        if self.expected is None:
            return []
        present = {j.num for j in self.jobs if j.num is not None}
        return [n for n in range(self.expected) if n not in present]


def is_sweep_dir(path: Path) -> bool:
    if not path.is_dir():
        return False
    if (path / "multirun.yaml").exists():
        return True
    return any(is_run_dir(p) for p in _job_dirs(path)) and not is_run_dir(path)


def _job_dirs(path: Path) -> list[Path]:
    dirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "analysis"]
    return sorted(dirs, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


def _job_state(run: Run) -> str:
    if run.state != "unknown":
        return run.state
    if len(run.train) or len(run.val):
        return "running"  # diagnostics but no status.json: a trainer from before status files, or mid-write
    return "no diagnostics"


def _job_error(run: Run, path: Path) -> Optional[str]:
    err = get(run.status, "error")
    if err:
        return str(err)
    if _job_state(run) == "no diagnostics":
        log = _last_error_line(path)
        return log or "no diagnostics written (the job failed before its first epoch; see its log)"
    return None


def _last_error_line(path: Path) -> Optional[str]:
    for log in sorted(path.glob("*.log")):
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-50:]
        except OSError:
            continue
        for line in reversed(lines):
            if "error" in line.lower():
                return line.strip()[-300:]
    return None


def load_sweep(path: Path | str) -> Sweep:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such directory")
    warnings: list[str] = []
    multirun = read_yaml(path / "multirun.yaml", warnings) if (path / "multirun.yaml").exists() else None
    task = get(multirun, "hydra.overrides.task") if isinstance(multirun, dict) else None
    task = [str(t) for t in task] if isinstance(task, list) else []
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for item in task:
        key, value = split_override(item)
        values = sweep_values(value)
        if values is None:
            fixed[key] = parse_value(value)
        else:
            axes[key] = [parse_value(v) for v in values]
    expected = None
    sweeper = get(multirun, "hydra.sweeper._target_") if isinstance(multirun, dict) else None
    if isinstance(multirun, dict) and (sweeper is None or str(sweeper).endswith("BasicSweeper")):
        expected = 1
        for values in axes.values():
            expected *= len(values)
    elif isinstance(get(multirun, "hydra.sweeper.n_trials"), int):  # Optuna: one job per trial
        expected = get(multirun, "hydra.sweeper.n_trials")

    jobs = []
    for d in _job_dirs(path):
        if not is_run_dir(d):
            continue
        try:
            run = load_run(d)
        except RunError as e:
            jobs.append(Job(int(d.name) if d.name.isdigit() else None, d, None, state="unreadable", error=str(e)))
            continue
        coords = {}
        for o in run.overrides:
            k, v = split_override(o)
            coords[k] = parse_value(v)
        jobs.append(Job(int(d.name) if d.name.isdigit() else None, d, run, coords, _job_state(run), _job_error(run, d)))
    if not axes and jobs:  # no multirun.yaml (or an ad-hoc folder of runs): axes from the jobs' overrides
        keys: dict[str, list[Any]] = {}
        for j in jobs:
            for k, v in j.overrides.items():
                if v not in keys.setdefault(k, []):
                    keys[k].append(v)
        axes = {k: v for k, v in keys.items() if len(v) > 1}
        fixed = {k: v[0] for k, v in keys.items() if len(v) == 1}
        if not (path / "multirun.yaml").exists():
            warnings.append(f"{path}: no multirun.yaml; axes taken from the jobs' overrides")
    axes = {k: sort_values(v) for k, v in axes.items()}
    if not jobs and multirun is None:
        raise RunError(f"{path}: not a sweep directory (no multirun.yaml and no job directories)")
    command = ("python -m trainer -m " + " ".join(task)) if task else None
    return Sweep(path, command, axes, fixed, jobs, expected, warnings)


def _flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(cfg, dict):
        return {}
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif not isinstance(v, list):
            out[key] = v
    return out


def sweep_from_runs(paths: list[Path]) -> Sweep:
    """Runs given one by one, compared as one sweep: the axes are the config keys whose values differ."""
    jobs, flat = [], []
    for p in paths:
        run = load_run(p)
        jobs.append(Job(None, Path(p), run, {}, _job_state(run), _job_error(run, Path(p))))
        flat.append(_flatten(run.config))
    keys = sorted({k for f in flat for k in f} - {"diagnostics.dir"})
    axes: dict[str, list[Any]] = {}
    for k in keys:
        values = []
        for f in flat:
            if f.get(k) not in values:
                values.append(f.get(k))
        if len(values) > 1:
            axes[k] = sort_values(values)
    for job, f in zip(jobs, flat):
        job.overrides = {k: f.get(k) for k in axes}
    for i, job in enumerate(jobs):  # distinct names even when two runs share a directory name
        if sum(j.path.name == job.path.name for j in jobs) > 1:
            job.path = Path(job.path)
        job.num = None
    names = [j.path.name for j in jobs]
    warnings = [] if len(set(names)) == len(names) else ["several runs share a directory name; see their paths"]
    return Sweep(Path.cwd(), None, axes, {}, jobs, None, warnings)

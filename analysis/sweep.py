"""A Hydra multirun directory -> Sweep: its provenance, its axes, and every job as a Run.

Hydra writes `multirun.yaml` before any job runs (its `hydra.overrides.task` holds the swept axes as
raw strings) and one directory per job (`<job.num>/.hydra/overrides.yaml` holds that job's
coordinates). Jobs may have failed, still be running, or never have started: each is named, none
stops the report. Files are read with safe loaders only.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rundir.format import MULTIRUN_YAML
from rundir.read import (Run, RunError, exists, get, is_dir, is_run_dir, log_files, read_log_tail,
                         read_yaml)
from rundir.config_keys import DIAGNOSTICS_DIR, TRAINER_SEED

from .importers import detect, is_imported, load_job

SEED_KEY = TRAINER_SEED  # runs that differ only in this key are replicates


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


def _range_bounds(value: str) -> Optional[tuple[float, float, float]]:
    """range(start, stop[, step]) as finite floats with a non-zero step, else None."""
    m = _RANGE.match(value.strip())
    if not m:
        return None
    try:
        start, stop, step = float(m.group(1)), float(m.group(2)), float(m.group(3) or 1)
    except ValueError:  # range(1.2.3, 4)
        return None
    if step == 0 or not all(math.isfinite(x) for x in (start, stop, step)):
        return None
    return start, stop, step


def sweep_size(value: str, values: list[str]) -> int:
    """How many jobs a swept value makes: a range's full length (its values are kept only up to
    AXIS_VALUES_KEPT), else the values listed."""
    bounds = _range_bounds(value)
    if not bounds:
        return len(values)
    start, stop, step = bounds
    return max(0, math.ceil((stop - start) / step))


def sweep_values(value: str) -> Optional[list[str]]:
    """The values of a swept override ('3,5,10', 'choice(a,b)', 'range(1,4)'), or None if not a sweep."""
    m = _CHOICE.match(value.strip())
    if m:
        return _split_top_level(m.group(1))
    bounds = _range_bounds(value)
    if bounds:
        start, stop, step = bounds
        vals, v = [], start
        while (v < stop if step > 0 else v > stop) and len(vals) < AXIS_VALUES_KEPT:
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


MISSING_LISTED = 100  # missing job numbers listed in a report (the count is always given)
AXIS_VALUES_KEPT = 10_000  # values of one range() axis enumerated; its length is still counted in full


@dataclass
class Job:
    """One job of a sweep, analysed: its table row, findings and curves (the full Run is not kept, so
    jobs can be analysed in worker processes and thousands fit in memory)."""

    num: Optional[int]  # job.num (directory name), None for directories not named by a number
    path: Path
    overrides: dict[str, Any] = field(default_factory=dict)  # key -> parsed value, from overrides.yaml
    state: str = "unknown"  # completed, failed, running, preempted, no diagnostics, unreadable
    error: Optional[str] = None
    summary: dict = field(default_factory=dict)  # summary.summary()
    findings: list = field(default_factory=list)  # Finding objects
    curves: dict = field(default_factory=dict)  # epochs and values for the HTML plots
    warnings: list[str] = field(default_factory=list)
    stale: Optional[str] = None  # status running, but no update for long: rundir.read.stale_note
    facts: dict = field(default_factory=dict)  # run_facts.sweep_facts() and the primary cause's id

    @property
    def name(self) -> str:
        return str(self.num) if self.num is not None else self.path.name


@dataclass
class Sweep:
    path: Path
    command: Optional[str]  # the task overrides of the -m command
    axes: dict[str, list[Any]]  # swept key -> its values in order (derived from the jobs when empty)
    fixed: dict[str, Any]  # non-swept task overrides of the command
    job_dirs: list[Path]
    expected: Optional[int]  # jobs the axes imply (None when unknown, e.g. an Optuna sweep)
    warnings: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)  # filled by analyze_jobs
    runs_given: bool = False  # single runs compared as one sweep (no sweep directory of their own)
    imports: Any = None  # importers.ImportOptions: how to read jobs another tool logged
    given: list = field(default_factory=list)  # runs_given: (Run, its coordinates as overrides), until analysed
    sweeper: Optional[str] = None  # multirun.yaml's hydra.sweeper._target_ (an Optuna search names its plugin)

    @property
    def name(self) -> str:
        if self.runs_given:
            return f"{len(self.job_dirs)} runs"
        return self.path.name

    def missing(self, limit: int = MISSING_LISTED) -> tuple[int, list[int]]:
        """How many of the expected job numbers have no directory, and the first `limit` of them. Counted,
        never enumerated: a multirun.yaml sweeping range(0,10000) on three keys expects 10^12 jobs."""
        if self.expected is None:
            return 0, []
        present = {int(d.name) for d in self.job_dirs if d.name.isdigit() and len(d.name) < 20}
        present = {n for n in present if n < self.expected}
        listed = []
        n = 0
        while len(listed) < limit and n < self.expected:
            if n not in present:
                listed.append(n)
            n += 1
        return self.expected - len(present), listed


def axes_from_jobs(sweep: Sweep) -> None:
    """Axes from the analysed jobs' overrides, where the sweep named none (no multirun.yaml, an Optuna sweep)."""
    if not sweep.axes and sweep.jobs:  # no multirun.yaml (or an Optuna sweep): axes from the jobs
        keys: dict[str, list[Any]] = {}
        for j in sweep.jobs:
            for k, v in j.overrides.items():
                if v not in keys.setdefault(k, []):
                    keys[k].append(v)
        sweep.axes = {k: sort_values(v) for k, v in keys.items() if len(v) > 1}
        sweep.fixed = {**sweep.fixed, **{k: v[0] for k, v in keys.items() if len(v) == 1}}


def is_sweep_dir(path: Path) -> bool:
    if not is_dir(path):
        return False
    if exists(path / MULTIRUN_YAML):
        return True
    return any(is_run_dir(p) for p in _job_dirs(path)) and not is_run_dir(path)


def _job_dirs(path: Path) -> list[Path]:
    try:
        dirs = [p for p in path.iterdir() if is_dir(p) and not p.name.startswith(".") and p.name != "analysis"]
    except OSError:  # no permission to list it
        return []
    return sorted(dirs, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


def job_state(run: Run) -> str:
    """completed, failed, running, preempted, no diagnostics or unknown (another tool's log that does not say)."""
    if run.state != "unknown":
        return run.state
    if (len(run.train) or len(run.val)) and is_imported(run):
        return "unknown"  # another tool's log that does not show whether the run ended: not running
    if len(run.train) or len(run.val):
        # Diagnostics but no status.json: an imported log (other tools write none) or a trainer from before
        # status files. Complete when it reached its planned epochs or plans none it says; else still going.
        planned = run.planned_epochs
        return "completed" if planned is None or run.last_epoch >= planned else "running"
    return "no diagnostics"


def job_error(run: Run, path: Path, warnings: list[str]) -> Optional[str]:
    err = get(run.status, "error")
    if err:
        return str(err)
    if job_state(run) == "no diagnostics":
        return _last_error_line(path, warnings) or "no diagnostics written (the job failed before its first epoch; see its log)"
    return None


def _last_error_line(path: Path, warnings: list[str]) -> Optional[str]:
    """The last line of the job's log (its tail: rundir.read caps the read) that mentions an error."""
    for log in log_files(path):
        for line in reversed(read_log_tail(log, warnings).splitlines()[-50:]):
            if "error" in line.lower():
                return line.strip()[-300:]
    return None


def load_sweep(path: Path | str, imports: Any = None) -> Sweep:
    """imports: importers.ImportOptions for jobs another tool logged (a lightning-hydra-template multirun)."""
    path = Path(path)
    if not is_dir(path):
        raise RunError(f"{path}: no such directory")
    warnings: list[str] = []
    multirun = read_yaml(path / MULTIRUN_YAML, warnings)
    task = get(multirun, "hydra.overrides.task") if isinstance(multirun, dict) else None
    task = [str(t) for t in task] if isinstance(task, list) else []
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for item in task:
        key, value = split_override(item)
        values = sweep_values(value)
        if values is None:
            fixed[key] = parse_value(value)
        else:
            axes[key] = [parse_value(v) for v in values]
            sizes[key] = sweep_size(value, values)
    expected = None
    sweeper = get(multirun, "hydra.sweeper._target_") if isinstance(multirun, dict) else None
    if isinstance(multirun, dict) and (sweeper is None or str(sweeper).endswith("BasicSweeper")):
        expected = math.prod(sizes.values())  # a product, never an enumeration of the jobs
    elif isinstance(get(multirun, "hydra.sweeper.n_trials"), int):  # Optuna: one job per trial
        expected = get(multirun, "hydra.sweeper.n_trials")

    job_dirs = [d for d in _job_dirs(path) if is_run_dir(d)]
    if not task and not exists(path / MULTIRUN_YAML):
        warnings.append(f"{path}: no multirun.yaml; axes taken from the jobs' overrides")
    axes = {k: sort_values(v) for k, v in axes.items()}
    if not job_dirs and multirun is None:
        raise RunError(f"{path}: not a sweep directory (no multirun.yaml and no job directories)")
    command = ("python -m trainer -m " + " ".join(task)) if task else None
    if task and job_dirs and _foreign_job(job_dirs[0], imports):  # e.g. a lightning-hydra-template multirun
        script = "python src/train.py" if get(multirun, "hydra.job.config_name") == "train.yaml" \
            else str(get(multirun, "hydra.job.name") or "?")
        command = f"{script} -m " + " ".join(task)
    return Sweep(path, command, axes, fixed, job_dirs, expected, warnings, imports=imports,
                 sweeper=str(sweeper) if sweeper is not None else None)


def _foreign_job(path: Path, imports: Any) -> bool:
    """True when the job's logs are another tool's (read by analysis.importers), not traindx's."""

    try:
        return detect(path, getattr(imports, "source", None)) is not None
    except RunError:
        return False


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


NOT_AXES = {DIAGNOSTICS_DIR}  # differs between any two runs and changes nothing they learn


def _derived_keys(run: Run) -> set[str]:
    """Keys whose value Hydra's config.yaml holds as an interpolation (model.num_classes: ${data.num_classes}):
    they follow another key, so they are no axis of their own."""
    return {k for k, v in _flatten(run.hydra_config).items() if isinstance(v, str) and "${" in v}


def config_axes(flat: list[dict[str, Any]], skip: set[str] = frozenset()) -> dict[str, list[Any]]:
    """The keys whose values differ among runs, as overrides `python -m trainer` accepts.

    A config group whose option differs (`augmentation.name`: none, basic) is one axis named by the group
    (`augmentation` = none, basic: the override `augmentation=basic`); a key of that group's options is an
    axis only when it differs among runs that chose the same option (crop_padding 4 and 8, both basic).
    Other keys are axes when their values differ. Keys in `skip` (derived ones) are never axes."""
    groups = list(dict.fromkeys(k[: -len(".name")] for f in flat for k in f
                                if k.endswith(".name") and "." not in k[: -len(".name")]))
    axes: dict[str, list[Any]] = {}
    chosen = {}
    for g in groups:
        names = list(dict.fromkeys(f.get(f"{g}.name") for f in flat))
        if len(names) > 1:
            axes[g] = sort_values(names)
            chosen[g] = names
    keys = list(dict.fromkeys(k for f in flat for k in f))
    for k in keys:
        if k in NOT_AXES or k in skip:
            continue
        group = k.split(".")[0]
        if k == f"{group}.name" and group in groups:
            continue
        if group in chosen:  # only where runs with the same option differ
            by_option: dict[Any, list[Any]] = {}
            for f in flat:
                if k in f:
                    vals = by_option.setdefault(f.get(f"{group}.name"), [])
                    if f[k] not in vals:
                        vals.append(f[k])
            if any(len(v) > 1 for v in by_option.values()):
                axes[k] = sort_values(list(dict.fromkeys(v for vs in by_option.values() for v in vs)))
            continue
        values = list(dict.fromkeys(repr(f.get(k)) for f in flat))
        if len(values) > 1:
            axes[k] = sort_values(list({repr(f.get(k)): f.get(k) for f in flat}.values()))
    return axes


def _run_coordinates(f: dict[str, Any], axes: dict[str, list[Any]]) -> dict[str, Any]:
    """One run's value on each axis, as overrides: a group axis by its option, other axes only where the
    run's config has the key (a key of another option would be refused by the trainer)."""
    coords = {}
    for k in axes:
        if f"{k}.name" in f and "." not in k:
            coords[k] = f[f"{k}.name"]
        elif k in f:
            coords[k] = f[k]
    return coords


def _common_overrides(runs: list[Run], axes: dict[str, list[Any]]) -> dict[str, Any]:
    """The command-line overrides every run shares (trainer.epochs=3), on keys that are no axis: the best
    configuration is only reproduced with them."""
    if not runs:
        return {}
    shared = set(runs[0].overrides)
    for r in runs[1:]:
        shared &= set(r.overrides)
    out = {}
    for o in runs[0].overrides:
        if o not in shared or o.startswith(("+", "~")) or "=" not in o:
            continue
        key, value = split_override(o)
        if key in axes or key.split(".")[0] in axes or key.startswith("hydra."):
            continue
        out[key] = parse_value(value)
    return out


def sweep_from_runs(paths: list[Path] | list[Run], imports: Any = None) -> Sweep:
    """Runs given one by one (paths, or Runs already read), compared as one sweep: the axes are the config
    values that differ. The runs are read here once and kept in `given` until jobs.analyze_jobs analyses them."""
    given = list(paths)
    runs = [p if isinstance(p, Run) else load_job(p, imports) for p in given]
    paths = [r.path if isinstance(p, Run) else p for p, r in zip(given, runs)]
    flat = [_flatten(r.config) for r in runs]
    derived = set().union(*(_derived_keys(r) for r in runs)) if runs else set()
    axes = config_axes(flat, derived)
    common = _common_overrides(runs, axes)
    try:
        where = Path(os.path.commonpath([str(Path(p).absolute()) for p in paths]))
    except ValueError:  # different drives
        where = Path.cwd()
    sweep = Sweep(where, None, axes, common, [Path(p) for p in paths], None, runs_given=True, imports=imports)
    sweep.given = [(r, {**common, **_run_coordinates(f, axes)}) for r, f in zip(runs, flat)]
    return sweep

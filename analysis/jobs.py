"""Every job of a sweep analysed: its diagnosis, its summary and its curves, in worker processes for large sweeps.

Layer 4 (reports): the sweep loader (sweep.py) reads; this runs the rules on each job and keeps only what the
sweep report needs (a Job), so that thousands of jobs fit in memory.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, Optional

from rundir.read import Run, RunError, stale_note

from .importers import load_job
from .job_cache import JobCache, signature
from .label_noise import leave_out_per_sample
from .rules import diagnose
from .rules.causes import primary
from .run_facts import sweep_facts
from .summary import summary
from .sweep import Job, Sweep, axes_from_jobs, job_error, job_state, parse_value, split_override


def analyze_job(path: Path | Run, imports: Any = None, per_sample: bool = True) -> Job:
    """Load one job directory (ours, or another tool's: importers) and analyse it, or analyse a Run
    already read; never raises on a broken directory. per_sample=False: without the per-sample records
    (label_noise.leave_out_per_sample), as a sweep's jobs are."""
    if isinstance(path, Run):
        run, path = path, path.path
        num = None
    else:
        num = int(path.name) if path.name.isdigit() else None
        try:
            run = load_job(path, imports)
        except RunError as e:
            return Job(num, path, state="unreadable", error=str(e))
    coords = {}
    for o in run.overrides:
        k, v = split_override(o)
        coords[k] = parse_value(v)
    curves = {"val_epochs": run.val.epochs.tolist(), "val_accuracy": run.val["accuracy"].tolist(),
              "train_epochs": run.train.epochs.tolist(), "learning_rate": run.train["learning_rate"].tolist()}
    left_out = not per_sample and leave_out_per_sample(run)
    findings = diagnose(run)
    facts = sweep_facts(run)
    facts["per_sample_left_out"] = left_out
    cause = primary(run, findings) if any(f.severity != "info" for f in findings) else None
    facts["primary_cause"] = cause.id if cause is not None else None
    warnings = list(run.warnings)
    return Job(num, path, coords, job_state(run), job_error(run, path, warnings), summary(run), findings, curves,
               warnings, stale_note(run), facts)


def _analyze_signed(path: Path, imports: Any, signed: bool) -> tuple[Optional[list], Job]:
    """A sweep job's signature (job_cache.signature; None unless signed), taken just before its files are read,
    and its analysis."""
    return signature(path) if signed else None, analyze_job(path, imports, per_sample=False)


POOL_MIN_JOBS = 200  # below this, worker start-up costs more than it saves


def analyze_jobs(sweep: Sweep, workers: Optional[int] = None, cache: Optional[JobCache] = None) -> None:
    """Analyse every job, in worker processes for large sweeps (one per core), in order; with a cache, only
    the jobs whose files changed since it was written (the cache is updated, for the caller to write)."""
    if sweep.given:  # runs compared one by one: read already, with their coordinates
        sweep.jobs = [analyze_job(run) for run, _ in sweep.given]
        axes_from_jobs(sweep)
        for job, (_, coords) in zip(sweep.jobs, sweep.given):
            job.num = None
            job.overrides = coords
        sweep.given = []  # analysed: the Runs need not stay in memory
        names = [j.name for j in sweep.jobs]
        if len(set(names)) != len(names):
            sweep.warnings.append("several runs share a directory name; see their paths")
        return
    dirs = sweep.job_dirs
    # Only a job the cache holds needs its signature here, to check its line. The others' are taken where they are
    # analysed, each just before its files are read: in the workers, in parallel, rather than one after another
    # before the pool starts (0.1 s per 1,000 jobs).
    sigs = [signature(d) if cache is not None and cache.holds(d) else None for d in dirs]
    jobs = [cache.get(d, s) if cache is not None else None for d, s in zip(dirs, sigs)]
    todo = [i for i, job in enumerate(jobs) if job is None]
    analyze = partial(_analyze_signed, imports=sweep.imports, signed=cache is not None)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if len(todo) >= POOL_MIN_JOBS and workers > 1:
        # concurrent.futures brings multiprocessing (20 ms): imported only by a sweep large enough to use it
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            fresh = list(pool.map(analyze, [dirs[i] for i in todo], chunksize=max(1, len(todo) // (workers * 8))))
    else:
        fresh = [analyze(dirs[i]) for i in todo]
    for i, (sig, job) in zip(todo, fresh):
        sigs[i], jobs[i] = sig, job
    sweep.jobs = jobs
    if cache is not None:
        cache.update(sweep.jobs, sigs)
    axes_from_jobs(sweep)

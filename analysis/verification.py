"""A verification sweep's result (each fix against the control), and the run report's `Verified` section.

Layer 4 (reports): `--verify` (verify.py, a command) plans and launches the sweep and stores this result in
its verify.json; the run report reads the stored record through records.py and, when the result was never
stored (the command was killed), computes it here from the jobs. Neither imports the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from rundir.read import Run, RunError

from .jobs import analyze_jobs
from .records import CONTROL, FIX_GROUP, latest_verification, read_manifest
from .stats import describe, median, noise_sd
from .sweep_stats import Noise, binomial_sd
from .sweep import load_sweep

SEEDS_FOR_NOISE = 3  # suggested --seeds when one seed per fix left the noise unmeasured


def result(sweep_dir: Path) -> Optional[dict]:
    """Each fix against the control (best val accuracy, mean over seeds), ranked, with the noise when seeds
    were replicated; None when the directory holds no verification."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return None
    plan_facts = {"original": manifest.get("original"), "epochs": manifest.get("epochs"),
                  "seeds": manifest.get("seeds")}
    try:
        sweep = load_sweep(sweep_dir)
    except RunError:  # not even multirun.yaml: Hydra refused the command
        return {"jobs": 0, "expected": None, "noise_sd": None, "control": None, "fixes": [], **plan_facts}
    analyze_jobs(sweep, workers=1)
    by_option: dict[str, list] = {}
    for job in sweep.jobs:
        by_option.setdefault(str(job.overrides.get(FIX_GROUP)), []).append(job)
    groups = {}
    for name, jobs in by_option.items():
        st = describe([j.summary.get("best_val_accuracy") for j in jobs])
        groups[name] = {**st, "states": sorted({j.state for j in jobs}),
                        "findings": sorted({f.id for j in jobs for f in j.findings if f.severity != "info"})}
    run_groups = [g for g in groups.values() if g["n"]]
    sd = noise_sd(run_groups)
    # The replicates' spread, or the validation set's own binomial noise where that is larger, at its degrees of
    # freedom; every fix is a claim against the same control (the level is shared among them).
    sizes = [j.facts.get("val_size") for j in sweep.jobs if isinstance(j.facts.get("val_size"), int)]
    bests = [g["mean"] for g in run_groups if g["mean"] is not None]
    binomial = binomial_sd(median(np.array(bests)), int(median(np.array(sizes, float)))) if sizes and bests else None
    noise = Noise(sd, sum(g["n"] - 1 for g in run_groups if g["n"] > 1 and g["std"] is not None), binomial)
    control = groups.get(CONTROL)
    comparisons = max(1, len(manifest.get("fixes", [])))
    fixes = []
    for fx in manifest.get("fixes", []):
        g = groups.get(fx.get("name"), {"n": 0, "mean": None, "std": None, "states": [], "findings": []})
        entry = {"name": fx.get("name"), "overrides": fx.get("overrides", []), "finding": fx.get("finding"),
                 "n": g["n"], "mean": g["mean"], "std": g["std"], "states": g["states"],
                 "finding_still_fires": fx.get("finding") in g["findings"] if g["n"] else None}
        entry["verdict"] = _verdict(g, control, noise, comparisons)
        fixes.append(entry)
    fixes.sort(key=lambda e: -(e["mean"] if e["mean"] is not None else -1))
    return {"jobs": len(sweep.jobs), "expected": sweep.expected, "noise_sd": sd,
            "control": ({"n": control["n"], "mean": control["mean"], "std": control["std"],
                         "states": control["states"]} if control else None),
            "fixes": fixes, **plan_facts}


def _verdict(g: dict, control: Optional[dict], noise: Noise, comparisons: int) -> str:
    if not g["n"] or control is None or not control["n"]:
        return "not run" if not g["n"] else "no control"
    delta = g["mean"] - control["mean"]
    tol = noise.tolerance(g["n"], control["n"], comparisons)
    if tol is None:
        return ("better" if delta > 0 else "worse" if delta < 0 else "same") + \
            " (one seed each: run-to-run noise not measured)"
    if delta > tol:
        return "better beyond noise"
    if delta < -tol:
        return "worse beyond noise"
    return "within noise of the control"


def _acc(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def verified_lines(res: dict, sweep_dir: str) -> list[str]:
    ctrl, orig = res.get("control"), res.get("original") or {}
    epochs = res.get("epochs")
    seeds = res.get("seeds") or []
    lines = [f"verification sweep {sweep_dir}: {res.get('jobs', 0)} jobs, {epochs} epochs, "
             f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds)) or '?'}"
             + (f", run-to-run sd {res['noise_sd']:.4f}" if res.get("noise_sd") else "")]
    for fx in res.get("fixes", []):
        n = f" (n={fx['n']})" if fx.get("n", 0) > 1 else ""
        states = [s for s in fx.get("states", []) if s != "completed"]
        cleared = ""
        if fx.get("finding_still_fires") is not None:
            cleared = (f"; {fx['finding']} still fires" if fx["finding_still_fires"] else f"; {fx['finding']} gone")
        lines.append(f"{' '.join(fx['overrides'])}: val accuracy {_acc(orig.get('best_val_accuracy'))} -> "
                     f"{_acc(fx.get('mean'))}{n} in {epochs} epochs, control {_acc(ctrl['mean'] if ctrl else None)}: "
                     f"{fx.get('verdict')}{cleared}" + (f" [{', '.join(states)}]" if states else ""))
    if res.get("noise_sd") is None and res.get("fixes"):
        lines.append(f"one seed per fix: rerun with --seeds {SEEDS_FOR_NOISE} to tell a fix from run-to-run noise")
    return lines


def verified_section(run: Run) -> Optional[dict]:
    """The run report's `Verified` section from the run's newest verification sweep, or None."""
    if run.path is None:
        return None
    sweep_dir = latest_verification(run.path)
    if sweep_dir is None:
        return None
    manifest = read_manifest(sweep_dir) or {}
    res = manifest.get("result") or result(sweep_dir)
    if res is None:
        return None
    return {"title": "Verified", "lines": verified_lines(res, str(sweep_dir)),
            "data": {"sweep_dir": str(sweep_dir), "command": manifest.get("command"), **res}}

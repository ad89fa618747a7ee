"""`python -m analysis RUN --verify`: rerun the report's top fixes as one Hydra multirun, against a control.

A Hydra multirun sweeps values, not sets of overrides, so each fix becomes one option of a config group
written for the occasion (`verify_fix`, in `<sweep dir>/.verify_conf/`, found through hydra.searchpath):

    <run>/verify/<date>_<time>/.verify_conf/verify_fix/control.yaml   # the run's own config
    <run>/verify/<date>_<time>/.verify_conf/verify_fix/fix1.yaml      # the run's config plus fix 1
    python -m trainer -m hydra.searchpath=[file://...] hydra.sweep.dir=<run>/verify/<date>_<time> \
        <the run's own overrides> trainer.epochs=K +verify_fix=control,fix1,fix2 trainer.seed=S[,S+1...] \
        <what follows -- : hydra/launcher=joblib, hydra/launcher=slurm hydra.launcher.partition=gpu, ...>

Each option is a `# @package _global_` config (the `experiment=` pattern): group choices as
`override /group: option`, values as nested keys. The run's own overrides of a key a fix changes leave
the command line (where they would beat any config file) and go into every option, the fix's value
replacing them in its own. The launcher is whatever the command line picks: the basic one runs the jobs
one after the other, joblib in parallel, submitit on SLURM; the command waits for all of them.

`<sweep dir>/verify.json` records what was run (the fixes, the command, the original run's accuracy over
the same epochs) and, once the jobs ended, the result: each fix against the control, with the run-to-run
noise when seeds were replicated. The run's report shows it in its `Verified` section, on every later
analysis too. Nothing here imports torch: the trainer runs in a subprocess.
"""

from __future__ import annotations

import datetime as _dt
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from rundir.files import write_json
from rundir.format import HYDRA_DIR, VERIFY_DIR, VERIFY_JSON as MANIFEST
from rundir.read import Run, RunError
from rundir.safe import read_json
from rundir.config_keys import TRAINER_EPOCHS, TRAINER_SEED

from .sweep import parse_value, split_override

FIX_GROUP = "verify_fix"  # the config group whose options are the fixes (and the control)
CONF_DIR = ".verify_conf"  # the group's config files, inside the sweep directory (shared with SLURM nodes)
CONTROL = "control"
DEFAULT_TOP = 3  # fixes verified when --top is not given
SEEDS_FOR_NOISE = 3  # suggested --seeds when one seed per fix left the noise unmeasured


# ───────────────────────────── the plan ─────────────────────────────

class Interrupted(RunError):
    """Ctrl-C during the verification sweep (exit 130, after one line)."""


SET_BY_VERIFY = (TRAINER_EPOCHS, TRAINER_SEED)  # the verification sets these for every job alike


def top_fixes(findings: list[dict], top: int) -> list[dict]:
    """The first `top` distinct recommendations that carry overrides, most severe finding first (the
    report's order). Advice on a key the verification itself sets (train longer) cannot be verified here."""
    fixes: list[dict] = []
    seen: set[tuple] = set()
    for f in findings:
        if f.get("severity") == "info":
            continue
        for r in f.get("recommendations", []):
            overrides = tuple(r.get("overrides") or ())
            if not overrides or overrides in seen or any(split_override(o)[0] in SET_BY_VERIFY for o in overrides):
                continue
            seen.add(overrides)
            fixes.append({"overrides": list(overrides), "finding": f["id"], "text": r.get("text", "")})
            if len(fixes) == top:
                return fixes
    return fixes


def lr_find_fix(run: Run, fixes: list[dict]) -> list[dict]:
    """The suggestion of an LR range test of the run's setup (python -m trainer.lr_find), as one more candidate,
    unless it is one of the fixes already."""
    from rundir.lr_find import lr_find_for, lr_override

    found = lr_find_for(run.path, run.config)
    if found is None:
        return []
    fix = [lr_override(found["suggested_lr"], run.cfg("scheduler"))]
    if any(fx["overrides"] == fix for fx in fixes):
        return []
    return [{"overrides": fix, "finding": "lr_find", "text": f"the LR range test's suggestion ({found['path']})"}]


def _is_group_choice(key: str) -> bool:
    return "." not in key  # scheduler=cosine, fault=none: every top-level key of this config is a group


def _touches(fix_key: str, key: str) -> bool:
    """Does setting fix_key change what `key=...` on the command line means? The same key, or a key inside a
    group the fix switches (scheduler=cosine drops scheduler.patience=0)."""
    return key == fix_key or (_is_group_choice(fix_key) and key.startswith(fix_key + "."))


def _yaml_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in "[{":
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return parse_value(text)


def option_yaml(overrides: list[str]) -> str:
    """A `# @package _global_` config that applies these overrides: group choices in its defaults list,
    values as nested keys."""
    import yaml

    defaults, values = [], {}
    for o in overrides:
        key, raw = split_override(o)
        if _is_group_choice(key):
            defaults.append({f"override /{key}": raw})
            continue
        node = values
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _yaml_value(raw)
    body = {**({"defaults": defaults} if defaults else {}), **values}
    return "# @package _global_\n# written by python -m analysis --verify\n" + (
        yaml.safe_dump(body, sort_keys=False, default_flow_style=False) if body else "{}\n")


def _best_within(run: Run, epochs: int) -> Optional[float]:
    acc = [float(a) for e, a in zip(run.val.epochs, run.val["accuracy"]) if e <= epochs and math.isfinite(a)]
    return max(acc) if acc else None


def plan(run: Run, findings: list[dict], sweep_dir: Path, top: int = DEFAULT_TOP, epochs: Optional[int] = None,
         seeds: int = 1, extra: tuple[str, ...] = ()) -> dict:
    """What --verify will run: the fixes, the option files and the command (nothing is written here)."""
    fixes = top_fixes(findings, top)
    fixes += lr_find_fix(run, fixes)
    if not fixes:
        raise RunError(f"{run.path}: no finding recommends an override: nothing to verify")
    epochs = epochs or run.planned_epochs or run.last_epoch or 1
    seed = run.cfg(TRAINER_SEED, 0)
    seed = seed if isinstance(seed, int) and seed >= 0 else 0
    seed_list = list(range(seed, seed + max(1, seeds)))
    fix_keys = {split_override(o)[0] for fx in fixes for o in fx["overrides"]}
    own = [o for o in run.overrides if "=" in o and not split_override(o)[0].startswith("hydra.")]
    moved = [o for o in own if any(_touches(k, split_override(o)[0]) for k in fix_keys)]
    cli = [o for o in own if o not in moved and split_override(o)[0] not in SET_BY_VERIFY]
    option_overrides = {CONTROL: moved}
    for i, fx in enumerate(fixes, 1):
        fx["name"] = f"fix{i}"
        keys = [split_override(o)[0] for o in fx["overrides"]]
        kept = [o for o in moved if not any(_touches(k, split_override(o)[0]) for k in keys)]
        option_overrides[fx["name"]] = kept + fx["overrides"]
    options = {name: option_yaml(ovs) for name, ovs in option_overrides.items()}
    conf = sweep_dir / CONF_DIR
    command = [sys.executable, "-m", "trainer", "-m", f"hydra.searchpath=[file://{conf.absolute()}]",
               f"hydra.sweep.dir={sweep_dir.absolute()}", *cli, f"trainer.epochs={epochs}",
               f"+{FIX_GROUP}={','.join(options)}", f"trainer.seed={','.join(map(str, seed_list))}", *extra]
    return {"run": str(run.path), "sweep_dir": str(sweep_dir), "epochs": epochs, "seeds": seed_list,
            "fixes": fixes, "options": options, "option_overrides": option_overrides, "command": command,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "original": {"best_val_accuracy": _best_within(run, epochs), "epochs": epochs}}


def new_sweep_dir(run: Run) -> Path:
    base = Path(run.path) / VERIFY_DIR
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path, n = base / stamp, 1
    while path.exists():
        n += 1
        path = base / f"{stamp}_{n}"
    return path


def write_plan(p: dict) -> None:
    """The option files and the manifest, before anything runs: an interrupted verification is still found."""
    sweep_dir = Path(p["sweep_dir"])
    group = sweep_dir / CONF_DIR / FIX_GROUP
    try:
        group.mkdir(parents=True, exist_ok=True)
        for name, text in p["options"].items():
            (group / f"{name}.yaml").write_text(text, encoding="utf-8")
        write_json(sweep_dir / MANIFEST, {k: v for k, v in p.items() if k != "options"})
    except OSError as e:
        raise RunError(f"cannot write the verification sweep into {sweep_dir}: {e.strerror or e}") from None


def launch(p: dict) -> int:
    """Run the multirun, its output on stderr (stdout is the report's); returns its exit status."""
    print("verify: " + " ".join(p["command"][1:]), file=sys.stderr, flush=True)
    try:
        return subprocess.run(p["command"], stdout=sys.stderr, stderr=sys.stderr).returncode
    except OSError as e:
        raise RunError(f"cannot start the trainer ({p['command'][0]}): {e.strerror or e}") from None


# ───────────────────────────── the result ─────────────────────────────

def result(sweep_dir: Path) -> Optional[dict]:
    """Each fix against the control (best val accuracy, mean over seeds), ranked, with the noise when seeds
    were replicated; None when the directory holds no verification."""
    from .sweep import analyze_jobs, load_sweep
    from .sweep_report import _stats, noise_sd

    manifest = _read(sweep_dir / MANIFEST)
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
        st = _stats([j.summary.get("best_val_accuracy") for j in jobs])
        groups[name] = {**st, "states": sorted({j.state for j in jobs}),
                        "findings": sorted({f.id for j in jobs for f in j.findings if f.severity != "info"})}
    sd = noise_sd([g for g in groups.values() if g["n"]])
    control = groups.get(CONTROL)
    fixes = []
    for fx in manifest.get("fixes", []):
        g = groups.get(fx.get("name"), {"n": 0, "mean": None, "std": None, "states": [], "findings": []})
        entry = {"name": fx.get("name"), "overrides": fx.get("overrides", []), "finding": fx.get("finding"),
                 "n": g["n"], "mean": g["mean"], "std": g["std"], "states": g["states"],
                 "finding_still_fires": fx.get("finding") in g["findings"] if g["n"] else None}
        entry["verdict"] = _verdict(g, control, sd)
        fixes.append(entry)
    fixes.sort(key=lambda e: -(e["mean"] if e["mean"] is not None else -1))
    return {"jobs": len(sweep.jobs), "expected": sweep.expected, "noise_sd": sd,
            "control": ({"n": control["n"], "mean": control["mean"], "std": control["std"],
                         "states": control["states"]} if control else None),
            "fixes": fixes, **plan_facts}


def _verdict(g: dict, control: Optional[dict], sd: Optional[float]) -> str:
    from .sweep_report import tie_tolerance

    if not g["n"] or control is None or not control["n"]:
        return "not run" if not g["n"] else "no control"
    delta = g["mean"] - control["mean"]
    if sd is None:
        return ("better" if delta > 0 else "worse" if delta < 0 else "same") + \
            " (one seed each: run-to-run noise not measured)"
    tol = tie_tolerance(g["n"], control["n"], sd)
    if delta > tol:
        return "better beyond noise"
    if delta < -tol:
        return "worse beyond noise"
    return "within noise of the control"


def _read(path: Path) -> Optional[dict]:
    return read_json(path, [])  # regular files only, capped; None when gone or damaged


def store_result(sweep_dir: Path) -> Optional[dict]:
    """Compute the result and keep it in the manifest (best effort: a read-only directory keeps the plan)."""
    res = result(sweep_dir)
    manifest = _read(sweep_dir / MANIFEST)
    if res is not None and manifest is not None:
        try:
            write_json(sweep_dir / MANIFEST, {**manifest, "result": res})
        except OSError:
            pass
    return res


def plain_overrides(sweep_dir: Path, overrides_cli: list[str]) -> list[str]:
    """A verification sweep's configuration as overrides `python -m trainer` takes without the option files:
    `verify_fix=fix1` becomes that option's overrides. Other sweeps' lists come back unchanged."""
    manifest = _read(Path(sweep_dir) / MANIFEST)
    options = manifest.get("option_overrides") if manifest else None
    if not isinstance(options, dict):
        return overrides_cli
    out = []
    for o in overrides_cli:
        key, value = split_override(o)
        out += options.get(value, [o]) if key == FIX_GROUP else [o]
    return out


# ───────────────────────────── the run report's section ─────────────────────────────

def latest(run_dir: Path) -> Optional[Path]:
    """The newest verification sweep of a run (directory names are timestamps), or None."""
    base = Path(run_dir) / VERIFY_DIR
    try:
        found = sorted(d for d in base.iterdir() if (d / MANIFEST).is_file())
    except OSError:
        return None
    return found[-1] if found else None


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
    sweep_dir = latest(run.path)
    if sweep_dir is None:
        return None
    manifest = _read(sweep_dir / MANIFEST) or {}
    res = manifest.get("result") or result(sweep_dir)
    if res is None:
        return None
    return {"title": "Verified", "lines": verified_lines(res, str(sweep_dir)),
            "data": {"sweep_dir": str(sweep_dir), "command": manifest.get("command"), **res}}


# ───────────────────────────── the command ─────────────────────────────

def verify(path: Path, top: int, epochs: Optional[int], seeds: int, extra: tuple[str, ...]) -> Path:
    """Plan, write, launch, store: returns the verification sweep's directory."""
    from . import run_report
    from rundir.read import load_run

    run = load_run(path)
    if run.path is None or not (Path(run.path) / HYDRA_DIR).is_dir():
        raise RunError(f"{path}: --verify needs a run directory made by python -m trainer (with .hydra/)")
    report = run_report.build(run)
    p = plan(run, report["findings"], new_sweep_dir(run), top=top, epochs=epochs, seeds=seeds, extra=extra)
    write_plan(p)
    sweep_dir = Path(p["sweep_dir"])
    try:
        code = launch(p)
    except KeyboardInterrupt:  # the trainer got the Ctrl-C too and checkpointed; keep what finished
        store_result(sweep_dir)
        raise Interrupted(f"interrupted: the verification sweep in {sweep_dir} is incomplete; its Verified "
                          f"section shows what finished (python -m analysis {path})") from None
    res = store_result(sweep_dir)
    if code != 0 and (res is None or not res.get("jobs")):
        raise RunError(f"the verification sweep did not run (python -m trainer exited {code}; see above)")
    if code != 0:
        print(f"warning: the verification sweep exited {code}: some jobs failed (see the Verified section)",
              file=sys.stderr)
    return sweep_dir


def verify_command(paths: list[Path], args) -> int:
    """--verify: check the arguments, verify, then print the run's report (its Verified section included)."""
    from .dispatch import report_run
    from .sweep import is_sweep_dir

    if len(paths) != 1 or not paths[0].is_dir() or is_sweep_dir(paths[0]):
        raise RunError("--verify takes one run directory (not a sweep, not a JSONL file)")
    for name, value in (("--top", args.top), ("--seeds", args.seeds), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            raise RunError(f"{name} must be >= 1, got {value}")
    if args.out is not None:
        from .dispatch import prepare_out

        prepare_out(args.out)  # a bad --out fails before any training, not after
    try:
        verify(paths[0], args.top, args.epochs, args.seeds, args.hydra_overrides)
    except Interrupted as e:
        print(f"error: {e}", file=sys.stderr)
        return 130
    return report_run(paths[0], args.format, args.out, args.fail_on)

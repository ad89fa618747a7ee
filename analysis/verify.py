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

from rundir.files import RunFileError, write_json
from rundir.format import HYDRA_DIR, VERIFY_DIR, VERIFY_JSON as MANIFEST
from rundir.lock import hold
from rundir.lr_find import lr_find_for, lr_override
from rundir.read import Run, RunError, load_run
from rundir.config_keys import TRAINER_EPOCHS, TRAINER_SEED

from . import run_report
from .dispatch import prepare_out, report_run
from .records import CONTROL, FIX_GROUP, read_manifest
from .sweep import is_sweep_dir, parse_value, split_override
from .verification import result

CONF_DIR = ".verify_conf"  # the group's config files, inside the sweep directory (shared with SLURM nodes)
DEFAULT_TOP = 3  # fixes verified when --top is not given


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
    """A name no verification of the run has taken (verify() holds the run's lock: no other is choosing one)."""
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

def store_result(sweep_dir: Path) -> Optional[dict]:
    """Compute the result and keep it in the manifest (best effort: a read-only directory keeps the plan)."""
    res = result(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if res is not None and manifest is not None:
        try:
            write_json(sweep_dir / MANIFEST, {**manifest, "result": res})
        except OSError:
            pass
    return res


# ───────────────────────────── the command ─────────────────────────────

def verify(path: Path, top: int, epochs: Optional[int], seeds: int, extra: tuple[str, ...]) -> Path:
    """Plan, write, launch, store: returns the verification sweep's directory."""
    run = load_run(path)
    if run.path is None or not (Path(run.path) / HYDRA_DIR).is_dir():
        raise RunError(f"{path}: --verify needs a run directory made by python -m trainer (with .hydra/)")
    report = run_report.build(run)
    try:  # --verify writes into the run directory: one writer at a time (rundir/lock.py), the trainer included
        with hold(Path(run.path), "wait for it to end"):
            p = plan(run, report["findings"], new_sweep_dir(run), top=top, epochs=epochs, seeds=seeds, extra=extra)
            write_plan(p)
            sweep_dir = Path(p["sweep_dir"])
            try:
                code = launch(p)
            except KeyboardInterrupt:  # the trainer got the Ctrl-C too and checkpointed; keep what finished
                store_result(sweep_dir)
                raise Interrupted(f"interrupted: the verification sweep in {sweep_dir} is incomplete; its Verified "
                                  f"section shows what finished (python -m analysis {path})") from None
    except RunFileError as e:  # another --verify or a trainer holds the run, or it cannot be written
        raise RunError(f"--verify: {e}") from None
    res = store_result(sweep_dir)
    if code != 0 and (res is None or not res.get("jobs")):
        raise RunError(f"the verification sweep did not run (python -m trainer exited {code}; see above)")
    if code != 0:
        print(f"warning: the verification sweep exited {code}: some jobs failed (see the Verified section)",
              file=sys.stderr)
    return sweep_dir


def verify_command(paths: list[Path], args) -> int:
    """--verify: check the arguments, verify, then print the run's report (its Verified section included)."""
    if len(paths) != 1 or not paths[0].is_dir() or is_sweep_dir(paths[0]):
        raise RunError("--verify takes one run directory (not a sweep, not a JSONL file)")
    for name, value in (("--top", args.top), ("--seeds", args.seeds), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            raise RunError(f"{name} must be >= 1, got {value}")
    if args.out is not None:
        prepare_out(args.out)  # a bad --out fails before any training, not after
    try:
        verify(paths[0], args.top, args.epochs, args.seeds, args.hydra_overrides)
    except Interrupted as e:
        print(f"error: {e}", file=sys.stderr)
        return 130
    return report_run(paths[0], args.format, args.out, args.fail_on)
